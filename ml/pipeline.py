"""Fit everything, save/load a model bundle, predict and generate.

``fit_bundle(df, out_dir, epochs, seed, descriptors, progress=None)``:

1. :func:`ml.dataprep.prepare` (cleaning report kept in the bundle);
2. one grouped validation split (20 % of alloys, by composition key, fixed by ``seed``):
   a one-member forward model and the surrogate are fitted on the other 80 % and scored on
   it (these are the bundle's ``metrics``; the design loop compares versions on them);
   the CGAN trains on the 80 % and early-stops on the validation Wasserstein distance;
3. the forward model (full ensemble) and the surrogate are refitted on all alloys;
4. everything is written to ``out_dir`` (see :mod:`ml.artefacts`).

``load_bundle(dir) -> Bundle`` with ``predict(compositions)``, ``predict_texts(texts)``
(per-row errors, nothing dropped), ``generate(targets, n, seed)`` and ``metadata``.
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
from ml.dataprep import PreparedData, data_hash, grouped_split, prepare
from ml.inverse_design import Target, TrainingReference, design
from ml.forward import ForwardModel
from ml.gan import CGAN, GAN, fractions_matrix, set_torch_threads
from ml.surrogate import GFASurrogate, labels_from_trg

Progress = Callable[[str, dict], None]


def _labels(data: PreparedData) -> np.ndarray:
    """Trg ≥ 0.60 labels; explicit lab verdicts (column ``label``) override them."""
    lab = labels_from_trg(data.tg_k, data.tl_k)
    if data.labels is not None:
        explicit = np.isfinite(data.labels)
        lab = np.where(explicit, data.labels, lab).astype(int)
    return lab


def fit_bundle(df, out_dir: str, epochs: int = 600, seed: int = 0, descriptors: str = "D1",
               progress: Progress | None = None, gan_params: dict | None = None,
               forward_params: dict | None = None) -> "Bundle":
    set_torch_threads(1)
    t0 = time.perf_counter()
    say = progress or (lambda stage, info: None)
    data = prepare(df)
    if len(data) < 10:
        raise ValueError(f"only {len(data)} usable alloys after cleaning; need at least 10 to fit")
    say("data", {"report": data.report})
    labels = _labels(data)
    tr, va = grouped_split(data.keys, 0.2, seed)
    train, val = data.subset(tr), data.subset(va)

    from ml.metrics import classification_metrics, regression_metrics

    fp = dict(forward_params or {})
    # unfitted templates: the validation fits and the final refits are clones of them (the
    # validation forward model with one member); a bad parameter is refused by the first fit
    forward_template = ForwardModel(seed=seed, **fp)
    surrogate_template = GFASurrogate(seed=seed)
    say("validate-forward", {})
    fv = clone(forward_template).set_params(n_members=1).fit(train.compositions, train.y)
    pv = fv.predict(val.compositions)
    metrics: dict[str, Any] = {"validation_split": {"n_train": len(tr), "n_validation": len(va), "seed": seed}}
    for j, (name, key) in enumerate((("Tg_K", "tg_k"), ("Tx_K", "tx_k"), ("Tl_K", "tl_k"))):
        metrics[name] = regression_metrics(val.y[:, j], pv[key])
    metrics["Trg"] = regression_metrics(val.tg_k / val.tl_k, pv["trg"])
    metrics["gamma"] = regression_metrics(val.tx_k / (val.tg_k + val.tl_k), pv["gamma"])
    say("validate-surrogate", {})
    if len(np.unique(labels[tr])) == 2:
        sv = clone(surrogate_template).fit(train.compositions, labels[tr], trg=train.tg_k / train.tl_k)
        metrics["surrogate"] = classification_metrics(labels[va], sv.predict(val.compositions))
    else:
        metrics["surrogate"] = None

    say("cgan", {"epochs": epochs})
    gp = {"epochs": epochs, "seed": seed, "descriptor_set": descriptors, **(gan_params or {})}
    vocab = sorted({e for c in data.compositions for e in c})
    cgan = CGAN(vocabulary=vocab, **gp)
    X_all = fractions_matrix(data.compositions, vocab)
    cb = (lambda e, d, g, w: say("cgan-epoch", {"epoch": e, "d_loss": d, "g_loss": g, "val_wasserstein": w}))
    cgan.fit(X_all[tr], train.y, callback=cb, validation=(X_all[va], val.y))
    metrics["cgan"] = {"best_val_wasserstein": cgan.history_.best_val_wasserstein,
                       "best_epoch": cgan.history_.best_epoch, "epochs_run": cgan.history_.epochs,
                       "stopped_early": cgan.history_.stopped_early}

    say("forward", {})
    forward = clone(forward_template).fit(data.compositions, data.y)
    say("surrogate", {})
    surrogate = clone(surrogate_template).fit(data.compositions, labels, trg=data.tg_k / data.tl_k)

    os.makedirs(out_dir, exist_ok=True)
    fstate = forward.save(out_dir)
    sstate = surrogate.save(out_dir)
    cgan.save(os.path.join(out_dir, "cgan.pt"))
    np.savez(os.path.join(out_dir, "reference.npz"), fractions=X_all)
    files = fstate["model_files"] + [fstate["arrays_file"], sstate["model_file"], sstate["arrays_file"],
                                     "cgan.pt", "reference.npz"]
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
        "metrics": _json_safe(metrics),
        "fit_seconds": round(fit_s, 2),
        "files": files,
        "components": {"forward": fstate, "surrogate": sstate, "cgan": cgan.state()},
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
    def __init__(self, directory: str, metadata: dict, forward: ForwardModel, surrogate: GFASurrogate,
                 cgan: GAN, reference: TrainingReference):
        self.directory = directory
        self.metadata = metadata
        self.forward = forward
        self.surrogate = surrogate
        self.cgan = cgan
        self.reference = reference

    def predict(self, compositions: Sequence[Composition]) -> dict[str, np.ndarray]:
        """Forward predictions + ``p_glass`` for parsed compositions (elements outside the
        descriptor vocabulary raise ValueError; use :meth:`predict_texts` for per-row errors)."""
        X = self.forward.features_.fractions(compositions)
        out = self.forward.predict_fractions(X)
        Xs = self.surrogate.features_.fractions(compositions)
        out["p_glass"] = self.surrogate.predict_proba_fractions(Xs)
        return out

    def predict_texts(self, texts: Sequence[str]) -> tuple[dict[str, np.ndarray], list[str | None]]:
        """Predict for raw strings; refused rows get NaN and an error message (same order)."""
        errors: list[str | None] = [None] * len(texts)
        comps: list[Composition | None] = [None] * len(texts)
        vocab = set(self.forward.vocabulary_) & set(self.surrogate.features_.vocabulary_)
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
        result: dict[str, np.ndarray] = {}
        if ok:
            pred = self.predict([comps[i] for i in ok])
            for k, v in pred.items():
                full = np.full(len(texts), np.nan)
                full[ok] = v
                result[k] = full
        else:
            for k in ("tg_k", "tg_std", "tx_k", "tx_std", "tl_k", "tl_std", "trg", "trg_std", "gamma",
                      "gamma_std", "dtx_k", "p_glass"):
                result[k] = np.full(len(texts), np.nan)
        return result, errors

    def generate(self, targets: Sequence[Target] | Target, n: int, seed: int = 0, oversample: int = 20) -> list[dict]:
        if isinstance(targets, Target):
            targets = [targets]
        return [design(t, n, self.cgan, self.forward, self.surrogate, self.reference,
                       seed=seed + i, oversample=oversample) for i, t in enumerate(targets)]


def load_bundle(directory: str) -> Bundle:
    meta = read_metadata(directory)
    try:
        comp = meta["components"]
        forward = ForwardModel.load(directory, comp["forward"])
        surrogate = GFASurrogate.load(directory, comp["surrogate"])
        cgan = GAN.from_state(comp["cgan"], os.path.join(directory, "cgan.pt"))
        with np.load(os.path.join(directory, "reference.npz")) as z:
            X = z["fractions"]
        formulas = meta["training_data"]["keys_formulas"]
        if X.shape != (len(formulas), len(cgan.vocabulary_)):
            raise ArtefactError(f"{directory}: reference.npz does not match the metadata")
        reference = TrainingReference(list(cgan.vocabulary_), X, formulas)
    except ArtefactError:
        raise
    except (KeyError, TypeError, ValueError, RuntimeError, OSError) as exc:
        raise ArtefactError(f"{directory}: cannot load the bundle: {type(exc).__name__}: {exc}") from None
    return Bundle(directory, meta, forward, surrogate, cgan, reference)
