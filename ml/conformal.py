"""Split-conformal / CV+ calibration of prediction intervals from out-of-fold residuals.

The forward model's ensemble spread σ is a lower bound on its error (median 2.6 K for Tg
where the error is ~10 K). :class:`ConformalCalibrator` turns out-of-fold residuals r = y − ŷ
(from inner folds grouped by composition key, so a row's own alloy never sits in the model
that predicted it) into an interval ``ŷ ± q · s`` with s = 1 (``absolute``) or
s = σ + σ₀ (``normalized``; σ₀ = median σ of the out-of-fold rows keeps tiny spreads from
giving zero-width intervals). q is the finite-sample conformal quantile of the scores
|r| / s: the ⌈(n + 1)·c⌉-th smallest of n, for coverage c.

Mode ``auto`` chooses, per target, on the inner folds only: for each inner fold f, q is taken
from the scores of the *other* folds and the interval is scored on fold f; the mode with the
lower mean interval score (Winkler: width + 2/α × miss distance, α = 1 − c) wins. Both modes
are calibrated by construction, so this is a choice of sharpness, not of coverage. The
evidence (leave-one-fold-out coverage, width and interval score of each mode) is kept in
:attr:`ConformalCalibrator.report_`.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

MODES = ("absolute", "normalized")


def conformal_quantile(scores: np.ndarray, coverage: float) -> float:
    """⌈(n + 1)·coverage⌉-th smallest score (inf when that exceeds n; NaN scores ignored)."""
    s = np.sort(np.asarray(scores, dtype=float)[np.isfinite(scores)])
    n = s.size
    if n == 0:
        return float("inf")
    k = math.ceil((n + 1) * coverage)
    return float("inf") if k > n else float(s[k - 1])


def interval_score(y: np.ndarray, low: np.ndarray, high: np.ndarray, coverage: float) -> float:
    """Mean Winkler interval score (lower is better) of central intervals at ``coverage``."""
    alpha = 1.0 - coverage
    y, low, high = (np.asarray(a, dtype=float) for a in (y, low, high))
    s = (high - low) + (2.0 / alpha) * (np.clip(low - y, 0, None) + np.clip(y - high, 0, None))
    return float(np.mean(s))


class ConformalCalibrator:
    """Per-target conformal interval half-widths fitted on out-of-fold residuals.

    ``fit(residuals, sigma, folds)``: (n, t) residuals y − ŷ and spreads σ of the same
    out-of-fold predictions, and each row's inner fold id (for the ``auto`` choice).
    ``interval(j, pred, sigma)`` -> (low, high) for target column j.
    """

    def __init__(self, coverage: float = 0.8, mode: str = "auto", names: Sequence[str] | None = None):
        if not 0.0 < float(coverage) < 1.0:
            raise ValueError(f"coverage must lie in (0, 1); got {coverage!r}")
        if mode not in MODES + ("auto",):
            raise ValueError(f"conformal mode must be one of {', '.join(MODES + ('auto',))}; got {mode!r}")
        self.coverage = float(coverage)
        self.mode = mode
        self.names = list(names) if names is not None else None

    @staticmethod
    def _scale(mode: str, sigma: np.ndarray, sigma0: float) -> np.ndarray:
        return np.ones_like(sigma) if mode == "absolute" else sigma + sigma0

    def fit(self, residuals: np.ndarray, sigma: np.ndarray, folds: np.ndarray) -> "ConformalCalibrator":
        R = np.asarray(residuals, dtype=float)
        if R.ndim == 1:
            R = R[:, None]
        S = np.asarray(sigma, dtype=float).reshape(R.shape)
        folds = np.asarray(folds)
        if len(folds) != len(R):
            raise ValueError(f"{len(R)} residual rows but {len(folds)} fold ids")
        t = R.shape[1]
        names = self.names or [str(j) for j in range(t)]
        if len(names) != t:
            raise ValueError(f"{len(names)} names for {t} residual columns")
        self.names_ = list(names)
        self.modes_, self.q_, self.sigma0_, self.n_ = [], [], [], []
        self.report_: dict = {}
        fold_ids = np.unique(folds)
        for j in range(t):
            ok = np.isfinite(R[:, j]) & np.isfinite(S[:, j])
            r, s, f = R[ok, j], np.clip(S[ok, j], 0, None), folds[ok]
            sigma0 = float(np.median(s)) if s.size else 0.0
            if not sigma0 > 0:  # no spread: fall back to the typical error, then to 1
                sigma0 = float(np.median(np.abs(r))) if r.size else 0.0
                sigma0 = sigma0 if sigma0 > 0 else 1.0
            evidence = {}
            for mode in MODES:
                scale = self._scale(mode, s, sigma0)
                scores = np.abs(r) / scale
                cov, width, score = [], [], []
                for fid in fold_ids:
                    te = f == fid
                    if not te.any() or te.all():
                        continue
                    q = conformal_quantile(scores[~te], self.coverage)
                    half = q * scale[te]
                    cov.append(np.mean(np.abs(r[te]) <= half))
                    width.append(np.mean(2 * half))
                    score.append(interval_score(r[te], -half, half, self.coverage))
                evidence[mode] = {"coverage": float(np.mean(cov)) if cov else None,
                                  "mean_width": float(np.mean(width)) if width else None,
                                  "interval_score": float(np.mean(score)) if score else None}
            if self.mode != "auto":
                chosen = self.mode
            else:
                scored = [m for m in MODES if evidence[m]["interval_score"] is not None]
                chosen = min(scored, key=lambda m: evidence[m]["interval_score"]) if scored else "absolute"
            q = conformal_quantile(np.abs(r) / self._scale(chosen, s, sigma0), self.coverage)
            self.modes_.append(chosen)
            self.q_.append(q)
            self.sigma0_.append(sigma0)
            self.n_.append(int(r.size))
            self.report_[names[j]] = {"mode": chosen, "q": q, "sigma0": sigma0, "n": int(r.size),
                                      "inner_leave_one_fold_out": evidence}
        return self

    def index(self, name: str) -> int:
        return self.names_.index(name)

    def interval(self, j: int | str, pred: np.ndarray, sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        j = self.index(j) if isinstance(j, str) else j
        pred = np.asarray(pred, dtype=float)
        sigma = np.clip(np.asarray(sigma, dtype=float), 0, None)
        half = self.q_[j] * self._scale(self.modes_[j], sigma, self.sigma0_[j])
        return pred - half, pred + half

    def state(self) -> dict:
        return {"coverage": self.coverage, "mode": self.mode, "names": self.names_, "modes": self.modes_,
                "q": [q if np.isfinite(q) else None for q in self.q_], "sigma0": self.sigma0_, "n": self.n_,
                "report": _finite(self.report_)}

    @classmethod
    def from_state(cls, state: dict) -> "ConformalCalibrator":
        obj = cls(state["coverage"], state.get("mode", "auto"), state["names"])
        obj.names_ = list(state["names"])
        obj.modes_ = list(state["modes"])
        obj.q_ = [float("inf") if q is None else float(q) for q in state["q"]]
        obj.sigma0_ = [float(v) for v in state["sigma0"]]
        obj.n_ = [int(v) for v in state["n"]]
        obj.report_ = state.get("report", {})
        return obj


def _finite(obj):
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj
