import json

from django.core.management.base import BaseCommand, CommandError

from mining import services


class Command(BaseCommand):
    help = ("Load a CSV of already-extracted rows (composition,Tg_K,Tx_K,Tl_K[,source,doi,snippet]) as an "
            "'import' batch, validate it and report counts per status and per flag.")

    def add_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument("--batch", required=True, help="batch name (importing again into it replaces its pending records)")
        parser.add_argument("--json", action="store_true", help="print the summary as JSON")

    def handle(self, path, batch, json=False, **options):
        try:
            summary = services.import_extracted(path, batch_name=batch)
        except (OSError, services.MiningError) as exc:
            raise CommandError(str(exc)) from None
        if json:
            self.stdout.write(_json.dumps(summary, indent=2, sort_keys=True))
            return
        self.stdout.write(f"Batch {summary['batch']}: {summary['rows']} rows, {summary['created']} new records, "
                          f"{summary['kept_reviewed']} already reviewed, {summary['clean']} clean.")
        for name, n in summary["status"].items():
            self.stdout.write(f"  status {name}: {n}")
        for name, n in summary["flags"].items():
            self.stdout.write(f"  flag {name}: {n}")


_json = json
