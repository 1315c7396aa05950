"""Actions on literature sources, extraction batches and extracted records.

Each public function is one transaction (or, for a batch run, one per source, so a crash
in one source loses nothing done for the others).
"""

import csv
import hashlib
import io
import logging
from collections import Counter
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone
from simple_history.utils import bulk_create_with_history, bulk_update_with_history

from core import jobs
from core.doi import validate_doi
from core.middleware import control_character_problem, strip_control_characters
from lab.models import Alloy, PropertyValue, Reference, gfa_fields, validate_transition_temperatures
from ml.rules import GFAValueError
from lab.services import get_or_create_alloy, refresh_alloy_summaries

from . import selectors, validation
from .extractors import extract_rules, snippet_occurs
from .llm import BudgetExceeded, ExtractionError, LLMConfig, LLMExtractor, RequestBudget, Usage, estimate
from .models import BulkApproval, ExtractedRecord, ExtractionBatch, LiteratureSource, PdfReading, record_fingerprint
from .prompts import PROMPT_VERSION

logger = logging.getLogger(__name__)

Status = ExtractionBatch.Status
RecordStatus = ExtractedRecord.Status


class MiningError(Exception):
    """An action was refused; the message says why, for the person who asked."""


class SourceExists(MiningError):
    def __init__(self, message, source):
        super().__init__(message)
        self.source = source


class ReviewConflict(MiningError):
    """The record was already reviewed (e.g. by another reviewer a moment ago)."""


# ---------------------------------------------------------------- sources


def _pdf_limits():
    """pypdf's decompression limits lowered to GLASSLOOP_PDF_MAX_STREAM_BYTES (its own default is 75 MB)."""
    cap = settings.GLASSLOOP_PDF_MAX_STREAM_BYTES
    names = ("zlib_maximum_output_length", "lzw_maximum_output_length", "run_length_maximum_output_length",
             "brotli_maximum_output_length", "jbig2_maximum_output_length", "array_based_stream_maximum_output_length",
             "maximum_declared_stream_length", "image_maximum_buffer_size")
    return {name: cap for name in names}


def extract_pdf_text(data, *, on_page=None):
    """Plain text of a PDF's pages (pypdf), its control characters stripped (font-encoding
    artefacts). Raises MiningError, naming the limit, for an unreadable PDF, one over
    GLASSLOOP_PDF_MAX_PAGES pages or GLASSLOOP_PDF_MAX_TEXT_CHARS characters of text, or one
    that pypdf stops at a safety limit (a stream decompressing beyond
    GLASSLOOP_PDF_MAX_STREAM_BYTES: a PDF bomb). Runs on the worker (``read_pdf``), never in a
    web request. ``on_page(done, total)`` is called before each page (progress, cancellation,
    the time limit: what it raises goes through).
    """
    from pypdf import PdfReader, apply_configuration
    from pypdf.errors import FileNotDecryptedError, LimitReachedError

    max_pages, max_chars = settings.GLASSLOOP_PDF_MAX_PAGES, settings.GLASSLOOP_PDF_MAX_TEXT_CHARS
    parts, chars = [], 0
    try:
        with apply_configuration(**_pdf_limits()):
            reader = PdfReader(io.BytesIO(data))
            pages = len(reader.pages)
            if pages > max_pages:
                raise MiningError(
                    f"The PDF has {pages:,} pages; at most {max_pages:,} are read (GLASSLOOP_PDF_MAX_PAGES). "
                    "Add the pages with the data, or paste their text."
                )
            for number, page in enumerate(reader.pages):
                if on_page is not None:
                    on_page(number, pages)
                text = (page.extract_text() or "").strip()
                chars += len(text)
                if chars > max_chars:
                    raise MiningError(
                        f"The PDF has more than {max_chars:,} characters of text (GLASSLOOP_PDF_MAX_TEXT_CHARS); "
                        "add the pages with the data, or paste their text."
                    )
                parts.append(text)
    except (MiningError, *jobs.STOP_EXCEPTIONS):
        raise
    except LimitReachedError as exc:
        raise MiningError(
            f"The PDF was refused: reading it reached a safety limit ({exc}). A stream may decompress to at most "
            f"{settings.GLASSLOOP_PDF_MAX_STREAM_BYTES:,} bytes (GLASSLOOP_PDF_MAX_STREAM_BYTES)."
        ) from None
    except FileNotDecryptedError:
        raise MiningError("The PDF is encrypted; add a copy without a password.") from None
    except Exception as exc:  # pypdf raises many types (PdfReadError, IndexError, ...) for a damaged or crafted file
        raise MiningError(f"The PDF could not be read: {exc.__class__.__name__}: {exc}") from None
    text, stripped = strip_control_characters("\n\n".join(parts).strip())
    if stripped:
        logger.info("Stripped %d control characters from a PDF's extracted text.", stripped)
    return text


def _refuse_control_characters(text, what):
    """``text``, or MiningError when it holds a NUL or another control character (core.middleware's rule)."""
    problem = control_character_problem(text)
    if problem:
        raise MiningError(
            f"{what} {problem}; control characters are not stored. Save the file as UTF-8 plain text "
            "(a UTF-16 or binary file holds them) or remove the character, and add it again."
        )
    return text


PDF_MAGIC = b"%PDF-"
PDF_MAGIC_WITHIN = 1024  # readers accept a few bytes of junk before the header, as pypdf does


def _is_pdf(name, data):
    """True for a PDF (its ``%PDF-`` header); MiningError for a file named .pdf without one."""
    if PDF_MAGIC in data[:PDF_MAGIC_WITHIN]:
        return True
    if name.lower().endswith(".pdf"):
        raise MiningError(f"{Path(name).name} is named .pdf but is not a PDF (it does not start with {PDF_MAGIC.decode()}).")
    return False


def _text_file(data):
    return _refuse_control_characters(data.decode("utf-8-sig", errors="replace"), "The text file")


def _reference_for(source):
    if source.doi:
        ref, created = Reference.objects.get_or_create(
            doi=source.doi,
            defaults={"title": source.title[:500], "authors": source.authors[:500], "year": source.year, "journal": source.journal[:255]},
        )
        if not created and LiteratureSource.objects.filter(reference=ref).exclude(pk=source.pk).exists():
            raise MiningError(f"DOI {source.doi} already belongs to another source.")
        return ref
    return Reference.objects.create(
        title=source.title[:500], authors=source.authors[:500], year=source.year, journal=source.journal[:255],
        label=(source.title or source.original_name or "uploaded source")[:255],
    )


def _upload_bytes(upload):
    """The upload's bytes, refused before reading when over GLASSLOOP_MAX_UPLOAD_BYTES."""
    limit = settings.GLASSLOOP_MAX_UPLOAD_BYTES
    if upload.size is not None and upload.size > limit:
        raise MiningError(f"The file is {upload.size:,} bytes; at most {limit:,} are accepted (GLASSLOOP_MAX_UPLOAD_BYTES).")
    return b"".join(upload.chunks())


@transaction.atomic
def create_source(*, doi="", upload=None, filename="", data=None, text="", title="", authors="", year=None,
                  journal="", url="", user=None, queue_reading=True):
    """A LiteratureSource (and its lab Reference) from a file (upload or bytes) and/or text.

    Cheap, as it runs in the web request: a PDF is checked (size, ``%PDF-`` header) and stored,
    and its text read on the worker (``PdfReading``, queued once this commits; the source's
    ``text_status`` says how far it is). A .txt file's text is taken at once. Refuses, naming
    the existing source, a DOI or a file already stored. ``queue_reading=False`` (the
    ``add_sources`` command, which reads in its own process) leaves the reading queued unsent.
    """
    doi = validate_doi(doi) or None  # core.doi: raises InvalidDOI (a ValidationError)
    if upload is not None:
        filename = filename or upload.name
        data = _upload_bytes(upload)
    elif data is not None and len(data) > settings.GLASSLOOP_MAX_UPLOAD_BYTES:
        raise MiningError(f"The file is {len(data):,} bytes; at most {settings.GLASSLOOP_MAX_UPLOAD_BYTES:,} are accepted "
                          "(GLASSLOOP_MAX_UPLOAD_BYTES).")
    sha, pdf = None, False
    text = text or ""
    if data is not None:
        if not data:
            raise MiningError("The file is empty.")
        sha = hashlib.sha256(data).hexdigest()
        existing = LiteratureSource.objects.filter(sha256=sha).first()
        if existing:
            raise SourceExists(f"This file is already stored as source #{existing.pk} ({existing}).", existing)
        pdf = _is_pdf(filename or "", data)
        if not pdf:
            text = _text_file(data) or text
            if not text.strip():
                raise MiningError("The text file holds no text.")
    if doi:
        existing = LiteratureSource.objects.filter(doi=doi).first()
        if existing:
            raise SourceExists(f"DOI {doi} is already stored as source #{existing.pk} ({existing}).", existing)
    if not (doi or pdf or text.strip()):
        raise MiningError(NEEDS_ONE)
    _refuse_control_characters(text, "The text")
    source = LiteratureSource(
        doi=doi, title=title[:500], authors=authors[:500], year=year, journal=journal[:255], url=url,
        original_name=Path(filename).name[:255] if filename else "", text=text, sha256=sha, created_by=user,
    )
    if data is not None:
        source.file.save(Path(filename or ("source.pdf" if pdf else "source.txt")).name, ContentFile(data), save=False)
    source.reference = _reference_for(source)
    source._history_user = user
    source.save()
    if pdf:
        reading = PdfReading.objects.create(source=source)
        if queue_reading:
            jobs.enqueue(reading, then="The PDF is stored and waits to be read; it is sent again once the broker is up, or press Retry.")
    return source


NEEDS_ONE = ("Give at least one of: a DOI (the paper's metadata and citation), a .txt or .pdf file (its text, "
             "for extraction), or the pasted text.")


def read_pdf(reading_id, *, task_id=None):
    """Read the text of a source's PDF (what the Celery task calls; core.jobs): idempotent, only
    a queued reading runs; the text and "done" are written in one transaction."""
    return jobs.run_job(PdfReading, reading_id, _read_pdf, task_id=task_id)


def _read_pdf(reading, ctx):
    source = LiteratureSource.objects.get(pk=reading.source_id)
    if not source.file:
        raise jobs.JobError("The source has no stored file to read.")
    with source.file.open("rb") as handle:
        data = handle.read()

    def on_page(done, total):
        if done == 0:
            PdfReading.objects.filter(pk=reading.pk, attempts=reading.attempts).update(pages_total=total)
        ctx.report(done / max(1, total), f"page {done + 1} of {total}")
        ctx.check_time()  # GLASSLOOP_PDF_MAX_SECONDS; the message names the page
        ctx.check_cancel()

    try:
        text = extract_pdf_text(data, on_page=on_page)
    except MiningError as exc:
        raise jobs.JobError(str(exc)) from None
    pages = PdfReading.objects.filter(pk=reading.pk).values_list("pages_total", flat=True).first() or 0
    with transaction.atomic():
        jobs.assert_owned(reading)
        source = LiteratureSource.objects.select_for_update().get(pk=reading.source_id)
        if text.strip():
            source.text = text
        elif not source.text.strip():  # text pasted with the file is kept when the PDF has none
            raise jobs.JobError("No text could be extracted from the PDF (a scanned PDF needs OCR first); "
                                "paste its text in a new source instead.")
        LiteratureSource.objects.filter(pk=source.pk).update(text=source.text)  # text is not in the history
        jobs.finish(reading, pages_total=pages, pages_read=pages,
                    message=f"{pages} page{'s' if pages != 1 else ''} read, {len(source.text):,} characters of text")
    return None


def not_ready_problem(sources):
    """Why these sources cannot be extracted from yet (a PDF being read, or refused); "" when they can."""
    problems = []
    for s in sources:
        status = s.text_status
        if status != LiteratureSource.TEXT_READY:
            problems.append(f"source #{s.pk} ({str(s)[:80]}): {s.text_status_display}")
    if not problems:
        return ""
    return ("A batch can only include sources whose text is ready; not ready: " + "; ".join(problems[:10])
            + ". Wait until their PDF is read, or leave them out.")


def get_or_create_source_for_doi(doi, *, user=None):
    """The source with this DOI, created (metadata only) if new. Returns (source, created)."""
    doi = validate_doi(doi)
    source = LiteratureSource.objects.filter(doi=doi).first()
    if source:
        return source, False
    return create_source(doi=doi, user=user), True


# ---------------------------------------------------------------- batches


class RulesExtractor:
    name = ExtractionBatch.RULES
    prompt_version = ""

    def extract(self, text, usage):
        return extract_rules(text)


def default_extractor():
    """'llm:<model>' when an LLM is configured in the environment, else 'rules'."""
    config = LLMConfig.from_settings()
    return f"{ExtractionBatch.LLM_PREFIX}{config.model}" if config else ExtractionBatch.RULES


def make_extractor(batch):
    if batch.extractor == ExtractionBatch.RULES:
        return RulesExtractor()
    if batch.is_llm:
        config = LLMConfig.from_settings(model=batch.llm_model)
        if config.base_url is None and config.api_key == "no-key":
            raise ExtractionError("No LLM endpoint is configured (set OPENAI_BASE_URL and/or OPENAI_API_KEY).")
        return LLMExtractor(config, budget=RequestBudget(config.max_requests_per_batch))
    raise ExtractionError(f"Batches of extractor {batch.extractor!r} are not run from sources (use import_extracted).")


@transaction.atomic
def create_batch(*, name, sources, extractor=None, user=None, enqueue=True):
    """A queued batch over the sources; enqueued for the worker once committed."""
    name = (name or "").strip()
    if not name:
        raise MiningError("Give the batch a name.")
    if ExtractionBatch.objects.filter(name=name).exists():
        raise MiningError(f"A batch named {name!r} already exists.")
    sources = list(sources)
    if not sources:
        raise MiningError("Choose at least one source.")
    problem = not_ready_problem(sources)
    if problem:
        raise MiningError(problem)
    extractor = extractor or default_extractor()
    batch = ExtractionBatch(
        name=name, extractor=extractor, sources_total=len(sources), created_by=user,
        prompt_version=PROMPT_VERSION if extractor.startswith(ExtractionBatch.LLM_PREFIX) else "",
    )
    try:
        batch.full_clean(exclude=["sources"])
    except ValidationError as exc:
        raise MiningError("; ".join(exc.messages)) from None
    batch.estimate = None
    if batch.is_llm:  # the budget, shown before the run; a batch over the cap is refused here
        config = LLMConfig.from_settings(model=batch.llm_model)
        batch.estimate = estimate([s.text for s in sources], config)
        if batch.estimate.over_cap:
            raise MiningError(
                f"This batch would need about {batch.estimate.requests} LLM requests (~{batch.estimate.tokens:,} tokens), "
                f"more than the cap of {batch.estimate.max_requests} per batch (GLASSLOOP_LLM_MAX_REQUESTS_PER_BATCH): "
                "choose fewer or shorter sources, or raise the cap."
            )
        batch.message = batch.estimate.describe()[:255]
    batch._history_user = user
    batch.save()
    batch.sources.set(sources)
    if enqueue:
        enqueue_batch(batch)
    return batch


def enqueue_batch(batch):
    """Send the batch to the worker after the current transaction commits (core.jobs.enqueue):
    if the broker cannot be reached the batch stays queued and its error says so."""
    return jobs.enqueue(batch, then="The batch stays queued; it is sent again once the broker is up, or press Re-run.")


def cancel_batch(batch_id, *, user=None):
    """Cancel a queued batch now, or ask a running one to stop before its next source."""
    batch = ExtractionBatch.objects.get(pk=batch_id)
    if batch.is_finished:
        raise MiningError(f"Batch {batch.name} is already {batch.get_status_display().lower()}.")
    batch, _ = jobs.cancel(batch)
    return batch


@transaction.atomic
def rerun_batch(batch_id, *, source_ids=None, user=None):
    """Queue the batch (or some of its sources) again. Reviewed records are kept; pending
    records of the re-run sources are replaced, so nothing is duplicated."""
    batch = ExtractionBatch.objects.select_for_update().get(pk=batch_id)
    if batch.extractor == ExtractionBatch.IMPORT:
        raise MiningError("An imported batch is re-run by importing its file again (import_extracted).")
    if batch.status == Status.RUNNING and not batch.heartbeat_is_stale():
        raise MiningError(f"Batch {batch.name} is running; cancel it first.")
    batch.only_source_ids = sorted(set(source_ids)) if source_ids else None
    batch.reset_for_retry()
    batch.status, batch.error = Status.QUEUED, ""
    batch._history_user = user
    batch.save()
    enqueue_batch(batch)
    return batch


def run_batch(batch_id, *, extractor=None, task_id=None):
    """Run the batch's extractor source by source (what the Celery task calls; core.jobs).

    Each source is its own transaction; an exception in one is recorded in
    ``source_errors`` and the run goes on. Cancellation is checked between sources, so a
    cancelled batch keeps the sources it finished.
    """
    return jobs.run_job(ExtractionBatch, batch_id, lambda batch, ctx: _run_batch(batch, ctx, extractor), task_id=task_id)


def _run_batch(batch, ctx, extractor):
    try:
        extractor = extractor or make_extractor(batch)
    except Exception as exc:
        raise jobs.JobError(f"Could not start the extractor: {exc}") from exc
    sources = batch.sources.order_by("id")
    if batch.only_source_ids:
        sources = sources.filter(id__in=batch.only_source_ids)
    sources = list(sources)
    errors = dict(batch.source_errors or {})
    attempted = failed = 0
    for i, source in enumerate(sources):
        try:
            ctx.check_cancel(every_s=0)
        except jobs.JobCancelled:
            validate_batch(batch.pk)
            raise
        ctx.report(i / max(1, len(sources)), f"source {i + 1} of {len(sources)}: {str(source)[:120]}")
        usage = Usage()
        attempted += 1
        stopped = None
        try:
            extract_source(batch, source, extractor, usage)
            errors.pop(str(source.pk), None)
        except BudgetExceeded as exc:
            failed += 1
            stopped = (f"{exc} It stopped at source {i + 1} of {len(sources)} (this source's records were not "
                       f"kept); {len(sources) - i - 1} sources were not read. Raise the cap or re-run the rest.")
            errors[str(source.pk)] = str(exc)
        except Exception as exc:
            failed += 1
            message = str(exc) if isinstance(exc, (ExtractionError, MiningError)) else f"{type(exc).__name__}: {exc}"
            logger.exception("Extraction of source %s in batch %s failed", source.pk, batch.pk)
            errors[str(source.pk)] = message[:2000]
        ExtractionBatch.objects.filter(pk=batch.pk).update(
            sources_done=F("sources_done") + 1,
            prompt_tokens=F("prompt_tokens") + usage.prompt_tokens,
            completion_tokens=F("completion_tokens") + usage.completion_tokens,
            source_errors=errors,
            records_found=ExtractedRecord.objects.filter(batch_id=batch.pk).count(),
        )
        if stopped:
            validate_batch(batch.pk)
            return {"status": Status.FAILED, "error": stopped,
                    "records_found": ExtractedRecord.objects.filter(batch_id=batch.pk).count()}
    validate_batch(batch.pk)
    records = ExtractedRecord.objects.filter(batch_id=batch.pk).count()
    if attempted and failed == attempted:
        return {"status": Status.FAILED, "records_found": records,
                "error": "Every source failed; see the errors per source."}
    return {"records_found": records, "message": f"{attempted} sources read, {records} records"}


def _record_from_raw(batch, source, raw, *, source_text=None):
    values = {p: {"value": v, "unit": u} for p, (v, u) in raw.values.items()}
    return ExtractedRecord(
        batch=batch, source=source,
        composition_raw=raw.composition.strip()[:255],
        tg_k=raw.kelvin("tg"), tx_k=raw.kelvin("tx"), tl_k=raw.kelvin("tl"),
        original_values=values, dmax_mm=raw.dmax_mm, heating_rate_k_min=raw.heating_rate_k_min,
        gfa_class=raw.gfa_class, derived=dict(raw.derived), more_snippets=list(raw.more_snippets),
        snippet=raw.snippet,
        snippet_in_source=None if source_text is None else snippet_occurs(raw.snippet, source_text),
    )


def _replace_pending(batch, source, records, *, scope_all_sources=False):
    """Store records for (batch, source): pending ones of the previous run are replaced,
    reviewed ones kept, and a new record identical to a kept one is not stored again."""
    scope = ExtractedRecord.objects.filter(batch=batch)
    if not scope_all_sources:
        scope = scope.filter(source=source)
    scope.filter(status=RecordStatus.PENDING).delete()
    seen = set(scope.values_list("fingerprint", flat=True))
    fresh = []
    for rec in records:
        if not rec.fingerprint:
            rec.fingerprint = record_fingerprint(rec.source_id, rec.composition_raw, rec.snippet, rec.tg_k, rec.tx_k, rec.tl_k)
        if rec.fingerprint in seen:
            continue
        seen.add(rec.fingerprint)
        fresh.append(rec)
    if fresh:
        bulk_create_with_history(fresh, ExtractedRecord, batch_size=500)
    return fresh


@transaction.atomic
def extract_source(batch, source, extractor, usage):
    """Extract one source into the batch (one transaction). Returns the new records."""
    if not source.text.strip():
        raise ExtractionError("The source has no text to extract from (upload its PDF or text).")
    raws = extractor.extract(source.text, usage)
    records = [_record_from_raw(batch, source, raw, source_text=source.text) for raw in raws if raw.composition.strip()]
    return _replace_pending(batch, source, records)


# ---------------------------------------------------------------- validation

VALIDATED_FIELDS = [
    "composition_formula", "composition_key", "base_element", "elements_index", "parse_error",
    "flags", "flag_index", "flag_count",
]


def _validate(records, *, user=None):
    ids = [r.pk for r in records]
    validation.validate_records(
        records,
        others=lambda keys: selectors.comparison_values(keys, exclude_record_ids=ids),
        predictor=validation.get_active_predictor(),
    )
    return records


def _validated_state(record):
    return tuple(getattr(record, name) for name in VALIDATED_FIELDS)


@transaction.atomic
def validate_batch(batch_id, *, user=None):
    """Re-validate every pending record of the batch (one query for the values compared).
    Only the records whose parse or flags changed are written (and get a history entry): a
    re-validation of 30,000 unchanged records writes nothing."""
    records = list(ExtractedRecord.objects.filter(batch_id=batch_id, status=RecordStatus.PENDING).order_by("id"))
    before = {r.pk: _validated_state(r) for r in records}
    _validate(records)
    changed = [r for r in records if _validated_state(r) != before[r.pk]]
    # bulk_update's CASE … WHEN costs rows × batch: small batches keep it linear.
    bulk_update_with_history(changed, ExtractedRecord, VALIDATED_FIELDS, batch_size=100, default_user=user)
    return records


# ---------------------------------------------------------------- import of extracted tables

COLUMN_ALIASES = {
    "composition": ("composition", "alloy", "formula"),
    "tg": ("tg_k", "tg"), "tx": ("tx_k", "tx"), "tl": ("tl_k", "tl"),
    "source": ("source", "reference"), "doi": ("doi",), "snippet": ("snippet", "sentence", "text"),
}


def _columns(fieldnames):
    lower = {(f or "").strip().lower(): f for f in fieldnames or []}
    return {key: next((lower[a] for a in aliases if a in lower), None) for key, aliases in COLUMN_ALIASES.items()}


def _number(text, label):
    text = (text or "").strip()
    if not text:
        return None, None
    try:
        return float(text), None
    except ValueError:
        return None, f"{label} {text!r} is not a number"


def import_extracted(path_or_file, *, batch_name, user=None):
    """Load a CSV of extracted rows (composition,Tg_K,Tx_K,Tl_K[,source,doi,snippet]; other
    columns ignored) as a batch of extractor 'import', then validate it. Importing the same
    file into the same batch again replaces its pending records and keeps reviewed ones.
    Returns a summary dict."""
    if hasattr(path_or_file, "read"):
        raw = path_or_file.read()
        content = raw.decode("utf-8-sig") if isinstance(raw, bytes) else raw
    else:
        content = Path(path_or_file).read_text(encoding="utf-8-sig")
    reader = csv.DictReader(io.StringIO(content))
    cols = _columns(reader.fieldnames)
    if not cols["composition"]:
        raise MiningError(f"The CSV needs a 'composition' column; it has: {', '.join(reader.fieldnames or []) or 'none'}.")
    rows = list(reader)
    with transaction.atomic():
        batch = ExtractionBatch.objects.select_for_update().filter(name=batch_name).first()
        if batch and batch.extractor != ExtractionBatch.IMPORT:
            raise MiningError(f"Batch {batch_name!r} exists and is not an import batch.")
        if batch is None:
            batch = ExtractionBatch(name=batch_name, extractor=ExtractionBatch.IMPORT, created_by=user)
        batch.status, batch.started_at, batch.error = Status.RUNNING, timezone.now(), ""
        batch._history_user = user
        batch.save()
        sources, records, occurrences = {}, [], Counter()
        for n, row in enumerate(rows, start=2):  # line 1 is the header
            get = lambda key: (row.get(cols[key]) or "").strip() if cols[key] else ""  # noqa: E731
            composition = get("composition")
            if not composition:
                continue
            values, original = {}, {"row": n}
            for prop, label in (("tg", "Tg"), ("tx", "Tx"), ("tl", "Tl")):
                value, error = _number(get(prop), label)
                values[prop] = value
                if error:
                    original[prop] = {"value": get(prop), "unit": "K", "error": error}
                elif value is not None:
                    original[prop] = {"value": value, "unit": "K"}
            source, label = None, get("source")
            doi = get("doi")
            if doi:
                try:
                    key = validate_doi(doi)
                    if key not in sources:
                        sources[key] = get_or_create_source_for_doi(key, user=user)[0]
                    source = sources[key]
                except ValidationError:
                    label = f"{label} (DOI as given: {doi})".strip()
            as_written = ",".join(get(k) for k in ("composition", "tg", "tx", "tl"))
            snippet = get("snippet") or as_written
            rec = ExtractedRecord(
                batch=batch, source=source, source_label=label[:255], composition_raw=composition[:255],
                tg_k=values["tg"], tx_k=values["tx"], tl_k=values["tl"], original_values=original, snippet=snippet,
                snippet_in_source=None,
            )
            base = record_fingerprint(source.pk if source else None, rec.composition_raw, snippet, rec.tg_k, rec.tx_k, rec.tl_k)
            occurrences[base] += 1  # identical rows are kept apart, but stable across re-imports
            rec.fingerprint = base if occurrences[base] == 1 else hashlib.sha256(f"{base}#{occurrences[base]}".encode()).hexdigest()
            records.append(rec)
        if sources:
            batch.sources.add(*sources.values())
        created = _replace_pending(batch, None, records, scope_all_sources=True)
        validate_batch(batch.pk, user=user)
        n_sources = batch.sources.count()
        ExtractionBatch.objects.filter(pk=batch.pk).update(
            status=Status.DONE, finished_at=timezone.now(), sources_total=n_sources, sources_done=n_sources,
            records_found=batch.records.count(),
        )
    batch.refresh_from_db()
    counts = selectors.batch_counts(batch)
    return {
        "batch": batch.name, "batch_id": batch.pk, "rows": len(records), "created": len(created),
        "kept_reviewed": len(records) - len(created), "clean": counts["clean"],
        "status": counts["status"], "flags": counts["flags"],
    }


# ---------------------------------------------------------------- review

EDITABLE = ("composition_raw", "composition_formula", "tg_k", "tx_k", "tl_k", "dmax_mm", "heating_rate_k_min")


def _apply_edits(record, edits):
    for name, value in (edits or {}).items():
        if name not in EDITABLE:
            raise MiningError(f"{name} cannot be edited.")
        if name == "composition_formula":
            value = (value or "").strip()
            # The parsed field is a correction only when the reviewer changed it.
            if value and value != record.composition_formula:
                record.composition_edited = value[:255]
            elif not value:
                record.composition_edited = ""
            continue
        if name == "composition_raw":
            value = (value or "").strip()
            if not value:
                raise MiningError("The composition as written cannot be empty.")
            if value != record.composition_raw:
                record.composition_edited = ""
            value = value[:255]
        setattr(record, name, value)


def _already(record):
    who = record.reviewer.get_username() if record.reviewer else "someone"
    when = timezone.localtime(record.reviewed_at).strftime("%Y-%m-%d %H:%M") if record.reviewed_at else "?"
    return ReviewConflict(f"Record {record.pk} was already {record.status} by {who} at {when}.")


def _approvable_errors(record):
    problems = [f["reason"] for f in record.flags if f["flag"] == validation.UNPARSEABLE]
    if record.tg_k is None and record.tx_k is None and record.tl_k is None and not record.gfa_class and record.dmax_mm is None:
        problems.append("No Tg, Tx, Tl or GFA to store.")
    try:  # ml.rules: Dmax limits, no Dmax on a crystal
        gfa_fields(record.gfa_class, record.dmax_mm)
    except GFAValueError as exc:
        problems.append(f"{exc}.")
    try:
        validate_transition_temperatures(record.tg_k, record.tx_k, record.tl_k)
    except ValidationError as exc:
        problems += exc.messages
    return problems


def _property_value(record, alloy, reviewer, source_refs=None):
    """The literature value an approved record becomes. ``source_refs`` (source id → reference
    id), when given, saves a query per record (bulk approval)."""
    if source_refs is not None:
        reference_id = source_refs.get(record.source_id)
    else:
        reference_id = record.source.reference_id if record.source_id else None
    gfa_class, dmax_mm, dmax_kind = gfa_fields(record.gfa_class, record.dmax_mm)  # checked by _approvable_errors
    return PropertyValue(
        gfa_class=gfa_class, dmax_mm=dmax_mm, dmax_kind=dmax_kind,
        alloy=alloy, origin=PropertyValue.Origin.LITERATURE, reference_id=reference_id,
        source_label=f"batch {record.batch.name} record {record.pk}"[:255],
        tg_k=record.tg_k, tx_k=record.tx_k, tl_k=record.tl_k, heating_rate_k_min=record.heating_rate_k_min,
        conflict=validation.CONFLICT in record.flag_names, created_by=reviewer,
        note=_provenance_note(record),
    )


def _provenance_note(record):
    """The property value's note: the snippet, then how any value was derived (not read)."""
    parts = [f"“{record.snippet}”"] if record.snippet else []
    parts += [f"{prop.capitalize()} derived: {how}" for prop, how in sorted((record.derived or {}).items()) if how]
    return " ".join(parts)[:2000]


def _locked(record_id):
    try:
        return ExtractedRecord.objects.select_for_update().get(pk=record_id)
    except ExtractedRecord.DoesNotExist:
        raise MiningError(f"There is no record {record_id}.") from None


@transaction.atomic
def update_record(record_id, reviewer, edits):
    """Save a reviewer's edits to a pending record and re-validate it (no approval)."""
    record = _locked(record_id)
    if record.status != RecordStatus.PENDING:
        raise _already(record)
    old_key = record.composition_key
    _apply_edits(record, edits)
    _validate([record])
    record._history_user = reviewer
    record.save()
    # Records flagged as duplicates of (or in conflict with) this one are compared anew.
    revalidate_related({old_key, record.composition_key}, exclude_ids=[record.pk], user=reviewer)
    return record


@transaction.atomic
def approve_record(record_id, reviewer, edits=None):
    """Approve a pending record (after optional edits, re-validated): the Alloy is created or
    linked and a literature PropertyValue stored with its provenance. The row lock makes a
    second, concurrent approval wait and then fail with ReviewConflict."""
    record = _locked(record_id)
    if record.status != RecordStatus.PENDING:
        raise _already(record)
    if edits:
        _apply_edits(record, edits)
        _validate([record])
    problems = _approvable_errors(record)
    if problems:  # the transaction rolls back; the view saves the edits separately
        raise MiningError("Cannot approve: " + " ".join(problems))
    alloy, _ = get_or_create_alloy(record.composition_for_parsing, user=reviewer)
    value = _property_value(record, alloy, reviewer)
    value._history_user = reviewer
    value.save()
    record.status, record.reviewer, record.reviewed_at = RecordStatus.APPROVED, reviewer, timezone.now()
    record.alloy, record.property_value = alloy, value
    record._history_user = reviewer
    record.save()
    revalidate_related({record.composition_key}, exclude_ids=[record.pk], user=reviewer)  # now an alloy value, not a record
    return record


@transaction.atomic
def reject_record(record_id, reviewer, reason):
    reason = (reason or "").strip()
    if not reason:
        raise MiningError("Say why the record is rejected.")
    record = _locked(record_id)
    if record.status != RecordStatus.PENDING:
        raise _already(record)
    record.status, record.reviewer, record.reviewed_at, record.reject_reason = RecordStatus.REJECTED, reviewer, timezone.now(), reason
    record._history_user = reviewer
    record.save()
    # A rejected record is no longer compared with: the flags that named it go (issue 18).
    revalidate_related({record.composition_key}, exclude_ids=[record.pk], user=reviewer)
    return record


@transaction.atomic
def reopen_record(record_id, reviewer):
    """Put a rejected record back in the queue (a rejection made by mistake): pending again,
    re-validated, and the records of its alloy compared with it again. An approved record is
    not reopened (its value is in the lab: correct or retract that instead)."""
    record = _locked(record_id)
    if record.status != RecordStatus.REJECTED:
        raise MiningError(f"Record {record.pk} is {record.get_status_display().lower()}; only a rejected record goes back to review.")
    record.status, record.reviewer, record.reviewed_at, record.reject_reason = RecordStatus.PENDING, None, None, ""
    _validate([record])
    record._history_user = reviewer
    record.save()
    revalidate_related({record.composition_key}, exclude_ids=[record.pk], user=reviewer)
    return record


BULK_CHUNK = 1000  # records approved per transaction: a crash loses at most one chunk's work, never doubles it


def request_bulk_approval(batch_id, *, user):
    """Queue “approve all clean records” of the batch for the worker (core.jobs, sent once this
    commits). A bulk approval of this batch already queued or running is returned instead of a
    second one. Returns (job, created)."""
    with transaction.atomic():
        batch = ExtractionBatch.objects.select_for_update().filter(pk=batch_id).first()
        if batch is None:
            raise MiningError(f"There is no batch {batch_id}.")
        if not batch.is_finished:
            raise MiningError(f"Batch {batch.name} is {batch.get_status_display().lower()}; approve its records once it is done.")
        live = batch.bulk_approvals.filter(status__in=(Status.QUEUED, Status.RUNNING)).order_by("-pk").first()
        if live is not None:
            return live, False
        job = BulkApproval.objects.create(batch=batch, requested_by=user)
        jobs.enqueue(job, then="The approval waits; it is sent again once the broker is up, or press Retry.")
    return job, True


def run_bulk_approval(job_id, *, task_id=None):
    """Run a queued bulk approval (what the Celery task calls; core.jobs)."""
    def work(job, ctx):
        result = bulk_approve_clean(job.batch_id, job.requested_by, ctx=ctx, job=job)
        return {"message": BulkApproval(**{k: result[k] for k in ("approved", "alloys_created", "skipped", "skipped_reasons")}).summary()[:255]}

    return jobs.run_job(BulkApproval, job_id, work, task_id=task_id)


def bulk_approve_clean(batch_id, reviewer, *, ctx=None, job=None):
    """Approve every pending record of the batch that is complete and clean after
    re-validating now: the composition parsed, Tg, Tx and Tl all given, no flag at all
    (``validation.bulk_blockers``; ungrounded, duplicate and conflict included) and nothing
    that refuses a single approval. The others are left for a person.

    Runs on the worker as a ``BulkApproval`` (``job``, ``ctx``: progress, cancellation) or
    directly (scripts, tests). One transaction to re-validate, then one per ``BULK_CHUNK``
    records, each approving only records still pending (so a re-run approves nothing twice);
    a job's counts are written in the same transaction as its approvals.

    Returns {"approved": n, "alloys_created": n, "skipped": n, "skipped_reasons": {reason: n}}
    (with a job, "approved" and "alloys_created" include what earlier attempts approved).
    """
    report = ctx.report if ctx is not None else (lambda *a, **k: None)
    report(0.0, "re-validating the pending records")
    records = validate_batch(batch_id, user=reviewer)
    reasons = Counter()
    clean_ids = []
    for r in records:
        why = validation.bulk_blockers(r) or _approvable_errors(r)
        if why:
            reasons.update(why)
        else:
            clean_ids.append(r.pk)
    skipped = len(records) - len(clean_ids)
    del records
    batch = ExtractionBatch.objects.get(pk=batch_id)
    approved = created = 0
    keys = set()
    for start in range(0, len(clean_ids), BULK_CHUNK):
        if ctx is not None:
            ctx.check_cancel(every_s=0)
        chunk_ids = clean_ids[start:start + BULK_CHUNK]
        report(0.1 + 0.85 * start / len(clean_ids), f"approving records {start + 1}–{start + len(chunk_ids)} of {len(clean_ids)}")
        n, n_created, chunk_keys = _approve_chunk(batch, chunk_ids, reviewer, job)
        approved, created = approved + n, created + n_created
        keys |= chunk_keys
    if keys:  # records of other batches flagged against the ones just approved are flagged anew
        report(0.96, "re-checking the flags of records of the same alloys")
        revalidate_related(keys, user=reviewer)
    result = {"approved": approved, "alloys_created": created, "skipped": skipped, "skipped_reasons": dict(reasons)}
    if job is not None:
        BulkApproval.objects.filter(pk=job.pk).update(skipped=skipped, skipped_reasons=dict(reasons))
        job.refresh_from_db(fields=["approved", "alloys_created"])
        result.update(approved=job.approved, alloys_created=job.alloys_created)
    return result


@transaction.atomic
def _approve_chunk(batch, ids, reviewer, job):
    """Approve the records among ``ids`` that are still pending and still clean. Returns
    (approved, alloys created, their composition keys)."""
    clean = [
        r for r in ExtractedRecord.objects.select_for_update().filter(pk__in=ids, status=RecordStatus.PENDING).order_by("id")
        if not validation.bulk_blockers(r) and not _approvable_errors(r)
    ]
    if not clean:
        return 0, 0, set()
    source_refs = dict(LiteratureSource.objects.filter(pk__in={r.source_id for r in clean if r.source_id}).values_list("pk", "reference_id"))
    alloys = {a.composition_key: a for a in Alloy.objects.filter(composition_key__in={r.composition_key for r in clean})}
    created = 0
    values = []
    for rec in clean:
        alloy = alloys.get(rec.composition_key)
        if alloy is None:
            alloy, was_created = get_or_create_alloy(rec.composition_for_parsing, user=reviewer)
            alloys[alloy.composition_key] = alloy
            created += was_created
        rec.batch = batch
        values.append(_property_value(rec, alloy, reviewer, source_refs=source_refs))
        rec.alloy = alloy
    values = bulk_create_with_history(values, PropertyValue, batch_size=500, default_user=reviewer)
    refresh_alloy_summaries({v.alloy_id for v in values})
    now = timezone.now()
    for rec, value in zip(clean, values):
        rec.property_value, rec.status, rec.reviewer, rec.reviewed_at = value, RecordStatus.APPROVED, reviewer, now
    _mark_approved(clean, reviewer, now)
    if job is not None:
        jobs.assert_owned(job)  # an attempt given up meanwhile keeps nothing of this chunk
        BulkApproval.objects.filter(pk=job.pk).update(approved=F("approved") + len(clean), alloys_created=F("alloys_created") + created)
    return len(clean), created, {r.composition_key for r in clean}


def _mark_approved(records, reviewer, now):
    """Store the records as approved (their property value and alloy set) with their history.
    One ``UPDATE … FROM (VALUES …)`` per 500 records (PostgreSQL and SQLite alike): bulk_update's
    CASE per field took ~6 s per 1,000 records on PostgreSQL, most of a bulk approval's time."""
    table = connection.ops.quote_name(ExtractedRecord._meta.db_table)
    for start in range(0, len(records), 500):
        part = records[start:start + 500]
        rows = ", ".join(["(%s, %s, %s)"] * len(part))
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET property_value_id = v.column2, alloy_id = v.column3, status = %s, reviewer_id = %s, "
                f"reviewed_at = %s FROM (VALUES {rows}) AS v WHERE {table}.id = v.column1",
                [RecordStatus.APPROVED, reviewer.pk if reviewer else None, now]
                + [p for r in part for p in (r.pk, r.property_value_id, r.alloy_id)],
            )
    ExtractedRecord.history.bulk_history_create(records, batch_size=500, update=True, default_user=reviewer)


def revalidate_related(keys, *, exclude_ids=(), user=None):
    """Re-validate the pending records of these composition keys (all batches): their duplicate
    and conflict flags name other records, which a rejection, an edit or an approval changes.
    Returns the records re-validated."""
    keys = {k for k in keys if k}
    if not keys:
        return []
    records = []
    key_list = sorted(keys)
    for i in range(0, len(key_list), selectors.IN_CHUNK):
        records += ExtractedRecord.objects.filter(
            composition_key__in=key_list[i:i + selectors.IN_CHUNK], status=RecordStatus.PENDING
        ).exclude(pk__in=list(exclude_ids)).order_by("id")
    if not records:
        return []
    before = {r.pk: _validated_state(r) for r in records}
    _validate(records)
    changed = [r for r in records if _validated_state(r) != before[r.pk]]
    if changed:
        bulk_update_with_history(changed, ExtractedRecord, VALIDATED_FIELDS, batch_size=100, default_user=user)
    return changed
