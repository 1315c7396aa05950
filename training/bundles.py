"""Model bundles: the ONE place that calls the ML core's pipeline API (``ml.pipeline``) —
fit, load (cached), predict, sample — and the active version's bundle. Everything else in the
app speaks in our own terms (rows, prediction dicts, compositions)."""

from __future__ import annotations

import logging
import os
from functools import lru_cache
from pathlib import Path

import numpy as np
from django.conf import settings

from . import selectors

logger = logging.getLogger(__name__)


def artefact_root() -> Path:
    root = Path(settings.MODEL_ARTEFACT_ROOT)
    root.mkdir(parents=True, exist_ok=True)
    return root


PREDICTION_KEYS = ("tg_k", "tx_k", "tl_k", "trg", "gamma", "delta_tx_k", "p_glass")
# pipeline progress stage -> the phase shown on the run's page
_PHASES = {
    "data": "preparing data",
    "validate-forward": "validating the forward model",
    "validate-surrogate": "validating the surrogate",
    "cgan": "training the CGAN",
    "cgan-epoch": "training the CGAN",
    "forward": "fitting the forward model",
    "surrogate": "fitting the surrogate",
}


def _rows_for_pipeline(rows):
    """Our snapshot rows as the pipeline's table (composition, Tg_K, Tx_K, Tl_K, label, weight).

    ml.dataprep drops rows without temperatures, so a lab XRD verdict without a DSC would be
    lost. Where the same alloy has temperatures elsewhere (literature or another sample) the
    verdict is attached to a row carrying that alloy's mean temperatures (the mean is
    unchanged, and the label overrides the Trg criterion for that alloy).
    """
    import pandas as pd

    from ml.composition import CompositionError, parse_composition

    out = [r for r in rows if r.get("origin") != "xrd"]
    temps = {}
    for r in out:
        try:
            key = parse_composition(r["composition"]).key
            t = tuple(float(r[c]) for c in ("Tg_K", "Tx_K", "Tl_K"))
        except (CompositionError, ValueError, TypeError):
            continue
        temps.setdefault(key, []).append(t)
    for r in rows:
        if r.get("origin") != "xrd":
            continue
        try:
            key = parse_composition(r["composition"]).key
        except CompositionError:
            continue
        if key in temps:
            mean = np.mean(np.array(temps[key]), axis=0)
            out.append({**r, "Tg_K": repr(float(mean[0])), "Tx_K": repr(float(mean[1])), "Tl_K": repr(float(mean[2]))})
        else:
            out.append(r)  # kept for the record; dataprep reports it as lacking temperatures
    columns = ["composition", "Tg_K", "Tx_K", "Tl_K", "label", "weight"]
    return pd.DataFrame([{c: r.get(c, "") for c in columns} for r in out], columns=columns)


def fit_bundle(rows, out_dir, *, epochs, seed, progress=None):
    """Train forward model, surrogate and CGAN on ``rows`` into ``out_dir``; returns metadata.

    ``progress(phase, epoch=None, total_epochs=None, d_loss=None, g_loss=None, val_w=None)``.
    """
    from ml import pipeline

    def say(stage, info):
        if progress is None:
            return
        phase = _PHASES.get(stage, stage)
        if stage == "cgan-epoch":
            progress(phase, info.get("epoch"), epochs, info.get("d_loss"), info.get("g_loss"), info.get("val_wasserstein"))
        else:
            progress(phase)

    # Optional overrides (tests and small sites train smaller models).
    bundle = pipeline.fit_bundle(
        _rows_for_pipeline(rows), str(out_dir), epochs=epochs, seed=seed,
        descriptors=settings.GLASSLOOP_GAN_DESCRIPTORS, progress=say,
        gan_params=settings.GLASSLOOP_GAN_PARAMS, forward_params=settings.GLASSLOOP_FORWARD_PARAMS,
    )
    meta = bundle.metadata
    return {
        "pipeline_metrics": meta.get("metrics"),
        "training_data": {k: v for k, v in (meta.get("training_data") or {}).items() if k != "keys_formulas"},
        "cleaning": _cleaning_summary(meta.get("cleaning_report") or {}),
        "fit_seconds": meta.get("fit_seconds"),
    }


def _cleaning_summary(report):
    """What the run page shows of the data preparation: counts, counts per reason, and the
    rows it refused or dropped (the report keeps up to 20 of each kind) with their reasons."""
    summary = {k: report.get(k) for k in ("rows_in", "rows_refused", "rows_dropped", "alloys", "labelled_alloys")}
    summary["reasons"] = dict(sorted((report.get("reasons") or {}).items(), key=lambda kv: -kv[1]))
    summary["examples"] = [{"composition": r.get("composition", ""), "reason": r.get("reason", "")}
                           for r in (report.get("refused") or []) + (report.get("dropped") or [])]
    return summary


@lru_cache(maxsize=4)
def _load_bundle_cached(path, mtime):
    from ml import pipeline

    return pipeline.load_bundle(path)


def load_bundle(path):
    """The bundle in ``path`` (cached while the directory is unchanged)."""
    from ml.artefacts import ArtefactError

    path = str(path)
    try:
        mtime = os.stat(os.path.join(path, "metadata.json")).st_mtime
    except OSError:
        raise ArtefactError(f"{path}: the model's files are missing (was MODEL_ARTEFACT_ROOT moved or emptied?)") from None
    return _load_bundle_cached(path, mtime)


def bundle_vocabulary(bundle):
    """Elements every part of the bundle can handle."""
    return set(bundle.forward.vocabulary_) & set(bundle.surrogate.features_.vocabulary_)


def predict(bundle, compositions):
    """dict of arrays: tg_k, tx_k, tl_k, trg, gamma, delta_tx_k (each with ``_std``), p_glass."""
    raw = bundle.predict(list(compositions))
    out = {
        "tg_k": raw["tg_k"], "tg_k_std": raw.get("tg_std"),
        "tx_k": raw["tx_k"], "tx_k_std": raw.get("tx_std"),
        "tl_k": raw["tl_k"], "tl_k_std": raw.get("tl_std"),
        "trg": raw["trg"], "trg_std": raw.get("trg_std"),
        "gamma": raw["gamma"], "gamma_std": raw.get("gamma_std"),
        "delta_tx_k": raw.get("dtx_k", np.asarray(raw["tx_k"]) - np.asarray(raw["tg_k"])),
        "p_glass": raw["p_glass"],
    }
    if out["tg_k_std"] is not None and out["tx_k_std"] is not None:
        out["delta_tx_k_std"] = np.hypot(out["tg_k_std"], out["tx_k_std"])
    return {k: np.asarray(v, dtype=float) for k, v in out.items() if v is not None}


def training_compositions(bundle):
    """The alloys the bundle was trained on (as Compositions), cached per bundle."""
    cached = getattr(bundle, "_glassloop_training_compositions", None)
    if cached is None:
        from ml.gan import to_compositions

        cached = to_compositions(bundle.reference.fractions, bundle.reference.vocabulary)
        bundle._glassloop_training_compositions = cached
    return cached


def sample(bundle, conditions, seed):
    """Compositions from the bundle's CGAN, one draw per (Tg, Tx, Tl) condition row, duplicates
    removed (so possibly fewer than the rows); each passes the composition parser and is
    chemically plausible: the chemistry guard (``ml.inverse_design.TrainingReference.repair``) drops
    elements beyond 8 and major elements never seen with a larger major one; what it cannot
    repair (one element left) is discarded."""
    from ml.inverse_design import generate_fractions
    from ml.gan import to_compositions

    conditions = np.asarray(conditions, dtype=float)
    F, _stats = generate_fractions(bundle.cgan, bundle.reference, lambda _m, _round: conditions, len(conditions),
                                   seed=int(seed), max_rounds=1)
    return to_compositions(F, bundle.cgan.vocabulary_)




class NoActiveModel(RuntimeError):
    pass


def active_version_and_bundle():
    """(version, bundle) of the active version; NoActiveModel with what to do if there is none."""
    version = selectors.active_version()
    if version is None:
        raise NoActiveModel(
            "No model is trained yet: run `python manage.py retrain --wait` (or bootstrap_model) "
            "or start a training on the Models page."
        )
    return version, load_bundle(version.path)


def load_active_bundle():
    """The active version's bundle (``ml.pipeline`` Bundle), or None while no version is active."""
    version = selectors.active_version()
    return None if version is None else load_bundle(version.path)
