"""Reads of lab records for pages and other code. No writes here.

Lists read each alloy's stored summary (one query per page, whatever the number of rows);
details prefetch what their page shows.
"""

from dataclasses import dataclass, field
from itertools import chain
from operator import attrgetter

from django.db.models import F, Prefetch, Q
from django.shortcuts import get_object_or_404

from core.selectors import columns_except

from .models import Alloy, DSCMeasurement, PropertyValue, Sample, XRDMeasurement

# ------------------------------------------------------------------ alloy list

GFA_UNKNOWN = "unknown"  # the alloy-list filter value for "no GFA class known"

ALLOY_ORDERINGS = {
    "formula": ("formula",),
    "base": ("base_element", "formula"),
    "samples": ("-n_samples", "formula"),
    "tg": (F("tg_mean_k").asc(nulls_last=True), "formula"),
    "tx": (F("tx_mean_k").asc(nulls_last=True), "formula"),
    "tl": (F("tl_mean_k").asc(nulls_last=True), "formula"),
    "trg": (F("trg").desc(nulls_last=True), "formula"),
    "gamma": (F("gamma").desc(nulls_last=True), "formula"),
    "dtx": (F("dtx_k").desc(nulls_last=True), "formula"),
    "dmax": (F("dmax_mm").desc(nulls_last=True), "formula"),
    "newest": ("-created_at",),
}


@dataclass
class AlloyFilters:
    """What the alloy list is filtered by; every field optional."""

    elements: tuple[str, ...] = ()  # the alloy contains ALL of these
    base_element: str = ""
    text: str = ""  # in the formula or the name
    tg_min: float | None = None
    tg_max: float | None = None
    tx_min: float | None = None
    tx_max: float | None = None
    tl_min: float | None = None
    tl_max: float | None = None
    trg_min: float | None = None
    gamma_min: float | None = None
    gfa_class: str = ""  # ml.rules.GFA_CLASSES; "unknown" for alloys without a class
    has_dmax: bool | None = None  # True: a Dmax (reported or a casting's lower bound) is known
    has_conflict: bool | None = None  # True: sources disagree (temperatures or GFA), see Alloy.has_conflict
    order: str = "formula"
    extra: dict = field(default_factory=dict)


def alloys_with_properties():
    """Alloys with their stored summary: n_samples, n_values, tg/tx/tl_mean_k over all property
    values, trg, gamma and dtx_k of those means, has_conflict (see Alloy, kept by lab.services)."""
    return Alloy.objects.all()


def alloy_list(filters: AlloyFilters | None = None):
    """The alloys matching ``filters``, annotated as in ``alloys_with_properties``.

    Property ranges apply to the alloy's mean value over all its sources.
    """
    f = filters or AlloyFilters()
    qs = alloys_with_properties()
    if f.elements:
        # JSON key containment works on SQLite and PostgreSQL alike.
        qs = qs.filter(fractions__has_keys=list(f.elements))
    if f.base_element:
        qs = qs.filter(base_element=f.base_element)
    if f.text:
        qs = qs.filter(Q(formula__icontains=f.text) | Q(name__icontains=f.text))
    ranges = (
        ("tg_mean_k__gte", f.tg_min),
        ("tg_mean_k__lte", f.tg_max),
        ("tx_mean_k__gte", f.tx_min),
        ("tx_mean_k__lte", f.tx_max),
        ("tl_mean_k__gte", f.tl_min),
        ("tl_mean_k__lte", f.tl_max),
        ("trg__gte", f.trg_min),
        ("gamma__gte", f.gamma_min),
    )
    lookups = {name: value for name, value in ranges if value is not None}
    if lookups:
        qs = qs.filter(**lookups)
    if f.gfa_class:
        qs = qs.filter(gfa_class="" if f.gfa_class == GFA_UNKNOWN else f.gfa_class)
    if f.has_dmax is not None:
        qs = qs.filter(dmax_mm__isnull=not f.has_dmax)
    if f.has_conflict is not None:
        qs = qs.filter(has_conflict=f.has_conflict)
    return qs.order_by(*ALLOY_ORDERINGS.get(f.order, ALLOY_ORDERINGS["formula"]))


# ------------------------------------------------------------------ samples


def _latest_first(model):
    return model.objects.order_by("-created_at", "-pk")


def samples_with_measurements(queryset=None):
    """Samples with their alloy, and their XRDs/DSCs (newest first) as ``xrds`` / ``dscs`` lists.

    The XRDs come without their stored ``plot`` (the thinned pattern the plot view draws, the
    largest field of the table): pages show it through plot.svg, which reads it itself."""
    qs = Sample.objects.all() if queryset is None else queryset
    # xrd_analysis: its job's state shows beside a pattern still being analysed (no extra query)
    xrds = _latest_first(XRDMeasurement).select_related("operator", "xrd_analysis").defer("plot")
    return qs.select_related("alloy", "operator").prefetch_related(
        Prefetch("xrd_measurements", queryset=xrds, to_attr="xrds"),
        Prefetch("dsc_measurements", queryset=_latest_first(DSCMeasurement).select_related("operator"), to_attr="dscs"),
    )


def sample_list(*, text="", alloy_id=None):
    """Samples, newest first, optionally those whose label, formula or alloy name contains ``text``."""
    qs = Sample.objects.order_by("-created_at", "-pk")
    if text:
        qs = qs.filter(Q(label__icontains=text) | Q(alloy__formula__icontains=text) | Q(alloy__name__icontains=text))
    if alloy_id:
        qs = qs.filter(alloy_id=alloy_id)
    return with_alloy_formula_only(samples_with_measurements(qs))


def with_alloy_formula_only(samples):
    """``samples`` (their alloy selected) reading of each alloy only its id and formula, all a list
    of samples shows of it: its summary columns and fractions cost ~2 ms a page to convert."""
    return samples.defer(*columns_except("alloy", Alloy, "id", "formula"))


def sample_detail(pk):
    return get_object_or_404(samples_with_measurements(), pk=pk)


def xrd_detail(pk):
    return get_object_or_404(XRDMeasurement.objects.select_related("sample__alloy", "operator", "xrd_analysis"), pk=pk)


def dsc_detail(pk):
    return get_object_or_404(DSCMeasurement.objects.select_related("sample__alloy", "operator", "property_value"), pk=pk)


def value_detail(pk):
    return get_object_or_404(PropertyValue.objects.select_related("alloy", "dsc__sample", "reference"), pk=pk)


# ------------------------------------------------------------------ corrections


def alloy_corrections(alloy, *, limit=50):
    """Corrections, retractions and conflict resolutions of the alloy's records, newest first."""
    return list(alloy.corrections.select_related("by", "sample")[:limit])


def sample_corrections(sample, *, limit=50):
    return list(sample.corrections.select_related("by")[:limit])


def record_corrections(record_type, record_id):
    from .models import Correction

    return Correction.objects.filter(record_type=record_type, record_id=record_id).select_related("by")


# ------------------------------------------------------------------ alloy detail


def alloy_detail(pk):
    """The alloy with property values (provenance joined) and samples with their measurements."""
    return get_object_or_404(
        Alloy.objects.select_related("created_by").prefetch_related(
            Prefetch(
                "property_values",
                queryset=PropertyValue.objects.select_related("dsc__sample", "reference", "created_by").order_by(
                    "origin", "created_at", "pk"
                ),
            ),
            Prefetch("samples", queryset=samples_with_measurements(Sample.objects.order_by("-created_at", "-pk"))),
        ),
        pk=pk,
    )


@dataclass
class CastingEvidence:
    """What one cast sample's latest XRD says about the alloy's Dmax (ml.rules.class_from_casting)."""

    sample: object
    xrd: object
    gfa_class: str | None
    kind: str
    bound_mm: float | None

    @property
    def text(self):
        from .models import format_dmax

        said = format_dmax(self.bound_mm, self.kind) or "Dmax unknown (no rod diameter recorded)"
        return f"{said} (rod {self.sample.label}, {self.xrd.verdict})"


def casting_evidence(samples):
    """CastingEvidence of each sample (with ``xrds`` prefetched, newest first) that has an
    analysed XRD, by its latest one: a pattern still being analysed (or unreadable) says nothing,
    nor does a retracted pattern or rod (the same evidence as services.latest_castings)."""
    from ml import rules

    out = []
    for s in samples:
        if s.is_retracted:
            continue
        x = next((x for x in s.xrds if x.is_analysed and not x.is_retracted), None)
        if x is None:
            continue
        cls, kind, bound = rules.class_from_casting(x.is_amorphous, s.diameter_mm)
        out.append(CastingEvidence(sample=s, xrd=x, gfa_class=cls, kind=kind, bound_mm=bound))
    return out


def composition_table(alloy):
    """[(element, at.%)] in canonical order (descending fraction)."""
    return [(el, alloy.fractions[el] * 100.0) for el in alloy.elements]


def property_summary(values):
    """Mean Tg/Tx/Tl of some property values, with the derived Trg, γ, ΔTx (None where unknown)."""

    def mean(name):
        xs = [getattr(v, name) for v in values if getattr(v, name) is not None]
        return sum(xs) / len(xs) if xs else None

    tg, tx, tl = mean("tg_k"), mean("tx_k"), mean("tl_k")
    return {
        "tg_k": tg,
        "tx_k": tx,
        "tl_k": tl,
        "trg": tg / tl if tg and tl else None,
        "gamma": tx / (tg + tl) if tg and tx and tl else None,
        "dtx_k": tx - tg if tg and tx else None,
        "n": len(values),
    }


@dataclass
class HistoryEntry:
    when: object
    who: object
    kind: str  # created / changed / deleted
    what: str
    changes: list
    reason: str


_KINDS = {"+": "created", "~": "changed", "-": "deleted"}
_SKIP_DIFF = {"created_at", "analysis"}


def _previous_versions(rows, shown):
    """{history_id: the object's prior history row} for each changed record in ``shown`` (what
    simple_history's ``prev_record`` gives with one query per record). ``rows`` are the records
    fetched, newest first, ``shown`` a head of them: a prior version among them is taken from
    there, the others come in one query."""
    previous, missing = {}, []
    for i, record in enumerate(shown):
        if record.history_type != "~":
            continue
        older = next((r for r in rows[i + 1:] if r.id == record.id and r.history_date < record.history_date), None)
        if older is None:
            missing.append(record)
        else:
            previous[record.history_id] = older
    if missing:
        candidates = type(missing[0])._default_manager.filter(
            id__in={r.id for r in missing}, history_date__lt=max(r.history_date for r in missing)
        ).order_by("-history_date", "-history_id")
        candidates = list(candidates)
        for record in missing:
            older = next((r for r in candidates if r.id == record.id and r.history_date < record.history_date), None)
            if older is not None:
                previous[record.history_id] = older
    return previous


def _entries(records, describe, limit):
    rows = list(records[: limit + 1])  # one more: the last shown record's prior version is often the next
    shown = rows[:limit]
    previous = _previous_versions(rows, shown)
    out = []
    for record in shown:
        changes = []
        if record.history_type == "~" and record.history_id in previous:
            delta = record.diff_against(previous[record.history_id])
            changes = [(c.field, c.old, c.new) for c in delta.changes if c.field not in _SKIP_DIFF]
        out.append(
            HistoryEntry(
                when=record.history_date,
                who=record.history_user,
                kind=_KINDS.get(record.history_type, record.history_type),
                what=describe(record),
                changes=changes,
                reason=record.history_change_reason or "",
            )
        )
    return out


def alloy_history(alloy, *, limit=15):
    """Recent changes to the alloy, its property values and its samples, newest first."""
    alloy_records = alloy.history.select_related("history_user").order_by("-history_date", "-history_id")
    value_records = PropertyValue.history.filter(alloy_id=alloy.pk).select_related("history_user").order_by(
        "-history_date", "-history_id"
    )
    sample_records = Sample.history.filter(alloy_id=alloy.pk).select_related("history_user").order_by(
        "-history_date", "-history_id"
    )
    entries = chain(
        _entries(alloy_records, lambda r: "alloy", limit),
        _entries(value_records, lambda r: f"property value #{r.id} ({r.origin})", limit),
        _entries(sample_records, lambda r: f"sample {r.label}", limit),
    )
    return sorted(entries, key=attrgetter("when"), reverse=True)[:limit]


def xrd_history(xrd, *, limit=15):
    records = xrd.history.select_related("history_user").order_by("-history_date", "-history_id")
    return _entries(records, lambda r: f"XRD #{r.id}", limit)


def sample_history(sample, *, limit=15):
    records = sample.history.select_related("history_user").order_by("-history_date", "-history_id")
    return _entries(records, lambda r: f"sample {r.label}", limit)
