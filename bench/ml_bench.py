"""ML benchmark on the shared literature set: prints ONE JSON object on stdout.

    .venv/bin/python bench/ml_bench.py [--data CSV] [--folds 5] [--epochs 600] [--split-seeds 1,2,3]
        [--gan-folds 0,1,2,3,4] [--gan-seeds 0] [--targets 20] [--quick]

Data path: --data, else $GLASSLOOP_DATASET, else ../shared/data/bmg_literature_dev.csv
relative to the repo. Splits are grouped by composition key (ml.dataprep.grouped_kfold).

* forward: pooled out-of-fold MAE/MAPE/R² (Tg, Tx, Tl) and R² (Trg, γ heads) over all folds,
  next to a 3-NN (inverse-distance, L1 on fractions) baseline on the same folds;
* surrogate: grouped stratified CV (same number of folds), SMOTE inside the training folds;
* other splits: forward and surrogate CV again on ``--split-seeds`` fold assignments (goals
  checked on the mean too: one assignment moved Tl MAE by ±0.7 K and R² Trg by ±0.012);
* leaky reference: the same forward model and surrogate on rows split at random (copies of a
  test alloy in training, as a paper's random split would have them) — for reading the
  papers' figures, never a result;
* generators: CGAN and unconditional GAN on every ``--gan-folds`` fold for each ``--gan-seeds``
  seed (W = mean of three sample draws), and an AlloyGAN-style reference on fold 0
  (BCE, 5-d noise, 512 hidden, plain softmax, Adam 2e-4, 200 epochs, no EMA), each trained on
  the training part (early stopping on an inner 10 % grouped split, not on the held-out
  fold); Wasserstein distance (fractions, Euclidean cost) of their samples vs the held-out
  fold, next to the floor W(train, held-out);
* inverse design (fold 0): targets = ``--targets`` (20) held-out alloys' (Tg, Tx, Tl) + the
  AlloyGAN paper's Zr target (5 targets were too few: which alloys were drawn decided the
  median error); shares on the generated set (after the chemistry guard and top-up to distinct
  compositions, before ranking: ``raw_*``), on the network's own draws (``network_*``) and on
  the returned top-n; errors vs the forward model;
* speed: wall time and peak RSS of fit_bundle on all data, compositions/s for predict and
  generate (with scoring). Timings are pessimistic: the 2 cores are shared with other jobs.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ml.datasets import literature_dataset_path  # noqa: E402
from ml.dataprep import grouped_kfold, grouped_split, prepare, read_csv  # noqa: E402
from ml.inverse_design import TrainingReference, design, make_target  # noqa: E402
from ml.forward import ALLOY_ELEMENTS, ForwardModel, KnnBlock, targets_from_y  # noqa: E402
from ml.gan import CGAN, GAN, fractions_matrix, set_torch_threads  # noqa: E402
from ml.metrics import classification_metrics, regression_metrics, wasserstein  # noqa: E402
from ml.pipeline import fit_bundle  # noqa: E402
from ml.surrogate import TRG_THRESHOLD, GFASurrogate, cross_validate, labels_from_trg  # noqa: E402


def dataset_path(arg: str | None) -> str:
    return str(literature_dataset_path(arg))


def r(x, nd=4):
    if isinstance(x, dict):
        return {k: r(v, nd) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [r(v, nd) for v in x]
    if isinstance(x, (float, np.floating)):
        return None if not np.isfinite(x) else round(float(x), nd)
    if isinstance(x, np.integer):
        return int(x)
    return x


HEADLINE = ("Tg_K", "Tx_K", "Tl_K", "Trg", "gamma")  # columns of targets_from_y and forward_oof
# The goals on the headline figures: (goal name, figure, limit); MAE (K) must not
# exceed the limit, R² and F1 must reach it.
GOALS = (("Tg_mae_le_10", "Tg_K", 10), ("Tx_mae_le_12", "Tx_K", 12), ("Tl_mae_le_20", "Tl_K", 20),
         ("Trg_r2_ge_0.80", "Trg", 0.80), ("gamma_r2_ge_0.85", "gamma", 0.85), ("f1_ge_0.92", "f1", 0.92))


def headline(T: np.ndarray, P: np.ndarray, f1: float) -> dict:
    """MAE for Tg/Tx/Tl, R² for Trg/γ (columns of T and P in that order), and the surrogate F1."""
    return {**{n: regression_metrics(T[:, j], P[:, j])["mae" if n.endswith("_K") else "r2"] for j, n in enumerate(HEADLINE)},
            "f1": f1}


def goals_met(figures: dict) -> dict:
    return {goal: figures[key] <= limit if key.endswith("_K") else figures[key] >= limit for goal, key, limit in GOALS}


def f1_of_noisy_trg(trg: np.ndarray, r2: float, seed: int = 0, reps: int = 200) -> float:
    """Mean F1 of the label ``Trg ≥ 0.60`` predicted by thresholding an estimate of Trg whose
    error is Gaussian with the variance an R² of ``r2`` leaves, σ = sd(Trg)·sqrt(1 − r2); the
    cut is chosen afterwards on the same rows (0.58–0.62), so this is a ceiling. The label is
    a threshold on Trg, so no classifier can know the class better than Trg is known."""
    trg = np.asarray(trg, dtype=float)
    y = (trg >= TRG_THRESHOLD).astype(int)
    sigma = trg.std() * np.sqrt(max(0.0, 1.0 - r2))
    rng = np.random.default_rng(seed)
    cuts = TRG_THRESHOLD + np.arange(-0.02, 0.0201, 0.0025)
    best = [max(classification_metrics(y, (est >= c).astype(int))["f1"] for c in cuts)
            for est in (trg + rng.normal(0.0, sigma, trg.size) for _ in range(reps))]
    return float(np.mean(best))


def r2_needed_for_f1(trg: np.ndarray, f1_goal: float, seed: int = 0) -> float:
    """Smallest Trg R² whose :func:`f1_of_noisy_trg` reaches ``f1_goal`` (bisection, ±0.002)."""
    lo, hi = 0.0, 0.999
    while hi - lo > 0.002:
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if f1_of_noisy_trg(trg, mid, seed, reps=50) >= f1_goal else (mid, hi)
    return hi


def forward_oof(data, folds, seed: int, params: dict) -> np.ndarray:
    """Out-of-fold (Tg, Tx, Tl, Trg, γ) predictions of the forward model; rows outside every
    test fold stay NaN."""
    P = np.full((len(data), 5), np.nan)
    for tr, te in folds:
        fm = ForwardModel(seed=seed, **params).fit([data.compositions[i] for i in tr], data.y[tr])
        pred = fm.predict([data.compositions[i] for i in te])
        P[te] = np.column_stack([pred[k] for k in ("tg_k", "tx_k", "tl_k", "trg", "gamma")])
    return P


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=600)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--gan-seeds", default="0", help="seeds for the CGAN-vs-GAN comparison (comma-separated)")
    ap.add_argument("--gan-folds", default="0,1,2,3,4", help="folds for the CGAN-vs-GAN comparison (fold 0 always)")
    ap.add_argument("--split-seeds", default="1,2,3",
                    help="further fold assignments for the forward/surrogate CV (comma-separated; '' for none)")
    ap.add_argument("--targets", type=int, default=20,
                    help="held-out alloys used as inverse-design targets (fold 0), besides the AlloyGAN Zr target")
    ap.add_argument("--quick", action="store_true", help="fewer trees/epochs, no reference GAN, fold 0 only")
    args = ap.parse_args()
    set_torch_threads(1)
    path = dataset_path(args.data)
    if not os.path.isfile(path):
        print(json.dumps({"error": f"data set not found: {path}"}))
        return 2
    t_all = time.perf_counter()
    table = read_csv(path)
    data = prepare(table)
    out: dict = {"data": {"path": path, **{k: data.report[k] for k in
                 ("rows_in", "rows_refused", "rows_dropped", "alloys", "duplicate_keys", "max_spread_K")}},
                 "folds": args.folds, "quick": args.quick}
    fparams = {"n_estimators": 150, "n_members": 1} if args.quick else {}
    epochs = min(args.epochs, 80) if args.quick else args.epochs
    folds = grouped_kfold(data.keys, args.folds, args.seed)
    eval_folds = folds[:1] if args.quick else folds
    T = targets_from_y(data.y)

    # ---- forward model + 3-NN baseline
    t0 = time.perf_counter()
    te_all = np.concatenate([te for _, te in eval_folds])
    P = forward_oof(data, eval_folds, args.seed, fparams)[te_all]
    fwd_s = time.perf_counter() - t0
    # the forward model's own vocabulary: column order decides ties among equidistant neighbours
    X = fractions_matrix(data.compositions, sorted({e for c in data.compositions for e in c} | set(ALLOY_ELEMENTS)))
    B = np.vstack([KnnBlock(3).fit(X[tr], T[tr]).transform(X[te])[:, :5] for tr, te in eval_folds])
    names = HEADLINE
    forward = {n: regression_metrics(T[te_all, j], P[:, j]) for j, n in enumerate(names)}
    forward["Trg_from_ratio_r2"] = regression_metrics(T[te_all, 3], P[:, 0] / P[:, 2])["r2"]
    forward["gamma_from_ratio_r2"] = regression_metrics(T[te_all, 4], P[:, 1] / (P[:, 0] + P[:, 2]))["r2"]
    baseline = {n: regression_metrics(T[te_all, j], B[:, j]) for j, n in enumerate(names)}
    out["forward"] = {n: {k: v for k, v in m.items() if k in ("mae", "mape", "r2")} if isinstance(m, dict) else m
                      for n, m in forward.items()}
    out["forward"]["cv_seconds"] = fwd_s
    out["baseline_3nn"] = {n: {k: v for k, v in m.items() if k in ("mae", "r2")} for n, m in baseline.items()}

    # ---- surrogate
    labels = labels_from_trg(data.tg_k, data.tl_k)
    t0 = time.perf_counter()
    cv = cross_validate(data.compositions, labels, data.keys, n_splits=args.folds, seed=args.seed,
                        trg=data.tg_k / data.tl_k)
    m = cv["metrics"]
    out["surrogate"] = {"precision": m["precision"], "recall": m["recall"], "f1": m["f1"], "accuracy": m["accuracy"],
                        "positive_share": float(labels.mean()), "cv_seconds": time.perf_counter() - t0,
                        "smote_confined_to_train": all(f["validation_rows_in_resampled"] == 0 and
                                                       f["originals_are_train_rows"] for f in cv["folds"])}
    # how far F1 can go when Trg is known only as well as a regression knows it (the label is a
    # threshold on Trg): measured R², the Trg goal, and the R² an F1 of 0.92 would need
    trg_r2 = regression_metrics(T[te_all, 3], P[:, 3])["r2"]
    out["surrogate"]["f1_ceiling_from_trg_error"] = {
        "note": "mean best-cut F1 of thresholding a Trg estimate with Gaussian error of the given R²",
        f"at_measured_oof_r2_{trg_r2:.3f}": f1_of_noisy_trg(T[:, 3], trg_r2, args.seed),
        "at_r2_0.80": f1_of_noisy_trg(T[:, 3], 0.80, args.seed),
        "r2_needed_for_f1_0.92": r2_needed_for_f1(T[:, 3], 0.92, args.seed),
        "oof_forward_trg_thresholded_f1": classification_metrics(
            labels[te_all], (P[:, 3] >= TRG_THRESHOLD).astype(int))["f1"]}
    first = headline(T[te_all], P, m["f1"])
    met = goals_met(first)
    out["goals_forward"] = {goal: ok for goal, ok in met.items() if goal != "f1_ge_0.92"}
    out["goals_surrogate"] = {"f1_ge_0.92": met["f1_ge_0.92"]}

    # ---- how much of the above is the luck of one fold assignment: the same CV on other ones
    split_seeds = [] if args.quick else [int(s) for s in args.split_seeds.split(",") if s.strip()]
    if split_seeds:
        per_split = [{"seed": args.seed, **first}]
        for s in split_seeds:
            PS = forward_oof(data, grouped_kfold(data.keys, args.folds, s), args.seed, fparams)
            f1 = cross_validate(data.compositions, labels, data.keys, n_splits=args.folds, seed=s,
                                trg=data.tg_k / data.tl_k)["metrics"]["f1"]
            per_split.append({"seed": s, **headline(T, PS, f1)})
        mean = {k: float(np.mean([p[k] for p in per_split])) for k in first}
        out["other_splits"] = {"note": "MAE (K) for temperatures, R² for Trg/γ, surrogate F1; one row per fold assignment",
                               "per_split": per_split, "mean": mean}
        out["goals_on_mean_over_splits"] = goals_met(mean)

    # ---- the same models on a leaky protocol: rows (repeats of one alloy included) split at
    # random, so copies of a test alloy sit in training. Not a result: it shows how much of the
    # papers' figures (F1 ≈ 0.90, R² 0.74 / 0.80) such splits can explain.
    if not args.quick:
        rows = prepare(table, merge=False)
        row_folds = [(np.setdiff1d(np.arange(len(rows)), te), te) for te in
                     np.array_split(np.random.default_rng(args.seed).permutation(len(rows)), args.folds)]
        RP = forward_oof(rows, row_folds, args.seed, {})
        RT = targets_from_y(rows.y)
        row_labels = labels_from_trg(rows.tg_k, rows.tl_k)
        row_cv = cross_validate(rows.compositions, row_labels, [str(i) for i in range(len(rows))],
                                n_splits=args.folds, seed=args.seed, trg=rows.tg_k / rows.tl_k)["metrics"]
        out["leaky_random_row_split_reference"] = {
            "rows": len(rows), **{n: {k: v for k, v in regression_metrics(RT[:, j], RP[:, j]).items() if k in ("mae", "r2")}
                                  for j, n in enumerate(names)},
            "surrogate": {k: row_cv[k] for k in ("precision", "recall", "f1")}}

    # ---- generators: CGAN and GAN on every --gan-folds fold × --gan-seeds seed (one fold decides
    # little: with the same settings the CGAN/floor ratio ranged ~1.05–1.3 from fold to fold);
    # the AlloyGAN-style reference once, on fold 0, where inverse design runs too.
    vocab = sorted({e for c in data.compositions for e in c})
    X = fractions_matrix(data.compositions, vocab)
    gan_seeds = [args.seed] if args.quick else [int(s) for s in args.gan_seeds.split(",")]
    gan_folds = [0] if args.quick else sorted({0, *(int(f) for f in args.gan_folds.split(","))})
    configs = [(fold, name, klass, {}, s) for fold in gan_folds for s in gan_seeds
               for name, klass in (("cgan", CGAN), ("gan", GAN))]
    if not args.quick:
        configs.append((0, "reference_alloygan_bce", CGAN, {"loss": "bce", "noise_dim": 5, "hidden": 512, "tau": 1.0,
                                                            "lr": 2e-4, "epochs": 200, "val_every": 10_000,
                                                            "ema": 0.0}, args.seed))
    floors = {fold: wasserstein(X[folds[fold][0]], X[folds[fold][1]]) for fold in gan_folds}
    models = {}
    runs: dict[str, list[dict]] = {}
    for fold, name, klass, extra, gseed in configs:
        tr, te = folds[fold]
        n_eval = len(tr)
        cond_eval = np.tile(data.y[te], (int(np.ceil(n_eval / len(te))), 1))[:n_eval]
        t0 = time.perf_counter()
        itr, ival = grouped_split([data.keys[i] for i in tr], 0.1, gseed)  # early-stopping split
        fit_idx, es_idx = tr[itr], tr[ival]
        g = klass(vocabulary=vocab, **{"epochs": epochs, "seed": gseed, **extra})
        validation = None if extra.get("val_every") == 10_000 else (X[es_idx], data.y[es_idx])
        g.fit(X[fit_idx], data.y[fit_idx], validation=validation)
        # three sample draws per model: the estimate of W from ~630 samples varies by ~0.005
        ws, n_el = [], None
        for d in range(3):
            F = g.sample_fractions(n_eval, cond_eval if g.conditional else None, seed=gseed + 1 + d)
            ws.append(wasserstein(F, X[te]))
            n_el = (F > 0).sum(axis=1) if n_el is None else n_el
        runs.setdefault(name, []).append({
            "fold": fold, "seed": gseed, "wasserstein_vs_heldout": float(np.mean(ws)),
            "ratio_to_floor": float(np.mean(ws)) / floors[fold],
            "epochs_run": g.history_.epochs, "best_epoch": g.history_.best_epoch,
            "median_elements": float(np.median(n_el)), "share_2_to_8_elements": float(((n_el >= 2) & (n_el <= 8)).mean()),
            "train_seconds": time.perf_counter() - t0})
        if fold == 0 and (name not in models or gseed == args.seed):
            models[name] = g
    gens: dict = {"floor_train_vs_heldout": floors, "folds": gan_folds, "seeds": gan_seeds}
    for name, rs in runs.items():
        gens[name] = {"runs": rs, "mean_ratio_to_floor": float(np.mean([r["ratio_to_floor"] for r in rs])),
                      "worst_ratio_to_floor": float(np.max([r["ratio_to_floor"] for r in rs]))}
    out["generators"] = gens
    pairs = list(zip(runs["cgan"], runs["gan"]))  # same (fold, seed) order
    out["goals_generators"] = {
        "cgan_within_1.25x_floor_every_run": all(c["ratio_to_floor"] <= 1.25 for c, _ in pairs),
        "cgan_below_gan_every_run": all(c["wasserstein_vs_heldout"] < g["wasserstein_vs_heldout"] for c, g in pairs),
        "cgan_within_1.25x_floor_on_average": gens["cgan"]["mean_ratio_to_floor"] <= 1.25,
        "cgan_below_gan_on_average": gens["cgan"]["mean_ratio_to_floor"] < gens["gan"]["mean_ratio_to_floor"]}

    # ---- inverse design on fold 0
    tr, te = folds[0]
    comps_tr = [data.compositions[i] for i in tr]
    fm0 = ForwardModel(seed=args.seed, **fparams).fit(comps_tr, data.y[tr])
    sur0 = GFASurrogate(seed=args.seed).fit(comps_tr, labels[tr], trg=data.tg_k[tr] / data.tl_k[tr])
    ref = TrainingReference(vocab, X[tr], [c.formula for c in comps_tr])
    rng = np.random.default_rng(args.seed)
    picks = rng.choice(te, size=min(args.targets, len(te)), replace=False)
    targets = [make_target({"Tg": 680, "Tx": 760, "Tl": 1120}, "alloygan_zr")]
    targets += [make_target({"Tg": data.y[i, 0], "Tx": data.y[i, 1], "Tl": data.y[i, 2]}, data.compositions[i].formula)
                for i in picks]
    inv = {}
    for name in ("cgan", "reference_alloygan_bce"):  # shares on RAW samples + the returned top-20
        if name not in models:
            continue
        per = []
        for k, t in enumerate(targets):
            # ours samples with the design default (sharpen=1.5); the reference as published (1.0)
            sharpen = 1.0 if name.startswith("reference") else 1.5
            res = design(t, 20, models[name], fm0, lambda cs: {"p_glass": sur0.predict_proba_glass(cs)}, ref, seed=args.seed + k, oversample=25, sharpen=sharpen)
            per.append({"target": t.id, **res["shares"], "selected": res["selected"]})
        agg = {key: float(np.mean([p[key] for p in per])) for key in
               ("raw_valid", "raw_unique", "raw_plausible", "raw_novel", "raw_median_elements",
                "network_plausible", "network_unique", "network_median_elements", "guard_changed_share",
                "guard_mean_l1_moved")}
        agg["draws_per_generated"] = float(np.mean([p["draws"] / max(p["n_generated"], 1) for p in per]))
        errs = [p["raw_median_rel_error_novel"] for p in per if p["raw_median_rel_error_novel"] is not None]
        sel = [p["selected"]["median_rel_error"] for p in per if p["selected"]["median_rel_error"] is not None]
        agg["raw_median_rel_error_novel (median over targets)"] = float(np.median(errs)) if errs else None
        agg["selected_median_rel_error (median over targets)"] = float(np.median(sel)) if sel else None
        agg["selected_returned_share"] = float(np.mean([p["selected"]["n_returned"] / 20 for p in per]))
        inv[name] = {"mean_over_targets": agg, "per_target": per}
    out["inverse_design_fold0"] = inv
    a = inv["cgan"]["mean_over_targets"]
    out["network_only"] = {"plausible": a["network_plausible"], "unique": a["network_unique"],
                           "note": "CGAN draws before the chemistry guard and the top-up to distinct rows"}
    out["goals_inverse_design_raw"] = {
        "plausible_ge_0.90": a["raw_plausible"] >= 0.90, "novel_ge_0.50": a["raw_novel"] >= 0.50,
        "valid_1.0": a["raw_valid"] == 1.0, "unique_1.0": a["raw_unique"] == 1.0,
        "median_error_novel_le_0.05": (a["raw_median_rel_error_novel (median over targets)"] or 1) <= 0.05}

    # ---- full fit, speed, memory
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        bundle = fit_bundle(table, tmp, epochs=epochs, seed=args.seed,
                            forward_params=fparams or None)
        fit_s = time.perf_counter() - t0
        many = (data.compositions * (10000 // len(data) + 1))[:10000]
        bundle.predict(many[:100])
        t0 = time.perf_counter()
        bundle.predict(many)
        pred_rate = len(many) / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        res = bundle.generate([targets[0]], 200, seed=1, oversample=25)
        gen_rate = res[0]["shares"]["n_raw"] / (time.perf_counter() - t0)
    out["speed"] = {"fit_bundle_seconds": fit_s, "fit_epochs_run": bundle.metadata["metrics"]["cgan"]["epochs_run"],
                    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                    "predict_compositions_per_s": pred_rate, "generate_scored_compositions_per_s": gen_rate,
                    "load_average_1min": os.getloadavg()[0]}
    out["goals_speed"] = {"fit_le_120s": fit_s <= 120, "memory_le_2gb": out["speed"]["peak_rss_mb"] <= 2048,
                          "predict_ge_5000_per_s": pred_rate >= 5000, "generate_ge_2000_per_s": gen_rate >= 2000}
    out["bench_seconds"] = time.perf_counter() - t_all
    print(json.dumps(r(out), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
