"""Forward property model: composition -> Tg, Tx, Tl (K) with uncertainty, Trg, γ, ΔTx.

Model (chosen by 5-fold grouped CV on the literature set, see bench/ml_bench.py):

* features = D1+D2+D3 descriptors (:class:`ml.descriptors.Featurizer`) **plus a k-NN block**:
  the inverse-L1-distance-weighted mean of the k nearest training alloys' targets (on atomic
  fractions), the nearest alloy's targets, and the nearest/mean distances. For training rows
  the block is computed leave-one-out (the row itself excluded), so trees learn how far to
  trust the neighbours. Measured: D1D2D3 alone gave Tg/Tx/Tl MAE 13.0/14.8/26.1 K; with the
  k-NN block 10.6/13.2/23.3 K (R² Trg 0.79, γ 0.68).
* five heads per member: Tg, Tx, Tl and dedicated Trg = Tg/Tl and γ = Tx/(Tg+Tl) heads (the
  ratios predicted directly are better than ratios of predictions: R² 0.79 vs 0.78 for Trg).
* ``n_members`` XGBoost members on bootstrap resamples with different seeds: prediction =
  member mean, uncertainty = member standard deviation (a bagging spread — it is a lower
  bound on the real error; the bench reports both).
* XGBoost runs single-threaded (``n_jobs=1``): on the shared 2-core machine, 2 OpenMP threads
  competing with other processes made a fit 17× slower (37 s vs 2 s on the test fixture).
"""

from __future__ import annotations

import json
import os
from typing import Sequence

import numpy as np
import xgboost as xgb

from ml.composition import Composition
from ml.descriptors import Featurizer, fractions_matrix

HEADS = ("tg_k", "tx_k", "tl_k", "trg", "gamma")
# Alloying elements always in the descriptor vocabulary (besides those seen in training), so
# a composition with an element the training data lacks still gets D2/D3 features and a
# prediction (its D1 column is all-zero in training; the uncertainty should be read with care).
ALLOY_ELEMENTS = tuple(
    "Li Be B C Mg Al Si P S Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn Ga Ge Sr Y Zr Nb Mo Ru Rh Pd Ag Cd In "
    "Sn Sb La Ce Pr Nd Sm Eu Gd Tb Dy Ho Er Tm Yb Lu Hf Ta W Re Os Ir Pt Au Pb Bi".split()
)


def targets_from_y(y: np.ndarray) -> np.ndarray:
    """(n, 3) Tg, Tx, Tl -> (n, 5) Tg, Tx, Tl, Trg, γ."""
    y = np.asarray(y, dtype=float)
    tg, tx, tl = y[:, 0], y[:, 1], y[:, 2]
    return np.column_stack([tg, tx, tl, tg / tl, tx / (tg + tl)])


class KnnBlock:
    """k nearest training alloys (L1 on fractions) -> weighted targets, nearest targets, distances."""

    def __init__(self, k: int = 3, eps: float = 1e-3):
        self.k = k
        self.eps = eps

    def fit(self, X_frac: np.ndarray, T: np.ndarray) -> "KnnBlock":
        self.X_ = np.asarray(X_frac, dtype=float)
        self.T_ = np.asarray(T, dtype=float)
        return self

    def _neighbours(self, Q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact L1 neighbours using the simplex identity for rows summing to 1:
        |a − b|₁ = 2 − 2 Σ_j min(a_j, b_j), where the sum only runs over a's few non-zero
        elements (≤ ~10 of ~50), so the cost is n × m × nnz instead of n × m × k."""
        Q = np.asarray(Q, dtype=float)
        n = Q.shape[0]
        m = self.X_.shape[0]
        k = min(k, m)
        nnz = max(1, int((Q > 0).sum(axis=1).max()) if n else 1)
        cols = np.argsort(-Q, axis=1, kind="stable")[:, :nnz]  # (n, nnz) largest entries
        vals = np.take_along_axis(Q, cols, axis=1)
        sums = Q.sum(axis=1)
        ref_sums = self.X_.sum(axis=1)
        XT = self.X_.T  # (k_vocab, m)
        D = np.empty((n, k))
        I = np.empty((n, k), dtype=int)
        step = max(1, int(4e6 // max(1, m * nnz)))
        for s in range(0, n, step):
            c = cols[s:s + step]
            v = vals[s:s + step]
            overlap = np.minimum(v[:, :, None], XT[c]).sum(axis=1)  # (chunk, m)
            d = sums[s:s + step, None] + ref_sums[None, :] - 2.0 * overlap
            np.maximum(d, 0.0, out=d)
            part = np.argpartition(d, k - 1, axis=1)[:, :k]
            dp = np.take_along_axis(d, part, axis=1)
            order = np.argsort(dp, axis=1, kind="stable")
            I[s:s + step] = np.take_along_axis(part, order, axis=1)
            D[s:s + step] = np.take_along_axis(dp, order, axis=1)
        return D, I

    def transform(self, Q: np.ndarray, leave_one_out: bool = False) -> np.ndarray:
        if leave_one_out:
            D, I = self._neighbours(Q, self.k + 1)
            D, I = D[:, 1:], I[:, 1:]
        else:
            D, I = self._neighbours(Q, self.k)
        w = 1.0 / (D + self.eps)
        w /= w.sum(axis=1, keepdims=True)
        pred = np.einsum("nk,nkj->nj", w, self.T_[I])
        return np.column_stack([pred, self.T_[I[:, 0]], D[:, :1], D.mean(axis=1, keepdims=True)])


class StackedFeatures:
    """Featurizer descriptors + :class:`KnnBlock` over a target matrix (shared with the surrogate)."""

    def __init__(self, descriptor_set: str = "D1D2D3", knn_k: int = 3, vocabulary: Sequence[str] | None = None):
        self.descriptor_set = descriptor_set
        self.knn_k = knn_k
        self.vocabulary = vocabulary

    def fit(self, compositions: Sequence[Composition], T: np.ndarray) -> "StackedFeatures":
        vocab = self.vocabulary
        if vocab is None:
            vocab = sorted({el for c in compositions for el in c} | set(ALLOY_ELEMENTS))
        self.featurizer_ = Featurizer(self.descriptor_set, vocab).fit(compositions)
        self.vocabulary_ = list(self.featurizer_.vocabulary_)
        X = fractions_matrix(compositions, self.vocabulary_)
        self.knn_ = KnnBlock(self.knn_k).fit(X, T) if self.knn_k else None
        self._train_features = self._features(X, leave_one_out=True)
        return self

    def _features(self, X_frac: np.ndarray, leave_one_out: bool = False) -> np.ndarray:
        F = self.featurizer_.transform_fractions(X_frac)
        if self.knn_ is None:
            return F
        return np.hstack([F, self.knn_.transform(X_frac, leave_one_out=leave_one_out)])

    def train_features(self) -> np.ndarray:
        return self._train_features

    def fractions(self, compositions: Sequence[Composition]) -> np.ndarray:
        return fractions_matrix(compositions, self.vocabulary_)

    def transform_fractions(self, X_frac: np.ndarray) -> np.ndarray:
        return self._features(np.asarray(X_frac, dtype=float))

    def state(self) -> dict:
        return {"descriptor_set": self.descriptor_set, "knn_k": self.knn_k,
                "featurizer": self.featurizer_.to_dict()}

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        if self.knn_ is None:
            return {}
        return {f"{prefix}_knn_X": self.knn_.X_, f"{prefix}_knn_T": self.knn_.T_}

    @classmethod
    def from_state(cls, state: dict, arrays: dict, prefix: str) -> "StackedFeatures":
        obj = cls(state["descriptor_set"], state["knn_k"])
        obj.featurizer_ = Featurizer.from_dict(state["featurizer"])
        obj.vocabulary_ = list(obj.featurizer_.vocabulary_)
        obj.knn_ = None
        if obj.knn_k:
            obj.knn_ = KnnBlock(obj.knn_k).fit(arrays[f"{prefix}_knn_X"], arrays[f"{prefix}_knn_T"])
        return obj


class ForwardModel:
    """XGBoost ensemble for Tg, Tx, Tl, Trg, γ (see module docstring)."""

    def __init__(self, descriptor_set: str = "D1D2D3", n_members: int = 3, seed: int = 0, knn_k: int = 3,
                 n_estimators: int = 400, max_depth: int = 4, learning_rate: float = 0.05,
                 subsample: float = 0.8, colsample_bytree: float = 0.5, bootstrap: bool = True, n_jobs: int = 1):
        self.descriptor_set = descriptor_set
        self.n_members = n_members
        self.seed = seed
        self.knn_k = knn_k
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.bootstrap = bootstrap
        self.n_jobs = n_jobs

    def get_config(self) -> dict:
        return {k: getattr(self, k) for k in ("descriptor_set", "n_members", "seed", "knn_k", "n_estimators",
                                                "max_depth", "learning_rate", "subsample", "colsample_bytree",
                                                "bootstrap", "n_jobs")}

    def _params(self, member: int) -> dict:
        return dict(n_estimators=self.n_estimators, max_depth=self.max_depth, learning_rate=self.learning_rate,
                    subsample=self.subsample, colsample_bytree=self.colsample_bytree, tree_method="hist",
                    n_jobs=self.n_jobs, random_state=self.seed * 1000 + member)

    def fit(self, compositions: Sequence[Composition], y: np.ndarray) -> "ForwardModel":
        y = np.asarray(y, dtype=float)
        if len(compositions) != len(y):
            raise ValueError("compositions and y differ in length")
        if len(compositions) < 5:
            raise ValueError("need at least 5 alloys to fit the forward model")
        T = targets_from_y(y)
        self.features_ = StackedFeatures(self.descriptor_set, self.knn_k).fit(compositions, T)
        F = self.features_.train_features()
        self.t_mean_ = T.mean(axis=0)
        self.t_std_ = T.std(axis=0) + 1e-12
        Z = (T - self.t_mean_) / self.t_std_
        rng = np.random.default_rng(self.seed)
        self.members_: list[list[xgb.Booster]] = []
        n = len(F)
        for m in range(self.n_members):
            idx = rng.integers(0, n, n) if (self.bootstrap and self.n_members > 1) else np.arange(n)
            heads = []
            for j in range(len(HEADS)):
                reg = xgb.XGBRegressor(**self._params(m))
                reg.fit(F[idx], Z[idx, j])
                heads.append(reg.get_booster())
            self.members_.append(heads)
        self.n_train_ = n
        return self

    @property
    def vocabulary_(self) -> list[str]:
        return self.features_.vocabulary_

    def predict_fractions(self, X_frac: np.ndarray) -> dict[str, np.ndarray]:
        F = self.features_.transform_fractions(X_frac)
        P = np.empty((self.n_members, len(HEADS), F.shape[0]))
        for m, heads in enumerate(self.members_):
            for j, booster in enumerate(heads):
                P[m, j] = booster.inplace_predict(F)
        P = P * self.t_std_[None, :, None] + self.t_mean_[None, :, None]
        mean = P.mean(axis=0)
        std = P.std(axis=0) if self.n_members > 1 else np.zeros_like(mean)
        out = {}
        for j, h in enumerate(HEADS):
            out[h] = mean[j]
            out[h.replace("_k", "") + "_std"] = std[j]
        out["dtx_k"] = out["tx_k"] - out["tg_k"]
        return out

    def predict(self, compositions: Sequence[Composition]) -> dict[str, np.ndarray]:
        """dict of arrays: tg_k, tg_std, tx_k, tx_std, tl_k, tl_std, trg, trg_std, gamma, gamma_std, dtx_k."""
        return self.predict_fractions(self.features_.fractions(compositions))

    # -- persistence ---------------------------------------------------------------------
    def save(self, directory: str, prefix: str = "forward") -> dict:
        files = []
        for m, heads in enumerate(self.members_):
            for j, booster in enumerate(heads):
                name = f"{prefix}_{HEADS[j]}_{m}.ubj"
                booster.save_model(os.path.join(directory, name))
                files.append(name)
        arrays = self.features_.arrays(prefix)
        npz = f"{prefix}_arrays.npz"
        np.savez(os.path.join(directory, npz), **arrays)
        state = {"config": self.get_config(), "features": self.features_.state(),
                 "t_mean": self.t_mean_.tolist(), "t_std": self.t_std_.tolist(),
                 "n_train": self.n_train_, "model_files": files, "arrays_file": npz}
        return state

    @classmethod
    def load(cls, directory: str, state: dict, prefix: str = "forward") -> "ForwardModel":
        obj = cls(**state["config"])
        with np.load(os.path.join(directory, state["arrays_file"])) as z:
            arrays = {k: z[k] for k in z.files}
        obj.features_ = StackedFeatures.from_state(state["features"], arrays, prefix)
        obj.t_mean_ = np.asarray(state["t_mean"])
        obj.t_std_ = np.asarray(state["t_std"])
        obj.n_train_ = state["n_train"]
        files = iter(state["model_files"])
        obj.members_ = []
        for m in range(obj.n_members):
            heads = []
            for _ in HEADS:
                b = xgb.Booster()
                b.load_model(os.path.join(directory, next(files)))
                b.set_param({"nthread": obj.n_jobs})
                heads.append(b)
            obj.members_.append(heads)
        return obj
