"""Add literature sources in bulk from a folder of PDF/text files or a CSV of metadata.

CSV columns: doi,title,authors,year,journal,url,file (file relative to the CSV's folder;
any column may be blank, but each row needs a DOI or a file).
"""

import csv
import json
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from core.doi import find_doi
from mining import services


class Command(BaseCommand):
    help = "Add literature sources from a folder of .pdf/.txt files or a CSV of metadata (+ files)."

    def add_arguments(self, parser):
        parser.add_argument("path", help="a folder or a .csv file")
        parser.add_argument("--json", action="store_true")

    def handle(self, path, json=False, **options):
        root = Path(path)
        if root.is_dir():
            rows = [{"file": str(p)} for p in sorted(root.iterdir()) if p.suffix.lower() in {".pdf", ".txt", ".md"}]
            base = root
        elif root.is_file():
            with root.open(encoding="utf-8-sig", newline="") as fh:
                rows = list(csv.DictReader(fh))
            base = root.parent
        else:
            raise CommandError(f"{path} is neither a folder nor a CSV file.")
        report = {"created": [], "skipped": []}
        for n, row in enumerate(rows, start=1):
            row = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items()}
            file_path = Path(row["file"]) if row.get("file") else None
            if file_path is not None and not file_path.is_absolute():
                file_path = base / file_path
            label = row.get("file") or row.get("doi") or f"row {n}"
            try:
                data = file_path.read_bytes() if file_path else None
                doi = row.get("doi", "")
                if not doi and data is not None and file_path.suffix.lower() != ".pdf":
                    doi = find_doi(data[:20000].decode("utf-8", errors="ignore"))
                year = int(row["year"]) if row.get("year") else None
                source = services.create_source(
                    doi=doi, data=data, filename=file_path.name if file_path else "", title=row.get("title", ""),
                    authors=row.get("authors", ""), year=year, journal=row.get("journal", ""), url=row.get("url", ""),
                )
            except (OSError, ValueError, ValidationError, services.MiningError) as exc:
                reason = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
                report["skipped"].append({"item": label, "reason": reason})
                continue
            report["created"].append({"item": label, "source_id": source.pk, "doi": source.doi})
        if json:
            self.stdout.write(_json.dumps(report, indent=2))
            return
        self.stdout.write(f"{len(report['created'])} sources added, {len(report['skipped'])} skipped.")
        for s in report["skipped"]:
            self.stdout.write(f"  skipped {s['item']}: {s['reason']}")


_json = json
