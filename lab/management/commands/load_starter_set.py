"""manage.py load_starter_set [--if-empty]: a few well-known BMGs with their citations."""

import csv
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from lab.importing import ImportFileError, import_alloys
from lab.models import Alloy

STARTER_SET = Path(__file__).resolve().parents[2] / "starter_set.csv"


def starter_rows(path=STARTER_SET):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


class Command(BaseCommand):
    help = "Load the starter set of classic bulk metallic glasses (through the import service)."

    def add_arguments(self, parser):
        parser.add_argument("--if-empty", action="store_true", help="Do nothing when the database already holds alloys.")

    def handle(self, *args, if_empty=False, **options):
        if if_empty and Alloy.objects.exists():
            self.stdout.write("Alloys already exist; starter set not loaded.")
            return
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
