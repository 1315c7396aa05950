"""Add literature sources in bulk from a folder of PDF/text files or a CSV of metadata.

CSV columns: doi,title,authors,year,journal,url,file (file relative to the CSV's folder;
any column may be blank, but each row needs a DOI or a file).

Only ``.pdf`` and ``.txt`` files are read unless ``--ext`` says otherwise (a folder's
README.md or notes are not papers); a file larger than ``GLASSLOOP_MAX_UPLOAD_BYTES`` (the
web form's limit) is skipped without being read. The command exits non-zero, after its
summary, when nothing was added.
"""

import csv
import json
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from core.doi import find_doi
from mining import services

DEFAULT_EXTENSIONS = (".pdf", ".txt")


def _extensions(text):
    exts = {("." + e.strip().lower().lstrip(".")) for e in (text or "").split(",") if e.strip()}
    return tuple(sorted(exts)) or DEFAULT_EXTENSIONS


class Command(BaseCommand):
    help = "Add literature sources from a folder of .pdf/.txt files or a CSV of metadata (+ files)."

    def add_arguments(self, parser):
        parser.add_argument("path", help="a folder or a .csv file")
        parser.add_argument("--json", action="store_true")
        parser.add_argument("--ext", default=",".join(DEFAULT_EXTENSIONS),
                            help="file types to read, comma-separated (default: .pdf,.txt; e.g. --ext pdf,txt,md)")

    def handle(self, path, json=False, ext=None, **options):
        extensions = _extensions(ext)
        limit = int(settings.GLASSLOOP_MAX_UPLOAD_BYTES)
        root = Path(path)
        report = {"created": [], "skipped": [], "ignored": []}
        if root.is_dir():
            rows = []
            for p in sorted(root.iterdir()):
                if p.is_file() and p.suffix.lower() in extensions and not p.name.startswith("."):
                    rows.append({"file": str(p)})
                elif p.is_file():
                    report["ignored"].append(p.name)
            base = root
        elif root.is_file():
            with root.open(encoding="utf-8-sig", newline="") as fh:
                rows = list(csv.DictReader(fh))
            base = root.parent
        else:
            raise CommandError(f"{path} is neither a folder nor a CSV file.")
        for n, row in enumerate(rows, start=1):
            row = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items()}
            file_path = Path(row["file"]) if row.get("file") else None
            if file_path is not None and not file_path.is_absolute():
                file_path = base / file_path
            label = row.get("file") or row.get("doi") or f"row {n}"
            try:
                if file_path is not None and file_path.suffix.lower() not in extensions:
                    raise services.MiningError(
                        f"Not a {'/'.join(extensions)} file (read other types with --ext)."
                    )
                if file_path is not None and file_path.stat().st_size > limit:
                    raise services.MiningError(
                        f"The file is {file_path.stat().st_size / 2**20:.1f} MiB; the limit is {limit / 2**20:g} MiB "
                        "(GLASSLOOP_MAX_UPLOAD_BYTES, as for the web form)."
                    )
                data = file_path.read_bytes() if file_path else None
                doi = row.get("doi", "")
                if not doi and data is not None and file_path.suffix.lower() != ".pdf":
                    doi = find_doi(data[:20000].decode("utf-8", errors="ignore"))
                year = int(row["year"]) if row.get("year") else None
                source = services.create_source(
                    doi=doi, data=data, filename=file_path.name if file_path else "", title=row.get("title", ""),
                    authors=row.get("authors", ""), year=year, journal=row.get("journal", ""), url=row.get("url", ""),
                    queue_reading=False,
                )
                if source.reading is not None:  # read here, in this process (a shell, not a web request)
                    services.read_pdf(source.reading.pk)
                    source.refresh_from_db()
                    if source.text_status != source.TEXT_READY:
                        report["skipped"].append({"item": label, "reason": f"stored as source #{source.pk}, but its PDF was "
                                                  f"{source.text_status_display}"})
                        continue
            except (OSError, ValueError, ValidationError, services.MiningError) as exc:
                reason = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
                report["skipped"].append({"item": label, "reason": reason})
                continue
            report["created"].append({"item": label, "source_id": source.pk, "doi": source.doi})
        summary = (f"{len(report['created'])} sources added, {len(report['skipped'])} skipped, "
                   f"{len(report['ignored'])} other files ignored.")
        if json:
            self.stdout.write(_json.dumps({**report, "summary": summary}, indent=2))
        else:
            self.stdout.write(summary)
            for s in report["skipped"]:
                self.stdout.write(f"  skipped {s['item']}: {s['reason']}")
            if report["ignored"]:
                self.stdout.write(f"  ignored (not {'/'.join(extensions)}): {', '.join(report['ignored'][:20])}")
        if not report["created"]:
            raise CommandError(f"No source was added from {path}. {summary}")


_json = json
