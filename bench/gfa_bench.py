"""GFA surrogate benchmark: glass-vs-crystal, BMG-vs-rest and Dmax on unseen chemical systems.

    .venv/bin/python bench/gfa_bench.py [--data PATH] [--quick] [--n-jobs 1] [--folds 5]

Data: ``--data``, else ``$GLASSLOOP_GFA_DATASET``, else ``../shared/data/gfa_dev.csv`` next to the
repository. Prints one JSON document.

Protocol
--------
* Outer: ``--folds`` (5) folds grouped by chemical system (:func:`ml.gfa.system_folds`): no
  system is on both sides, so every score is for systems the model never saw.
* Every choice is made inside the outer training rows: each candidate configuration
  (:data:`CANDIDATES`) is fitted on the outer training rows, and :class:`ml.gfa.GFAModel` scores
  itself there on its own inner folds (grouped by system; these also set its thresholds and
  its conformal Dmax interval). The candidate with the best inner score (glass AUC + BMG AUC −
  Dmax MAE in log10 mm) is kept and scored on the outer test rows once. The outer scores are
  never used to choose anything.
* Scores: ROC-AUC and F1 of glass (ribbon or BMG) vs crystal and of BMG vs the rest (F1 at the
  model's inner-fold threshold); Dmax MAE in log10 mm on the test BMGs with a reported Dmax, and
  the share of those inside the 80 % interval. Pooled over the outer folds (and per fold).
* Baselines on the same outer folds: XGBoost on atomic fractions only; XGBoost on Magpie-like
  features (composition-weighted means / spreads and min / max / range of the element
  properties, ΔH_mix, δ: D2 + element statistics, no fractions); the median guess for Dmax.
  Both XGBoost baselines use threshold 0.5 and no resampling, Dmax as a plain regression of
  log10 Dmax on the BMGs with a reported value.
* How the defaults came about: GFAModel's defaults (feature blocks, ribbons out of the Dmax head,
  the σ grid, tree sizes) were set by looking only at inner-fold scores on the *training* rows
  of outer fold 0 (4 system folds inside them). Those rows hold the test rows of outer folds
  1–4, so their outer scores carry a mild optimism; fold 0's outer score (in "folds") does not.
* Measured (commit of 2026-12-01, 5 outer system folds, seed 0; pooled over folds):
  GFAModel glass AUC 0.878 / F1 0.893, BMG AUC 0.981 / F1 0.884, Dmax MAE 0.202 log10 mm with
  80 % interval coverage 0.841 (per fold 0.72–0.91); XGBoost on fractions 0.846 / 0.886,
  0.968 / 0.833, 0.217; XGBoost on Magpie-like features 0.884 / 0.905, 0.975 / 0.853, 0.207;
  median Dmax 0.283. One full fit: 16.6 s CPU (single thread), 31 s wall at load average 4.7,
  peak RSS 589 MB (of which ~500 MB the process held before the fit). Bench 333 s.
  The glass goals (0.97 / 0.95) are out of reach on unseen systems with this table: see the
  development notes in :mod:`ml.gfa` (within mixed systems even same-system neighbours give
  AUC 0.86); the outsider's 0.96 for Magpie XGBoost does not reproduce under system grouping.
* Cost: wall seconds, CPU seconds (the wall time depends on what else the shared machine runs;
  the 1-minute load average is reported beside it) and peak resident memory (``resource.getrusage``, the process maximum so far,
  so measured in a fresh child process) of one full fit of the default on all rows, with
  ``--n-jobs`` threads (1 by default: on the shared 2-core machine two OpenMP threads competing
  with other processes made the full fit ~5× slower, 94 s against ~20 s).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from ml.datasets import gfa_dataset_path  # noqa: E402
from ml.gfa import GFAModel, element_stats, prepare_gfa, system_folds  # noqa: E402

# Candidate configurations chosen between on inner folds (the first is GFAModel's default).
CANDIDATES = (
    {},
    {"fractions": False},  # no atomic-fraction (D1) columns: element identity only through properties
)
QUICK = {"n_estimators": 30, "dmax_n_estimators": 30, "max_depth": 3, "inner_folds": 2}


def data_path(arg: str | None = None) -> Path:
    return gfa_dataset_path(arg)


def load(path) -> "GFAData":  # noqa: F821
    from ml.dataprep import read_csv

    return prepare_gfa(read_csv(str(path)))


# ------------------------------------------------------------------------------ metrics


def _auc(y, p) -> float:
    from sklearn.metrics import roc_auc_score

    y = np.asarray(y)
    return float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else float("nan")


def _f1(y, pred) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(np.asarray(y, dtype=int), np.asarray(pred, dtype=int), zero_division=0))


def bmg_points(data) -> np.ndarray:
    """Rows that are BMGs with a reported (point) Dmax."""
    return (data.bmg == 1) & (data.dmax_low_mm == data.dmax_high_mm) & (data.dmax_low_mm > 0)


def scores(data, p_glass, p_bmg, t_glass, t_bmg, dmax=None, low=None, high=None) -> dict:
    g = np.isfinite(data.glass)
    b = np.isfinite(data.bmg)
    p_glass, p_bmg = np.asarray(p_glass, dtype=float), np.asarray(p_bmg, dtype=float)
    t_glass = np.broadcast_to(np.asarray(t_glass, dtype=float), p_glass.shape)  # a cut, or one per row
    t_bmg = np.broadcast_to(np.asarray(t_bmg, dtype=float), p_bmg.shape)
    out = {
        "glass_auc": _auc(data.glass[g], p_glass[g]),
        "glass_f1": _f1(data.glass[g], p_glass[g] >= t_glass[g]),
        "bmg_auc": _auc(data.bmg[b], p_bmg[b]),
        "bmg_f1": _f1(data.bmg[b], p_bmg[b] >= t_bmg[b]),
        "n_glass_scored": int(g.sum()), "n_bmg_scored": int(b.sum()),
    }
    if dmax is not None:
        m = bmg_points(data)
        truth = np.log10(data.dmax_low_mm[m])
        out["dmax_mae_log10"] = float(np.mean(np.abs(np.log10(np.asarray(dmax)[m]) - truth))) if m.any() else float("nan")
        out["n_dmax_scored"] = int(m.sum())
        if low is not None:
            d = data.dmax_low_mm[m]
            out["dmax_coverage"] = float(np.mean((np.asarray(low)[m] <= d) & (d <= np.asarray(high)[m]))) if m.any() else float("nan")
    return out


def _round(d):
    if isinstance(d, dict):
        return {k: _round(v) for k, v in d.items()}
    if isinstance(d, list):
        return [_round(v) for v in d]
    if isinstance(d, float):
        return None if not np.isfinite(d) else round(d, 4)
    return d


# ------------------------------------------------------------------------------ GFA model CV


def inner_score(model) -> float:
    c = model.calibration_
    mae = c.get("dmax_oof_mae_log10", 1.0)
    return float(np.nan_to_num(c.get("p_glass_oof_auc", 0.0)) + np.nan_to_num(c.get("p_bmg_oof_auc", 0.0)) - mae)


def outer_cv(data, n_splits: int = 5, seed: int = 0, candidates=CANDIDATES, base: dict | None = None,
             n_jobs: int = 1) -> dict:
    """Nested CV of GFAModel (see the module docstring); returns pooled + per-fold scores."""
    base = dict(base or {})
    n = len(data)
    pred = {k: np.full(n, np.nan) for k in ("p_glass", "p_bmg", "dmax_mm", "dmax_low_mm", "dmax_high_mm")}
    t_glass, t_bmg = np.full(n, 0.5), np.full(n, 0.5)
    folds = []
    for f, (tr, te) in enumerate(system_folds(data.systems, n_splits, seed)):
        train, test = data.subset(tr), data.subset(te)
        tried = []
        best = None
        for cand in candidates:
            t0 = time.perf_counter()
            m = GFAModel(seed=seed, n_jobs=n_jobs, **{**base, **cand}).fit(train)
            s = inner_score(m)
            tried.append({"config": cand, "inner_score": s, "inner": m.calibration_,
                          "fit_s": time.perf_counter() - t0})
            if best is None or s > best[0]:
                best = (s, cand, m)
        _, cand, m = best
        out = m.predict(test.compositions)
        for k in pred:
            pred[k][te] = out[k]
        t_glass[te], t_bmg[te] = m.threshold_glass_, m.threshold_bmg_
        fold_scores = scores(test, out["p_glass"], out["p_bmg"], m.threshold_glass_, m.threshold_bmg_,
                             out["dmax_mm"], out["dmax_low_mm"], out["dmax_high_mm"])
        folds.append({"fold": f, "n_train": len(tr), "n_test": len(te), "chosen": cand, "candidates": tried,
                      "outer": fold_scores})
    pooled = scores(data, pred["p_glass"], pred["p_bmg"], t_glass, t_bmg, pred["dmax_mm"], pred["dmax_low_mm"],
                    pred["dmax_high_mm"])
    return {"pooled": pooled, "folds": folds}


# ------------------------------------------------------------------------------ baselines


def _fractions(data):
    vocab = sorted({el for c in data.compositions for el in c})
    from ml.descriptors import fractions_matrix

    return fractions_matrix(data.compositions, vocab), vocab


def baseline_features(data, kind: str) -> np.ndarray:
    X, vocab = _fractions(data)
    if kind == "fractions":
        return X
    from ml.descriptors import Featurizer

    f = Featurizer("D2", vocab).fit()
    d = f.to_dict()
    props = {p: np.asarray(v) for p, v in d["element_properties"].items()}
    return np.hstack([f.transform_fractions(X), element_stats(X, props, np.asarray(d["mixing_enthalpy_kj_mol"]))])


def baselines(data, n_splits: int = 5, seed: int = 0, n_estimators: int = 300, n_jobs: int = 1) -> dict:
    import xgboost as xgb

    params = dict(n_estimators=n_estimators, max_depth=6, learning_rate=0.05, subsample=0.8, colsample_bytree=0.8,
                  tree_method="hist", n_jobs=n_jobs, random_state=seed)
    folds = system_folds(data.systems, n_splits, seed)
    bp = bmg_points(data)
    out = {}
    for kind in ("fractions", "magpie"):
        F = baseline_features(data, kind)
        n = len(data)
        pg, pb, dm = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
        for tr, te in folds:
            for y, p in ((data.glass, pg), (data.bmg, pb)):
                m = tr[np.isfinite(y[tr])]
                clf = xgb.XGBClassifier(eval_metric="logloss", **params).fit(F[m], y[m].astype(int))
                p[te] = clf.predict_proba(F[te])[:, 1]
            m = tr[bp[tr]]
            reg = xgb.XGBRegressor(**params).fit(F[m], np.log10(data.dmax_low_mm[m]))
            dm[te] = 10 ** reg.predict(F[te])
        out[f"xgb_{kind}"] = scores(data, pg, pb, 0.5, 0.5, dm)
    med = np.full(len(data), np.nan)
    for tr, te in folds:
        med[te] = 10 ** np.median(np.log10(data.dmax_low_mm[tr[bp[tr]]]))
    m = bp
    out["median_dmax"] = {"dmax_mae_log10": float(np.mean(np.abs(np.log10(med[m]) - np.log10(data.dmax_low_mm[m]))))}
    return out


# ------------------------------------------------------------------------------ cost


def full_fit_cost(path, params: dict | None = None, n_jobs: int = 2) -> dict:
    """Seconds and peak RSS of one full fit on all rows, in a fresh process (so the peak is the fit's)."""
    code = (
        "import json,resource,sys,time; sys.path.insert(0, %r)\n"
        "from bench.gfa_bench import load\nfrom ml.gfa import GFAModel\n"
        "d = load(%r); base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "cpu = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_utime + resource.getrusage(resource.RUSAGE_SELF).ru_stime\n"
        "c = cpu(); t = time.perf_counter(); GFAModel(n_jobs=%d, **%r).fit(d); s = time.perf_counter() - t\n"
        "print(json.dumps({'fit_s': s, 'cpu_s': cpu() - c, 'load_avg_1min': __import__('os').getloadavg()[0],"
        " 'peak_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,"
        " 'peak_mb_before_fit': base / 1024, 'n_jobs': %d, 'rows': len(d)}))\n"
    ) % (str(REPO), str(path), n_jobs, dict(params or {}), n_jobs)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------ main


def run(path, quick: bool = False, n_splits: int = 5, seed: int = 0, n_jobs: int = 1, cost: bool = True) -> dict:
    t0 = time.perf_counter()
    data = load(path)
    base = QUICK if quick else {}
    cands = CANDIDATES[:1] if quick else CANDIDATES
    result = {
        "data": {"path": str(path), **{k: v for k, v in data.report.items() if k not in ("refused", "flagged")},
                 "flagged": len(data.report["flagged"]), "systems": len(set(data.systems))},
        "protocol": f"{n_splits}-fold CV grouped by chemical system; candidates chosen on inner folds",
        "gfa_model": outer_cv(data, n_splits, seed, cands, base, n_jobs),
        "baselines": baselines(data, n_splits, seed, 30 if quick else 300, n_jobs),
    }
    if cost:
        result["full_fit"] = full_fit_cost(path, base, n_jobs=n_jobs)
    result["goals"] = goals(result["gfa_model"]["pooled"], result.get("full_fit"))
    result["bench_s"] = time.perf_counter() - t0
    return _round(result)


GOALS = {"glass_auc": 0.97, "glass_f1": 0.95, "bmg_auc": 0.98, "bmg_f1": 0.90, "dmax_mae_log10": 0.20}


def goals(pooled: dict, cost: dict | None) -> dict:
    out = {}
    for k, g in GOALS.items():
        v = pooled.get(k)
        ok = v is not None and np.isfinite(v) and (v <= g if k == "dmax_mae_log10" else v >= g)
        out[k] = {"goal": g, "value": v, "met": bool(ok)}
    cov = pooled.get("dmax_coverage")
    out["dmax_coverage"] = {"goal": [0.75, 0.85], "value": cov,
                            "met": bool(cov is not None and np.isfinite(cov) and 0.75 <= cov <= 0.85)}
    if cost:
        out["fit_s"] = {"goal": 30, "value": cost["fit_s"], "met": cost["fit_s"] <= 30}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None)
    ap.add_argument("--quick", action="store_true", help="tiny models, one candidate (for tests)")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-jobs", type=int, default=1)
    ap.add_argument("--no-cost", action="store_true", help="skip the full-fit timing")
    args = ap.parse_args(argv)
    path = data_path(args.data)
    if not path.exists():
        print(json.dumps({"error": f"data file not found: {path} (use --data or GLASSLOOP_GFA_DATASET)"}))
        return 2
    print(json.dumps(run(path, args.quick, args.folds, args.seed, args.n_jobs, not args.no_cost), indent=1,
                     ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
