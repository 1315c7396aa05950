"""Reads for the ML glue: training rows from the lab records, model versions, runs."""

import hashlib
import json

from django.db.models import Max, Q

from lab.models import PropertyValue, Sample, XRDMeasurement, analysed
from lab.services import counted_values
from ml import rules

from .models import ModelVersion, TrainingRun

# Lab XRD verdicts count this much more than one literature alloy in the surrogate's fit:
# they are this lab's own process, and a failed casting is a real negative.
LAB_LABEL_WEIGHT = 3.0
SNAPSHOT_COLUMNS = (
    "composition", "Tg_K", "Tx_K", "Tl_K", "gfa_class", "dmax_mm", "dmax_kind", "label", "weight", "origin",
)


def _num(value):
    return "" if value is None else repr(round(float(value), 6))


def training_rows():
    """Every row the models learn from, as dicts with SNAPSHOT_COLUMNS (strings).

    * literature property values (imports, approved mining records, the starter corpus):
      Tg/Tx/Tl and/or GFA class and Dmax (dmax_kind "point" unless the value says otherwise;
      empty when there is no Dmax);
    * experimental property values (DSC of this lab's samples): Tg/Tx/Tl;
    * each lab sample's latest XRD verdict: label 1 (amorphous) / 0 (crystalline), weight
      LAB_LABEL_WEIGHT, no temperatures — failed castings are real negatives for the surrogate —
      and what the rod says (ml.rules.class_from_casting): gfa_class (empty for a crystalline
      rod: it may still form a thinner glass), dmax_kind at_least / below, dmax_mm the rod's
      diameter (empty when it was not recorded). Never a point Dmax.
    """
    rows = []
    # Retracted values and values in an unresolved conflict are out (lab.services.counted_values).
    values = PropertyValue.objects.filter(counted_values()).select_related("alloy").only(
        "alloy__formula", "tg_k", "tx_k", "tl_k", "origin", "gfa_class", "dmax_mm", "dmax_kind"
    )
    for v in values.order_by("pk"):
        rows.append(
            {"composition": v.alloy.formula, "Tg_K": _num(v.tg_k), "Tx_K": _num(v.tx_k), "Tl_K": _num(v.tl_k),
             "gfa_class": v.gfa_class or "", "dmax_mm": _num(v.dmax_mm),
             "dmax_kind": (v.dmax_kind or rules.DMAX_POINT) if v.dmax_mm is not None else "",
             "label": "", "weight": "", "origin": v.origin}
        )
    for sample_id, formula, verdict, diameter_mm in latest_castings():
        amorphous = verdict == XRDMeasurement.Verdict.AMORPHOUS
        gfa_class, kind, bound = rules.class_from_casting(amorphous, diameter_mm)
        rows.append(
            {"composition": formula, "Tg_K": "", "Tx_K": "", "Tl_K": "",
             "gfa_class": gfa_class or "", "dmax_mm": _num(bound), "dmax_kind": kind,
             "label": "1" if amorphous else "0",
             "weight": repr(LAB_LABEL_WEIGHT), "origin": "xrd"}
        )
    rows.sort(key=lambda r: tuple(r[c] for c in SNAPSHOT_COLUMNS))
    return rows


def latest_xrd_verdicts():
    """[(sample_id, alloy formula, verdict)] of each sample's latest XRD measurement."""
    return [row[:3] for row in latest_castings()]


def latest_castings():
    """[(sample_id, alloy formula, verdict, rod diameter mm or None)] of each sample's latest
    analysed XRD (a pattern still being analysed, or unreadable, is no training row)."""
    latest = {}
    xrds = XRDMeasurement.objects.filter(
        analysed(XRDMeasurement), retracted_at__isnull=True, sample__retracted_at__isnull=True).select_related("sample__alloy").only(
        "sample_id", "sample__diameter_mm", "sample__alloy__formula", "computed_verdict", "override_verdict", "created_at"
    )
    for x in xrds.order_by("sample_id", "created_at", "pk"):
        latest[x.sample_id] = (x.sample_id, x.sample.alloy.formula, x.verdict, x.sample.diameter_mm)
    return list(latest.values())


def snapshot_hash(rows):
    blob = json.dumps([[r[c] for c in SNAPSHOT_COLUMNS] for r in rows], separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def count_new_lab_results(since):
    """Live lab samples with a live XRD or DSC measurement made or corrected after ``since``
    (None: all of them). Retracted samples and measurements are not lab results."""
    samples = Sample.objects.filter(retracted_at__isnull=True)
    # an XRD counts once analysed (its verdict is the result), also when that came after ``since``
    xrd = Q(xrd_measurements__retracted_at__isnull=True) & analysed(XRDMeasurement, "xrd_measurements__")
    dsc = Q(dsc_measurements__retracted_at__isnull=True)
    if since is not None:
        samples = samples.filter(
            (xrd & (Q(xrd_measurements__created_at__gt=since) | Q(xrd_measurements__corrected_at__gt=since)
                    | Q(xrd_measurements__xrd_analysis__finished_at__gt=since)))
            | (dsc & (Q(dsc_measurements__created_at__gt=since) | Q(dsc_measurements__corrected_at__gt=since)))
        )
    else:
        samples = samples.filter((xrd & Q(xrd_measurements__isnull=False)) | (dsc & Q(dsc_measurements__isnull=False)))
    return samples.distinct().count()


def active_version():
    return ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).select_related("training_run").first()


def latest_trained_snapshot_at():
    """When the newest data snapshot that a finished training saw was taken (None: never)."""
    return ModelVersion.objects.aggregate(at=Max("snapshot_taken_at"))["at"]


def live_runs():
    return TrainingRun.objects.filter(status__in=(TrainingRun.Status.QUEUED, TrainingRun.Status.RUNNING))


def version_list():
    return ModelVersion.objects.select_related("training_run").order_by("-created_at")


def run_list(limit=50):
    return TrainingRun.objects.select_related("model_version", "requested_by").order_by("-created_at")[:limit]


def retrain_outlook(min_new_results):
    """What the loop will do with the lab results, in one sentence for the Models page.

    {"state": ..., "new": n, "text": ...}; state is "first" (no model yet: the first training
    takes every lab result, the loop counts only after it), "counting" (below the threshold),
    "running" (a run is queued or running), "failed" (enough results but the latest training
    since then failed: nothing retries by itself until the next result or the scheduled
    retrain) or "waiting" (enough results, no run yet: the next result or the schedule starts it).
    """
    from django.conf import settings

    since = latest_trained_snapshot_at()
    live = live_runs().order_by("-created_at").first()
    running = f"run {live.pk} is {live.get_status_display().lower()}" if live is not None else ""
    if since is None:
        n = count_new_lab_results(None)
        text = f"No model yet: the first training uses all {n} lab result{'s' if n != 1 else ''} with the literature"
        text += f" ({running})." if running else "."
        text += f" After it, the loop retrains by itself once {min_new_results} new lab results have come in."
        return {"state": "first", "new": n, "text": text}
    n = count_new_lab_results(since)
    counted = f"{n} new lab result{'s' if n != 1 else ''} since the latest training"
    if live is not None:
        return {"state": "running", "new": n, "text": f"{counted}; {running} on the current data."}
    if n < min_new_results:
        return {"state": "counting", "new": n,
                "text": f"{counted}; the loop retrains by itself at {min_new_results} ({min_new_results - n} more)."}
    failed = (TrainingRun.objects.filter(created_at__gt=since, status=TrainingRun.Status.FAILED)
              .order_by("-created_at").first())
    hours = f"{settings.GLASSLOOP_RETRAIN_SCHEDULE_HOURS:g}"
    if failed is not None:
        return {"state": "failed", "new": n,
                "text": f"{counted}, at or above the {min_new_results} that start a retrain, but the latest training "
                        f"(run {failed.pk}) failed; the next lab result, the scheduled retrain (every {hours} h) or "
                        f"Retrain now tries again."}
    return {"state": "waiting", "new": n,
            "text": f"{counted}, at or above the {min_new_results} that start a retrain; none is queued yet: the next "
                    f"lab result, the scheduled retrain (every {hours} h) or Retrain now starts it."}
