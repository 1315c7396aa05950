"""Fit everything, save/load a model bundle, predict and generate.

``fit_bundle(df, out_dir, epochs, seed, descriptors, progress=None, gfa_df=None)``:

1. :func:`ml.dataprep.prepare` on the thermal table (cleaning report kept in the bundle);
2. one grouped validation split (20 % of alloys, by composition key, fixed by ``seed``):
   a one-member forward model is fitted on the other 80 % and scored on it (the bundle's
   ``metrics``; the design loop compares versions on them); the CGAN trains on the 80 % and
   early-stops on the validation Wasserstein distance;
3. the GFA model (:class:`ml.gfa.GFAModel`: P(glass), P(BMG), Dmax) on the GFA table plus
   every thermal row (a measured Tg means the alloy vitrified): validated on 20 % of the
   chemical systems held out, then refitted on all rows. A table it cannot learn from (no
   crystal, say) is skipped with the reason in ``metadata["gfa"]``; the bundle then
   predicts NaN for the GFA outputs rather than guess;
4. the forward model (full ensemble) is refitted on all alloys;
5. everything is written to ``out_dir`` (see :mod:`ml.artefacts`).

``load_bundle(dir) -> Bundle`` with ``predict(compositions)``, ``predict_texts(texts)``
(per-row errors, nothing dropped), ``contributions(compositions)``, ``generate(targets, n,
seed)`` and ``metadata``. Bundles written before the GFA model (a Trg ≥ 0.60 classifier as
"surrogate") still load and predict as they did, with NaN for P(BMG) and Dmax.
"""

from __future__ import annotations

import datetime as _dt
import os
import time
from typing import Any, Callable, Sequence

import numpy as np
from sklearn.base import clone

from ml.artefacts import ArtefactError, read_metadata, write_metadata
from ml.composition import Composition, CompositionError, parse_composition
from ml.dataprep import MIN_ALLOYS, PreparedData, TooFewAlloysError, data_hash, grouped_split, prepare
from ml.forward import ForwardModel
from ml.gan import CGAN, GAN, fractions_matrix, set_torch_threads
from ml.gfa import GFADataError, GFAModel, prepare_gfa, system_folds
from ml.inverse_design import Target, TrainingReference, design
from ml.metrics import gfa_metrics, regression_metrics

Progress = Callable[[str, dict], None]

GFA_KEYS = ("p_glass", "p_bmg", "dmax_mm", "dmax_low_mm", "dmax_high_mm")
FORWARD_KEYS = ("tg_k", "tg_std", "tx_k", "tx_std", "tl_k", "tl_std", "trg", "trg_std", "gamma", "gamma_std", "dtx_k")
# the forward model's calibrated 80 % intervals (NaN for bundles whose forward model has none)
INTERVAL_KEYS = ("tg_low", "tg_high", "tx_low", "tx_high", "tl_low", "tl_high", "trg_low", "trg_high",
                 "gamma_low", "gamma_high")
GFA_COLUMNS = ("composition", "gfa_class", "dmax_mm", "dmax_kind", "Tg_K", "weight", "origin")


def gfa_rows(thermal_df, gfa_df=None) -> list[dict]:
    """The GFA model's table: the rows of ``gfa_df`` plus every thermal row that has a Tg
    (as a glass of unknown castability; :func:`ml.gfa.prepare_gfa` reads a Tg that way)."""
    rows: list[dict] = []
    if gfa_df is not None:
        records = gfa_df.to_dict(orient="records") if hasattr(gfa_df, "to_dict") else list(gfa_df)
        rows += [{c: r.get(c, "") for c in GFA_COLUMNS} for r in records]
    records = thermal_df.to_dict(orient="records") if hasattr(thermal_df, "to_dict") else list(thermal_df)
    for r in records:
        try:
            tg = float(r.get("Tg_K"))
        except (TypeError, ValueError):
            continue
        if np.isfinite(tg):
            rows.append({"composition": r.get("composition", ""), "gfa_class": "", "dmax_mm": "", "dmax_kind": "",
                         "Tg_K": tg, "weight": r.get("weight", ""), "origin": r.get("origin", "") or "thermal"})
    return rows


def gfa_condition_rows(gfa_data, keys: Sequence[str], vocabulary: Sequence[str], exclude_keys=()) -> dict:
    """What a CGAN with ``gfa_condition=True`` learns from the GFA table (ml.gan, "GFA condition").

    For the thermal rows (``keys``): their glass / BMG / Dmax by composition key (NaN where the
    GFA table has none). Extra rows: the GFA table's alloys that are not thermal rows, not in
    ``exclude_keys`` (the validation split: no leak into early stopping) and use only the
    generator's ``vocabulary`` (the forward model and the plausibility reference cover those
    elements only), with unknown temperatures. Dmax is a condition only where it was measured
    as a point (low == high > 0); bounds and the source's codes (0, 0.15 mm) are not values.

    Returns {"thermal": {glass, bmg, dmax_mm}, "fractions": (m, k), "extra": {glass, bmg, dmax_mm}}.
    """
    vocab = list(vocabulary)
    with np.errstate(invalid="ignore"):
        point = (gfa_data.dmax_low_mm == gfa_data.dmax_high_mm) & (gfa_data.dmax_low_mm > 0)
    dmax = np.where(point, gfa_data.dmax_low_mm, np.nan)
    index = {k: i for i, k in enumerate(gfa_data.keys)}

    def pick(idx):
        idx = np.asarray(idx, dtype=int)
        return {"glass": gfa_data.glass[idx].astype(float), "bmg": gfa_data.bmg[idx].astype(float),
                "dmax_mm": dmax[idx].astype(float)}

    at = np.array([index.get(k, -1) for k in keys], dtype=int)
    thermal = {name: np.where(at >= 0, col[np.maximum(at, 0)], np.nan) if len(col) else np.full(len(keys), np.nan)
               for name, col in pick(np.arange(len(gfa_data))).items()}
    skip = set(keys) | set(exclude_keys)
    allowed = set(vocab)
    extra = [i for i, (k, c) in enumerate(zip(gfa_data.keys, gfa_data.compositions))
             if k not in skip and set(c) <= allowed]
    F = fractions_matrix([gfa_data.compositions[i] for i in extra], vocab) if extra else np.zeros((0, len(vocab)))
    return {"thermal": thermal, "fractions": F, "extra": pick(extra)}


def _reference_gfa_labels(df, gfa_df, keys, vocab) -> dict:
    """{"bmg", "dmax_mm"} of the thermal alloys from the GFA table (+ their own Tg rows), or {}."""
    try:
        gdata = prepare_gfa(gfa_rows(df, gfa_df))
    except GFADataError:
        return {}
    t = gfa_condition_rows(gdata, keys, vocab)["thermal"]
    return {"bmg": t["bmg"], "dmax_mm": t["dmax_mm"]}


def _fit_gfa(rows, seed: int, params: dict | None, say: Progress):
    """(fitted GFAModel or None, metrics or {"skipped": reason}, data report or None)."""
    try:
        data = prepare_gfa(rows)
    except GFADataError as exc:
        return None, {"skipped": str(exc)}, None
    template = GFAModel(seed=seed, **(params or {}))
    say("validate-gfa", {})
    metrics: dict[str, Any] = {}
    try:
        tr, va = system_folds(data.systems, n_splits=5, seed=seed)[0]
        held_out = data.subset(va)
        fitted = clone(template).fit(data.subset(tr))
        metrics = {"validation_split": {"n_train": len(tr), "n_validation": len(va), "seed": seed,
                                        "by": "chemical system"},
                   **gfa_metrics(held_out.glass, held_out.bmg, held_out.dmax_low_mm, held_out.dmax_high_mm,
                                 fitted.predict(held_out.compositions))}
    except (GFADataError, ValueError) as exc:
        metrics = {"validation_skipped": str(exc)}
    say("gfa", {})
    try:
        model = clone(template).fit(data)
    except GFADataError as exc:
        return None, {"skipped": str(exc)}, data.report
    return model, metrics, data.report


def fit_bundle(df, out_dir: str, epochs: int = 600, seed: int = 0, descriptors: str = "D1",
               progress: Progress | None = None, gan_params: dict | None = None,
               forward_params: dict | None = None, gfa_df=None, gfa_params: dict | None = None) -> "Bundle":
    set_torch_threads(1)
    t0 = time.perf_counter()
    say = progress or (lambda stage, info: None)
    data = prepare(df)
    if len(data) < MIN_ALLOYS:
        raise TooFewAlloysError(len(data))
    say("data", {"report": data.report})
    tr, va = grouped_split(data.keys, 0.2, seed)
    train, val = data.subset(tr), data.subset(va)

    fp = dict(forward_params or {})
    # unfitted template: the validation fit and the final refit are clones of it; a bad
    # parameter is refused by the first fit. The validation model has one member: it only
    # measures, so it costs a third of a three-member fit; its scores are a one-member model's,
    # not the final ensemble's
    forward_template = ForwardModel(seed=seed, **fp)
    say("validate-forward", {})
    fv = clone(forward_template).set_params(n_members=1).fit(train.compositions, train.y)
    pv = fv.predict(val.compositions)
    metrics: dict[str, Any] = {"validation_split": {"n_train": len(tr), "n_validation": len(va), "seed": seed}}
    for j, (name, key) in enumerate((("Tg_K", "tg_k"), ("Tx_K", "tx_k"), ("Tl_K", "tl_k"))):
        metrics[name] = regression_metrics(val.y[:, j], pv[key])
    metrics["Trg"] = regression_metrics(val.tg_k / val.tl_k, pv["trg"])
    metrics["gamma"] = regression_metrics(val.tx_k / (val.tg_k + val.tl_k), pv["gamma"])
    # the validation model's calibrated interval (fitted on its inner folds) on the held-out alloys
    truth = {"tg": val.tg_k, "tx": val.tx_k, "tl": val.tl_k, "trg": val.tg_k / val.tl_k,
             "gamma": val.tx_k / (val.tg_k + val.tl_k)}
    metrics["interval"] = {"coverage_goal": fv.interval_coverage, **{
        h: {"coverage": float(np.mean((pv[f"{h}_low"] <= t) & (t <= pv[f"{h}_high"]))),
            "mean_width": float(np.mean(pv[f"{h}_high"] - pv[f"{h}_low"]))}
        for h, t in truth.items() if np.all(np.isfinite(pv[f"{h}_low"]))}}

    gfa, metrics["gfa"], gfa_report = _fit_gfa(gfa_rows(df, gfa_df), seed, gfa_params, say)

    say("cgan", {"epochs": epochs})
    gp = {"epochs": epochs, "seed": seed, "descriptor_set": descriptors, **(gan_params or {})}
    vocab = sorted({e for c in data.compositions for e in c})
    cgan = CGAN(vocabulary=vocab, **gp)
    X_all = fractions_matrix(data.compositions, vocab)
    cb = (lambda e, d, g, w: say("cgan-epoch", {"epoch": e, "d_loss": d, "g_loss": g, "val_wasserstein": w}))
    X_fit, y_fit, gfa_cond = X_all[tr], train.y, None
    if cgan.gfa_condition:
        try:
            gdata = prepare_gfa(gfa_rows(df, gfa_df))
        except GFADataError:
            gdata = None
        if gdata is not None:
            table = gfa_condition_rows(gdata, train.keys, vocab, exclude_keys=val.keys)
            X_fit = np.vstack([X_fit, table["fractions"]])
            y_fit = np.vstack([y_fit, np.full((len(table["fractions"]), 3), np.nan)])
            gfa_cond = {k: np.concatenate([table["thermal"][k], table["extra"][k]]) for k in table["thermal"]}
            metrics["cgan_gfa_rows"] = {"extra_alloys": int(len(table["fractions"])),
                                        "thermal_rows_with_class": int(np.isfinite(table["thermal"]["glass"]).sum())}
    cgan.fit(X_fit, y_fit, callback=cb, validation=(X_all[va], val.y), gfa=gfa_cond)
    metrics["cgan"] = {"best_val_wasserstein": cgan.history_.best_val_wasserstein,
                       "best_epoch": cgan.history_.best_epoch, "epochs_run": cgan.history_.epochs,
                       "stopped_early": cgan.history_.stopped_early}

    say("forward", {})
    forward = clone(forward_template).fit(data.compositions, data.y)

    os.makedirs(out_dir, exist_ok=True)
    fstate = forward.save(out_dir)
    components: dict[str, Any] = {"forward": fstate, "cgan": cgan.state()}
    files = fstate["model_files"] + [fstate["arrays_file"], "cgan.pt", "reference.npz"]
    if gfa is not None:
        gstate = gfa.save(out_dir)
        components["gfa"] = gstate
        mf = gstate.get("model_files") or {}
        files += list(mf.values() if isinstance(mf, dict) else mf)
    cgan.save(os.path.join(out_dir, "cgan.pt"))
    # properties: the (Tg, Tx, Tl) of each reference alloy, for the real-neighbour anchors
    # (ml.inverse_design.generate_fractions); bundles written without them sample unanchored.
    # bmg, dmax_mm: what the GFA table says of them (NaN: nothing), so a campaign asking for a
    # bulk glass is anchored on known ones
    labels = _reference_gfa_labels(df, gfa_df, data.keys, vocab)
    np.savez(os.path.join(out_dir, "reference.npz"), fractions=X_all, properties=data.y, **labels)
    fit_s = time.perf_counter() - t0
    meta = {
        "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "seed": seed,
        "descriptor_set_gan": descriptors,
        "descriptor_set_forward": forward.descriptor_set,
        "vocabulary": vocab,
        "training_data": {"sha256": data_hash(data), "n_alloys": len(data), "n_rows": data.report["rows_in"],
                          "keys_formulas": [c.formula for c in data.compositions]},
        "cleaning_report": data.report,
        "gfa_report": gfa_report,
        "metrics": _json_safe(metrics),
        "fit_seconds": round(fit_s, 2),
        "files": files,
        "components": components,
    }
    write_metadata(out_dir, _json_safe(meta))
    return load_bundle(out_dir)


def _json_safe(obj):
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        v = float(obj)
        return v if np.isfinite(v) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.ndarray):
        return _json_safe(obj.tolist())
    return obj


class Bundle:
    """A fitted forward model, GFA model (None when the bundle has none) and CGAN; ``legacy``
    is the Trg ≥ 0.60 classifier of bundles written before the GFA model (its P(high Trg)
    stays their ``p_glass`` so an old active version predicts as it did)."""

    def __init__(self, directory: str, metadata: dict, forward: ForwardModel, gfa: GFAModel | None,
                 cgan: GAN, reference: TrainingReference, legacy=None):
        self.directory = directory
        self.metadata = metadata
        self.forward = forward
        self.gfa = gfa
        self.legacy = legacy
        self.cgan = cgan
        self.reference = reference

    @property
    def vocabulary(self) -> set[str]:
        """Elements every part of the bundle can handle."""
        vocab = set(self.forward.vocabulary_)
        if self.gfa is not None:
            vocab &= set(self.gfa.features_.vocabulary)
        if self.legacy is not None:
            vocab &= set(self.legacy.features_.vocabulary_)
        return vocab

    def predict_gfa(self, compositions: Sequence[Composition]) -> dict[str, np.ndarray]:
        """P(glass), P(BMG), Dmax and its 80 % interval (NaN where the bundle cannot say)."""
        n = len(compositions)
        out = {k: np.full(n, np.nan) for k in GFA_KEYS}
        if self.gfa is not None and n:
            known = set(self.gfa.features_.vocabulary)
            ok = [i for i, c in enumerate(compositions) if set(c) <= known]  # others stay NaN
            if ok:
                pred = self.gfa.predict([compositions[i] for i in ok])
                for k in GFA_KEYS:
                    out[k][ok] = np.asarray(pred[k], dtype=float)
        elif self.legacy is not None and n:
            out["p_glass"] = self.legacy.predict_proba_fractions(self.legacy.features_.fractions(compositions))
        return out

    def predict(self, compositions: Sequence[Composition]) -> dict[str, np.ndarray]:
        """Forward predictions (with the calibrated 80 % intervals ``tg_low``, ``tg_high``, …,
        NaN for a forward model without calibration) + the GFA outputs for parsed compositions
        (elements outside the vocabulary raise ValueError; use :meth:`predict_texts` for
        per-row errors)."""
        X = self.forward.features_.fractions(compositions)
        out = self.forward.predict_fractions(X)
        out.update(self.predict_gfa(compositions))
        return out

    def contributions(self, compositions: Sequence[Composition], top: int = 5) -> list[dict]:
        """Per composition, the GFA model's largest feature contributions ({} without one)."""
        if self.gfa is None:
            return [{} for _ in compositions]
        return self.gfa.contributions(compositions, top=top)

    def predict_texts(self, texts: Sequence[str]) -> tuple[dict[str, np.ndarray], list[str | None]]:
        """Predict for raw strings; refused rows get NaN and an error message (same order)."""
        errors: list[str | None] = [None] * len(texts)
        comps: list[Composition | None] = [None] * len(texts)
        vocab = self.vocabulary
        for i, t in enumerate(texts):
            try:
                c = parse_composition(t)
            except CompositionError as exc:
                errors[i] = str(exc)
                continue
            outside = sorted(set(c) - vocab)
            if outside:
                errors[i] = f"element(s) {', '.join(outside)} not covered by the model"
                continue
            comps[i] = c
        ok = [i for i, c in enumerate(comps) if c is not None]
        result = {k: np.full(len(texts), np.nan) for k in FORWARD_KEYS + INTERVAL_KEYS + GFA_KEYS}
        if ok:
            for k, v in self.predict([comps[i] for i in ok]).items():
                full = np.full(len(texts), np.nan)
                full[ok] = v
                result[k] = full
        return result, errors

    def generate(self, targets: Sequence[Target] | Target, n: int, seed: int = 0, oversample: int = 20) -> list[dict]:
        if isinstance(targets, Target):
            targets = [targets]
        return [design(t, n, self.cgan, self.forward, self.predict_gfa, self.reference,
                       seed=seed + i, oversample=oversample) for i, t in enumerate(targets)]


def load_bundle(directory: str) -> Bundle:
    meta = read_metadata(directory)
    try:
        comp = meta["components"]
        forward = ForwardModel.load(directory, comp["forward"])
        gfa = GFAModel.load(directory, comp["gfa"]) if comp.get("gfa") else None
        legacy = None
        if comp.get("surrogate"):
            from ml.surrogate import GFASurrogate

            legacy = GFASurrogate.load(directory, comp["surrogate"])
        cgan = GAN.from_state(comp["cgan"], os.path.join(directory, "cgan.pt"))
        with np.load(os.path.join(directory, "reference.npz")) as z:
            X = z["fractions"]
            properties = z["properties"] if "properties" in z.files else None
            labels = {k: z[k] for k in ("bmg", "dmax_mm") if k in z.files}
        formulas = meta["training_data"]["keys_formulas"]
        if X.shape != (len(formulas), len(cgan.vocabulary_)):
            raise ArtefactError(f"{directory}: reference.npz does not match the metadata")
        if properties is not None and properties.shape != (len(formulas), 3):
            raise ArtefactError(f"{directory}: reference.npz's properties do not match the metadata")
        if any(v.shape != (len(formulas),) for v in labels.values()):
            raise ArtefactError(f"{directory}: reference.npz's GFA labels do not match the metadata")
        reference = TrainingReference(list(cgan.vocabulary_), X, formulas, properties=properties, **labels)
    except ArtefactError:
        raise
    except (KeyError, TypeError, ValueError, RuntimeError, OSError) as exc:
        raise ArtefactError(f"{directory}: cannot load the bundle: {type(exc).__name__}: {exc}") from None
    return Bundle(directory, meta, forward, gfa, cgan, reference, legacy=legacy)
