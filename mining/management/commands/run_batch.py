"""Run the loop's mining step from the command line: an extraction batch over the stored
sources (optionally those whose DOI starts with a prefix), run to the end, and every record
exported, whatever its status:

    python manage.py run_batch NAME --extractor rules|llm [--model M] [--doi-prefix P] --wait --export got.csv

The CSV columns are ``doi,composition,Tg_K,Tx_K,Tl_K,dmax_mm,status,flags``: the composition
as written, temperatures in K, an empty cell for a value not reported, flags separated by
";". Without ``--wait`` the batch is queued for the worker and the command returns.
Exits non-zero when no source matches, the LLM is not configured, or the batch fails.
"""

import csv
import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from core.exports import neutralise_row
from mining import services
from mining.llm import ExtractionError, LLMConfig
from mining.models import ExtractedRecord, ExtractionBatch, LiteratureSource

EXPORT_COLUMNS = ("doi", "composition", "Tg_K", "Tx_K", "Tl_K", "dmax_mm", "status", "flags")


def _cell(value):
    return "" if value is None else f"{value:g}"


def export_records(batch, path):
    """Write every record of the batch to ``path`` (CSV, EXPORT_COLUMNS). Returns the count."""
    records = ExtractedRecord.objects.filter(batch=batch).select_related("source").order_by("id")
    n = 0
    with Path(path).open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(EXPORT_COLUMNS)
        for r in records:
            writer.writerow(neutralise_row([
                (r.source.doi or "") if r.source_id else "", r.composition_raw, _cell(r.tg_k), _cell(r.tx_k), _cell(r.tl_k),
                _cell(r.dmax_mm), r.status, ";".join(r.flag_names),
            ]))
            n += 1
    return n


class Command(BaseCommand):
    help = "Run an extraction batch over the stored sources and export its records as CSV."

    def add_arguments(self, parser):
        parser.add_argument("name", help="the new batch's name")
        parser.add_argument("--extractor", choices=("rules", "llm"), default="rules")
        parser.add_argument("--model", default="", help="the LLM model (default: GLASSLOOP_LLM_MODEL)")
        parser.add_argument("--doi-prefix", default="", help="only sources whose DOI starts with this")
        parser.add_argument("--wait", action="store_true", help="run the batch here, to the end")
        parser.add_argument("--export", default="", help="write every record to this CSV (needs --wait)")
        parser.add_argument("--json", action="store_true", help="print the summary as JSON")

    def handle(self, name, extractor, model, doi_prefix, wait, export, json, **options):
        if export and not wait:
            raise CommandError("--export needs --wait (the records exist once the batch has run).")
        if extractor == "llm":
            config = LLMConfig.from_settings(model=model or None)
            if config is None:
                raise CommandError("No LLM model is configured: set GLASSLOOP_LLM_MODEL or pass --model.")
            extractor_name = f"{ExtractionBatch.LLM_PREFIX}{config.model}"
            try:  # the same check the batch run makes, before anything is stored
                services.make_extractor(ExtractionBatch(extractor=extractor_name))
            except ExtractionError as exc:
                raise CommandError(f"The LLM is not configured: {exc}") from None
        else:
            extractor_name = ExtractionBatch.RULES
        sources = LiteratureSource.objects.exclude(text="").order_by("id")
        if doi_prefix:
            sources = sources.filter(doi__istartswith=doi_prefix.strip().lower())
        sources = list(sources)
        if not sources:
            which = f" with a DOI starting {doi_prefix!r}" if doi_prefix else ""
            raise CommandError(f"No source with text{which}; add sources first (add_sources).")
        try:
            batch = services.create_batch(name=name, sources=sources, extractor=extractor_name, enqueue=not wait)
        except services.MiningError as exc:
            raise CommandError(str(exc)) from None
        if not wait:
            batch.refresh_from_db()
            self.stdout.write(f"Batch {batch.name} (#{batch.pk}) queued over {len(sources)} sources. {batch.error}".strip())
            return
        batch = services.run_batch(batch.pk)
        summary = {
            "batch": batch.name, "batch_id": batch.pk, "status": batch.status, "error": batch.error,
            "sources": len(sources), "sources_failed": len(batch.source_errors or {}),
            "records": batch.records.count(),
        }
        if export:
            summary["exported"] = export_records(batch, export)
            summary["export"] = str(export)
        if json:
            self.stdout.write(_json.dumps(summary, indent=2))
        else:
            self.stdout.write(
                f"Batch {batch.name}: {summary['status']}, {summary['sources']} sources "
                f"({summary['sources_failed']} failed), {summary['records']} records"
                + (f", written to {export}" if export else "") + "."
            )
            for sid, message in (batch.source_errors or {}).items():
                self.stdout.write(f"  source {sid}: {message}")
        if batch.status != ExtractionBatch.Status.DONE:
            raise CommandError(f"Batch {batch.name} {batch.status}: {batch.error}")


_json = json
