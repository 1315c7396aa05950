"""manage.py import_alloys PATH [--dry-run] [--json]"""

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from lab.importing import OUTCOME_REFUSED, ImportFileError, import_alloys


class Command(BaseCommand):
    help = "Import a CSV or XLSX table of alloys (composition, Tg_K, Tx_K, Tl_K; optional source, doi) in one transaction."

    def add_arguments(self, parser):
        parser.add_argument("path", help="CSV or XLSX file")
        parser.add_argument("--dry-run", action="store_true", help="Report what would happen; save nothing.")
        parser.add_argument("--json", action="store_true", help="Print only the counts as JSON.")

    def handle(self, *args, path, dry_run, json: bool, **options):
        as_json = json
        try:
            report = import_alloys(path, dry_run=dry_run, source_label=Path(path).name)
        except ImportFileError as exc:
            raise CommandError(str(exc)) from None
        counts = report.counts
        if as_json:
            self.stdout.write(_dumps(dict(counts, dry_run=dry_run)))
            return
        for row in sorted(report.rows, key=lambda r: r["line"]):
            line = f"line {row['line']:>5}  {row['outcome']:<8}  {row['composition']}"
            if row["outcome"] != "created":
                line += f"  — {row['reason']}"
            style = self.style.ERROR if row["outcome"] == OUTCOME_REFUSED else (
                self.style.WARNING if row["outcome"] == "conflict" else (lambda s: s)
            )
            self.stdout.write(style(line))
        summary = (
            f"{counts['rows']} rows: {counts['created']} created, {counts['merged']} merged, "
            f"{counts['conflicts']} conflicts, {counts['refused']} refused."
        )
        if dry_run:
            summary += " Dry run: nothing was saved."
        self.stdout.write(self.style.SUCCESS(summary))


def _dumps(data):
    return json.dumps(data, sort_keys=True)
