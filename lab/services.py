"""Actions on lab records. Each public function is one transaction."""

import math
import os
from contextlib import contextmanager
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import Avg, Count, Exists, F, FloatField, IntegerField, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.utils.text import get_valid_filename

from core import jobs
from ml import rules
from ml.composition import Composition, CompositionError, parse_composition

from .models import (
    CU_KALPHA_WAVELENGTH_A,
    DSC_ACCEPTABLE,
    TYPED,
    Alloy,
    DSCMeasurement,
    PropertyValue,
    Sample,
    TemperatureUnit,
    XRDAnalysis,
    XRDMeasurement,
    analysed,
    conflicts_leave_means,
    format_dmax,
    short_method,
    validate_transition_temperatures,
)


def refresh_alloy_summaries(alloy_ids):
    """Recompute the stored counts and means of these alloys from their values and samples.

    Runs inside the caller's transaction. The alloy rows are locked first, so two writers
    adding values to one alloy at once take turns and the second sees the first's value.
    Single saves and deletes call this through lab.signals; bulk writes call it themselves.
    """
    ids = sorted({int(pk) for pk in alloy_ids if pk is not None})
    with transaction.atomic():
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            list(Alloy.objects.select_for_update().filter(pk__in=chunk).order_by("pk").values_list("pk"))
            write_alloy_summaries(Alloy, PropertyValue, Sample, chunk)
            write_gfa_summaries(Alloy, PropertyValue, Sample, XRDMeasurement, chunk)
    return len(ids)


def live(model, prefix=""):
    """Q of the rows not retracted (every row of a historical model from before retraction existed)."""
    if not any(f.name == "retracted_at" for f in model._meta.get_fields()):
        return Q()
    return Q(**{f"{prefix}retracted_at__isnull": True})


def counted_values(value_model=PropertyValue, prefix=""):
    """Q of the property values that count in the means and the training rows: live ones not in
    a conflict nobody has resolved (PropertyValue.counts says the same of one value). A value in
    conflict stays visible on the alloy page, out of the mean, until a person resolves it."""
    q = live(value_model, prefix)
    if conflicts_leave_means() and any(f.name == "conflict_resolution" for f in value_model._meta.get_fields()):
        q &= Q(**{f"{prefix}conflict": False}) | ~Q(**{f"{prefix}conflict_resolution": ""})
    return q


def write_alloy_summaries(alloy_model, value_model, sample_model, ids):
    """The computation behind refresh_alloy_summaries, on the given model classes (so that
    the migration that adds the columns can fill them with its historical models).

    Two UPDATE statements computed in the database (correlated subqueries), whatever the
    number of alloys: the means and counts first, then Trg, γ and ΔTx from those means.
    """
    values = value_model.objects.filter(counted_values(value_model), alloy=OuterRef("pk")).order_by().values("alloy")

    def per_alloy(aggregate, output_field):
        return Subquery(values.annotate(x=aggregate).values("x"), output_field=output_field)

    samples = sample_model.objects.filter(live(sample_model), alloy=OuterRef("pk")).order_by().values("alloy").annotate(n=Count("pk")).values("n")
    alloys = alloy_model.objects.filter(pk__in=ids)
    alloys.update(
        n_samples=Coalesce(Subquery(samples, output_field=IntegerField()), 0),
        n_values=Coalesce(per_alloy(Count("pk"), IntegerField()), 0),
        tg_mean_k=per_alloy(Avg("tg_k"), FloatField()),
        tx_mean_k=per_alloy(Avg("tx_k"), FloatField()),
        tl_mean_k=per_alloy(Avg("tl_k"), FloatField()),
        has_conflict=Exists(value_model.objects.filter(live(value_model), alloy=OuterRef("pk"), conflict=True)),
    )
    alloys.update(  # NULL in, NULL out: an unknown mean leaves the derived value unknown
        trg=F("tg_mean_k") / F("tl_mean_k"),
        gamma=F("tx_mean_k") / (F("tg_mean_k") + F("tl_mean_k")),
        dtx_k=F("tx_mean_k") - F("tg_mean_k"),
    )


# ------------------------------------------------------------------ glass-forming ability


@dataclass(frozen=True)
class GFAEvidence:
    """One thing known about an alloy's glass-forming ability: a property value's class/Dmax or
    one cast sample's latest XRD verdict (``lab``: this lab's own, which outweighs the literature).

    ``glass``: it formed a glass at least ``glass_mm`` thick (0: thickness unknown); ``bmg``: it
    says "bulk glass"; ``below_mm``: no glass as thick as this (0: no glass at all, a crystal;
    1 mm for "ribbon only"). Either may be None (the evidence says nothing of it).
    """

    text: str
    lab: bool
    glass_mm: float | None = None
    bmg: bool = False
    below_mm: float | None = None
    dmax_mm: float | None = None  # a Dmax it gives (point or lower bound)
    is_bound: bool = False
    cls: str | None = None


def value_evidence(text, *, lab, gfa_class, dmax_mm, dmax_kind):
    """The evidence of a property value's GFA class and Dmax (None when it gives neither)."""
    cls = gfa_class or None
    if cls is None and dmax_mm is None:
        return None
    kind = dmax_kind or rules.DMAX_POINT
    glass_mm = below_mm = None
    dmax = None
    if kind == rules.DMAX_BELOW:
        below_mm = dmax_mm
    elif dmax_mm is not None:
        glass_mm, dmax = dmax_mm, dmax_mm
    if cls is not None and rules.is_glass(cls) and glass_mm is None:
        glass_mm = rules.BMG_MIN_DMAX_MM if cls == rules.GFA_BMG else 0.0
    if cls == rules.GFA_CRYSTAL:
        below_mm = 0.0
    elif cls == rules.GFA_RIBBON:  # a glass as ribbon only: not castable as a bulk rod
        below_mm = rules.BMG_MIN_DMAX_MM if below_mm is None else min(below_mm, rules.BMG_MIN_DMAX_MM)
    if cls is None and glass_mm is not None:
        cls = rules.class_from_casting(True, glass_mm)[0]
    bmg = cls == rules.GFA_BMG
    return GFAEvidence(text=text, lab=lab, glass_mm=glass_mm, bmg=bmg, below_mm=below_mm, dmax_mm=dmax,
                       is_bound=dmax is not None and kind == rules.DMAX_AT_LEAST, cls=cls)


def casting_evidence(sample_label, diameter_mm, amorphous):
    """What one cast sample's latest XRD says (ml.rules.class_from_casting), as lab evidence."""
    cls, kind, bound = rules.class_from_casting(amorphous, diameter_mm)
    verdict = "amorphous" if amorphous else "crystalline"
    text = f"{format_dmax(bound, kind) or 'Dmax unknown'} (rod {sample_label}, {verdict})"
    if amorphous:
        return GFAEvidence(text=text, lab=True, glass_mm=bound or 0.0, bmg=cls == rules.GFA_BMG, dmax_mm=bound,
                           is_bound=bound is not None, cls=cls)
    return GFAEvidence(text=text, lab=True, below_mm=bound, cls=None)


@dataclass(frozen=True)
class GFASummary:
    gfa_class: str
    dmax_mm: float | None
    dmax_is_bound: bool
    conflict: bool
    reason: str


def _contradicts(glass, negative):
    """A glass at least ``glass.glass_mm`` thick against "no glass as thick as ``below_mm``"."""
    return (
        glass is not negative and glass.glass_mm is not None and negative.below_mm is not None
        and glass.glass_mm >= negative.below_mm
    )


def summarise_gfa(evidence):
    """The alloy's GFA class and best known Dmax from its evidence (see GFAEvidence).

    * Evidence that contradicts other evidence (a glass of d mm against a crystal, a ribbon-only
      report or a casting that came out crystalline at ≤ d mm) sets ``conflict`` with the reason.
    * This lab's evidence outweighs the literature: literature evidence that lab evidence
      contradicts is left out. Among the rest the glass wins: it was made.
    * The class: a BMG when some evidence left says so (or a glass ≥ 1 mm, ml.rules), else a
      ribbon when some says glass, else crystalline when some says so, else unknown ("").
    * Dmax: the largest reported Dmax or amorphous casting left; a bound when no reported Dmax
      reaches it.
    """
    evidence = [e for e in evidence if e is not None]
    reasons, dropped = [], set()
    for g in evidence:
        for n in evidence:
            if not _contradicts(g, n):
                continue
            if g.lab and not n.lab:
                dropped.add(id(n))
                reasons.append(f"{g.text} contradicts {n.text}: the lab's casting is kept")
            elif n.lab and not g.lab:
                dropped.add(id(g))
                reasons.append(f"{n.text} contradicts {g.text}: the lab's casting is kept")
            else:
                reasons.append(f"{g.text} contradicts {n.text}")
    kept = [e for e in evidence if id(e) not in dropped]
    glasses = [e for e in kept if e.glass_mm is not None]
    if any(e.bmg for e in glasses):
        cls = rules.GFA_BMG
    elif glasses:
        cls = rules.GFA_RIBBON
    elif any(e.below_mm == 0 for e in kept):
        cls = rules.GFA_CRYSTAL
    else:
        cls = ""
    dmaxes = [e for e in glasses if e.dmax_mm is not None]
    dmax, bound = None, False
    if dmaxes:
        dmax = max(e.dmax_mm for e in dmaxes)
        bound = all(e.is_bound for e in dmaxes if e.dmax_mm == dmax)
    return GFASummary(gfa_class=cls, dmax_mm=dmax, dmax_is_bound=bound, conflict=bool(reasons),
                      reason="; ".join(dict.fromkeys(reasons))[:2000])


def _value_text(reference, source_label, origin, gfa_class, dmax_mm, dmax_kind):
    what = rules.GFA_CLASS_LABELS.get(gfa_class, "") if gfa_class else ""
    d = format_dmax(dmax_mm, dmax_kind)
    said = ", ".join(x for x in (what, d) if x) or "GFA"
    source = source_label or (str(reference) if reference is not None else "") or origin
    return f"{said} ({source})"


def latest_castings(sample_model, xrd_model, alloy_ids):
    """{alloy_id: [(sample label, diameter_mm, amorphous)]} of the samples with an analysed XRD,
    each by its latest one (the override if any, else the computed verdict). A pattern still
    being analysed, or one that could not be, is no evidence (not "not amorphous")."""
    latest = {}
    rows = (
        xrd_model.objects.filter(live(xrd_model), analysed(xrd_model), live(sample_model, "sample__"),
                                 sample__alloy_id__in=alloy_ids)
        .order_by("sample_id", "created_at", "pk")
        .values_list("sample_id", "sample__alloy_id", "sample__label", "sample__diameter_mm", "override_verdict", "computed_verdict")
    )
    for sample_id, alloy_id, label, diameter, override, computed in rows:
        latest[sample_id] = (alloy_id, label, diameter, (override or computed) == "amorphous")
    out = {}
    for alloy_id, label, diameter, amorphous in latest.values():
        out.setdefault(alloy_id, []).append((label, diameter, amorphous))
    return out


def alloy_gfa_evidence(value_rows, castings):
    """GFAEvidence of one alloy from (reference, source_label, origin, gfa_class, dmax_mm,
    dmax_kind) rows and (label, diameter, amorphous) castings."""
    evidence = []
    for reference, source_label, origin, cls, dmax, kind in value_rows:
        evidence.append(value_evidence(
            _value_text(reference, source_label, origin, cls, dmax, kind), lab=origin == "experiment",
            gfa_class=cls, dmax_mm=dmax, dmax_kind=kind,
        ))
    for label, diameter, amorphous in castings:
        evidence.append(casting_evidence(label, diameter, amorphous))
    return [e for e in evidence if e is not None]


def write_gfa_summaries(alloy_model, value_model, sample_model, xrd_model, ids):
    """The alloys' GFA class, best known Dmax (and whether it is a bound) and GFA conflict, from
    their property values and their samples' latest XRD verdicts (summarise_gfa); a GFA conflict
    also sets has_conflict. Runs after write_alloy_summaries (which resets has_conflict).
    Model classes are parameters so a migration can run it on its historical models."""
    ids = list(ids)
    values = {}
    rows = (
        value_model.objects.filter(counted_values(value_model), alloy_id__in=ids).filter(~Q(gfa_class="") | Q(dmax_mm__isnull=False))
        .order_by("pk").values_list("alloy_id", "source_label", "origin", "gfa_class", "dmax_mm", "dmax_kind",
                                    "reference__authors", "reference__year", "reference__journal", "reference__label",
                                    "reference__doi")
    )
    for alloy_id, label, origin, cls, dmax, kind, authors, year, journal, ref_label, doi in rows:
        # as str(Reference), without the model (a migration's historical one has no methods)
        if authors or year:
            reference = " ".join(p for p in (authors or "?", f"({year})" if year else "", journal) if p)
        else:
            reference = ref_label or doi or None
        values.setdefault(alloy_id, []).append((reference, label, origin, cls, dmax, kind))
    castings = latest_castings(sample_model, xrd_model, ids)
    alloys = list(alloy_model.objects.filter(pk__in=ids).only(
        "pk", "has_conflict", "gfa_class", "dmax_mm", "dmax_is_bound", "gfa_conflict", "gfa_conflict_reason"))
    changed = []
    fields = ("gfa_class", "dmax_mm", "dmax_is_bound", "gfa_conflict", "gfa_conflict_reason", "has_conflict")
    for alloy in alloys:
        summary = summarise_gfa(alloy_gfa_evidence(values.get(alloy.pk, ()), castings.get(alloy.pk, ())))
        new = (summary.gfa_class, summary.dmax_mm, summary.dmax_is_bound, summary.conflict, summary.reason,
               alloy.has_conflict or summary.conflict)
        if tuple(getattr(alloy, f) for f in fields) != new:
            for f, v in zip(fields, new):
                setattr(alloy, f, v)
            changed.append(alloy)
    if changed:
        alloy_model.objects.bulk_update(changed, fields, batch_size=500)


def as_composition(composition):
    """A Composition from text or a Composition (raises CompositionError with the reason)."""
    if isinstance(composition, Composition):
        return composition
    return parse_composition(composition)


@transaction.atomic
def get_or_create_alloy(composition, *, user=None, name=""):
    """The Alloy for a composition (text or Composition), created if new.

    Identity is the composition key, so ``Ca40Cu30Mg30`` and ``Ca40Mg30Cu30`` are one alloy.
    Returns ``(alloy, created)``.
    """
    comp = as_composition(composition)
    alloy = Alloy.objects.filter(composition_key=comp.key).first()
    if alloy is not None:
        if name and not alloy.name:
            alloy.name = name
            alloy.save(update_fields=["name"])
        return alloy, False
    try:
        with transaction.atomic():
            alloy = Alloy.objects.create(
                composition_key=comp.key,
                formula=comp.formula,
                fractions=dict(comp),
                base_element=comp.base_element,
                n_elements=len(comp),
                name=name,
                created_by=user,
            )
    except IntegrityError:  # created by someone else between our read and write
        return Alloy.objects.get(composition_key=comp.key), False
    return alloy, True


# --------------------------------------------------------------------------------------
# Experiments: samples, XRD and DSC measurements.
#
# Uploaded files are checked BEFORE any row is written, so a refused file leaves nothing
# behind (no sample, no alloy, no file on disk). A DSC curve is read and analysed then; of an
# XRD pattern only the size and the first 64 KB are read (lab.patterns.check_pattern_head):
# the whole pattern is read and analysed on the worker (XRDAnalysis), and until then its
# measurement is "pending". Files are written to storage only when their row is saved inside
# the transaction; if the transaction still fails after that, the files it wrote are deleted.
# --------------------------------------------------------------------------------------

# Two values of one alloy further apart than this are flagged as a conflict (ml.rules).
CONFLICT_TOLERANCE_K = rules.AGREEMENT_TOLERANCE_K
MIN_WAVELENGTH_A = 0.05
MAX_WAVELENGTH_A = 5.0
MAX_HEATING_RATE_K_MIN = 1000.0


def max_upload_bytes():
    return int(settings.GLASSLOOP_MAX_UPLOAD_BYTES)


def read_upload(uploaded_file, *, field):
    """The bytes of an uploaded file (Django UploadedFile or any binary file object).

    Refuses (ValidationError on ``field``) an empty file or one above
    settings.GLASSLOOP_MAX_UPLOAD_BYTES, without reading more than the limit.
    """
    limit = max_upload_bytes()
    size = getattr(uploaded_file, "size", None)
    if size is not None and size > limit:
        raise ValidationError({field: f"The file is {size / 1e6:.1f} MB; the limit is {limit / 1e6:.1f} MB."})
    if hasattr(uploaded_file, "seek"):
        uploaded_file.seek(0)
    data = uploaded_file.read(limit + 1)
    if hasattr(uploaded_file, "seek"):
        uploaded_file.seek(0)
    if isinstance(data, str):
        data = data.encode()
    if len(data) > limit:
        raise ValidationError({field: f"The file is larger than the limit of {limit / 1e6:.1f} MB."})
    if not data:
        raise ValidationError({field: "The file is empty."})
    return data


def _storage_name(uploaded_file, default):
    """A safe, short file name (FileField names are limited to 100 characters with the folder)."""
    base = os.path.basename(getattr(uploaded_file, "name", "") or "") or default
    base = get_valid_filename(base) or default
    stem, ext = os.path.splitext(base)
    return f"{stem[:50]}{ext[:10]}"


@dataclass(frozen=True)
class PreparedXRD:
    content: ContentFile
    wavelength_a: float


@dataclass(frozen=True)
class PreparedDSC:
    tg_k: float
    tx_k: float
    tl_k: float | None
    heating_rate_k_min: float
    curve: ContentFile | None
    curve_unit: str
    trace: dict = None  # lab.dsc_analysis.stored_proposals of the curve ({} without one)
    methods: dict = None  # field → "typed" or the trace's method (DSCMeasurement.value_methods)


def prepare_xrd(uploaded_file, *, wavelength_a=CU_KALPHA_WAVELENGTH_A, field="xrd_file"):
    """The request's cheap checks of an XRD pattern upload; nothing is stored. Raises
    ValidationError. Only the first 64 KB are looked at (lab.patterns.check_pattern_head): the
    whole pattern is read and analysed on the worker (analyse_xrd)."""
    from .patterns import PEEK_BYTES, PatternError, check_pattern_head

    if uploaded_file is None:
        raise ValidationError({field: "Choose an XRD pattern file."})
    if wavelength_a is None:
        wavelength_a = CU_KALPHA_WAVELENGTH_A
    if not (MIN_WAVELENGTH_A <= wavelength_a <= MAX_WAVELENGTH_A):
        raise ValidationError(
            {"wavelength_a": f"A wavelength of {wavelength_a:g} Å is implausible; Cu Kα is {CU_KALPHA_WAVELENGTH_A} Å."}
        )
    data = read_upload(uploaded_file, field=field)
    name = _storage_name(uploaded_file, "pattern.xy")
    try:
        check_pattern_head(data[:PEEK_BYTES], size=len(data))
    except PatternError as exc:
        raise ValidationError({field: f"{name}: {exc}"}) from exc
    return PreparedXRD(content=ContentFile(data, name=name), wavelength_a=wavelength_a)


def prepare_dsc(*, tg_k, tx_k, tl_k=None, heating_rate_k_min=20.0, curve_file=None, curve_unit=TemperatureUnit.KELVIN):
    """Check DSC values (ml.rules: Tg < Tx < Tl, 200–2500 K, ΔTx ≤ 250 K) and read an optional
    curve; nothing is stored.

    A curve is analysed here, once (lab.dsc_analysis.stored_proposals): its proposals are
    stored on the measurement to accept or override. Tg or Tx left blank with a curve given is
    taken from the trace's proposal (its method recorded); refused with the trace's reason when
    the trace has none."""
    from .dsc_analysis import stored_proposals
    from .patterns import PatternError, read_dsc_file

    if (tg_k is None or tx_k is None) and curve_file is None:
        raise ValidationError({"tg_k" if tg_k is None else "tx_k": "A DSC measurement needs at least Tg and Tx."})
    if heating_rate_k_min is None:
        heating_rate_k_min = 20.0
    if not (0 < heating_rate_k_min <= MAX_HEATING_RATE_K_MIN):
        raise ValidationError({"heating_rate_k_min": "Heating rate must be between 0 and 1000 K/min."})
    if curve_unit not in TemperatureUnit.values:
        raise ValidationError({"curve_unit": f"Unknown temperature unit {curve_unit!r}; use K or C."})
    if tg_k is not None and tx_k is not None:
        validate_transition_temperatures(tg_k, tx_k, tl_k)
    content, trace = None, {}
    methods = {f: TYPED for f, v in (("tg_k", tg_k), ("tx_k", tx_k), ("tl_k", tl_k)) if v is not None}
    if curve_file is not None:
        data = read_upload(curve_file, field="curve_file")
        name = _storage_name(curve_file, "curve.txt")
        try:
            curve = read_dsc_file(data, name=name, temperature_unit=curve_unit)
        except PatternError as exc:
            raise ValidationError({"curve_file": f"{name}: {exc}"}) from exc
        trace = stored_proposals(curve, data)
        taken = {}
        for field, value in (("tg_k", tg_k), ("tx_k", tx_k)):
            if value is None:
                proposal = trace.get(field) or {}
                if proposal.get("value_k") is None:
                    raise ValidationError({field: (
                        f"{rules.TEMPERATURE_LABELS[field]} was left blank and the trace gives none: "
                        f"{proposal.get('reason') or 'not found'} Type it."
                    )})
                taken[field] = float(proposal["value_k"])
                methods[field] = accepted_method(proposal.get("method"), at_upload=True)
        tg_k, tx_k = taken.get("tg_k", tg_k), taken.get("tx_k", tx_k)
        if taken:
            validate_transition_temperatures(tg_k, tx_k, tl_k)
        # The scan must pass through Tg and Tx; if not, the unit or the file is wrong.
        low_k, high_k = float(curve.temperature_k[0]), float(curve.temperature_k[-1])
        if not (low_k <= tg_k and tx_k <= high_k):
            shown = "°C" if curve_unit == TemperatureUnit.CELSIUS else "K"
            raise ValidationError(
                {
                    "curve_file": f"{name}: read in {shown}, the curve runs from {low_k:.1f} to {high_k:.1f} K, "
                    f"which does not contain Tg = {tg_k:.1f} K and Tx = {tx_k:.1f} K. "
                    "Is the curve's temperature unit right, and is it this sample's scan?"
                }
            )
        content = ContentFile(data, name=name)
    return PreparedDSC(
        tg_k=float(tg_k),
        tx_k=float(tx_k),
        tl_k=None if tl_k is None else float(tl_k),
        heating_rate_k_min=float(heating_rate_k_min),
        curve=content,
        curve_unit=curve_unit,
        trace=trace,
        methods=methods,
    )


def accepted_method(method, *, at_upload=False):
    """The provenance of a value taken from the trace: "accepted the trace's proposal (tangent
    onset)"; "left blank: the trace's proposal (tangent onset)" when filled in at upload."""
    short = short_method(method) or "trace"
    return f"left blank: the trace's proposal ({short})" if at_upload else f"accepted the trace's proposal ({short})"


@contextmanager
def _files_removed_on_failure():
    """Collect (storage, name) of files written; delete them if the block raises."""
    written = []
    try:
        yield written
    except BaseException:
        for storage, name in written:
            try:
                storage.delete(name)
            except OSError:  # nothing more we can do; the row is gone anyway
                pass
        raise


def _save(instance, user, written=(), reason=None):
    """full_clean, then save with the history user (and optional change reason)."""
    instance.full_clean()
    if user is not None:
        instance._history_user = user
    if reason:
        instance._change_reason = reason
    instance.save()
    for field_name in ("pattern", "curve"):
        f = getattr(instance, field_name, None)
        if f and isinstance(written, list):
            written.append((f.storage, f.name))


def _finite_or_none(value):
    """NaN/inf (no peak, no width found) are stored as unknown."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _create_xrd(sample, prepared, *, user, written, measured_on=None, queue=True):
    """The measurement "pending" with its file, and its XRDAnalysis queued once this commits
    (``queue=False``: left unsent, for analyse_now). No summary changes: not evidence yet."""
    xrd = XRDMeasurement(
        sample=sample,
        wavelength_a=prepared.wavelength_a,
        analysis_status=XRDMeasurement.Analysis.PENDING,
        measured_on=measured_on,
        operator=user,
    )
    xrd.pattern = prepared.content  # saved to storage by save(), inside the transaction
    _save(xrd, user, written)
    job = XRDAnalysis.objects.create(measurement=xrd)
    if queue:
        queue_xrd_analysis(job)
    return xrd


def queue_xrd_analysis(job):
    """Send the analysis to the worker once the current transaction commits (core.jobs)."""
    jobs.enqueue(job, then="The pattern is stored and waits to be analysed; it is sent again once the broker is up, or press Retry.")


def analyse_xrd(job_id, *, task_id=None):
    """Read and analyse a stored pattern and fill in its measurement (what the Celery task
    calls; core.jobs): peak, FWHM, verdict, reason, analysis, plot; then the alloy's summaries
    and, through design.signals, the candidate of its sample. Idempotent: only a queued job
    runs, and a measurement already analysed is left as it is. An unreadable pattern fails the
    job with the reader's sentence; the measurement is then "failed" (no evidence), as after
    any end of its job without a verdict (XRDAnalysis.on_failed_or_cancelled). A retracted
    measurement is not analysed."""
    return jobs.run_job(XRDAnalysis, job_id, _analyse_xrd, task_id=task_id)


def analyse_xrd_now(xrd):
    """Run ``xrd``'s queued analysis in this process (callers outside a web request: commands,
    benches, starter data) and return the measurement as it is then. The same work as the
    worker's (analyse_xrd); never in a request."""
    job = XRDAnalysis.objects.filter(measurement_id=xrd.pk).first()
    if job is not None:
        analyse_xrd(job.pk)
    return XRDMeasurement.objects.select_related("sample__alloy").get(pk=xrd.pk)


def _pattern_analysis(xrd):
    """lab.patterns.analyse_xrd_file of the stored pattern (PatternError, OSError)."""
    from .patterns import analyse_xrd_file

    with xrd.pattern.open("rb") as fh:
        data = fh.read()
    return analyse_xrd_file(data, name=xrd.pattern.name, wavelength_a=xrd.wavelength_a)


def _analyse_xrd(job, ctx):
    from .patterns import PatternError
    from .plots import xrd_plot_data

    xrd = XRDMeasurement.objects.get(pk=job.measurement_id)
    if xrd.is_analysed:
        return {"message": "already analysed; nothing changed"}
    refusal = job.retry_refusal()  # retracted meanwhile: a message queued before, delivered late
    if refusal:
        raise jobs.JobError(refusal)
    name = os.path.basename(xrd.pattern.name or "") or "the pattern"
    ctx.report(0.1, "reading and analysing the pattern")
    # Every failure here fails the job, and with it the measurement (on_failed_or_cancelled).
    try:
        a = _pattern_analysis(xrd)
        # The analysis is one call: its safe point is after it (the soft time limit, 30 s
        # later, stops one stuck inside).
        ctx.check_time("analysing the pattern")
    except (PatternError, OSError) as exc:
        why = f"{name}: {exc}" if isinstance(exc, PatternError) else f"{name}: the stored file cannot be read ({exc})."
        raise jobs.JobError(why) from None
    ctx.check_cancel(every_s=0)
    ctx.report(0.9, "storing the analysis")
    with transaction.atomic():
        jobs.assert_owned(job)
        xrd = XRDMeasurement.objects.select_for_update(of=("self",)).select_related("sample", "operator").get(pk=xrd.pk)
        if xrd.is_analysed:
            return {"message": "already analysed; nothing changed"}
        if xrd.retracted_at is not None:  # retracted while it was analysed (the lock orders the two)
            raise jobs.JobCancelled()
        xrd.peak_q_inv_a = _finite_or_none(a.peak_q_inv_a)
        xrd.peak_two_theta_deg = _finite_or_none(a.peak_two_theta_deg)
        xrd.fwhm_inv_a = _finite_or_none(a.fwhm_inv_a)
        xrd.computed_verdict = XRDMeasurement.Verdict.AMORPHOUS if a.is_amorphous else XRDMeasurement.Verdict.CRYSTALLINE
        xrd.verdict_reason = a.reason
        xrd.analysis = a.as_dict()
        xrd.plot = xrd_plot_data(a)
        xrd.analysis_status = XRDMeasurement.Analysis.DONE
        # save(): design.signals hears of the verdict now, not while it was pending
        _save(xrd, xrd.operator, reason="pattern analysed")
        refresh_alloy_summaries([xrd.sample.alloy_id])  # the casting is GFA evidence now
        jobs.finish(job, message=f"{xrd.get_computed_verdict_display()}: {a.reason}"[:255])
    return None


def values_conflict(a, b, *, tolerance_k=CONFLICT_TOLERANCE_K):
    """True if two property values share a quantity (Tg, Tx or Tl) that differs by more than the
    tolerance (ml.rules.compare_temperatures gives "differ")."""
    return rules.compare_temperatures(a, b, tolerance_k) == rules.DIFFER


def _flag_conflicts(value, *, user):
    """Flag ``value`` and every other value of its alloy that disagrees with it by > 10 K."""
    others = PropertyValue.objects.filter(alloy_id=value.alloy_id, retracted_at__isnull=True).exclude(pk=value.pk)
    clashing = [other for other in others if values_conflict(value, other)]
    if not clashing:
        return
    for other in clashing:
        if not other.conflict:
            other.conflict = True
            _save(other, user, reason=f"conflicts with value {value.pk}")
    if not value.conflict:
        value.conflict = True
        _save(value, user, reason="conflicts with another value of this alloy")


def _create_dsc(sample, prepared, *, user, written, measured_on=None):
    dsc = DSCMeasurement(
        sample=sample,
        tg_k=prepared.tg_k,
        tx_k=prepared.tx_k,
        tl_k=prepared.tl_k,
        heating_rate_k_min=prepared.heating_rate_k_min,
        curve_temperature_unit=prepared.curve_unit,
        trace_analysis=prepared.trace or {},
        value_methods=prepared.methods or {},
        measured_on=measured_on,
        operator=user,
    )
    if prepared.curve is not None:
        dsc.curve = prepared.curve
    _save(dsc, user, written)
    # Every property value carries its provenance: this one points to its DSC scan.
    value = PropertyValue(
        alloy_id=sample.alloy_id,
        origin=PropertyValue.Origin.EXPERIMENT,
        dsc=dsc,
        tg_k=dsc.tg_k,
        tx_k=dsc.tx_k,
        tl_k=dsc.tl_k,
        heating_rate_k_min=dsc.heating_rate_k_min,
        created_by=user,
    )
    _save(value, user)
    _flag_conflicts(value, user=user)
    return dsc


def _composition_or_error(composition):
    try:
        return as_composition(composition)
    except CompositionError as exc:
        raise ValidationError({"composition": str(exc)}) from exc


def log_experiment(
    *,
    user,
    composition,
    label,
    alloy_name="",
    method=Sample.Method.ARC_SUCTION,
    diameter_mm=None,
    cast_on=None,
    notes="",
    xrd_file=None,
    wavelength_a=CU_KALPHA_WAVELENGTH_A,
    dsc=None,
    prepared_xrd=None,
    prepared_dsc=None,
    analyse_now=False,
):
    """Create a sample (and its alloy if new) with an optional XRD and an optional DSC, all or nothing.

    ``dsc`` is None or a dict with tg_k, tx_k, and optionally tl_k, heating_rate_k_min,
    curve_file, curve_unit ("K" or "C"). Raises ValidationError (keyed by field) and then
    nothing is saved. ``prepared_xrd``/``prepared_dsc``: what prepare_xrd/prepare_dsc already
    made of the same input (a form that checked it), so nothing is checked twice. The XRD is
    stored "pending" and analysed on the worker; ``analyse_now`` (only outside a web request)
    analyses it in this process once the rest is committed (analyse_xrd_now).
    """
    comp = _composition_or_error(composition)
    label = (label or "").strip()
    # Everything that can be refused is checked before the first row is written.
    if prepared_xrd is None and xrd_file is not None:
        prepared_xrd = prepare_xrd(xrd_file, wavelength_a=wavelength_a)
    if prepared_dsc is None and dsc:
        prepared_dsc = prepare_dsc(**dsc)
    with _files_removed_on_failure() as written, transaction.atomic():
        alloy, created = get_or_create_alloy(comp, user=user, name=(alloy_name or "").strip())
        if created and user is not None:  # outside a web request nobody else records who it was
            alloy.history.filter(history_user__isnull=True).update(history_user=user)
        sample = Sample(
            alloy=alloy,
            label=label,
            method=method or Sample.Method.ARC_SUCTION,
            diameter_mm=diameter_mm,
            cast_on=cast_on,
            operator=user,
            notes=notes or "",
        )
        _save(sample, user)
        xrd = None
        if prepared_xrd is not None:
            xrd = _create_xrd(sample, prepared_xrd, user=user, written=written, queue=not analyse_now)
        if prepared_dsc is not None:
            _create_dsc(sample, prepared_dsc, user=user, written=written)
    if xrd is not None and analyse_now:
        analyse_xrd_now(xrd)
    return sample


def record_xrd(sample, *, user, uploaded_file=None, wavelength_a=CU_KALPHA_WAVELENGTH_A, measured_on=None, prepared=None,
               analyse_now=False):
    """Store an XRD pattern of ``sample`` "pending", its analysis queued for the worker. Raises
    ValidationError (the request's cheap checks); then nothing is saved. ``prepared``:
    prepare_xrd's result for this upload when a form already made it (not checked again).
    ``analyse_now`` (only outside a web request): analysed in this process once committed."""
    _refuse_retracted_sample(sample)
    if prepared is None:
        prepared = prepare_xrd(uploaded_file, wavelength_a=wavelength_a)
    with _files_removed_on_failure() as written, transaction.atomic():
        xrd = _create_xrd(sample, prepared, user=user, written=written, measured_on=measured_on, queue=not analyse_now)
    return analyse_xrd_now(xrd) if analyse_now else xrd


def record_dsc(
    sample,
    *,
    user,
    tg_k,
    tx_k,
    tl_k=None,
    heating_rate_k_min=20.0,
    curve_file=None,
    curve_unit=TemperatureUnit.KELVIN,
    measured_on=None,
    prepared=None,
):
    """Store a DSC scan of ``sample`` and the experimental PropertyValue that points to it.
    ``prepared``: prepare_dsc's result for these values when a form already made it."""
    _refuse_retracted_sample(sample)
    if prepared is None:
        prepared = prepare_dsc(
            tg_k=tg_k, tx_k=tx_k, tl_k=tl_k, heating_rate_k_min=heating_rate_k_min, curve_file=curve_file, curve_unit=curve_unit
        )
    with _files_removed_on_failure() as written, transaction.atomic():
        return _create_dsc(sample, prepared, user=user, written=written, measured_on=measured_on)


@transaction.atomic
def override_xrd_verdict(xrd, *, user, verdict, reason):
    """Set (or, with verdict "", clear) the person's verdict on an XRD pattern; a reason is required.

    The reason is kept on the measurement and as the history entry's change reason.
    """
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "Say why the verdict is overridden."})
    if verdict and verdict not in XRDMeasurement.Verdict.values:
        raise ValidationError({"verdict": f"Unknown verdict {verdict!r}."})
    xrd = XRDMeasurement.objects.select_for_update().get(pk=xrd.pk)
    _refuse_retracted(xrd)
    # An override is a person disagreeing with the analysis, for a reason; before there is one
    # (pending) it would be silently paired with whatever verdict arrives later, and a pattern
    # the reader could not read is no evidence to give a verdict on: upload a readable file.
    if xrd.analysis_status == XRDMeasurement.Analysis.PENDING:
        raise ValidationError({"verdict": "The pattern is still being analysed; its verdict can be overridden once the analysis is done."})
    if xrd.analysis_status == XRDMeasurement.Analysis.FAILED:
        raise ValidationError({"verdict": f"{xrd.analysis_state_display.rstrip('.')}. A pattern without an analysis has no "
                                          "verdict to override; upload it again in a readable form."})
    xrd.override_verdict = verdict or ""
    xrd.override_reason = reason
    shown = verdict or f"computed ({xrd.computed_verdict})"
    _save(xrd, user, reason=f"verdict set to {shown}: {reason}"[:100])
    refresh_alloy_summaries([xrd.sample.alloy_id])
    return xrd


def store_xrd_plot(xrd):
    """Analyse a stored pattern once and keep what its plot draws (XRDMeasurement.plot), for a
    measurement recorded before plots were stored; later views read it. Returns the plot data.
    Raises lab.patterns.PatternError when the stored file can no longer be read."""
    from .plots import xrd_plot_data

    plot = xrd_plot_data(_pattern_analysis(xrd))
    # Derived data (kept out of the history): an UPDATE of the one column, no version change.
    XRDMeasurement.objects.filter(pk=xrd.pk).update(plot=plot)
    xrd.plot = plot
    return plot


def store_dsc_trace_analysis(dsc):
    """Analyse a stored DSC curve once and keep its proposals (DSCMeasurement.trace_analysis),
    for a measurement recorded before proposals were stored. The recorded values are not
    touched. Raises lab.patterns.PatternError when the stored file can no longer be read."""
    from .dsc_analysis import stored_proposals
    from .patterns import read_dsc_file

    with dsc.curve.open("rb") as fh:
        data = fh.read()
    curve = read_dsc_file(data, name=dsc.curve.name, temperature_unit=dsc.curve_temperature_unit or TemperatureUnit.KELVIN)
    analysis = stored_proposals(curve, data)
    DSCMeasurement.objects.filter(pk=dsc.pk).update(trace_analysis=analysis)  # derived data: no version, no history
    dsc.trace_analysis = analysis
    return analysis


# --------------------------------------------------------------------------------------
# Corrections: edit and retract (never delete) samples, XRD and DSC measurements and
# property values, each with a required reason. Every one is a transaction that locks the
# record, refuses a retracted record and a stale version (someone else changed it since the
# form was loaded), checks the lab's rules (ml.rules through the models' clean), saves with
# the history user and reason (simple-history), writes a Correction (who, when, reason,
# before → after) and refreshes the alloy's summaries (refresh_alloy_summaries).
# --------------------------------------------------------------------------------------

UNSET = object()  # a keyword not given: that field is left as it is
REASON_MAX_CHARS = 2000


def _require_reason(reason, what="the correction"):
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": f"Say why: a reason is required for {what}."})
    if len(reason) > REASON_MAX_CHARS:
        raise ValidationError({"reason": f"Keep the reason under {REASON_MAX_CHARS} characters."})
    return reason


def _record_name(obj):
    if isinstance(obj, Sample):
        return f"sample {obj.label}"
    if isinstance(obj, XRDMeasurement):
        return f"XRD #{obj.pk}"
    if isinstance(obj, DSCMeasurement):
        return f"DSC #{obj.pk}"
    return f"property value #{obj.pk}"


def _locked(model, obj):
    pk = obj.pk if isinstance(obj, model) else int(obj)
    try:
        return model.objects.select_for_update().get(pk=pk)
    except model.DoesNotExist as exc:
        raise ValidationError(f"There is no {model._meta.verbose_name} #{pk}.") from exc


def last_change(obj):
    """(username or "—", when) of the record's latest saved change (simple-history: every path)."""
    record = obj.history.select_related("history_user").order_by("-history_date", "-history_id").first()
    if record is None:
        return "—", None
    return (record.history_user.get_username() if record.history_user else "—"), record.history_date


def check_version(obj, version):
    """Refuse (code "stale") when the record is no longer at ``version``, the version the edit was
    loaded at: "changed by X at T, reload". None: no check (a caller without a form)."""
    if version in (None, ""):
        return
    try:
        version = int(version)
    except (TypeError, ValueError) as exc:
        raise ValidationError({"version": f"Unknown version {version!r}."}) from exc
    if version != obj.version:
        from django.utils import timezone

        who, when = last_change(obj)
        at = timezone.localtime(when).strftime("%Y-%m-%d %H:%M") if when else "an unknown time"
        raise ValidationError({"version": ValidationError(
            f"This {_record_name(obj)} was changed by {who} at {at} after you loaded it "
            f"(version {version}, now {obj.version}). Reload it and apply your change again; nothing was saved.",
            code="stale",
        )})


def _refuse_retracted(obj):
    if obj.retracted_at is not None:
        raise ValidationError(
            f"{_record_name(obj).capitalize()} was retracted ({obj.retraction_reason}); a retracted record cannot be edited.",
            code="retracted",
        )


def _refuse_retracted_sample(sample):
    """No new measurement on a retracted sample (read from the database, not a stale instance)."""
    current = Sample.objects.filter(pk=sample.pk).only("pk", "label", "retracted_at", "retraction_reason").first()
    if current is not None:
        _refuse_retracted(current)


def _alloy_and_sample(obj):
    if isinstance(obj, Sample):
        return obj.alloy_id, obj.pk
    if isinstance(obj, (XRDMeasurement, DSCMeasurement)):
        return obj.sample.alloy_id, obj.sample_id
    sample_id = obj.dsc.sample_id if obj.dsc_id else None
    return obj.alloy_id, sample_id


_RECORD_TYPES = {Sample: "sample", XRDMeasurement: "xrd", DSCMeasurement: "dsc", PropertyValue: "value"}
_UNITS = {"tg_k": "K", "tx_k": "K", "tl_k": "K", "heating_rate_k_min": "K/min", "diameter_mm": "mm", "dmax_mm": "mm"}
_LABELS = {"tg_k": "Tg", "tx_k": "Tx", "tl_k": "Tl", "heating_rate_k_min": "heating rate", "diameter_mm": "diameter",
           "dmax_mm": "Dmax", "dmax_kind": "Dmax kind", "gfa_class": "GFA class", "cast_on": "cast on",
           "measured_on": "measured on", "wavelength_a": "wavelength"}


def _json_value(value):
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def _apply_changes(obj, values):
    """Set the given fields; [(field, before, after)] of those that changed."""
    changed = []
    for field, new in values.items():
        if new is UNSET:
            continue
        old = getattr(obj, field)
        if isinstance(new, str):
            new = new.strip() if field != "notes" and field != "note" else new
        if old != new and not (isinstance(old, float) and isinstance(new, (int, float)) and math.isclose(old, new, abs_tol=1e-9)):
            setattr(obj, field, new)
            changed.append((field, old, new))
    return changed


def _write(obj, *, user, reason, action, changes=(), correction=True, history_reason=None):
    """Bump the version, save (history user and reason), and write the Correction."""
    from django.utils import timezone

    from .models import Correction

    now = timezone.now()
    obj.version += 1
    if action == Correction.Action.CORRECT:
        obj.corrected_at = now
    _save(obj, user, reason=(history_reason or reason)[:100])
    if not correction:
        return None
    alloy_id, sample_id = _alloy_and_sample(obj)
    return Correction.objects.create(
        alloy_id=alloy_id, sample_id=sample_id, record_type=_RECORD_TYPES[type(obj)], record_id=obj.pk, action=action,
        changes=[{"field": f, "label": _LABELS.get(f, f.replace("_", " ")), "before": _json_value(b), "after": _json_value(a),
                  "unit": _UNITS.get(f, "")} for f, b, a in changes],
        reason=reason, version=obj.version, by=user if getattr(user, "pk", None) else None, at=now,
    )


def _nothing_changed(changes, obj):
    if not changes:
        raise ValidationError(f"Nothing to correct: the values given are those stored on {_record_name(obj)}.", code="unchanged")


def recompute_conflicts(alloy_id, *, user=None):
    """The ``conflict`` flag of every live value of the alloy, from scratch (ml.rules via
    values_conflict): after a correction or retraction a value may no longer clash, or newly
    clash. Retracted values are out of the comparison. Returns the values whose flag changed."""
    live = list(PropertyValue.objects.select_for_update().filter(alloy_id=alloy_id, retracted_at__isnull=True).order_by("pk"))
    changed = []
    for v in live:
        clash = any(values_conflict(v, o) for o in live if o.pk != v.pk)
        if clash != v.conflict:
            v.conflict = clash
            _save(v, user, reason="conflict flag recomputed after a correction")
            changed.append(v)
    return changed


def _finish(alloy_ids, *, user):
    for alloy_id in {a for a in alloy_ids if a is not None}:
        recompute_conflicts(alloy_id, user=user)
    refresh_alloy_summaries(alloy_ids)


@transaction.atomic
def correct_dsc(*, dsc, user, reason, version=None, tg_k=UNSET, tx_k=UNSET, tl_k=UNSET, heating_rate_k_min=UNSET,
                measured_on=UNSET, units_confirmed=True, typed_unit=None, methods=None):
    """Correct a DSC measurement's Tg/Tx/Tl (K), heating rate or date; its experimental property
    value follows. Refused with the reason: no reason, a retracted or stale record, values that
    break ml.rules (Tg < Tx < Tl, 200–2500 K, ΔTx ≤ 250 K), a suspected unit mix-up unless
    ``units_confirmed`` (see check_units; ``typed_unit`` is the unit the person typed in)."""
    from .models import Correction

    reason = _require_reason(reason)
    dsc = _locked(DSCMeasurement, dsc)
    _refuse_retracted(dsc)
    check_version(dsc, version)
    changes = _apply_changes(dsc, {"tg_k": tg_k, "tx_k": tx_k, "tl_k": tl_k, "heating_rate_k_min": heating_rate_k_min,
                                   "measured_on": measured_on})
    _nothing_changed(changes, dsc)
    _record_methods(dsc, changes, methods)
    if dsc.tg_k is None or dsc.tx_k is None:
        raise ValidationError({"tg_k" if dsc.tg_k is None else "tx_k": "A DSC measurement needs at least Tg and Tx."})
    validate_transition_temperatures(dsc.tg_k, dsc.tx_k, dsc.tl_k)
    if not units_confirmed:
        check_units(dsc.sample.alloy, tg_k=dsc.tg_k, tx_k=dsc.tx_k, tl_k=dsc.tl_k, typed_unit=typed_unit or TemperatureUnit.KELVIN,
                    exclude_value=getattr(dsc, "property_value", None))
    correction = _write(dsc, user=user, reason=reason, action=Correction.Action.CORRECT, changes=changes)
    value = PropertyValue.objects.select_for_update().filter(dsc=dsc).first()
    if value is not None:
        mirrored = _apply_changes(value, {"tg_k": dsc.tg_k, "tx_k": dsc.tx_k, "tl_k": dsc.tl_k,
                                          "heating_rate_k_min": dsc.heating_rate_k_min})
        if mirrored:
            _write(value, user=user, reason=f"DSC #{dsc.pk} corrected: {reason}", action=Correction.Action.CORRECT,
                   changes=mirrored, correction=False)
    _finish([dsc.sample.alloy_id], user=user)
    return correction


def _record_methods(dsc, changes, methods=None):
    """Each changed value's provenance: the trace method it was accepted by (``methods``), else typed."""
    recorded = dict(dsc.value_methods or {})
    for field, _, after in changes:
        if field in DSC_ACCEPTABLE:
            if after is None:
                recorded.pop(field, None)
            else:
                recorded[field] = (methods or {}).get(field) or TYPED
    dsc.value_methods = recorded


@transaction.atomic
def accept_dsc_proposals(*, dsc, user, fields=None, version=None):
    """The experimenter accepts the trace's proposals (all that differ from the recorded
    values, or those of ``fields``: tg_k, tx_k, tl_k, heating_rate_k_min) as a correction with
    the reason "accepted the trace's proposal (tangent onset)", so the history shows before →
    after and each value's provenance names the method. Refused (code "nothing_to_accept") when
    the trace has no curve analysis or no proposal for a field asked for (with the trace's
    reason), or every proposal asked for is already the recorded value; otherwise as
    correct_dsc (retracted, stale version, Tg < Tx < Tl)."""
    locked = _locked(DSCMeasurement, dsc)
    _refuse_retracted(locked)
    check_version(locked, version)
    unknown = [f for f in (fields or ()) if f not in DSC_ACCEPTABLE]
    if unknown:
        raise ValidationError({"fields": f"Unknown proposal {', '.join(map(repr, unknown))}: choose from {', '.join(DSC_ACCEPTABLE)}."})
    rows = {row["field"]: row for row in locked.proposals if row["field"]}
    if not rows:
        raise ValidationError(f"DSC #{locked.pk} has no analysed curve: there is no proposal to accept.", code="nothing_to_accept")
    wanted = list(dict.fromkeys(fields)) if fields else [f for f in DSC_ACCEPTABLE if rows.get(f, {}).get("acceptable")]
    missing = [f"{rows[f]['label']}: {rows[f]['reason']}" for f in wanted if rows[f]["value"] is None]
    if missing:
        raise ValidationError(f"The trace gives no proposal for {'; '.join(missing)}", code="nothing_to_accept")
    wanted = [f for f in wanted if rows[f]["acceptable"]]
    if not wanted:
        found = [r for r in rows.values() if r["value"] is not None]
        raise ValidationError(
            f"Nothing to accept: the trace's proposals are the values recorded on DSC #{locked.pk}." if found
            else f"The trace of DSC #{locked.pk} gives no proposal: " + "; ".join(f"{r['label']}: {r['reason']}" for r in rows.values()),
            code="nothing_to_accept",
        )
    values = {f: float(rows[f]["value"]) for f in wanted}
    methods = {f: accepted_method(rows[f]["method"]) for f in wanted}
    by_method = {}
    for f in wanted:
        by_method.setdefault(methods[f], []).append(rows[f]["label"])
    if len(by_method) == 1:
        reason = next(iter(by_method))
    else:
        reason = "; ".join(f"{', '.join(labels)}: {method}" for method, labels in by_method.items())
    return correct_dsc(dsc=locked, user=user, reason=reason, version=locked.version, units_confirmed=True,
                       methods=methods, **values)


def _retract(obj, *, user, reason, correction=True):
    from django.utils import timezone

    from .models import Correction

    obj.retracted_at = timezone.now()
    obj.retracted_by = user if getattr(user, "pk", None) else None
    obj.retraction_reason = reason
    return _write(obj, user=user, reason=reason, history_reason=f"retracted: {reason}", action=Correction.Action.RETRACT,
                  correction=correction)


def _retract_dsc_locked(dsc, *, user, reason, correction=True):
    out = _retract(dsc, user=user, reason=reason, correction=correction)
    for value in PropertyValue.objects.select_for_update().filter(dsc=dsc, retracted_at__isnull=True):
        _retract(value, user=user, reason=f"DSC #{dsc.pk} retracted: {reason}", correction=False)
    return out


@transaction.atomic
def retract_dsc(*, dsc, user, reason, version=None):
    """Retract a DSC measurement (and its experimental value): kept and shown, out of the means
    and the training rows."""
    reason = _require_reason(reason, "a retraction")
    dsc = _locked(DSCMeasurement, dsc)
    _refuse_retracted(dsc)
    check_version(dsc, version)
    correction = _retract_dsc_locked(dsc, user=user, reason=reason)
    _finish([dsc.sample.alloy_id], user=user)
    return correction


@transaction.atomic
def retract_xrd(*, xrd, user, reason, version=None):
    """Retract an XRD measurement: the sample's latest live XRD is its casting evidence again."""
    reason = _require_reason(reason, "a retraction")
    _lock_analyses(measurement_id=xrd.pk if isinstance(xrd, XRDMeasurement) else int(xrd))
    xrd = _locked(XRDMeasurement, xrd)
    _refuse_retracted(xrd)
    check_version(xrd, version)
    correction = _retract(xrd, user=user, reason=reason)
    _cancel_analysis(xrd)
    _finish([xrd.sample.alloy_id], user=user)
    return correction


def _lock_analyses(**lookup):
    """Lock the XRD analyses a retraction may cancel before their measurements: the order of
    every job path (the job's row, then its measurement: on_failed_or_cancelled, the analysis'
    own write), so a retraction and a worker never wait on each other (a deadlock)."""
    list(XRDAnalysis.objects.select_for_update(of=("self",)).filter(**lookup).values_list("pk", flat=True))


def _cancel_analysis(xrd):
    """A retracted pattern is not analysed: its analysis still queued or running is cancelled
    (core.jobs.cancel, as its Cancel button: a queued one at once, a running one at its next
    safe point). Retracting needs the experimenter role, the role that controls the job
    (XRDAnalysis.job_control_roles). A finished analysis is left as it is."""
    job = XRDAnalysis.objects.filter(measurement_id=xrd.pk).first()
    if job is not None and not job.is_finished:
        jobs.cancel(job)


SAMPLE_CORRECTABLE = ("label", "method", "diameter_mm", "cast_on", "notes")


@transaction.atomic
def correct_sample(*, sample, user, reason, version=None, label=UNSET, method=UNSET, diameter_mm=UNSET, cast_on=UNSET,
                   notes=UNSET):
    """Correct a sample's label, casting method, rod diameter (GFA evidence), date or notes."""
    from .models import Correction

    reason = _require_reason(reason)
    sample = _locked(Sample, sample)
    _refuse_retracted(sample)
    check_version(sample, version)
    changes = _apply_changes(sample, {"label": label, "method": method, "diameter_mm": diameter_mm, "cast_on": cast_on,
                                      "notes": notes})
    _nothing_changed(changes, sample)
    correction = _write(sample, user=user, reason=reason, action=Correction.Action.CORRECT, changes=changes)
    _finish([sample.alloy_id], user=user)
    return correction


@transaction.atomic
def retract_sample(*, sample, user, reason, version=None):
    """Retract a sample with its live XRD and DSC measurements (and their values)."""
    reason = _require_reason(reason, "a retraction")
    sample = _locked(Sample, sample)
    _refuse_retracted(sample)
    check_version(sample, version)
    _lock_analyses(measurement__sample=sample, measurement__retracted_at__isnull=True)
    correction = _retract(sample, user=user, reason=reason)
    for xrd in XRDMeasurement.objects.select_for_update().filter(sample=sample, retracted_at__isnull=True):
        _retract(xrd, user=user, reason=f"sample {sample.label} retracted: {reason}", correction=False)
        _cancel_analysis(xrd)
    for dsc in DSCMeasurement.objects.select_for_update().filter(sample=sample, retracted_at__isnull=True):
        _retract_dsc_locked(dsc, user=user, reason=f"sample {sample.label} retracted: {reason}", correction=False)
    _finish([sample.alloy_id], user=user)
    return correction


def _refuse_experimental(value, action):
    if value.dsc_id is not None:
        raise ValidationError(
            f"Property value #{value.pk} is DSC #{value.dsc_id}'s measurement: {action} the DSC measurement instead.",
            code="experimental",
        )


@transaction.atomic
def correct_property_value(*, value, user, reason, version=None, tg_k=UNSET, tx_k=UNSET, tl_k=UNSET,
                           heating_rate_k_min=UNSET, gfa_class=UNSET, dmax_mm=UNSET, dmax_kind=UNSET, note=UNSET,
                           units_confirmed=True, typed_unit=None):
    """Correct a literature value (an experimental one is corrected through its DSC measurement)."""
    from .models import Correction

    reason = _require_reason(reason)
    value = _locked(PropertyValue, value)
    _refuse_retracted(value)
    check_version(value, version)
    _refuse_experimental(value, "correct")
    changes = _apply_changes(value, {"tg_k": tg_k, "tx_k": tx_k, "tl_k": tl_k, "heating_rate_k_min": heating_rate_k_min,
                                     "gfa_class": gfa_class, "dmax_mm": dmax_mm, "dmax_kind": dmax_kind, "note": note})
    _nothing_changed(changes, value)
    validate_transition_temperatures(value.tg_k, value.tx_k, value.tl_k)
    if not units_confirmed:
        check_units(value.alloy, tg_k=value.tg_k, tx_k=value.tx_k, tl_k=value.tl_k,
                    typed_unit=typed_unit or TemperatureUnit.KELVIN, exclude_value=value)
    correction = _write(value, user=user, reason=reason, action=Correction.Action.CORRECT, changes=changes)
    _finish([value.alloy_id], user=user)
    return correction


@transaction.atomic
def retract_property_value(*, value, user, reason, version=None):
    """Retract a property value; an experimental one is retracted with its DSC measurement."""
    reason = _require_reason(reason, "a retraction")
    value = _locked(PropertyValue, value)
    _refuse_retracted(value)
    check_version(value, version)
    if value.dsc_id is not None:
        dsc = _locked(DSCMeasurement, value.dsc_id)
        correction = _retract_dsc_locked(dsc, user=user, reason=reason)
    else:
        correction = _retract(value, user=user, reason=reason)
    _finish([value.alloy_id], user=user)
    return correction


@transaction.atomic
def record_admin_edit(*, obj, user, reason, fields):
    """An edit made in the Django admin, as a correction: refused on a retracted record, saved
    with the history user and reason, a Correction with before → after of ``fields``, a DSC's
    experimental value following it, conflicts recomputed and the alloys' summaries refreshed
    (the previous alloy too, when the record moved). The admin form has validated the record."""
    from .models import Correction

    reason = _require_reason(reason, "an admin edit")
    model = type(obj)
    stored = _locked(model, obj.pk)
    _refuse_retracted(stored)
    before_alloy, _ = _alloy_and_sample(stored)
    changes = [(f, getattr(stored, f), getattr(obj, f)) for f in fields if getattr(stored, f) != getattr(obj, f)]
    changes = [(f, _json_value(b) if not hasattr(b, "pk") else str(b), _json_value(a) if not hasattr(a, "pk") else str(a))
               for f, b, a in changes]
    obj.version = stored.version
    if isinstance(obj, DSCMeasurement):
        _record_methods(obj, changes)
    correction = _write(obj, user=user, reason=reason, history_reason=f"admin: {reason}", action=Correction.Action.CORRECT,
                        changes=changes)
    if isinstance(obj, DSCMeasurement):
        value = PropertyValue.objects.select_for_update().filter(dsc=obj).first()
        if value is not None:
            mirrored = _apply_changes(value, {"tg_k": obj.tg_k, "tx_k": obj.tx_k, "tl_k": obj.tl_k,
                                              "heating_rate_k_min": obj.heating_rate_k_min})
            if mirrored:
                _write(value, user=user, reason=reason, history_reason=f"DSC #{obj.pk} edited in the admin"[:100],
                       action=Correction.Action.CORRECT, changes=mirrored, correction=False)
    after_alloy, _ = _alloy_and_sample(obj)
    _finish([before_alloy, after_alloy], user=user)
    return correction


# ------------------------------------------------------------------ conflicts

RESOLVE_KEEP_ONE, RESOLVE_KEEP_ALL, RESOLVE_RETRACT = "keep_one", "keep_all", "retract"


def _resolve(value, *, user, reason):
    from django.utils import timezone

    from .models import Correction

    value.conflict_resolution = reason
    value.conflict_resolved_by = user if getattr(user, "pk", None) else None
    value.conflict_resolved_at = timezone.now()
    return _write(value, user=user, reason=reason, history_reason=f"conflict resolved: {reason}",
                  action=Correction.Action.RESOLVE)


@transaction.atomic
def resolve_conflict(*, value, user, reason, how, version=None):
    """A person settles a value's conflict (values in an unresolved conflict stay visible but
    out of the means and the training rows): ``keep_one`` keeps this value and retracts the live
    values it conflicts with; ``keep_all`` keeps it and every value it conflicts with (the
    difference is real, say why); ``retract`` retracts it (the others count again once nothing
    else contradicts them)."""
    reason = _require_reason(reason, "resolving a conflict")
    if how not in (RESOLVE_KEEP_ONE, RESOLVE_KEEP_ALL, RESOLVE_RETRACT):
        raise ValidationError({"how": f"Unknown way to resolve {how!r}: keep_one, keep_all or retract."})
    value = _locked(PropertyValue, value)
    _refuse_retracted(value)
    check_version(value, version)
    if not value.conflict:
        raise ValidationError(f"Property value #{value.pk} is not in conflict.", code="no_conflict")
    others = [o for o in PropertyValue.objects.select_for_update().filter(alloy_id=value.alloy_id, retracted_at__isnull=True)
              .exclude(pk=value.pk).order_by("pk") if values_conflict(value, o)]
    if how == RESOLVE_RETRACT:
        if value.dsc_id is not None:
            correction = _retract_dsc_locked(_locked(DSCMeasurement, value.dsc_id), user=user, reason=reason)
        else:
            correction = _retract(value, user=user, reason=reason)
    else:
        correction = _resolve(value, user=user, reason=reason)
        for other in others:
            if how == RESOLVE_KEEP_ALL:
                _resolve(other, user=user, reason=f"kept with value #{value.pk}: {reason}")
            elif other.dsc_id is not None:
                _retract_dsc_locked(_locked(DSCMeasurement, other.dsc_id), user=user,
                                    reason=f"conflict with value #{value.pk} resolved: {reason}")
            else:
                _retract(other, user=user, reason=f"conflict with value #{value.pk} resolved: {reason}")
    _finish([value.alloy_id], user=user)
    return correction


# ------------------------------------------------------------------ units guard


def check_units(alloy, *, tg_k=None, tx_k=None, tl_k=None, typed_unit=TemperatureUnit.KELVIN, exclude_value=None):
    """Refuse (code "units") temperatures that look typed in the wrong unit; the person may
    confirm them. K typed: ml.rules.celsius_suspicions for the alloy's family. Either unit: the
    entry is further than half the K/°C offset from every known value of the alloy (else of the
    alloys of its element set) while the other reading of the same numbers is within it of some
    (ml.rules.compare_temperatures).
    Messages echo what was typed, in the unit typed."""
    typed_c = rules.temperature_unit(typed_unit) == rules.CELSIUS
    entered = {"tg_k": tg_k, "tx_k": tx_k, "tl_k": tl_k}
    shift = -rules.C_TO_K if typed_c else rules.C_TO_K
    other = {f: None if v is None else v + shift for f, v in entered.items()}

    def typed_text(values):
        unit = "°C" if typed_c else "K"
        parts = []
        for f, v in values.items():
            if v is not None:
                shown = v - rules.C_TO_K if typed_c else v
                parts.append(f"{rules.TEMPERATURE_LABELS[f]} = {shown:g} {unit}" + (f" ({v:.1f} K)" if typed_c else ""))
        return ", ".join(parts)

    reasons = []
    if not typed_c:
        reasons += rules.celsius_suspicions(alloy.base_element, tg_k, tx_k, tl_k)
    known = []
    if alloy.pk is not None:
        close = PropertyValue.objects.filter(alloy=alloy, retracted_at__isnull=True)
        if exclude_value is not None and getattr(exclude_value, "pk", None):
            close = close.exclude(pk=exclude_value.pk)
        known = list(close.values("tg_k", "tx_k", "tl_k"))
    where = "this alloy's other values"
    if not known:
        siblings = Alloy.objects.filter(base_element=alloy.base_element, n_elements=alloy.n_elements,
                                        fractions__has_keys=list(alloy.fractions))
        if alloy.pk is not None:
            siblings = siblings.exclude(pk=alloy.pk)
        known = list(PropertyValue.objects.filter(alloy__in=siblings, retracted_at__isnull=True).values("tg_k", "tx_k", "tl_k")[:200])
        where = f"close {'–'.join(alloy.elements)} alloys"
    half = rules.C_TO_K / 2
    # Suspect only when no known value agrees with the entry and some agree with the other reading.
    if known and not any(rules.compare_temperatures(entered, k, half) == rules.AGREE for k in known):
        matching = [k for k in known if rules.compare_temperatures(other, k, half) == rules.AGREE]
        if matching:
            mean = {}
            for f in rules.TEMPERATURE_FIELDS:
                xs = [k[f] for k in matching if k[f] is not None]
                mean[f] = sum(xs) / len(xs) if xs else None
            said = ", ".join(f"{rules.TEMPERATURE_LABELS[f]} ≈ {mean[f]:.1f} K" for f in rules.TEMPERATURE_FIELDS
                             if mean[f] is not None and entered[f] is not None)
            reasons.append(f"{where} have {said}, about 273 K {'below' if typed_c else 'above'} this entry")
    if reasons:
        guess = "K" if typed_c else "°C"
        raise ValidationError({NON_FIELD: ValidationError(
            f"You typed {typed_text(entered)}: {'; '.join(reasons)}. Did you mean {guess}? "
            "Change the unit, or tick “The unit is right” to save as typed.",
            code="units",
        )})


NON_FIELD = "__all__"
