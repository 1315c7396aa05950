"""Training runs and model versions: snapshot the data, train a bundle, promote it or not.

The ML core's API is used in one place, ``training.bundles``; snapshots and the fixed
validation split are ``training.snapshots``.

Promotion rule (``promotion_decision``): a new version replaces the active one only when, on
the fixed validation split, its forward-model MAE (mean over Tg, Tx, Tl) is at most
``GLASSLOOP_PROMOTION_MAE_TOLERANCE`` (default 5 %) worse than the active version's AND its
glass-vs-crystal F1 is at most ``GLASSLOOP_PROMOTION_F1_TOLERANCE`` (default 0.02) lower. Both
versions are scored on the same rows at promotion time.
"""

from __future__ import annotations

import logging
import re
import shutil
import time
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from core import jobs
from core.jobs import QUEUE_UNAVAILABLE
from ml.dataprep import MIN_ALLOYS, TooFewAlloysError

from . import selectors
from .bundles import artefact_root, bundle_vocabulary, fit_bundle, gfa_data, load_bundle, overall_progress, predict
from .models import ModelVersion, TrainingRun
from .snapshots import read_rows_csv, snapshot_path, split_rows, take_snapshot, write_rows_csv

logger = logging.getLogger(__name__)

def retrain_min_new_results():
    return settings.GLASSLOOP_RETRAIN_MIN_NEW_RESULTS


# =====================================================================================
# Triggering runs
# =====================================================================================


@dataclass
class TriggerResult:
    run: TrainingRun | None
    created: bool
    message: str


def request_retrain(*, trigger=TrainingRun.Trigger.MANUAL, user=None, epochs=None, seed=0, csv_path=None,
                    enqueue=True) -> TriggerResult:
    """Start (or join) the training run for the current data snapshot.

    Concurrent triggers on the same data coalesce: the unique constraint allows one non-failed
    run per snapshot hash, so the loser gets the existing run back. A queued run whose message
    was lost (broker down) is queued again. ``enqueue=False``: the caller runs it in-process
    (``run_training``), e.g. ``manage.py retrain --inline``.
    """
    jobs.fail_stale(TrainingRun)
    snap = take_snapshot(csv_path)
    if not snap.rows:
        return TriggerResult(None, False, "There is no training data yet: import literature values or log experiments first.")
    write_rows_csv(snap.rows, snapshot_path(snap.hash))
    epochs = int(epochs or settings.GLASSLOOP_TRAINING_EPOCHS)
    try:
        with transaction.atomic():
            run = TrainingRun.objects.create(
                trigger=trigger,
                snapshot_hash=snap.hash,
                snapshot_path=str(snapshot_path(snap.hash).relative_to(artefact_root())),
                data_size=len(snap.rows),
                n_lab_results=snap.n_lab_results,
                snapshot_taken_at=snap.taken_at,
                epochs=epochs,
                seed=seed,
                requested_by=user,
                log=f"[{snap.taken_at:%H:%M:%S}] {trigger} trigger: {len(snap.rows)} rows, snapshot {snap.hash[:12]}\n",
            )
            if enqueue:
                enqueue_training(run)
    except IntegrityError:
        run = TrainingRun.objects.exclude(status__in=(TrainingRun.Status.FAILED, TrainingRun.Status.CANCELLED)).get(
            snapshot_hash=snap.hash
        )
        if run.status == TrainingRun.Status.QUEUED and enqueue:
            enqueue_training(run)  # its message may have been lost: send it again
            run.refresh_from_db()
        return TriggerResult(run, False, _joined_message(run))
    run.refresh_from_db()
    if run.error.startswith(QUEUE_UNAVAILABLE):
        return TriggerResult(run, True, run.error)
    return TriggerResult(run, True, f"Training run {run.pk} {'queued' if enqueue else 'created'} on {len(snap.rows)} rows.")


def _joined_message(run):
    if run.status == TrainingRun.Status.DONE:
        return f"The models were already trained on exactly this data (run {run.pk}); nothing to do."
    if run.error.startswith(QUEUE_UNAVAILABLE):
        return run.error
    return f"A training run on exactly this data is already {run.get_status_display().lower()} (run {run.pk})."


def enqueue_training(run):
    """Send the run to the worker once committed (core.jobs.enqueue); if the broker is down the
    run stays queued and its error says so."""
    return jobs.enqueue(run, then="The run is saved as queued; it is sent again once the broker is up, or press Retry.")


def maybe_retrain_for_new_results():
    """The loop's trigger: retrain when enough new lab results exist since the latest training.

    Counts lab samples with an XRD or DSC measurement newer than the newest snapshot a finished
    training saw (the active version's, unless a later version was not promoted). Does nothing
    while no model exists (bootstrap first) or while a run is already queued or running.
    Returns the TriggerResult or None.
    """
    jobs.fail_stale(TrainingRun)
    since = selectors.latest_trained_snapshot_at()
    if since is None or selectors.live_runs().exists():
        return None
    new = selectors.count_new_lab_results(since)
    if new < retrain_min_new_results():
        return None
    return request_retrain(trigger=TrainingRun.Trigger.LOOP)


def request_first_training() -> TriggerResult:
    """Queue the first training of a fresh site (``manage.py queue_first_training``, run by
    ``make run`` after the starter corpus is loaded). Idempotent: does nothing while a model
    version exists or a run is queued or running, nor when the first training already failed
    on exactly this data (its page says why; new data lets it run again)."""
    jobs.fail_stale(TrainingRun)
    version = ModelVersion.objects.order_by("-created_at").first()
    if version is not None:
        return TriggerResult(None, False, f"A model version exists already (v{version.pk}); nothing to queue.")
    live = selectors.live_runs().order_by("-created_at").first()
    if live is not None:
        if live.status == TrainingRun.Status.QUEUED and live.error.startswith(QUEUE_UNAVAILABLE):
            enqueue_training(live)  # its message was never sent: try again
            live.refresh_from_db()
        return TriggerResult(live, False, f"Training run {live.pk} is already {live.get_status_display().lower()}.")
    snap = take_snapshot()
    if snap.rows:
        failed = (
            TrainingRun.objects.filter(snapshot_hash=snap.hash, status=TrainingRun.Status.FAILED)
            .order_by("-created_at").first()
        )
        if failed is not None:
            return TriggerResult(failed, False, f"The first training on this data failed (run {failed.pk}): {failed.error}")
    return request_retrain(trigger=TrainingRun.Trigger.BOOTSTRAP)


# =====================================================================================
# Running a training (called by the Celery task)
# =====================================================================================


class _Progress:
    """Writes live progress of a run to its row: at most every ``every_s`` seconds (and
    always on phase changes), which also serves as the worker's heartbeat."""

    def __init__(self, run, ctx=None, every_s=1.0):
        self.run = run
        self.ctx = ctx
        self.every_s = every_s
        self.last = 0.0
        self.curves = list(run.curves or [])

    def __call__(self, phase, epoch=None, total_epochs=None, d_loss=None, g_loss=None, val_w=None):
        run = self.run
        new_phase = phase != run.phase
        run.phase = phase
        if epoch is not None:
            run.epoch = int(epoch)
            if total_epochs:
                run.total_epochs = int(total_epochs)
            if d_loss is not None or g_loss is not None or val_w is not None:
                self.curves.append({"epoch": int(epoch), "d_loss": _f(d_loss), "g_loss": _f(g_loss), "val_w": _f(val_w)})
        if new_phase:
            run.log += f"[{timezone.now():%H:%M:%S}] {phase}\n"
        share = overall_progress(phase, epoch, total_epochs)
        if share is not None:
            run.progress = share
        if self.ctx is not None:
            self.ctx.report(run.progress, phase)
            self.ctx.check_cancel()
        now = time.monotonic()
        if new_phase or now - self.last >= self.every_s:
            self.flush()
            self.last = now

    def flush(self):
        run = self.run
        run.curves = self.curves
        run.heartbeat_at = timezone.now()
        TrainingRun.objects.filter(pk=run.pk, status=TrainingRun.Status.RUNNING).update(
            phase=run.phase, epoch=run.epoch, total_epochs=run.total_epochs, curves=run.curves,
            heartbeat_at=run.heartbeat_at, log=run.log, progress=run.progress, message=run.phase[:255],
        )


def _f(x):
    if x is None:
        return None
    x = float(x)
    return x if np.isfinite(x) else None


def run_training(run_id, *, task_id=None):
    """Train the bundle of a queued run, store the version, apply the promotion rule.

    A job (core.jobs): only a queued run is trained; any error marks it failed with the reason
    and the active version is untouched.
    """
    return jobs.run_job(TrainingRun, run_id, _train, task_id=task_id)


def _train(run, ctx):
    now = timezone.now()
    run.phase, run.total_epochs = "preparing data", run.epochs
    run.log += f"[{now:%H:%M:%S}] started (attempt {run.attempts})\n"
    TrainingRun.objects.filter(pk=run.pk).update(phase=run.phase, total_epochs=run.total_epochs, log=run.log)
    out_dir = artefact_root() / f"run-{run.pk}-{run.snapshot_hash[:12]}"
    progress = _Progress(run, ctx)
    try:
        rows = read_rows_csv(artefact_root() / run.snapshot_path)
        train_rows, validation_rows = split_rows(rows)
        progress("training", 0, run.epochs)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        fit_meta = fit_bundle(train_rows, out_dir, epochs=run.epochs, seed=run.seed, progress=progress)
        progress("validating")
        finish_training(run, out_dir, fit_meta, validation_rows, progress)
    except Exception as exc:
        shutil.rmtree(out_dir, ignore_errors=True)
        exc = _record_training_failure(run, exc, progress)
        raise exc from None
    return None  # finish_training recorded the end in its own transaction


# =====================================================================================
# Reporting a failed run: one plain sentence on the page, the traceback in the logs only
# =====================================================================================

TOO_LITTLE_DATA_HINT = "Import a table or load the starter corpus."
_NO_USABLE_ROWS = re.compile(r"no usable rows\b|no data rows\b")


def plain_training_error(exc):
    """The sentence a person reads when a training run could not finish (never a traceback).

    The pipeline's refusals for too little data become what to do about it; any other error
    is named by its type and message on one line (the traceback goes to the logs).
    """
    text = " ".join(str(exc).split())
    if isinstance(exc, (jobs.JobError, jobs.JobCancelled)):
        return text
    if isinstance(exc, TooFewAlloysError):
        have = f"Only {exc.n_alloys} alloy has" if exc.n_alloys == 1 else f"Only {exc.n_alloys} alloys have"
        return f"{have} usable Tg, Tx and Tl values; the models need at least {exc.needed}. {TOO_LITTLE_DATA_HINT}"
    if _NO_USABLE_ROWS.search(text):  # ml.dataprep.DataError when every row was refused or dropped
        return (f"No alloy has usable Tg, Tx and Tl values yet; the models need at least {MIN_ALLOYS}. "
                f"{TOO_LITTLE_DATA_HINT}")
    return f"The training stopped on an unexpected error ({type(exc).__name__}: {text[:300]}). The details are in the worker's log."


def _record_training_failure(run, exc, progress):
    """Log the failure (with its traceback, for the logs only), write one plain line to the
    run's log, and return the exception to raise: JobCancelled or a JobError whose message is
    ``plain_training_error``'s sentence (core.jobs stores it as the run's error)."""
    if isinstance(exc, jobs.JobCancelled):
        ended = "cancelled"
    else:
        if not isinstance(exc, jobs.JobError):
            plain = plain_training_error(exc)
            if plain.endswith(TOO_LITTLE_DATA_HINT):
                logger.warning("Training run %s refused: %s", run.pk, exc)
            else:
                logger.exception("Training run %s failed", run.pk)
            exc = jobs.JobError(plain)
        ended = f"failed: {exc}"
    now = timezone.now()
    TrainingRun.objects.filter(pk=run.pk, attempts=run.attempts).update(
        log=progress.run.log + f"[{now:%H:%M:%S}] {ended}\n", curves=progress.curves
    )
    return exc


def validation_metrics(bundles, validation_rows):
    """For each bundle, on the validation rows (all bundles on the same rows: those whose
    elements every bundle knows): forward-model MAE and R² per temperature, and the GFA
    model's scores (``ml.metrics.gfa_metrics``: glass vs crystal and BMG vs rest ROC-AUC/F1,
    Dmax MAE and interval coverage; None where the rows or the bundle cannot say). A bundle
    gets {} when no usable row is left.
    """
    from ml.dataprep import DataError, prepare
    from ml.metrics import gfa_metrics, regression_metrics

    empty = [{} for _ in bundles]
    if not validation_rows:
        return empty
    vocab = set.intersection(*(bundle_vocabulary(b) for b in bundles))
    try:
        data = prepare([r for r in validation_rows if r.get("origin") != "xrd" and r.get("Tg_K") not in ("", None)])
        data = data.subset([i for i, c in enumerate(data.compositions) if set(c) <= vocab])
    except DataError:
        data = None
    gdata = gfa_data(validation_rows)
    if gdata is not None:
        gdata = gdata.subset([i for i, c in enumerate(gdata.compositions) if set(c) <= vocab])
    if (data is None or not len(data)) and (gdata is None or not len(gdata.compositions)):
        return empty
    results = []
    for bundle in bundles:
        out = {"n": len(data) if data is not None else 0, "forward": {}, "gfa": None}
        if data is not None and len(data):
            pred = predict(bundle, data.compositions)
            maes = []
            for j, name in enumerate(("tg_k", "tx_k", "tl_k")):
                m = regression_metrics(data.y[:, j], pred[name])
                out["forward"][f"{name}_mae"] = m["mae"]
                out["forward"][f"{name}_r2"] = m["r2"]
                maes.append(m["mae"])
            out["forward"]["mean_mae_k"] = float(np.mean(maes))
        if gdata is not None and len(gdata.compositions):
            gp = predict(bundle, gdata.compositions)
            out["gfa"] = {"n": len(gdata.compositions),
                          **gfa_metrics(gdata.glass, gdata.bmg, gdata.dmax_low_mm, gdata.dmax_high_mm, gp)}
        results.append(_jsonable(out))
    return results


def _glass_f1(metrics):
    return ((metrics.get("gfa") or {}).get("glass") or {}).get("f1")


def promotion_decision(new, old, *, mae_tolerance=None, f1_tolerance=None):
    """(promote, reason) for a new version's validation metrics against the active one's.

    ``new``/``old``: dicts from ``validation_metrics`` (old None: no active version). The F1
    compared is glass vs crystal; when the active version has none (it predates the GFA
    model) a new version that has one is not held back by it.
    """
    mae_tol = float(settings.GLASSLOOP_PROMOTION_MAE_TOLERANCE if mae_tolerance is None else mae_tolerance)
    f1_tol = float(settings.GLASSLOOP_PROMOTION_F1_TOLERANCE if f1_tolerance is None else f1_tolerance)
    if old is None:
        return True, "First model: nothing to compare with."
    if not new or not old or "mean_mae_k" not in new.get("forward", {}) or "mean_mae_k" not in old.get("forward", {}):
        return False, "No validation rows to compare on; promote it by hand if you trust it."
    new_mae, old_mae = new["forward"]["mean_mae_k"], old["forward"]["mean_mae_k"]
    limit_mae = old_mae * (1 + mae_tol)
    facts = [f"forward MAE {new_mae:.2f} K vs {old_mae:.2f} K (limit {limit_mae:.2f} K, {mae_tol:+.0%})"]
    problems = []
    if new_mae > limit_mae:
        problems.append("forward MAE worse beyond the tolerance")
    new_f1, old_f1 = _glass_f1(new), _glass_f1(old)
    if new_f1 is not None and old_f1 is not None:
        limit_f1 = old_f1 - f1_tol
        facts.append(f"glass-vs-crystal F1 {new_f1:.3f} vs {old_f1:.3f} (limit {limit_f1:.3f})")
        if new_f1 < limit_f1:
            problems.append("glass-vs-crystal F1 lower beyond the tolerance")
    elif old_f1 is not None:
        problems.append("the new version has no GFA model and the active one has")
    facts = "; ".join(facts)
    if problems:
        return False, f"Not promoted: {' and '.join(problems)} — {facts}."
    return True, f"Promoted: {facts}."


def finish_training(run, out_dir, fit_meta, validation_rows, progress):
    """Store the version and apply the promotion rule against the active version (one transaction).

    Both the new and the active bundle are scored on today's validation rows, so they face
    the same alloys.
    """
    new_bundle = load_bundle(out_dir)
    with transaction.atomic():
        current = TrainingRun.objects.select_for_update().get(pk=run.pk)
        if current.status != TrainingRun.Status.RUNNING or current.attempts != run.attempts:
            # Marked failed meanwhile (its heartbeat looked stale): a newer run owns this data now.
            raise jobs.JobError(f"was marked {current.status} while training; its result is discarded")
        active = ModelVersion.objects.select_for_update().filter(status=ModelVersion.Status.ACTIVE).first()
        old_metrics = None
        if active is not None:
            new_metrics, old_metrics = validation_metrics([new_bundle, load_bundle(active.path)], validation_rows)
        else:
            (new_metrics,) = validation_metrics([new_bundle], validation_rows)
        promote, reason = promotion_decision(new_metrics, old_metrics)
        now = timezone.now()
        metrics = {"validation": new_metrics, "fit": fit_meta}
        if active is not None:
            metrics["active_at_promotion"] = {"version": active.pk, "validation": old_metrics}
        version = ModelVersion(
            training_run=run,
            artefact_dir=str(out_dir.relative_to(artefact_root())),
            snapshot_hash=run.snapshot_hash,
            data_size=run.data_size,
            n_lab_results=run.n_lab_results,
            snapshot_taken_at=run.snapshot_taken_at,
            metrics=_jsonable(metrics),
            status=ModelVersion.Status.CANDIDATE,
            status_reason=reason,
        )
        version.save()
        if promote:
            if active is not None:
                active.status = ModelVersion.Status.RETIRED
                active.retired_at = now
                active.status_reason = f"Replaced by v{version.pk}. " + active.status_reason
                active._change_reason = f"retired: replaced by v{version.pk}"
                active.save()
            version.status = ModelVersion.Status.ACTIVE
            version.activated_at = now
            version._change_reason = reason[:100]
            version.save()
        run.status = TrainingRun.Status.DONE
        run.finished_at = now
        run.progress = 1.0
        run.phase = "done"
        run.curves = progress.curves
        run.heartbeat_at = now
        run.log = progress.run.log + f"[{now:%H:%M:%S}] v{version.pk}: {reason}\n"
        run.save()
    return version


@transaction.atomic
def activate_version(version, *, user=None, reason=""):
    """A person promotes a candidate version by hand (or re-activates a retired one)."""
    version = ModelVersion.objects.select_for_update().get(pk=version.pk)
    if version.status == ModelVersion.Status.ACTIVE:
        return version
    now = timezone.now()
    for active in ModelVersion.objects.select_for_update().filter(status=ModelVersion.Status.ACTIVE):
        active.status = ModelVersion.Status.RETIRED
        active.retired_at = now
        active.status_reason = f"Replaced by v{version.pk} by hand. " + active.status_reason
        active._history_user = user
        active.save()
    version.status = ModelVersion.Status.ACTIVE
    version.activated_at = now
    version.status_reason = f"Activated by hand{' by ' + user.username if user else ''}: {reason or 'no reason given'}."
    version._history_user = user
    version.save()
    return version


def _jsonable(obj):
    """Metrics and metadata as plain JSON (NaN/inf -> None, numpy -> Python)."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if np.isfinite(obj) else None
    if isinstance(obj, (str, int, bool)) or obj is None:
        return obj
    return str(obj)


