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


PREDICTION_KEYS = ("tg_k", "tx_k", "tl_k", "trg", "gamma", "delta_tx_k", "p_glass", "p_bmg", "dmax_mm",
                   "dmax_low_mm", "dmax_high_mm")
# pipeline progress stage -> the phase shown on the run's page
_PHASES = {
    "data": "preparing data",
    "validate-forward": "validating the forward model",
    "validate-gfa": "validating the GFA model (glass, BMG, Dmax)",
    "cgan": "training the CGAN",
    "cgan-epoch": "training the CGAN",
    "forward": "fitting the forward model",
    "gfa": "fitting the GFA model",
}
# Share of a training's time each phase starts at (measured on the starter corpus: the GFA
# fits and the CGAN take most of it), so a progress bar moves before the CGAN's epochs too.
_PHASE_START = {
    "preparing data": 0.0,
    "validating the forward model": 0.02,
    "validating the GFA model (glass, BMG, Dmax)": 0.12,
    "fitting the GFA model": 0.3,
    "training the CGAN": 0.45,
    "fitting the forward model": 0.9,
}


def overall_progress(phase, epoch=None, total_epochs=None):
    """0–1 for a run in ``phase`` (a value of _PHASES), CGAN epochs counted within their share."""
    start = _PHASE_START.get(phase)
    if start is None:
        return None
    if phase == "training the CGAN" and epoch and total_epochs:
        return start + (_PHASE_START["fitting the forward model"] - start) * min(1.0, epoch / total_epochs)
    return start


def _rows_for_pipeline(rows):
    """Our snapshot rows as the pipeline's two tables: (thermal, gfa) DataFrames.

    * thermal: every row with a temperature (composition, Tg_K, Tx_K, Tl_K);
    * gfa: every row with a GFA class or a Dmax, and each lab casting's XRD row (its class
      and Dmax bound from the rod, weighted as this lab's own evidence). The pipeline adds
      the thermal rows to it too: a measured Tg means the alloy vitrified.
    """
    import pandas as pd

    def has(r, *cols):
        return any(str(r.get(c, "") or "").strip() not in ("", "nan") for c in cols)

    from ml.pipeline import GFA_COLUMNS

    thermal_cols = ["composition", "Tg_K", "Tx_K", "Tl_K"]
    gfa_cols = list(GFA_COLUMNS)
    thermal = [r for r in rows if r.get("origin") != "xrd" and has(r, "Tg_K", "Tx_K", "Tl_K")]
    gfa = [r for r in rows if r.get("origin") == "xrd" or has(r, "gfa_class", "dmax_mm")]
    return (pd.DataFrame([{c: r.get(c, "") for c in thermal_cols} for r in thermal], columns=thermal_cols),
            pd.DataFrame([{c: r.get(c, "") for c in gfa_cols} for r in gfa], columns=gfa_cols))


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
    thermal, gfa = _rows_for_pipeline(rows)
    bundle = pipeline.fit_bundle(
        thermal, str(out_dir), epochs=epochs, seed=seed, gfa_df=gfa,
        descriptors=settings.GLASSLOOP_GAN_DESCRIPTORS, progress=say,
        gan_params=settings.GLASSLOOP_GAN_PARAMS, forward_params=settings.GLASSLOOP_FORWARD_PARAMS,
        gfa_params=settings.GLASSLOOP_GFA_PARAMS,
    )
    meta = bundle.metadata
    return {
        "pipeline_metrics": meta.get("metrics"),
        "training_data": {k: v for k, v in (meta.get("training_data") or {}).items() if k != "keys_formulas"},
        "cleaning": _cleaning_summary(meta.get("cleaning_report") or {}),
        "gfa_report": _gfa_summary(meta.get("gfa_report") or {}),
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


def gfa_data(rows):
    """The GFA labels of ``rows`` (snapshot rows) as the pipeline reads them (ml.gfa.GFAData),
    or None when they hold none it can use."""
    from ml import pipeline
    from ml.gfa import GFADataError, prepare_gfa

    thermal, gfa = _rows_for_pipeline(rows)
    try:
        data = prepare_gfa(pipeline.gfa_rows(thermal, gfa))
    except GFADataError:
        return None
    return data if len(data.compositions) else None


def _gfa_summary(report):
    """What the run page shows of the GFA table's preparation: counts, and up to 20 refused
    or flagged rows with their reasons."""
    keep = {k: v for k, v in report.items() if k not in ("refused", "flagged")}
    keep["examples"] = [{"composition": r.get("composition", ""), "reason": r.get("reason", "")}
                        for r in ((report.get("refused") or []) + (report.get("flagged") or []))[:20]]
    keep["n_refused"] = len(report.get("refused") or [])
    keep["n_flagged"] = len(report.get("flagged") or [])
    return keep


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
    return bundle.vocabulary


def predict(bundle, compositions):
    """dict of arrays: tg_k, tx_k, tl_k, trg, gamma, delta_tx_k (each with ``_std``), the calibrated
    80 % intervals tg_k_low, tg_k_high, tx_k_low, tx_k_high, tl_k_low, tl_k_high, trg_low,
    trg_high, gamma_low, gamma_high (NaN for a bundle whose forward model has none), and the GFA
    model's p_glass, p_bmg, dmax_mm, dmax_low_mm, dmax_high_mm (NaN when the bundle has none)."""
    raw = bundle.predict(list(compositions))
    out = {
        "tg_k": raw["tg_k"], "tg_k_std": raw.get("tg_std"),
        "tx_k": raw["tx_k"], "tx_k_std": raw.get("tx_std"),
        "tl_k": raw["tl_k"], "tl_k_std": raw.get("tl_std"),
        "trg": raw["trg"], "trg_std": raw.get("trg_std"),
        "gamma": raw["gamma"], "gamma_std": raw.get("gamma_std"),
        "delta_tx_k": raw.get("dtx_k", np.asarray(raw["tx_k"]) - np.asarray(raw["tg_k"])),
        **{k: raw[k] for k in ("p_glass", "p_bmg", "dmax_mm", "dmax_low_mm", "dmax_high_mm")},
        # calibrated 80 % intervals of the forward model (NaN for bundles fitted before them)
        **{f"{app}_{side}": raw.get(f"{key}_{side}") for app, key in
           (("tg_k", "tg"), ("tx_k", "tx"), ("tl_k", "tl"), ("trg", "trg"), ("gamma", "gamma"))
           for side in ("low", "high")},
    }
    if out["tg_k_std"] is not None and out["tx_k_std"] is not None:
        out["delta_tx_k_std"] = np.hypot(out["tg_k_std"], out["tx_k_std"])
    return {k: np.asarray(v, dtype=float) for k, v in out.items() if v is not None}


def contributions(bundle, compositions, top=5):
    """Per composition, the GFA model's top feature contributions: {"p_glass": [[feature,
    value], ...], "p_bmg": [...], "dmax_mm": [...]} ({} when the bundle has no GFA model)."""
    return bundle.contributions(list(compositions), top=top)


def training_compositions(bundle):
    """The alloys the bundle was trained on (as Compositions), cached per bundle."""
    cached = getattr(bundle, "_glassloop_training_compositions", None)
    if cached is None:
        from ml.gan import to_compositions

        cached = to_compositions(bundle.reference.fractions, bundle.reference.vocabulary)
        bundle._glassloop_training_compositions = cached
    return cached


def sample(bundle, conditions, seed):
    """Compositions from the bundle's CGAN, one draw per condition row — (Tg, Tx, Tl), optionally
    followed by glass, BMG, Dmax mm (design.generation.gfa_condition_columns; a CGAN trained
    without the GFA condition ignores them) — duplicates removed (so possibly fewer than the
    rows). Each draw is anchored on a training alloy with the nearest properties (ml.inverse_design,
    step 1b; bundles written before the anchors sample without), passes the composition parser
    and is chemically plausible: the chemistry guard (``ml.inverse_design.TrainingReference.repair``)
    drops elements beyond 8 and major elements never seen with a larger major one; what it cannot
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
