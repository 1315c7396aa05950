"""Import of literature tables (CSV or XLSX) of alloys with Tg/Tx/Tl.

One file is one transaction. Every row gets an outcome:

created   a new alloy (by composition key) with its literature property value;
merged    the alloy exists (in the database or earlier in the file) and the row adds nothing
          that contradicts it: either an existing value already holds every temperature of the
          row within 10 K (nothing new is written; a source is attached to a value that had
          none), or the row is added as a further value of that alloy (no existing value
          differs from it by more than 10 K);
conflict  the alloy exists and a value of it differs by more than 10 K from the row (and no
          value already holds the row): the row is kept as a separate value, and both it and
          the values it contradicts are flagged ``conflict``;
refused   the composition does not parse (the parser's message), a temperature is not a
          number, Tg < Tx < Tl / 200–2500 K / ΔTx ≤ 250 K does not hold (the model's rule,
          ml.rules), the GFA class is unknown or the Dmax cannot be (Dmax ≤ 0 or > 200 mm, a
          Dmax on a crystal: ml.rules.dmax_problems), or the DOI is not one (core.doi).

Optional columns ``gfa_class`` (BMG, Ribbon, Crystal) and ``dmax_mm`` (the critical casting
diameter) give the glass-forming ability; the source's codes 0 (crystal) and 0.15 (ribbon) mean
"no Dmax" (ml.rules.coded_dmax). A row that holds only a GFA class is a value of its own. A row
whose class differs from an existing value's is a ``conflict`` (the alloy's summary flags it).

"Within 10 K", "differs by more than 10 K" and "no temperature in common" are
``ml.rules.compare_temperatures`` (the rule the lab's conflict flag and the mining review use).

A row without any temperature records just the alloy (with a value that carries only its
source, when it names one). So importing the same file twice creates nothing the second time. Refused rows are reported
and do not stop the import; an unreadable file or missing columns stop it before anything is
written (``ImportFileError``); any unexpected error rolls the whole file back.

Imports serialise: on PostgreSQL each takes one advisory lock (``IMPORT_LOCK_KEY``) for its
transaction, on SQLite the write lock before it reads anything, so a second import of the same
table waits, then finds the first one's alloys and merges into them. A clash with another writer (a mined record approved at that instant) rolls the
file back and runs it again on what is now on record; after ``_ATTEMPTS`` it is refused with
``ConcurrentChange`` (a plain message, nothing written).

A web-started import (``run_alloy_import``, on the Celery worker) stores its report as
``ImportRow`` rows, read a page at a time by ``report_rows`` (the page, its CSV and the API).
One that finds an earlier import running goes back to the queue for ``IMPORT_DEFER_S`` before
it reads its file, rather than wait on the worker: its time limit then counts its own work.
"""

from __future__ import annotations

import csv
import io
import logging
import time
from dataclasses import dataclass, field
from itertools import islice

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import Case, IntegerField, Q, Value, When
from simple_history.utils import bulk_create_with_history, bulk_update_with_history

from core.doi import InvalidDOI, validate_doi
from core.exports import neutralise_row
from core.jobs import STOP_EXCEPTIONS, JobDeferred, JobError, JobStatus, assert_owned, enqueue, run_job
from ml import rules
from ml.composition import CompositionError, parse_composition

from .models import (
    Alloy,
    AlloyImport,
    PropertyValue,
    Reference,
    format_dmax,
    gfa_fields,
    validate_transition_temperatures,
)
from .models_imports import ImportRow
from .services import refresh_alloy_summaries
from .tables import COLUMN_TITLES, EMPTY_MARKERS, REQUIRED_COLUMNS, ImportFileError, check_upload, read_table, text_of

logger = logging.getLogger(__name__)

AGREEMENT_TOLERANCE_K = rules.AGREEMENT_TOLERANCE_K
OPTIONAL_COLUMNS = ("source", "doi", "name", "authors", "year", "journal", "title", "heating_rate_k_min", "gfa_class", "dmax_mm")
TEMPERATURE_FIELDS = rules.TEMPERATURE_FIELDS
IMPORTED_COLUMNS = frozenset(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)
_QUERY_CHUNK = 500
_PROGRESS_EVERY = 200  # rows between progress reports (and cancel checks)

OUTCOME_CREATED = "created"
OUTCOME_MERGED = "merged"
OUTCOME_CONFLICT = "conflict"
OUTCOME_REFUSED = "refused"
OUTCOMES = (OUTCOME_CREATED, OUTCOME_MERGED, OUTCOME_CONFLICT, OUTCOME_REFUSED)

# pg_advisory_xact_lock key of "an import is writing alloys" (any 64-bit number no other lock uses).
IMPORT_LOCK_KEY = 0x474C_4C41_4249_4D50  # "GLLABIMP"
_LOCK_POLL_S = 0.5
_ATTEMPTS = 3  # runs of one file when another writer creates the same alloy or DOI meanwhile
_REPORT_BATCH = 2000


class RowRefused(ValueError):
    """One row cannot be imported; the message says why."""


class ConcurrentChange(Exception):
    """The same alloys or references were written by someone else while the import ran, every
    time it was tried; nothing was imported."""


@dataclass
class ImportReport:
    rows: list = field(default_factory=list)  # dicts: line, composition, outcome, reason, alloy_id
    dry_run: bool = False

    @property
    def counts(self):
        outcomes = [r["outcome"] for r in self.rows]
        return {
            "rows": len(outcomes),
            "created": outcomes.count(OUTCOME_CREATED),
            "merged": outcomes.count(OUTCOME_MERGED),
            "conflicts": outcomes.count(OUTCOME_CONFLICT),
            "refused": outcomes.count(OUTCOME_REFUSED),
        }

    def as_dict(self):
        return {"dry_run": self.dry_run, "counts": self.counts, "rows": self.rows}


def _number(row, column, title=None):
    value = row.get(column)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    else:
        text = text_of(value)
        if text.lower() in EMPTY_MARKERS:
            return None
        try:
            number = float(text)
        except ValueError:
            raise RowRefused(f"{title or column} {text!r} is not a number.") from None
    if number != number:  # NaN from a spreadsheet cell means "no value"
        return None
    return number


# --------------------------------------------------------------------------------------------
# Import
# --------------------------------------------------------------------------------------------


@dataclass
class _Row:
    line: int
    composition_text: str
    comp: object = None
    temps: dict = field(default_factory=dict)
    heating_rate_k_min: float | None = None
    doi: str = ""
    source: str = ""
    name: str = ""
    authors: str = ""
    year: int | None = None
    journal: str = ""
    title: str = ""
    gfa_class: str = ""
    dmax_mm: float | None = None

    @property
    def has_gfa(self):
        return bool(self.gfa_class) or self.dmax_mm is not None


def prepare_row(line, raw):
    """Parse and check one row (the import's rules, also used by the starter corpus loader);
    raises RowRefused / CompositionError with the reason."""
    return _prepare(line, raw)


def _prepare(line, raw):
    """Parse and check one row; raises RowRefused / CompositionError with the reason."""
    if getattr(raw, "refused", ""):  # lab.tables.RefusedRow: a NUL or control character in a cell
        raise RowRefused(raw.refused)
    row = _Row(line=line, composition_text=text_of(raw.get("composition")))
    row.comp = parse_composition(row.composition_text)
    row.temps = {f: _number(raw, f, COLUMN_TITLES[f]) for f in TEMPERATURE_FIELDS}
    try:
        validate_transition_temperatures(row.temps["tg_k"], row.temps["tx_k"], row.temps["tl_k"])
    except ValidationError as exc:
        raise RowRefused(" ".join(exc.messages)) from None
    row.heating_rate_k_min = _number(raw, "heating_rate_k_min", "heating_rate_K_min")
    if row.heating_rate_k_min is not None and not (0 < row.heating_rate_k_min <= 1000):
        raise RowRefused(f"Heating rate {row.heating_rate_k_min:g} K/min is outside 0–1000 K/min.")
    try:  # ml.rules: class by name, Dmax limits, the source's "no Dmax" codes
        row.gfa_class, row.dmax_mm, _ = gfa_fields(text_of(raw.get("gfa_class")), _number(raw, "dmax_mm", "dmax_mm"))
    except rules.GFAValueError as exc:
        text = str(exc)
        raise RowRefused(text if text.endswith((".", "?", "!")) else f"{text}.") from None
    try:
        row.doi = validate_doi(text_of(raw.get("doi")))
    except InvalidDOI as exc:
        raise RowRefused(str(exc)) from None
    row.source = text_of(raw.get("source"))
    row.name = text_of(raw.get("name"))
    row.authors = text_of(raw.get("authors"))
    row.journal = text_of(raw.get("journal"))
    row.title = text_of(raw.get("title"))
    year = _number(raw, "year")
    if year is not None:
        if not (1900 <= year <= 2100 and float(year).is_integer()):
            raise RowRefused(f"Year {text_of(raw.get('year'))!r} is not a year.")
        row.year = int(year)
    for attr, limit in (("doi", 255), ("source", 255), ("name", 120), ("authors", 500), ("journal", 255), ("title", 500)):
        if len(getattr(row, attr)) > limit:
            raise RowRefused(f"{attr} is longer than {limit} characters.")
    return row


def _describe(temps, row=None):
    names = {"tg_k": "Tg", "tx_k": "Tx", "tl_k": "Tl"}
    parts = [f"{names[f]} {rules.display_k(t)} K" for f, t in temps.items() if t is not None]
    if row is not None and row.gfa_class:
        parts.append(rules.GFA_CLASS_LABELS[row.gfa_class])
    if row is not None and row.dmax_mm is not None:
        parts.append(format_dmax(row.dmax_mm, rules.DMAX_POINT))
    return ", ".join(parts)


def _holds(value, row):
    """``value`` already says everything the row says (temperatures within 10 K, same GFA)."""
    if not rules.holds_temperatures(value, row.temps):
        return False
    if row.gfa_class and value.gfa_class != row.gfa_class:
        return False
    if row.dmax_mm is not None and (value.dmax_mm != row.dmax_mm or value.dmax_kind != rules.DMAX_POINT):
        return False
    return True


def _chunks(items, size=_QUERY_CHUNK):
    items = list(items)
    for start in range(0, len(items), size):
        yield items[start : start + size]


class _ReferenceBook:
    """References by DOI or by free-text label, created on first use (inside the import)."""

    def __init__(self, rows):
        dois = {r.doi for r in rows if r.doi}
        self.by_doi = {}
        for chunk in _chunks(dois):
            self.by_doi.update({ref.doi: ref for ref in Reference.objects.filter(doi__in=chunk)})
        self.by_label = {}

    def get(self, row):
        if row.doi:
            ref = self.by_doi.get(row.doi)
            if ref is None:
                ref = Reference.objects.create(
                    doi=row.doi, label=row.source, authors=row.authors, year=row.year, journal=row.journal, title=row.title
                )
                self.by_doi[row.doi] = ref
            else:
                changed = False
                for attr in ("authors", "year", "journal", "title"):
                    if getattr(row, attr) and not getattr(ref, attr):
                        setattr(ref, attr, getattr(row, attr))
                        changed = True
                if row.source and not ref.label:
                    ref.label, changed = row.source, True
                if changed:
                    ref.save()
            return ref
        if row.source:
            ref = self.by_label.get(row.source)
            if ref is None:
                ref = Reference.objects.filter(doi__isnull=True, label=row.source).first()
                if ref is None:
                    ref = Reference.objects.create(label=row.source, authors=row.authors, year=row.year, journal=row.journal, title=row.title)
                self.by_label[row.source] = ref
            return ref
        return None


def import_alloys(rows_or_path, *, user=None, dry_run=False, source_label="", filename=None, progress=None,
                  before_commit=None):
    """Import a table of alloys with Tg/Tx/Tl (see the module docstring). Returns an ImportReport.

    ``rows_or_path``: a path, bytes, a file object or an iterable of dicts. ``source_label`` is
    recorded on values whose row names no source. ``progress(fraction, message)`` is called
    every few hundred rows, and every thousand while a file is read (it may raise to stop: the
    import is then rolled back), and
    ``before_commit(report)`` last, inside the transaction (it may raise too). Raises
    ImportFileError for an unreadable file, ConcurrentChange when other writers kept creating
    the same alloys; any other exception means nothing was committed.
    """
    # Only the columns the import uses are read into the rows (a table of thousands of columns
    # costs no memory); "other columns are ignored", as the upload page says.
    progress = progress or (lambda f, m: None)
    table = read_table(rows_or_path, filename=filename, columns=IMPORTED_COLUMNS,
                       checkpoint=lambda doing: progress(0.0, doing))
    for attempt in range(1, _ATTEMPTS + 1):
        report = ImportReport(dry_run=dry_run)
        try:
            with transaction.atomic():
                _wait_for_other_imports(progress)
                _import(table, report, user=user, source_label=source_label[:255], progress=progress)
                if before_commit is not None:
                    before_commit(report)
                if dry_run:
                    transaction.set_rollback(True)
        except IntegrityError as exc:
            # Another writer created one of these alloys (or DOIs) since they were read: this
            # attempt is rolled back; the next one reads them and merges into them. Any other
            # integrity error is not a race and is raised as it is.
            if not _is_unique_violation(exc):
                raise
            logger.warning("Import attempt %s of %s clashed with another writer: %s", attempt, _ATTEMPTS, exc)
            if attempt == _ATTEMPTS:
                raise ConcurrentChange(
                    f"The same alloys were being saved by someone else at the same time ({_ATTEMPTS} tries); "
                    "nothing was imported. Run the import again."
                ) from exc
            progress(0.0, "alloys changed meanwhile; reading the table against them again")
            continue
        break
    if dry_run:  # ids of rolled-back alloys mean nothing
        for entry in report.rows:
            if entry["outcome"] == OUTCOME_CREATED or entry.pop("_new_alloy", False):
                entry["alloy_id"] = None
    for entry in report.rows:
        entry.pop("_new_alloy", None)
    return report


def _is_unique_violation(exc):
    cause = exc.__cause__
    if getattr(cause, "sqlstate", None) == "23505":  # PostgreSQL (psycopg): unique_violation
        return True
    return connection.vendor == "sqlite" and "UNIQUE constraint failed" in str(exc)


def _wait_for_other_imports(progress):
    """Hold the import lock for the current transaction, waiting for the import that holds it;
    ``progress`` may raise meanwhile (a cancelled job stops waiting).

    PostgreSQL: an advisory lock. SQLite (the first-run default) has one writer at a time, but a
    transaction that has read first and then writes while another writer holds the lock fails at
    once with "database is locked" (SQLite refuses to wait there, as two such readers could wait
    for each other): so the write lock is taken before anything is read, by a write that changes
    no row, retried while another import holds it."""
    if connection.vendor == "sqlite":
        _take_sqlite_write_lock(progress)
        return
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        while True:
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [IMPORT_LOCK_KEY])
            if cursor.fetchone()[0]:
                return
            progress(0.0, "waiting for another import to finish")
            time.sleep(_LOCK_POLL_S)


def _take_sqlite_write_lock(progress):
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA busy_timeout")
        busy_timeout_ms = cursor.fetchone()[0]
        cursor.execute(f"PRAGMA busy_timeout = {int(_LOCK_POLL_S * 1000)}")
        try:
            while True:
                try:
                    # The first statement of the transaction, so SQLite waits (busy_timeout) for
                    # the lock instead of refusing; it updates no row.
                    cursor.execute(f"UPDATE {Alloy._meta.db_table} SET id = id WHERE 0")
                    return
                except OperationalError as exc:
                    if "locked" not in str(exc):
                        raise
                progress(0.0, "waiting for another import to finish")
        finally:
            cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")


def _import(table, report, *, user, source_label, progress):
    prepared = []  # (_Row or None, report entry)
    n = len(table)
    for i, (line, raw) in enumerate(table):
        if i % _PROGRESS_EVERY == 0:
            progress(0.5 * i / n, f"reading row {i + 1:,} of {n:,}")
        entry = {"line": line, "composition": text_of(raw.get("composition")), "outcome": None, "reason": "", "alloy_id": None}
        report.rows.append(entry)
        try:
            row = _prepare(line, raw)
        except (CompositionError, RowRefused) as exc:
            entry.update(outcome=OUTCOME_REFUSED, reason=str(exc))
        else:
            entry.update(row.temps)  # as read, for the report's Tg/Tx/Tl columns
            prepared.append((row, entry))

    # One query for the alloys already known, one for their values.
    keys = {row.comp.key for row, _ in prepared}
    alloys = {}
    for chunk in _chunks(keys):
        alloys.update({a.composition_key: a for a in Alloy.objects.filter(composition_key__in=chunk)})
    values = {key: [] for key in keys}
    key_of = {a.pk: key for key, a in alloys.items()}
    for chunk in _chunks(key_of):
        for value in PropertyValue.objects.filter(alloy_id__in=chunk).order_by("pk"):
            values[key_of[value.alloy_id]].append(value)

    references = _ReferenceBook([row for row, _ in prepared])
    new_alloys, new_values, changed_values, renamed_alloys = [], [], {}, {}
    alloy_of_entry = []

    for i, (row, entry) in enumerate(prepared):
        if i % _PROGRESS_EVERY == 0:
            progress(0.5 + 0.45 * i / len(prepared), f"matching row {i + 1:,} of {len(prepared):,} with the alloys on record")
        comp = row.comp
        alloy = alloys.get(comp.key)
        entry["formula"] = comp.formula
        if alloy is None:
            alloy = Alloy(
                composition_key=comp.key,
                formula=comp.formula,
                fractions=dict(comp),
                base_element=comp.base_element,
                n_elements=len(comp),
                name=row.name,
                created_by=user,
            )
            alloys[comp.key] = alloy
            new_alloys.append(alloy)
            value = _new_value(alloy, row, references, user, source_label, values[comp.key])
            if value is not None:
                new_values.append(value)
            described = _describe(row.temps, row)
            reason = f"New alloy with {described}." if described else "New alloy (no Tg, Tx, Tl or GFA given)."
            entry.update(outcome=OUTCOME_CREATED, reason=reason, _new_alloy=True)
            alloy_of_entry.append((alloy, entry))
            continue

        alloy_of_entry.append((alloy, entry))
        if alloy.pk is None:
            entry["_new_alloy"] = True
        if row.name and not alloy.name:
            alloy.name = row.name
            if alloy.pk is not None:
                renamed_alloys[alloy.pk] = alloy
        existing = values[comp.key]
        if existing and all(t is None for t in row.temps.values()) and not row.has_gfa:
            entry.update(outcome=OUTCOME_MERGED, reason="Existing alloy; no Tg, Tx, Tl or GFA given: nothing new.")
            continue
        holder = next((v for v in existing if _holds(v, row)), None)
        if holder is not None:
            reason = f"Same values as an existing value of this alloy (within {AGREEMENT_TOLERANCE_K:g} K): nothing new."
            if holder.origin == PropertyValue.Origin.LITERATURE and holder.reference_id is None and holder.reference is None and not holder.source_label:
                ref = references.get(row)
                if ref is not None or source_label:
                    holder.reference, holder.source_label = ref, "" if ref else source_label
                    reason = f"Same values as an existing value of this alloy (within {AGREEMENT_TOLERANCE_K:g} K); source attached to it."
                    if holder.pk is not None:
                        changed_values[holder.pk] = holder
            entry.update(outcome=OUTCOME_MERGED, reason=reason)
            continue
        contradicted = [v for v in existing if rules.compare_temperatures(v, row.temps) == "differ"]
        other_classes = sorted({v.gfa_class for v in existing if v.gfa_class and row.gfa_class and v.gfa_class != row.gfa_class})
        value = _new_value(alloy, row, references, user, source_label, existing)
        if value is None:
            entry.update(outcome=OUTCOME_MERGED, reason="Existing alloy; no Tg, Tx, Tl or GFA given: nothing new.")
            continue
        new_values.append(value)
        if other_classes and not contradicted:
            said = ", ".join(rules.GFA_CLASS_LABELS[c] for c in other_classes)
            entry.update(
                outcome=OUTCOME_CONFLICT,
                reason=f"GFA class {rules.GFA_CLASS_LABELS[row.gfa_class]} differs from an existing value ({said}); "
                       "kept as a separate value, the alloy is flagged.",
            )
        elif contradicted:
            value.conflict = True
            for other in contradicted:
                if not other.conflict:
                    other.conflict = True
                    if other.pk is not None:
                        changed_values[other.pk] = other
            worst = contradicted[0]
            entry.update(
                outcome=OUTCOME_CONFLICT,
                reason=(
                    f"{_describe(row.temps)} differs by more than {AGREEMENT_TOLERANCE_K:g} K from an existing value "
                    f"({_describe({f: getattr(worst, f) for f in TEMPERATURE_FIELDS})}); kept as a separate value, both flagged."
                ),
            )
        else:
            entry.update(outcome=OUTCOME_MERGED, reason=f"Existing alloy; value added ({_describe(row.temps, row)}).")

    # Writes: a few bulk statements, each with its history rows.
    if new_alloys:
        bulk_create_with_history(new_alloys, Alloy, default_user=user, default_change_reason="import")
    for value in new_values:
        value.alloy = value.alloy  # picks up the alloy's new pk
    if new_values:
        bulk_create_with_history(new_values, PropertyValue, default_user=user, default_change_reason="import")
    if changed_values:
        bulk_update_with_history(
            list(changed_values.values()), PropertyValue, ["conflict", "reference", "source_label"],
            default_user=user, default_change_reason="import",
        )
    if renamed_alloys:
        bulk_update_with_history(list(renamed_alloys.values()), Alloy, ["name"], default_user=user, default_change_reason="import")
    if new_values or changed_values:
        refresh_alloy_summaries({v.alloy_id for v in new_values} | {v.alloy_id for v in changed_values.values()})
    for alloy, entry in alloy_of_entry:
        entry["alloy_id"] = alloy.pk


def _new_value(alloy, row, references, user, source_label, existing):
    """A new literature value for the row, or None when it has no temperature, no GFA and no source.

    A row with a source but no temperature still records where the alloy was reported.
    """
    has_temperature = any(t is not None for t in row.temps.values())
    if not has_temperature and not row.has_gfa and not (row.doi or row.source):
        return None
    ref = references.get(row)
    value = PropertyValue(
        alloy=alloy,
        origin=PropertyValue.Origin.LITERATURE,
        reference=ref,
        source_label="" if ref else source_label,
        heating_rate_k_min=row.heating_rate_k_min,
        gfa_class=row.gfa_class,
        dmax_mm=row.dmax_mm,
        dmax_kind=rules.DMAX_POINT,
        created_by=user,
        **row.temps,
    )
    existing.append(value)
    return value


# --------------------------------------------------------------------------------------------
# Web-started imports (run by the Celery task)
# --------------------------------------------------------------------------------------------


# Seconds before an import that found an earlier one running is tried again.
IMPORT_DEFER_S = 5.0


def _defer_behind_earlier_import(job):
    """Imports serialise (the lock in _wait_for_other_imports): an import that finds an earlier
    one running goes back to the queue before it reads its file (core.jobs.JobDeferred), so no
    worker sits waiting and its time limit counts its own work, not the other's. "Earlier": the
    one claimed first (then the lower id), so of two claimed together exactly one goes on."""
    others = AlloyImport.objects.filter(status=JobStatus.RUNNING).exclude(pk=job.pk).filter(
        Q(started_at__lt=job.started_at) | Q(started_at=job.started_at, pk__lt=job.pk))
    # one whose worker died holds no lock: the sweep fails it, nobody waits for it
    other = next((o for o in others.order_by("started_at", "pk") if not o.heartbeat_is_stale()), None)
    if other is not None:
        raise JobDeferred(f"waiting for import {other.pk} ({other.original_name}) to finish", after_s=IMPORT_DEFER_S)


def run_alloy_import(import_id, *, task_id=None):
    """Run a queued AlloyImport as a job (core.jobs: claim, heartbeat, cancel). Returns it."""
    return run_job(AlloyImport, import_id, _run_import, task_id=task_id)


def _run_import(job, ctx):
    def progress(fraction, message):
        ctx.report(fraction, message)
        # Raising here rolls the import back: GLASSLOOP_IMPORT_MAX_SECONDS passed (counted from
        # this attempt's start), or a person cancelled.
        ctx.check_time(message)
        ctx.check_cancel()

    _defer_behind_earlier_import(job)
    try:
        # The whole parse happens here, on the worker (the upload form only checks size, type and a
        # workbook's expanded size): lab.tables stops reading at the first limit it passes.
        def before_commit(report):
            assert_owned(job)
            if not job.dry_run:  # the report lands with the alloys it names, or not at all
                ctx.report(0.97, f"writing the report of {len(report.rows):,} rows")
                save_report_rows(job, report.rows)

        progress(0.0, "reading the table")
        with job.upload.open("rb") as handle:
            data = handle.read()
        report = import_alloys(
            data, user=job.created_by, dry_run=job.dry_run, source_label=job.original_name, filename=job.original_name,
            progress=progress, before_commit=before_commit,
        )
    except (ImportFileError, ConcurrentChange) as exc:
        raise JobError(str(exc)) from exc
    except STOP_EXCEPTIONS:
        raise
    except Exception as exc:  # recorded for the person; the import itself was rolled back
        logger.exception("Import %s failed", job.pk)
        raise JobError(f"Unexpected error, nothing was imported: {exc.__class__.__name__}: {exc}") from exc
    if job.dry_run:  # nothing else was kept
        save_report_rows(job, report.rows)
    counts = report.counts
    return {"counts": counts, "report": [],
            "message": f"{counts['rows']:,} rows: {counts['created']:,} created, {counts['merged']:,} merged, "
                       f"{counts['conflicts']:,} conflicts, {counts['refused']:,} refused"}


def save_report_rows(job, entries):
    """Store an import's report as ImportRow rows (replacing an earlier attempt's)."""
    with transaction.atomic():
        assert_owned(job)
        ImportRow.objects.filter(alloy_import=job).delete()
        rows = (
            ImportRow(
                alloy_import=job,
                line=entry["line"],
                composition=entry["composition"],
                formula=(entry.get("formula") or "")[:255],
                outcome=entry["outcome"],
                reason=entry["reason"],
                alloy_id=None if job.dry_run else entry.get("alloy_id"),
                tg_k=entry.get("tg_k"),
                tx_k=entry.get("tx_k"),
                tl_k=entry.get("tl_k"),
            )
            for entry in entries
        )
        while batch := list(islice(rows, _REPORT_BATCH)):
            ImportRow.objects.bulk_create(batch)


UPLOAD_SUFFIXES = (".csv", ".xlsx", ".txt")


def check_table_upload(upload):
    """What the request checks of an uploaded table (the page's form and the API alike): its type,
    its size, and what ``lab.tables.check_upload`` can see cheaply. Raises ImportFileError."""
    if not upload.name.lower().endswith(UPLOAD_SUFFIXES):
        raise ImportFileError("Upload a .csv or .xlsx file.")
    limit = settings.GLASSLOOP_MAX_UPLOAD_BYTES
    if upload.size > limit:
        raise ImportFileError(f"The file is {upload.size / 1e6:.1f} MB; the limit is {limit / 1e6:.0f} MB (GLASSLOOP_MAX_UPLOAD_BYTES).")
    check_upload(upload, upload.name)


def start_import(*, upload, user, dry_run=False):
    """Save an uploaded table as a queued import and send it to the worker once committed (the
    upload page and POST /api/imports/). The upload has passed ``lab.tables.check_upload``."""
    with transaction.atomic():
        job = AlloyImport.objects.create(upload=upload, original_name=upload.name[:255], dry_run=dry_run, created_by=user)
        enqueue_import(job)
    job.refresh_from_db()
    return job


def enqueue_import(job):
    """Send the import to the worker once the transaction commits (see core.jobs.enqueue)."""
    return enqueue(job, then="The upload is kept; start the worker and broker; it is sent again automatically, or press Retry.")


# --------------------------------------------------------------------------------------------
# Reading a report (the import page, its CSV and the API)
# --------------------------------------------------------------------------------------------

# The stored counts' key of each outcome (ImportReport.counts).
COUNT_KEYS = {OUTCOME_CREATED: "created", OUTCOME_MERGED: "merged", OUTCOME_CONFLICT: "conflicts", OUTCOME_REFUSED: "refused"}
REPORT_COLUMNS = ("line", "composition", "formula", "outcome", "reason", "alloy_id", "Tg_K", "Tx_K", "Tl_K")


def outcome_counts(job):
    """``[{"outcome", "count"}]`` in the order of OUTCOMES, from the counts the import stored."""
    counts = job.counts or {}
    return [{"outcome": outcome, "count": counts.get(COUNT_KEYS[outcome], 0)} for outcome in OUTCOMES]


def report_rows(job, *, outcome="", q=""):
    """The report's rows, of one outcome and/or with ``q`` in the composition as written or as
    parsed; refused rows first when all outcomes are shown, else in file order."""
    rows = ImportRow.objects.filter(alloy_import=job)
    if outcome:
        rows = rows.filter(outcome=outcome).order_by("line")
    else:
        refused_first = Case(When(outcome=OUTCOME_REFUSED, then=Value(0)), default=Value(1), output_field=IntegerField())
        rows = rows.order_by(refused_first, "line")
    if q:
        rows = rows.filter(Q(composition__icontains=q) | Q(formula__icontains=q))
    return rows


def report_csv_lines(rows):
    """The rows as CSV lines (REPORT_COLUMNS), read a few thousand at a time; text cells that a
    spreadsheet would run as a formula are neutralised (core.exports)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def line(values):
        writer.writerow(values)
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    yield "\ufeff" + line(REPORT_COLUMNS)  # the BOM: Excel then reads the file as UTF-8
    fields = ("line", "composition", "formula", "outcome", "reason", "alloy_id", "tg_k", "tx_k", "tl_k")
    for values in rows.values_list(*fields).iterator(chunk_size=2000):
        yield line(neutralise_row(["" if v is None else v for v in values]))
