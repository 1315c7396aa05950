"""Reads for mining: queues, counts and the values records are compared with."""

import re
from collections import Counter

from django.db.models import Count

from core import jobs
from core.selectors import columns_except
from lab.models import PropertyValue

from .models import ExtractedRecord, ExtractionBatch, LiteratureSource
from .validation import ALL_FLAGS, ReferenceValue, bulk_blockers

IN_CHUNK = 900  # below SQLite's bound on query parameters


def comparison_values(keys, *, exclude_record_ids=()):
    """ReferenceValues for the composition keys: existing alloys' property values and the
    pending records of every batch (minus the excluded ones). Two queries per chunk of keys."""
    keys = sorted({k for k in keys if k})
    exclude = set(exclude_record_ids)
    out = []
    for i in range(0, len(keys), IN_CHUNK):
        chunk = keys[i:i + IN_CHUNK]
        for pv in PropertyValue.objects.filter(alloy__composition_key__in=chunk).values(
            "id", "alloy__composition_key", "alloy__formula", "tg_k", "tx_k", "tl_k"
        ):
            out.append(ReferenceValue(
                f"alloy {pv['alloy__formula']} value {pv['id']}", pv["alloy__composition_key"], pv["tg_k"], pv["tx_k"], pv["tl_k"]
            ))
        for rec in ExtractedRecord.objects.filter(
            composition_key__in=chunk, status=ExtractedRecord.Status.PENDING
        ).values("id", "composition_key", "tg_k", "tx_k", "tl_k"):
            if rec["id"] not in exclude:
                out.append(ReferenceValue(f"record {rec['id']}", rec["composition_key"], rec["tg_k"], rec["tx_k"], rec["tl_k"]))
    return out


def review_queue(*, batch_id=None, flag=None, status="pending", element=None, clean=None):
    """Records to review, flagged first (most flags first), then in batch order. The source
    texts are not loaded here (``attach_source_context`` reads them once per page)."""
    # A row shows its batch by name: the batch's other columns (its job's state, its JSON lists)
    # were read and converted for each of a page's 50 rows (~1.5 ms of the queue's CPU).
    qs = ExtractedRecord.objects.select_related("batch", "source", "reviewer").defer(
        "source__text", *columns_except("batch", ExtractionBatch, "id", "name"))
    if batch_id:
        qs = qs.filter(batch_id=batch_id)
    if status:
        qs = qs.filter(status=status)
    if flag == "none" or clean:
        qs = qs.filter(flag_count=0)
    elif flag:
        qs = qs.filter(flag_index__contains=f"|{flag}|")
    if element:
        qs = qs.filter(elements_index__contains=f"|{element.strip()}|")
    return qs.order_by("-flag_count", "batch_id", "id")


CONTEXT_CHARS = 400


def snippet_context(snippet, text, chars=CONTEXT_CHARS):
    """(before, passage, after): the snippet's passage in the source text with ``chars``
    characters either side, whitespace differences ignored; None when it is not found."""
    words = (snippet or "").split()
    if not words or not text:
        return None
    for n in (len(words), 12, 6):  # the whole snippet, else its start
        pattern = r"\s+".join(re.escape(w) for w in words[:n])
        m = re.search(pattern, text)
        if m:
            return text[max(0, m.start() - chars):m.start()], m.group(), text[m.end():m.end() + chars]
    return None


def attach_source_context(records, chars=CONTEXT_CHARS):
    """Set ``record.source_context`` (see ``snippet_context``) and ``record.bulk_blockers``
    on the records of one page, reading each source's text once. Returns the records."""
    records = list(records)
    ids = {r.source_id for r in records if r.source_id}
    texts = dict(LiteratureSource.objects.filter(pk__in=ids).values_list("pk", "text")) if ids else {}
    for r in records:
        r.source_context = snippet_context(r.snippet, texts.get(r.source_id, ""), chars) if r.source_id else None
        r.bulk_blockers = bulk_blockers(r)
    return records


def batch_counts(batch):
    """{"status": {...}, "flags": {...}, "clean": n, "records": n} for one batch."""
    status = dict(batch.records.values_list("status").annotate(n=Count("id")).order_by())
    flags = Counter()
    clean = 0
    for record_flags in batch.records.values_list("flags", flat=True):
        if not record_flags:
            clean += 1
        flags.update(f["flag"] for f in record_flags)
    return {
        "records": sum(status.values()),
        "status": {s: status.get(s, 0) for s in ExtractedRecord.Status.values},
        "flags": {f: flags[f] for f in ALL_FLAGS if flags[f]},
        "clean": clean,
    }


def batch_status(batch):
    """What the batch page polls."""
    return {
        **jobs.status_payload(batch),
        "name": batch.name,
        "sources_done": batch.sources_done,
        "sources_total": batch.sources_total,
        "records_found": batch.records_found,
        "prompt_tokens": batch.prompt_tokens,
        "completion_tokens": batch.completion_tokens,
        "source_errors": batch.source_errors,
        "counts": batch_counts(batch),
    }


def batch_list():
    return ExtractionBatch.objects.annotate(n_records=Count("records")).order_by("-created_at")


def source_list():
    return LiteratureSource.objects.select_related("reference").annotate(n_records=Count("records")).order_by("-created_at")


def neighbours(record, queue):
    """(previous id, next id) of the record within the queue ordering, for j/k navigation."""
    ids = list(queue.values_list("id", flat=True)[:2000])
    if record.pk not in ids:
        return None, (ids[0] if ids else None)
    i = ids.index(record.pk)
    return (ids[i - 1] if i > 0 else None), (ids[i + 1] if i + 1 < len(ids) else None)
