"""manage.py load_starter_set [--if-empty] [--no-corpus] [--corpus PATH]: a few well-known BMGs
with their citations, then the bundled starter corpus (Forrest & Greer 2022's GFA table)."""

import csv
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from lab.importing import ImportFileError, import_alloys
from lab.models import Alloy
from lab.starter_corpus import CORPUS_CSV, load_corpus

STARTER_SET = Path(__file__).resolve().parents[2] / "starter_set.csv"


def starter_rows(path=STARTER_SET):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


class Command(BaseCommand):
    help = (
        "Load the starter set of classic bulk metallic glasses (through the import service) and the bundled "
        "starter corpus of glass-forming ability (lab/starter_corpus/)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--if-empty", action="store_true", help="Do nothing when the database already holds alloys.")
        parser.add_argument("--no-corpus", action="store_true", help="Only the classic BMGs, not the starter corpus.")
        parser.add_argument("--corpus", default=str(CORPUS_CSV), help="Another corpus table (same columns).")

    def handle(self, *args, if_empty=False, no_corpus=False, corpus=str(CORPUS_CSV), **options):
        if if_empty and Alloy.objects.exists():
            self.stdout.write("Alloys already exist; starter set not loaded.")
            return
        # The classics first: the import records their citation only on a new alloy.
        try:
            report = import_alloys(starter_rows(), source_label="GlassLoop starter set")
        except ImportFileError as exc:
            raise CommandError(f"starter set: {exc}") from None
        counts = report.counts
        for row in report.rows:
            if row["outcome"] == "refused":
                self.stderr.write(f"line {row['line']}: {row['composition']} refused — {row['reason']}")
        self.stdout.write(
            self.style.SUCCESS(
                f"Starter set: {counts['rows']} rows, {counts['created']} created, {counts['merged']} merged, "
                f"{counts['conflicts']} conflicts, {counts['refused']} refused."
            )
        )
        if no_corpus:
            return
        try:
            corpus_report = load_corpus(corpus)
        except ImportFileError as exc:
            raise CommandError(f"starter corpus: {exc}") from None
        for n, composition, reason in corpus_report.refused:
            self.stderr.write(f"corpus row {n}: {composition} refused — {reason}")
        self.stdout.write(self.style.SUCCESS(corpus_report.summary()))
        for kind, count in corpus_report.refused_by_reason.items():
            self.stdout.write(f"  refused, {kind}: {count:,}")
