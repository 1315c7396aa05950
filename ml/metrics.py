r"""Distribution and model metrics for GlassLoop's ML core (pure Python, no Django).

* :func:`wasserstein` — W1 (earth mover's) distance between two point sets, POT.
* :func:`kl_divergence`, :func:`js_divergence` — on 2-D densities (see
  :func:`grid_densities` for how the densities are estimated).
* :class:`PCAMap` — 2-D PCA projection fitted on a reference set, plus a density map.
* :func:`regression_metrics`, :func:`classification_metrics`.
* :func:`nearest_distances` — nearest reference point (L1 on atomic fractions for novelty).

``import ot`` takes seconds (POT pulls in optional backends), so it is imported lazily.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

__all__ = [
    "wasserstein",
    "kl_divergence",
    "js_divergence",
    "grid_densities",
    "PCAMap",
    "regression_metrics",
    "classification_metrics",
    "nearest_distances",
]


def _as_points(X, name: str) -> np.ndarray:
    X = np.asarray(X, dtype=float)
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2:
        raise ValueError(f"{name} must be a 1-D or 2-D array, got shape {X.shape}")
    if X.shape[0] == 0:
        raise ValueError(f"{name} is empty")
    if not np.all(np.isfinite(X)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return X


def _subsample(X: np.ndarray, n_max: int, rng: np.random.Generator) -> np.ndarray:
    if X.shape[0] <= n_max:
        return X
    return X[np.sort(rng.choice(X.shape[0], n_max, replace=False))]


# ---------------------------------------------------------------------------------------
# Wasserstein


def wasserstein(
    X: np.ndarray,
    Y: np.ndarray,
    *,
    exact_max: int = 3000,
    reg: float = 0.005,
    seed: int = 0,
    sinkhorn_max: int = 5000,
) -> float:
    r"""Wasserstein-1 distance between the empirical distributions of point sets X and Y.

    Uniform weights on the points and Euclidean ground cost (``scipy.spatial.distance.cdist``;
    same as ``ot.dist(..., metric="euclidean")`` but computed directly rather than from the
    expanded squares, so identical sets give exactly 0), so for fractions the unit is
    "atomic fraction".

    * ``n, m <= exact_max``: exact optimal transport, ``ot.emd2`` (network simplex).
    * otherwise: entropic OT, ``ot.sinkhorn2`` with ``reg`` **relative to the largest
      cost** (the cost matrix is divided by its maximum, so ``reg=0.005`` means the same
      blur whatever the units); the returned value is the transport cost <γ, M> of the
      entropic plan, which slightly over-estimates W (~1-2 % at reg=0.005, ~5 % at 0.01,
      ~20 % at 0.02 on composition sets). A set
      larger than ``sinkhorn_max`` points is first subsampled uniformly without
      replacement with ``numpy.random.default_rng(seed)`` — deterministic for a seed.
    """
    import ot  # lazy: slow import
    from scipy.spatial.distance import cdist

    X = _as_points(X, "X")
    Y = _as_points(Y, "Y")
    if X.shape[1] != Y.shape[1]:
        raise ValueError(f"X and Y have different dimensions: {X.shape[1]} vs {Y.shape[1]}")
    if X.shape[0] <= exact_max and Y.shape[0] <= exact_max:
        a = np.full(X.shape[0], 1.0 / X.shape[0])
        b = np.full(Y.shape[0], 1.0 / Y.shape[0])
        M = cdist(X, Y, metric="euclidean")
        return float(ot.emd2(a, b, M, numItermax=10_000_000))
    rng = np.random.default_rng(seed)
    X = _subsample(X, sinkhorn_max, rng)
    Y = _subsample(Y, sinkhorn_max, rng)
    a = np.full(X.shape[0], 1.0 / X.shape[0])
    b = np.full(Y.shape[0], 1.0 / Y.shape[0])
    M = cdist(X, Y, metric="euclidean")
    scale = float(M.max())
    if scale == 0.0:
        return 0.0
    value = ot.sinkhorn2(a, b, M / scale, reg, numItermax=5000, stopThr=1e-6)
    return float(np.asarray(value).item()) * scale


# ---------------------------------------------------------------------------------------
# 2-D densities, KL and JS


def _scott_bandwidth(Z: np.ndarray, span: np.ndarray) -> np.ndarray:
    n, d = Z.shape
    sd = Z.std(axis=0, ddof=1) if n > 1 else np.zeros(d)
    h = sd * n ** (-1.0 / (d + 4))
    return np.maximum(h, 1e-3 * span)  # floor: degenerate (single-point / flat) axes


def _kde_on_grid(Z: np.ndarray, axes: list[np.ndarray], span: np.ndarray) -> np.ndarray:
    """Product Gaussian kernel density on the grid (separable, so it is a matrix product)."""
    h = _scott_bandwidth(Z, span)
    kernels = [np.exp(-0.5 * ((ax[:, None] - Z[None, :, j]) / h[j]) ** 2) / h[j] for j, ax in enumerate(axes)]
    if len(axes) == 1:
        dens = kernels[0].sum(axis=1)
    else:
        dens = kernels[0] @ kernels[1].T  # (G, G): [ix, iy]
    return dens / Z.shape[0]


def _hist_on_grid(Z: np.ndarray, edges: list[np.ndarray]) -> np.ndarray:
    counts, *_ = np.histogramdd(Z, bins=edges)
    return counts


def grid_densities(
    P_samples,
    Q_samples,
    *,
    bins: int = 50,
    method: str = "kde",
    projection: "PCAMap | None" = None,
) -> tuple[np.ndarray, np.ndarray]:
    r"""Discretised densities p, q (each sums to 1) of two sample sets on one shared grid.

    1. Projection to at most 2 dimensions: data with more than 2 columns are projected with
       ``projection`` if given, else with a :class:`PCAMap` fitted on P ∪ Q (so the
       result is symmetric in P and Q).
    2. Grid: ``bins`` points (or cells) per axis spanning the union's range padded by 10 %.
    3. ``method="kde"``: Gaussian product-kernel density, bandwidth by Scott's rule per
       axis, :math:`h_j = \sigma_j n^{-1/(d+4)}` (floored at 1e-3 of the span), evaluated at
       the grid points — like ``scipy.stats.gaussian_kde`` with a diagonal covariance, which
       is exact for the uncorrelated PCA axes of the pooled set.
       ``method="hist"``: counts in ``bins`` equal cells per axis.
    4. Each grid function is normalised to sum 1 over the grid.
    """
    P = _as_points(P_samples, "P_samples")
    Q = _as_points(Q_samples, "Q_samples")
    if P.shape[1] != Q.shape[1]:
        raise ValueError(f"P and Q have different dimensions: {P.shape[1]} vs {Q.shape[1]}")
    if method not in ("kde", "hist"):
        raise ValueError(f"method must be 'kde' or 'hist', not {method!r}")
    if bins < 2:
        raise ValueError("bins must be at least 2")
    if P.shape[1] > 2:
        pmap = projection if projection is not None else PCAMap().fit(np.vstack([P, Q]))
        P, Q = pmap.transform(P), pmap.transform(Q)
    both = np.vstack([P, Q])
    lo, hi = both.min(axis=0), both.max(axis=0)
    span = np.where(hi - lo > 0, hi - lo, 1.0)
    lo, hi = lo - 0.1 * span, hi + 0.1 * span
    if method == "kde":
        axes = [np.linspace(lo[j], hi[j], bins) for j in range(P.shape[1])]
        p, q = _kde_on_grid(P, axes, span), _kde_on_grid(Q, axes, span)
    else:
        edges = [np.linspace(lo[j], hi[j], bins + 1) for j in range(P.shape[1])]
        p, q = _hist_on_grid(P, edges), _hist_on_grid(Q, edges)
    return p / p.sum(), q / q.sum()


def kl_divergence(
    P_samples,
    Q_samples,
    *,
    bins: int = 50,
    method: str = "kde",
    eps: float = 1e-10,
    projection: "PCAMap | None" = None,
) -> float:
    r"""KL(P‖Q) = Σ p ln(p/q) in nats, on the grid densities of :func:`grid_densities`.

    Both grid densities get ``eps`` added to every cell and are renormalised, so the
    value is finite where Q has (numerically) no mass; it is then dominated by ``eps``
    and large — KL is not bounded; prefer :func:`js_divergence` to compare sets.
    """
    p, q = grid_densities(P_samples, Q_samples, bins=bins, method=method, projection=projection)
    p = (p + eps) / (1.0 + eps * p.size)
    q = (q + eps) / (1.0 + eps * q.size)
    return float(max(np.sum(p * np.log(p / q)), 0.0))


def js_divergence(
    P_samples,
    Q_samples,
    *,
    bins: int = 50,
    method: str = "kde",
    projection: "PCAMap | None" = None,
) -> float:
    r"""Jensen–Shannon divergence in nats (natural log): in [0, ln 2], symmetric.

    :math:`JS = \tfrac12 KL(p‖m) + \tfrac12 KL(q‖m)`, :math:`m = (p+q)/2`, on the grid
    densities of :func:`grid_densities` (no smoothing needed: m > 0 wherever p or q is).
    """
    p, q = grid_densities(P_samples, Q_samples, bins=bins, method=method, projection=projection)
    m = 0.5 * (p + q)

    def _kl(a: np.ndarray) -> float:
        mask = a > 0
        return float(np.sum(a[mask] * np.log(a[mask] / m[mask])))

    value = 0.5 * _kl(p) + 0.5 * _kl(q)
    return float(min(max(value, 0.0), np.log(2.0)))


# ---------------------------------------------------------------------------------------
# PCA map


class PCAMap:
    """2-D PCA projection fitted on a reference set; density maps for plots.

    ``scale``: ``"none"`` (default; right for atomic fractions, which share a unit),
    ``"standard"`` (z-scores) or ``"minmax"`` (to [0, 1], as Zhou et al. normalise
    descriptor matrices of mixed units). Constant columns are left unscaled.
    """

    def __init__(self, n_components: int = 2, scale: str = "none"):
        if scale not in ("none", "standard", "minmax"):
            raise ValueError(f"scale must be 'none', 'standard' or 'minmax', not {scale!r}")
        if n_components < 1:
            raise ValueError("n_components must be >= 1")
        self.n_components = n_components
        self.scale = scale

    def fit(self, X) -> "PCAMap":
        X = _as_points(X, "X")
        if self.scale == "standard":
            self.offset_ = X.mean(axis=0)
            s = X.std(axis=0)
        elif self.scale == "minmax":
            self.offset_ = X.min(axis=0)
            s = X.max(axis=0) - X.min(axis=0)
        else:
            self.offset_ = np.zeros(X.shape[1])
            s = np.ones(X.shape[1])
        self.scale_ = np.where(s > 0, s, 1.0)
        Xs = (X - self.offset_) / self.scale_
        self.mean_ = Xs.mean(axis=0)
        _, sv, vt = np.linalg.svd(Xs - self.mean_, full_matrices=False)
        k = min(self.n_components, vt.shape[0])
        comps = vt[:k]
        # sign convention: largest-magnitude loading positive (stable across refits)
        signs = np.sign(comps[np.arange(k), np.abs(comps).argmax(axis=1)])
        comps = comps * np.where(signs == 0, 1.0, signs)[:, None]
        if k < self.n_components:  # fewer directions than requested: pad with zeros
            comps = np.vstack([comps, np.zeros((self.n_components - k, comps.shape[1]))])
        self.components_ = comps
        var = sv**2 / max(X.shape[0] - 1, 1)
        total = var.sum()
        ratio = var[:k] / total if total > 0 else np.zeros(k)
        self.explained_variance_ratio_ = np.concatenate([ratio, np.zeros(self.n_components - k)])
        Z = self.transform(X)
        self.bounds_ = np.column_stack([Z.min(axis=0), Z.max(axis=0)])  # (n_components, 2)
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "components_"):
            raise RuntimeError("PCAMap is not fitted: call fit() or from_dict() first")

    def transform(self, X) -> np.ndarray:
        self._check_fitted()
        X = _as_points(X, "X")
        if X.shape[1] != self.components_.shape[1]:
            raise ValueError(f"X has {X.shape[1]} columns, the map was fitted on {self.components_.shape[1]}")
        return ((X - self.offset_) / self.scale_ - self.mean_) @ self.components_.T

    def density(self, X, grid_size: int = 100, bounds=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(xx, yy, zz) meshgrids of a Gaussian KDE of X's 2-D projection.

        ``scipy.stats.gaussian_kde`` (Scott's rule) on the projected points, evaluated on
        a ``grid_size``² grid over ``bounds`` ((x0, x1), (y0, y1)); default: the reference
        set's projected range padded by 10 %, so maps of different sets are comparable.
        Falls back to a diagonal-bandwidth product kernel when the projected points are
        degenerate (fewer than 3 points, or collinear). zz integrates to ~1 over the plane.
        """
        self._check_fitted()
        if self.n_components != 2:
            raise ValueError("density maps need a 2-component PCAMap")
        Z = self.transform(X)
        if bounds is None:
            lo, hi = self.bounds_[:, 0], self.bounds_[:, 1]
            span = np.where(hi - lo > 0, hi - lo, 1.0)
            lo, hi = lo - 0.1 * span, hi + 0.1 * span
        else:
            (x0, x1), (y0, y1) = bounds
            lo, hi = np.array([x0, y0], dtype=float), np.array([x1, y1], dtype=float)
        xs = np.linspace(lo[0], hi[0], grid_size)
        ys = np.linspace(lo[1], hi[1], grid_size)
        xx, yy = np.meshgrid(xs, ys)
        zz = None
        if Z.shape[0] >= 3:
            from scipy.stats import gaussian_kde

            try:
                kde = gaussian_kde(Z.T)
                zz = kde(np.vstack([xx.ravel(), yy.ravel()])).reshape(xx.shape)
            except (np.linalg.LinAlgError, ValueError):
                zz = None
        if zz is None:
            span = np.where(hi - lo > 0, hi - lo, 1.0)
            h = _scott_bandwidth(Z, span)
            kx = np.exp(-0.5 * ((xs[:, None] - Z[None, :, 0]) / h[0]) ** 2) / (h[0] * np.sqrt(2 * np.pi))
            ky = np.exp(-0.5 * ((ys[:, None] - Z[None, :, 1]) / h[1]) ** 2) / (h[1] * np.sqrt(2 * np.pi))
            zz = (ky @ kx.T) / Z.shape[0]  # rows: y, columns: x (meshgrid layout)
        return xx, yy, zz

    def to_dict(self) -> dict:
        self._check_fitted()
        return {
            "format": "glassloop.pcamap/1",
            "n_components": self.n_components,
            "scale": self.scale,
            "offset": self.offset_.tolist(),
            "scale_values": self.scale_.tolist(),
            "mean": self.mean_.tolist(),
            "components": self.components_.tolist(),
            "explained_variance_ratio": self.explained_variance_ratio_.tolist(),
            "bounds": self.bounds_.tolist(),
        }

    @classmethod
    def from_dict(cls, d: Mapping) -> "PCAMap":
        if d.get("format") != "glassloop.pcamap/1":
            raise ValueError(f"unsupported PCA map format {d.get('format')!r}")
        try:
            m = cls(int(d["n_components"]), d["scale"])
            m.offset_ = np.asarray(d["offset"], dtype=float)
            m.scale_ = np.asarray(d["scale_values"], dtype=float)
            m.mean_ = np.asarray(d["mean"], dtype=float)
            m.components_ = np.asarray(d["components"], dtype=float)
            m.explained_variance_ratio_ = np.asarray(d["explained_variance_ratio"], dtype=float)
            m.bounds_ = np.asarray(d["bounds"], dtype=float)
        except KeyError as exc:
            raise ValueError(f"PCA map state is missing the field {exc}") from None
        if m.components_.shape != (m.n_components, m.mean_.shape[0]):
            raise ValueError("PCA map state is inconsistent: components do not match the mean")
        return m


# ---------------------------------------------------------------------------------------
# supervised metrics


def _paired(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(y_true).ravel()
    p = np.asarray(y_pred).ravel()
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_pred differ in length: {t.shape[0]} vs {p.shape[0]}")
    if t.size == 0:
        raise ValueError("no values to score")
    return t, p


def regression_metrics(y_true, y_pred) -> dict[str, float]:
    """rmse, mae (units of y), mape (**per cent**: 100·mean|e/y| over y ≠ 0; NaN if all y = 0),
    r2 (1 − SS_res/SS_tot; NaN when y_true is constant), n."""
    t, p = _paired(y_true, y_pred)
    t = t.astype(float)
    p = p.astype(float)
    if not (np.all(np.isfinite(t)) and np.all(np.isfinite(p))):
        raise ValueError("y_true / y_pred contain NaN or infinite values")
    e = p - t
    nz = t != 0
    ss_tot = float(np.sum((t - t.mean()) ** 2))
    return {
        "rmse": float(np.sqrt(np.mean(e**2))),
        "mae": float(np.mean(np.abs(e))),
        "mape": float(100.0 * np.mean(np.abs(e[nz] / t[nz]))) if nz.any() else float("nan"),
        "r2": float(1.0 - np.sum(e**2) / ss_tot) if ss_tot > 0 else float("nan"),
        "n": int(t.size),
    }


def classification_metrics(y_true, y_pred, *, positive=1) -> dict[str, float]:
    """Binary precision, recall, F1 (of the ``positive`` class; 0 when undefined), accuracy,
    and the confusion counts tp, fp, fn, tn."""
    t, p = _paired(y_true, y_pred)
    tpos = t == positive
    ppos = p == positive
    tp = int(np.sum(tpos & ppos))
    fp = int(np.sum(~tpos & ppos))
    fn = int(np.sum(tpos & ~ppos))
    tn = int(np.sum(~tpos & ~ppos))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "accuracy": float((tp + tn) / t.size),
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
    }


def gfa_metrics(glass, bmg, dmax_low_mm, dmax_high_mm, pred: dict) -> dict:
    """Scores of a GFA prediction (``p_glass``, ``p_bmg``, ``dmax_mm``, ``dmax_low_mm``,
    ``dmax_high_mm``) against the labels of :class:`ml.gfa.GFAData` (NaN = unknown):

    * ``glass`` (glass vs crystal) and ``bmg`` (castable ≥ 1 mm vs not): ROC-AUC, and
      precision/recall/F1 at P ≥ 0.5, on the rows whose label is known;
    * ``dmax``: MAE in log10 mm and the share inside the 80 % interval, on rows with a
      reported Dmax (point values: low == high); bounds are not scored.
    A part with too few rows (or one class only) is None.
    """
    from sklearn.metrics import roc_auc_score

    out: dict = {}
    for name, y, key in (("glass", glass, "p_glass"), ("bmg", bmg, "p_bmg")):
        y = np.asarray(y, dtype=float)
        p = np.asarray(pred[key], dtype=float)
        known = np.isfinite(y) & np.isfinite(p)
        if known.sum() < 2 or len(np.unique(y[known])) < 2:
            out[name] = None
            continue
        c = classification_metrics(y[known].astype(int), (p[known] >= 0.5).astype(int))
        out[name] = {"roc_auc": float(roc_auc_score(y[known], p[known])), "precision": c["precision"],
                     "recall": c["recall"], "f1": c["f1"], "n": int(known.sum()),
                     "positives": int(y[known].sum())}
    lo = np.asarray(dmax_low_mm, dtype=float)
    hi = np.asarray(dmax_high_mm, dtype=float)
    d = np.asarray(pred["dmax_mm"], dtype=float)
    point = np.isfinite(lo) & np.isfinite(hi) & (lo == hi) & (lo > 0) & np.isfinite(d)
    if point.sum() < 2:
        out["dmax"] = None
    else:
        true = lo[point]
        inside = (np.asarray(pred["dmax_low_mm"])[point] <= true) & (true <= np.asarray(pred["dmax_high_mm"])[point])
        out["dmax"] = {"mae_log10_mm": float(np.mean(np.abs(np.log10(d[point]) - np.log10(true)))),
                       "coverage_80": float(np.mean(inside)), "n": int(point.sum())}
    return out


# ---------------------------------------------------------------------------------------
# nearest neighbours


def nearest_distances(X_query, X_ref, *, metric: str = "l1", chunk_bytes: int = 32 * 2**20) -> tuple[np.ndarray, np.ndarray]:
    """Distance from each query row to its nearest reference row, and that row's index.

    ``metric``: ``"l1"`` (Σ|a−b|; on atomic fractions 0.05 = 2.5 at.% moved) or ``"l2"``.
    Exact brute force, chunked over the queries to bound memory (~``chunk_bytes``); ties go
    to the lowest reference index.
    """
    Q = _as_points(X_query, "X_query")
    R = _as_points(X_ref, "X_ref")
    if Q.shape[1] != R.shape[1]:
        raise ValueError(f"X_query has {Q.shape[1]} columns, X_ref has {R.shape[1]}")
    if metric not in ("l1", "l2"):
        raise ValueError(f"metric must be 'l1' or 'l2', not {metric!r}")
    n, m, k = Q.shape[0], R.shape[0], Q.shape[1]
    dist = np.empty(n)
    index = np.empty(n, dtype=np.int64)
    if metric == "l2":
        r2 = np.einsum("ij,ij->i", R, R)
        step = max(1, chunk_bytes // (8 * m))
        for s in range(0, n, step):
            q = Q[s : s + step]
            d2 = np.einsum("ij,ij->i", q, q)[:, None] - 2.0 * q @ R.T + r2[None, :]
            j = d2.argmin(axis=1)
            index[s : s + step] = j
            # recompute the winners exactly (the expansion loses precision near 0)
            dist[s : s + step] = np.sqrt(((q - R[j]) ** 2).sum(axis=1))
        return dist, index
    step = max(1, chunk_bytes // (8 * m * k))
    for s in range(0, n, step):
        q = Q[s : s + step]
        d = np.abs(q[:, None, :] - R[None, :, :]).sum(axis=2)
        j = d.argmin(axis=1)
        index[s : s + step] = j
        dist[s : s + step] = d[np.arange(d.shape[0]), j]
    return dist, index
