"""GAN and CGAN for alloy compositions (PyTorch, CPU).

What the papers did (Zhou et al. 2023; Hao et al. "AlloyGAN" 2025): fully connected
generator and discriminator with LeakyReLU, Adam, BCE loss, generator output = descriptor
vector (sigmoid) or composition (softmax); CGAN = conditions concatenated to the noise and to
the discriminator input.

What we keep: fully connected nets, LeakyReLU, Adam, softmax output over an element
vocabulary (fractions that sum to 1), selectable discriminator descriptors (D1, CD1 = D1+D3,
CD2 = D1+D2), conditions on (Tg, Tx, Tl) or (Trg, γ).

What we change, and why (measured in bench/ml_bench.py against ``loss="bce"`` with a
5-d noise reference):

* **WGAN-GP loss** (Gulrajani et al. 2017) instead of BCE: the critic keeps giving gradients
  when real and fake supports do not overlap — which is the normal case for sparse
  compositions — so training is stable on ~800 alloys.
* **Sharpened softmax output** (temperature ``tau`` < 1 on the logits): pushes unused elements
  to ~0 so that, after dropping < 0.5 at.%, samples have 2–8 elements like real BMGs rather
  than a few per cent spread over twenty elements.
* **Standardised conditions** (z-scores on the training set) fed to both nets, with small
  Gaussian jitter on the real conditions during training so nearby targets interpolate.
* **Early stopping on a validation Wasserstein distance** between post-processed samples
  conditioned on a held-out grouped split and that split's compositions (computed every
  ``val_every`` epochs; best weights restored). ``val_samples`` × the split's size samples are
  drawn (default 4) so the estimate is less noisy. Patience is 20 checks (200 epochs) and the
  default budget 600 epochs: with 8 checks and 300 epochs one seed in three stopped at epoch
  ~250 on a noisy plateau (fold 0, CGAN/floor 1.37, above the GAN); with 20 and 600 the three
  seeds give 1.21 / 1.23 / 1.19 for the CGAN against 1.27 / 1.27 / 1.25 for the GAN trained the
  same way (each the mean of three sample draws). That was one fold. After the data cleaning
  (782 alloys, new folds), over the five folds with seed 0: CGAN 1.29 / 1.06 / 1.21 / 1.16 /
  1.26 (mean 1.20), GAN 1.22 / 1.16 / 1.37 / 1.31 / 1.09 (mean 1.23) — better on average and
  on three folds of five, not on every one. Fold 0 (the lowest floor) stays above 1.25× with
  a longer budget (900 epochs: 1.27) or lr 6e-4 (1.26; mean over the folds 1.19): not kept.
* **EMA sampler** (``ema``, default 0.995; Yazici et al. 2019): the weights used for sampling,
  validation and saving are an exponential moving average of the generator's weights over
  training steps, which damps the oscillation of adversarial training. With lr 4e-4 (was 2e-4)
  this lowered the fold-0 Wasserstein distance to held-out alloys from 0.273 to 0.226 for the
  CGAN (floor 0.182) and from 0.244 to 0.227 for the unconditional GAN (same settings), and
  raised the raw plausible share at sharpen 1.5 from 0.76 to 0.87. Tried and not kept: larger
  condition jitter (0.1, 0.2), noise 32, tau 0.15/0.3, batch 32, CD1 critic, sparsemax output,
  dropping amounts < 1–2 at.% (no gain, fewer unique samples), a generator penalty on
  mass put on element pairs unseen in training (W 0.35, plausible share fell to 0.61–0.68).

**GFA condition** (``gfa_condition=True``, issue 15): the condition vector gets seven more
columns after the thermal ones (``GFA_CONDITION_COLUMNS``): thermal_known, glass, glass_known,
bmg, bmg_known, log10 Dmax (z-score over the measured points), dmax_known. Rows of the GFA
table (mostly binary/ternary melt-spinning results, ~90 % without Tg/Tx/Tl) train the network
with their temperatures *masked* (zeros = the training mean, thermal_known = 0), not imputed:
an imputed Tg would be a forward-model guess fed back as a condition, and the mask lets the
network learn p(composition | class, Dmax) from them while the thermal rows teach
p(composition | Tg, Tx, Tl). A thermal row without a GFA label reads as a glass of unknown
castability (a measured Tg means it vitrified). Unknown values are exact zeros (no jitter).
Each batch holds ``thermal_share`` (0.5) rows with temperatures and one epoch passes over
those rows once (so the GFA table's ~4,600 alloys do not make epochs 7× longer); at 0.5 that
is twice the steps of a thermal-only epoch (outer fold 0, 600 epochs: 128 s CPU against 73 s),
which is why it is off by default (GLASSLOOP_GAN_PARAMS='{"gfa_condition": true}' turns it on). At sampling, condition
rows (Tg, Tx, Tl[, glass, BMG, Dmax mm]) are read by :meth:`GAN.condition_matrix`; a CGAN
without the GFA condition ignores the extra columns (so older bundles keep working).

The discriminator's descriptor map runs in torch on the generated fractions so gradients
flow through it. Formulas (x = fractions, p = element property vectors from
:func:`ml.elements.element_table`, H = Takeuchi–Inoue ΔH_mix matrix in kJ/mol):

* D2 (13): r̄ = Σx r; δ = sqrt(Σx (1 − r/r̄)²); Tm mean/std; ΔH_mix = 4 Σ_{i<j} x_i x_j H_ij and
  the pair-weighted std of 4H_ij; S_id = −Σ x ln x (units of R); χ mean/std; VEC mean/std;
  bulk modulus mean/std. (weighted std = sqrt(Σ x (p − p̄)²))
* D3 (8), theory-guided in the spirit of Zhou et al.: rms pair residual strain
  sqrt(Σ_ij x_i x_j ε_ij²) with ε_ij = (r_i − r_j)/(r_i + r_j); rms site strain
  sqrt(Σ x ε_i²) with ε_i = (r_i − r̄)/r̄ weighted by size-mismatch energy r_i³;
  cohesive energy mean/std; pair interaction energy mean Σ_ij x_i x_j H_ij and its
  pair-weighted std; ideal entropy S_id; non-ideal entropy S_id + S_E with the
  hard-sphere excess term approximated at second order as S_E ≈ −(3/2)(ζ²−1) δ_d² with
  ζ = 1/(1−ξ), ξ = 0.64 and δ_d² the variance of diameters over their mean² (the leading
  term of Mansoori et al. 1971's GMCSL expression for small size dispersion).

These are the discriminator's inputs only (they shape what "looks real"); the forward
model's descriptors come from :mod:`ml.descriptors`.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch
from sklearn.base import BaseEstimator
from torch import nn

from ml.composition import Composition
from ml.composition import _ELEMENT_SET, UNITS, _from_units  # the parser's symbols, grid and builder
from ml.descriptors import fractions_matrix
from ml.elements import cohesive_energies, element_table, mixing_enthalpy_matrix

DESCRIPTOR_SETS = ("D1", "CD1", "CD2")
# extra condition columns of a CGAN with gfa_condition=True, after the thermal ones
GFA_CONDITION_COLUMNS = ("thermal_known", "glass", "glass_known", "bmg", "bmg_known", "log_dmax", "dmax_known")
CONDITIONS = ("TgTxTl", "TrgGamma")
MIN_FRACTION = 0.005  # amounts below 0.5 at.% are dropped
GRID = 1000  # rounding grid: 0.1 at.% = 1/1000


def set_torch_threads(n: int = 1) -> None:
    """Small MLPs: 1 intra-op thread. On the shared 2-core machine 2 threads were ~3× slower
    (15 CGAN epochs: 9.1 s vs 3.2 s) because they spin against other processes."""
    try:
        torch.set_num_threads(n)
    except RuntimeError:  # pragma: no cover - already set by an interop thread
        pass


# --------------------------------------------------------------------------- fractions


def postprocess_fractions(F: np.ndarray, min_fraction: float = MIN_FRACTION, grid: int = GRID) -> np.ndarray:
    """Drop amounts < min_fraction, renormalise, round to 1/grid keeping the sum exact.

    Vectorised largest-remainder rounding: floor every amount on the grid, then give the
    missing units to the largest remainders (only among kept elements).
    """
    F = np.asarray(F, dtype=float)
    top = np.argmax(F, axis=1)
    F = np.where(F >= min_fraction, F, 0.0)
    # A row with nothing above the threshold keeps its largest element (cannot happen for
    # softmax rows over < 200 elements, but keeps the function total).
    empty = F.sum(axis=1) <= 0
    F[empty, top[empty]] = 1.0
    F = F / F.sum(axis=1, keepdims=True)
    scaled = F * grid
    units = np.floor(scaled + 1e-9)
    rem = scaled - units
    rem[F == 0] = -1.0
    missing = (grid - units.sum(axis=1)).astype(int)
    order = np.argsort(-rem, axis=1, kind="stable")
    ranks = np.empty_like(order)
    rows = np.arange(F.shape[0])[:, None]
    ranks[rows, order] = np.arange(F.shape[1])[None, :]
    units += (ranks < missing[:, None]).astype(float)
    # Rounding can push a kept element to 0 only if it was < 1 unit, impossible above 0.5 at.%
    # with a 0.1 at.% grid; the division below is exact on the grid.
    return units / grid


def to_compositions(F: np.ndarray, vocabulary: Sequence[str]) -> list[Composition]:
    """Compositions of post-processed fraction rows.

    Rows on the parser's own 0.01 at.% grid that sum to exactly 100 at.% (every row of
    :func:`postprocess_fractions`) are built from their grid units directly — what
    ``Composition.from_fractions`` would give them, without its per-row checks (10,000 draws:
    ~1 s less); any other row goes through ``from_fractions``.
    """
    vocab = list(vocabulary)
    F = np.atleast_2d(np.asarray(F, dtype=float))
    U = np.rint(F * UNITS)
    known = np.array([el in _ELEMENT_SET for el in vocab], dtype=bool)
    exact = ((np.abs(U - F * UNITS) < 1e-6).all(axis=1) & (U.sum(axis=1) == UNITS) & (U >= 0).all(axis=1)
             & ~((F > 0) & ~known).any(axis=1))
    out = []
    for i, row in enumerate(F):
        nz = np.flatnonzero(row)
        if exact[i]:
            out.append(_from_units([(vocab[j], int(U[i, j])) for j in nz]))
        else:
            out.append(Composition.from_fractions({vocab[j]: float(row[j]) for j in nz}))
    return out


# --------------------------------------------------------------------------- descriptors in torch

D2_NAMES = ("r_mean", "delta", "tm_mean", "tm_std", "dh_mix", "dh_std", "s_id",
            "chi_mean", "chi_std", "vec_mean", "vec_std", "b_mean", "b_std")
D3_NAMES = ("eps_pair_rms", "eps_site_rms", "ec_mean", "ec_std", "pair_e_mean", "pair_e_std",
            "s_id", "s_nonideal")


class TorchDescriptors(nn.Module):
    """Differentiable D2/D3 descriptor map over a fixed vocabulary (see module docstring)."""

    def __init__(self, vocabulary: Sequence[str], sets: Sequence[str]):
        super().__init__()
        tab = element_table(list(vocabulary))
        self.sets = tuple(sets)
        def buf(name, arr):
            self.register_buffer(name, torch.as_tensor(np.asarray(arr, dtype=np.float32)))
        buf("r", tab["radius_pm"])
        buf("tm", tab["melting_t_k"])
        buf("chi", tab["electronegativity"])
        buf("vec", tab["vec"])
        buf("b", tab["bulk_modulus_gpa"])
        buf("ec", cohesive_energies(list(vocabulary)))
        buf("H", mixing_enthalpy_matrix(list(vocabulary)))

    @staticmethod
    def _wstd(x, p, mean):
        return torch.sqrt((x * (p[None, :] - mean[:, None]) ** 2).sum(1) + 1e-10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = []
        r_mean = x @ self.r
        s_id = -(x * torch.log(x.clamp_min(1e-12))).sum(1)
        pair_w = x[:, :, None] * x[:, None, :]
        if "D2" in self.sets:
            delta = torch.sqrt((x * (1 - self.r[None, :] / r_mean[:, None]) ** 2).sum(1) + 1e-10)
            tm = x @ self.tm
            chi = x @ self.chi
            vec = x @ self.vec
            b = x @ self.b
            dh = 4 * torch.einsum("nij,ij->n", pair_w, self.H) / 2  # 4 Σ_{i<j}
            dh_pairs = 4 * self.H
            dh_mean_pairs = torch.einsum("nij,ij->n", pair_w, dh_pairs)
            dh_std = torch.sqrt(
                torch.einsum("nij,nij->n", pair_w, (dh_pairs[None] - dh_mean_pairs[:, None, None]) ** 2) + 1e-10)
            feats += [r_mean, delta, tm, self._wstd(x, self.tm, tm), dh, dh_std, s_id,
                      chi, self._wstd(x, self.chi, chi), vec, self._wstd(x, self.vec, vec),
                      b, self._wstd(x, self.b, b)]
        if "D3" in self.sets:
            eps_pair = (self.r[:, None] - self.r[None, :]) / (self.r[:, None] + self.r[None, :])
            eps_pair_rms = torch.sqrt(torch.einsum("nij,ij->n", pair_w, eps_pair ** 2) + 1e-10)
            eps_site = (self.r[None, :] - r_mean[:, None]) / r_mean[:, None]
            w3 = x * self.r[None, :] ** 3
            w3 = w3 / w3.sum(1, keepdim=True)
            eps_site_rms = torch.sqrt((w3 * eps_site ** 2).sum(1) + 1e-10)
            ec = x @ self.ec
            pe = torch.einsum("nij,ij->n", pair_w, self.H)
            pe_std = torch.sqrt(torch.einsum("nij,nij->n", pair_w, (self.H[None] - pe[:, None, None]) ** 2) + 1e-10)
            xi = 0.64
            zeta = 1.0 / (1.0 - xi)
            d_var = (x * (self.r[None, :] - r_mean[:, None]) ** 2).sum(1) / r_mean ** 2
            s_e = -1.5 * (zeta ** 2 - 1) * d_var
            feats += [eps_pair_rms, eps_site_rms, ec, self._wstd(x, self.ec, ec), pe, pe_std, s_id, s_id + s_e]
        return torch.stack(feats, dim=1)


# --------------------------------------------------------------------------- networks


class Generator(nn.Module):
    def __init__(self, noise_dim: int, cond_dim: int, k: int, hidden: int, tau: float):
        super().__init__()
        self.tau = tau
        self.net = nn.Sequential(
            nn.Linear(noise_dim + cond_dim, hidden), nn.LeakyReLU(0.2),
            nn.Linear(hidden, hidden), nn.LeakyReLU(0.2),
            nn.Linear(hidden, k),
        )

    def forward(self, z, c=None, sharpen: float = 1.0):
        h = z if c is None else torch.cat([z, c], dim=1)
        return torch.softmax(self.net(h) * (sharpen / self.tau), dim=1)


class Critic(nn.Module):
    def __init__(self, in_dim: int, cond_dim: int, hidden: int, sigmoid: bool):
        super().__init__()
        layers = [nn.Linear(in_dim + cond_dim, hidden), nn.LeakyReLU(0.2),
                  nn.Linear(hidden, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, 1)]
        if sigmoid:
            layers.append(nn.Sigmoid())
        self.net = nn.Sequential(*layers)

    def forward(self, d, c=None):
        h = d if c is None else torch.cat([d, c], dim=1)
        return self.net(h).squeeze(1)


# --------------------------------------------------------------------------- estimator


def condition_values(y: np.ndarray, condition: str) -> np.ndarray:
    """(n, 3) Tg, Tx, Tl -> the raw condition columns for ``condition``."""
    y = np.asarray(y, dtype=float)
    if condition == "TgTxTl":
        return y[:, :3].copy()
    if condition == "TrgGamma":
        tg, tx, tl = y[:, 0], y[:, 1], y[:, 2]
        return np.column_stack([tg / tl, tx / (tg + tl)])
    raise ValueError(f"unknown condition {condition!r}; choose one of {', '.join(CONDITIONS)}")


@dataclass
class TrainingHistory:
    epochs: int = 0
    best_epoch: int = 0
    best_val_wasserstein: float = float("inf")
    stopped_early: bool = False
    records: list = field(default_factory=list)  # (epoch, d_loss, g_loss, val_w or None)


class GAN(BaseEstimator):
    """Unconditional GAN over compositions (``CGAN`` adds conditions).

    ``fit(compositions, conditions=None, callback=None, validation=None)``;
    ``sample(n, conditions=None, seed=...) -> list[Composition]`` (post-processed, parsed);
    ``sample_fractions`` gives the post-processed (n, k) matrix without parsing.

    A scikit-learn estimator: ``__init__`` only stores the parameters (``get_params`` /
    ``set_params`` / :func:`sklearn.base.clone` work; ``vocabulary`` is one of them), and
    :meth:`fit` checks them. Fitted attributes: ``vocabulary_`` (the given vocabulary, or the
    sorted elements of the training compositions), ``generator_`` (the sampler),
    ``cond_mean_`` / ``cond_std_`` (None for the unconditional GAN), ``history_``.
    """

    conditional = False
    # 1 (no "format" key): "config" without "vocabulary"; 2: "config" is get_params() + "class"
    STATE_FORMAT = 2
    READS_FORMATS = (1, 2)

    def __init__(
        self,
        descriptor_set: str = "D1",
        condition: str = "TgTxTl",
        noise_dim: int = 16,
        hidden: int = 256,
        epochs: int = 400,
        batch_size: int = 64,
        lr: float = 4e-4,
        loss: str = "wgan-gp",
        n_critic: int = 3,
        gp_weight: float = 10.0,
        tau: float = 0.2,
        condition_jitter: float = 0.05,
        val_every: int = 10,
        patience: int = 20,
        sample_sharpen: float = 1.0,
        ema: float = 0.995,
        val_samples: int = 4,
        seed: int = 0,
        vocabulary: Sequence[str] | None = None,
        gfa_condition: bool = False,
        thermal_share: float = 0.5,
    ):
        self.descriptor_set = descriptor_set
        self.condition = condition
        self.noise_dim = noise_dim
        self.hidden = hidden
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.loss = loss
        self.n_critic = n_critic
        self.gp_weight = gp_weight
        self.tau = tau
        self.condition_jitter = condition_jitter
        self.val_every = val_every
        self.patience = patience
        self.sample_sharpen = sample_sharpen
        self.ema = ema
        self.val_samples = val_samples
        self.seed = seed
        self.vocabulary = vocabulary
        self.gfa_condition = gfa_condition
        self.thermal_share = thermal_share

    # -- config / state ---------------------------------------------------------------
    def get_config(self) -> dict:
        """The constructor parameters, ``vocabulary`` included (same as ``get_params(deep=False)``)."""
        return self.get_params(deep=False)

    def _check_params(self) -> None:
        """Validate the parameters; called first thing in :meth:`fit` (``__init__`` does not)."""
        if self.descriptor_set not in DESCRIPTOR_SETS:
            raise ValueError(f"unknown descriptor set {self.descriptor_set!r}; "
                             f"choose one of {', '.join(DESCRIPTOR_SETS)}")
        if self.condition not in CONDITIONS:
            raise ValueError(f"unknown condition {self.condition!r}; choose one of {', '.join(CONDITIONS)}")
        if self.loss not in ("wgan-gp", "bce"):
            raise ValueError(f"loss must be 'wgan-gp' or 'bce'; got {self.loss!r}")
        if not _is_number(self.ema) or not 0.0 <= self.ema < 1.0:
            raise ValueError(f"ema must lie in [0, 1); got {self.ema!r}")
        for name in ("noise_dim", "hidden", "batch_size", "n_critic", "val_every", "patience", "val_samples"):
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                raise ValueError(f"{name} must be a positive integer; got {value!r}")
        if not _is_int(self.epochs) or self.epochs < 0:
            raise ValueError(f"epochs must be a non-negative integer; got {self.epochs!r}")
        for name in ("lr", "tau"):
            value = getattr(self, name)
            if not _is_number(value) or not value > 0:
                raise ValueError(f"{name} must be a positive number; got {value!r}")
        if not isinstance(self.gfa_condition, (bool, np.bool_)):
            raise ValueError(f"gfa_condition must be True or False; got {self.gfa_condition!r}")
        if not _is_number(self.thermal_share) or not 0.0 < self.thermal_share <= 1.0:
            raise ValueError(f"thermal_share must lie in (0, 1]; got {self.thermal_share!r}")
        for name in ("gp_weight", "condition_jitter", "sample_sharpen"):
            value = getattr(self, name)
            if not _is_number(value) or value < 0:
                raise ValueError(f"{name} must be a non-negative number; got {value!r}")
        if self.vocabulary is not None:
            vocab = list(self.vocabulary)
            if isinstance(self.vocabulary, str) or not vocab or len(set(vocab)) != len(vocab):
                raise ValueError(f"vocabulary must be a non-empty sequence of distinct element symbols; "
                                 f"got {self.vocabulary!r}")

    @property
    def cond_dim(self) -> int:
        if not self.conditional:
            return 0
        base = 3 if self.condition == "TgTxTl" else 2
        return base + (len(GFA_CONDITION_COLUMNS) if self.gfa_condition else 0)

    @property
    def _base_dim(self) -> int:
        return 3 if self.condition == "TgTxTl" else 2

    def condition_matrix(self, conditions: np.ndarray, glass=None, bmg=None, dmax_mm=None,
                         normalized: bool = False) -> np.ndarray:
        """The network's condition rows from raw values (module docstring, "GFA condition").

        ``conditions``: (n, 3) Tg, Tx, Tl in K (NaN row: unknown) — or (n, 2) Trg, γ for
        ``condition="TrgGamma"`` — optionally followed by three columns glass (1/0), BMG (1/0)
        and Dmax in mm (NaN: unknown), which ``glass``/``bmg``/``dmax_mm`` (scalars or arrays)
        override. A CGAN without the GFA condition ignores those extra columns.
        """
        cond = np.atleast_2d(np.asarray(conditions, dtype=float))
        n = cond.shape[0]
        extra = cond[:, 3:6] if cond.shape[1] >= 6 else None
        if self.condition == "TrgGamma" and not normalized and cond.shape[1] != 2:
            thermal = condition_values(cond[:, :3], "TrgGamma")
        else:
            thermal = cond[:, :self._base_dim]
        if not normalized:
            thermal = self._norm_cond(thermal)
        if not self.gfa_condition:
            return thermal
        known = np.all(np.isfinite(thermal), axis=1)
        thermal = np.where(known[:, None], thermal, 0.0)  # unknown: the mean, flagged by the mask

        def col(value, j, default):
            if value is None:
                value = extra[:, j] if extra is not None else default
            return np.broadcast_to(np.asarray(value, dtype=float), (n,)).astype(float)

        # rows given without any GFA value read as the thermal table's rows: a glass, castability unknown
        g = col(glass, 0, 1.0)
        b = col(bmg, 1, np.nan)
        d = col(dmax_mm, 2, np.nan)
        with np.errstate(divide="ignore", invalid="ignore"):
            logd = np.where(d > 0, np.log10(np.where(d > 0, d, 1.0)), np.nan)
        dz = (logd - self.dmax_log_mean_) / self.dmax_log_std_
        cols = [known.astype(float),
                np.nan_to_num(g), np.isfinite(g).astype(float),
                np.nan_to_num(b), np.isfinite(b).astype(float),
                np.nan_to_num(dz), np.isfinite(dz).astype(float)]
        return np.column_stack([thermal, *cols])

    def _build(self):
        k = len(self.vocabulary_)
        self.generator_ = Generator(self.noise_dim, self.cond_dim, k, self.hidden, self.tau)

    def state(self) -> dict:
        """Everything needed to rebuild the sampler (weights as a torch state_dict)."""
        self._check_fitted()
        return {
            "format": self.STATE_FORMAT,
            "config": {"class": type(self).__name__, **self.get_config()},
            "vocabulary": list(self.vocabulary_),
            "cond_mean": None if self.cond_mean_ is None else self.cond_mean_.tolist(),
            "cond_std": None if self.cond_std_ is None else self.cond_std_.tolist(),
            **({"gfa_cond": {"dmax_log_mean": float(self.dmax_log_mean_), "dmax_log_std": float(self.dmax_log_std_)}}
               if self.conditional and self.gfa_condition else {}),
            "history": {"epochs": self.history_.epochs, "best_epoch": self.history_.best_epoch,
                        "best_val_wasserstein": _finite_or_none(self.history_.best_val_wasserstein),
                        "stopped_early": self.history_.stopped_early},
        }

    def save(self, path_pt: str) -> None:
        self._check_fitted()
        torch.save(self.generator_.state_dict(), path_pt)

    @classmethod
    def from_state(cls, state: dict, weights_path: str) -> "GAN":
        fmt = state.get("format", 1)
        if fmt not in cls.READS_FORMATS:
            raise ValueError(f"GAN state format {fmt!r} is not supported "
                             f"(this code reads {', '.join(map(str, cls.READS_FORMATS))}); refit the model bundle")
        cfg = dict(state["config"])
        klass = CGAN if cfg.pop("class", cls.__name__) == "CGAN" else GAN
        if fmt == 1:
            # format 1's config lacked the vocabulary (it was passed to __init__ from the state)
            cfg["vocabulary"] = list(state["vocabulary"])
        unknown = sorted(set(cfg) - set(klass._get_param_names()))
        if unknown:
            raise ValueError(f"GAN state (format {fmt}) has unknown parameter(s) {', '.join(unknown)}; "
                             "refit the model bundle")
        obj = klass(**cfg)
        obj.vocabulary_ = list(state["vocabulary"])
        obj.cond_mean_ = None if state["cond_mean"] is None else np.asarray(state["cond_mean"])
        obj.cond_std_ = None if state["cond_std"] is None else np.asarray(state["cond_std"])
        gc = state.get("gfa_cond") or {}
        obj.dmax_log_mean_, obj.dmax_log_std_ = gc.get("dmax_log_mean", 0.0), gc.get("dmax_log_std", 1.0)
        obj._build()
        sd = torch.load(weights_path, map_location="cpu", weights_only=True)
        obj.generator_.load_state_dict(sd)
        obj.generator_.eval()
        h = state.get("history") or {}
        obj.history_ = TrainingHistory(epochs=h.get("epochs", 0), best_epoch=h.get("best_epoch", 0),
                                       best_val_wasserstein=h.get("best_val_wasserstein") or float("inf"),
                                       stopped_early=h.get("stopped_early", False))
        return obj

    # -- training ---------------------------------------------------------------------
    def _norm_cond(self, c: np.ndarray) -> np.ndarray:
        return (np.asarray(c, dtype=float) - self.cond_mean_) / self.cond_std_

    def fit(
        self,
        compositions: Sequence[Composition] | np.ndarray,
        conditions: np.ndarray | None = None,
        callback: Callable[[int, float, float, float | None], None] | None = None,
        validation: tuple | None = None,
        gfa: dict | None = None,
    ) -> "GAN":
        """Train on compositions (or an (n, k) fraction matrix over ``vocabulary``).

        ``conditions``: (n, 3) Tg, Tx, Tl in K (for ``condition="TrgGamma"`` the ratios are
        derived here). ``validation``: (compositions_or_fractions, conditions) of a held-out
        grouped split for early stopping; without it no early stopping happens.
        ``callback(epoch, d_loss, g_loss, val_wasserstein_or_None)`` is called every epoch.
        ``gfa`` (``gfa_condition=True`` only): {"glass", "bmg", "dmax_mm"} arrays, one value per
        composition, NaN where unknown; condition rows may then be NaN (temperatures unknown),
        and batches hold ``thermal_share`` rows with temperatures (one epoch passes over the
        rows with temperatures once: at thermal_share 0.5, twice a thermal-only epoch's steps).
        """
        from ml.metrics import wasserstein

        self._check_params()
        if isinstance(compositions, np.ndarray):
            if self.vocabulary is None:
                raise ValueError("a fraction matrix needs vocabulary=")
            vocabulary = list(self.vocabulary)
            X = np.asarray(compositions, dtype=float)
            if X.ndim != 2 or X.shape[1] != len(vocabulary):
                raise ValueError(f"the fraction matrix has shape {X.shape}; "
                                 f"expected (n, {len(vocabulary)}) over the vocabulary")
        else:
            vocabulary = list(self.vocabulary) if self.vocabulary is not None else \
                sorted({e for c in compositions for e in c})
            X = fractions_matrix(compositions, vocabulary)
        self.vocabulary_ = vocabulary
        ema = float(self.ema)
        set_torch_threads(1)
        torch.manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        n = X.shape[0]
        if n < 2:
            raise ValueError("need at least two compositions to train a GAN")

        if self.conditional:
            if conditions is None:
                raise ValueError("CGAN.fit needs conditions (Tg, Tx, Tl in K)")
            C_raw = condition_values(conditions, self.condition)
            if len(C_raw) != n:
                raise ValueError("conditions and compositions differ in length")
            thermal_rows = np.all(np.isfinite(C_raw), axis=1)
            if not self.gfa_condition and not thermal_rows.all():
                raise ValueError("conditions must be finite (only a CGAN with gfa_condition=True reads unknown temperatures)")
            if thermal_rows.sum() < 2:
                raise ValueError("need at least two rows with Tg, Tx and Tl to train a CGAN")
            self.cond_mean_ = C_raw[thermal_rows].mean(axis=0)
            self.cond_std_ = C_raw[thermal_rows].std(axis=0) + 1e-9
            if self.gfa_condition:
                gfa = gfa or {}
                cols = {k: np.asarray(gfa.get(k, np.full(n, np.nan)), dtype=float) for k in ("glass", "bmg", "dmax_mm")}
                if any(len(v) != n for v in cols.values()):
                    raise ValueError("the gfa arrays and compositions differ in length")
                d = cols["dmax_mm"]
                with np.errstate(divide="ignore", invalid="ignore"):
                    logd = np.log10(d[np.isfinite(d) & (d > 0)])
                self.dmax_log_mean_ = float(logd.mean()) if logd.size else 0.0
                self.dmax_log_std_ = float(logd.std() + 1e-9) if logd.size > 1 else 1.0
                # a thermal row's class defaults to glass (a measured Tg means it vitrified)
                glass = np.where(np.isnan(cols["glass"]) & thermal_rows, 1.0, cols["glass"])
                C = self.condition_matrix(C_raw, glass=glass, bmg=cols["bmg"], dmax_mm=d, normalized=False) \
                    if self.condition == "TgTxTl" else \
                    self.condition_matrix(self._norm_cond(C_raw), glass=glass, bmg=cols["bmg"], dmax_mm=d, normalized=True)
            else:
                C = self._norm_cond(C_raw)
        else:
            self.cond_mean_ = self.cond_std_ = None
            C = None

        self._build()
        G = self.generator_
        # Sampler = exponential moving average of the generator weights (Yazici et al. 2019)
        # when ema > 0; it is what validation, early stopping and sampling use.
        G_s = copy.deepcopy(G) if ema > 0 else G
        if G_s is not G:
            for p in G_s.parameters():
                p.requires_grad_(False)
        self.generator_ = G_s
        desc = None
        in_dim = X.shape[1]
        if self.descriptor_set != "D1":
            sets = ("D3",) if self.descriptor_set == "CD1" else ("D2",)
            desc = TorchDescriptors(self.vocabulary_, sets)
            with torch.no_grad():
                real_desc = desc(torch.as_tensor(X, dtype=torch.float32))
            d_mean = real_desc.mean(0)
            d_std = real_desc.std(0) + 1e-6
            in_dim += real_desc.shape[1]

        def disc_input(x):
            if desc is None:
                return x
            return torch.cat([x, (desc(x) - d_mean) / d_std], dim=1)

        D = Critic(in_dim, self.cond_dim, self.hidden, sigmoid=(self.loss == "bce"))
        betas = (0.5, 0.9) if self.loss == "wgan-gp" else (0.5, 0.999)
        opt_g = torch.optim.Adam(G.parameters(), lr=self.lr, betas=betas)
        opt_d = torch.optim.Adam(D.parameters(), lr=self.lr, betas=betas)
        bce = nn.BCELoss()

        Xt = torch.as_tensor(X, dtype=torch.float32)
        Ct = None if C is None else torch.as_tensor(C, dtype=torch.float32)

        val = None
        if validation is not None:
            vX, vC = validation
            vX = vX if isinstance(vX, np.ndarray) else fractions_matrix(vX, self.vocabulary_)
            val = (vX, vC)

        self.history_ = TrainingHistory()
        best_state = copy.deepcopy(G_s.state_dict())
        best_w = float("inf")
        bad = 0
        mixed = self.conditional and self.gfa_condition and not thermal_rows.all()
        if mixed:
            th_idx, other_idx = np.flatnonzero(thermal_rows), np.flatnonzero(~thermal_rows)
            n_ep = len(th_idx)
        else:
            n_ep = n
        bs = min(self.batch_size, n_ep)
        jitter_mask = None
        if Ct is not None:
            # jitter the continuous columns only (temperatures, log Dmax), never the flags
            jm = np.zeros(Ct.shape[1], dtype=np.float32)
            jm[:self._base_dim] = 1.0
            if self.gfa_condition:
                jm[self._base_dim + GFA_CONDITION_COLUMNS.index("log_dmax")] = 1.0
            jitter_mask = torch.as_tensor(jm)
        for epoch in range(1, self.epochs + 1):
            G.train()
            if mixed:
                n_th = max(1, int(round(self.thermal_share * bs)))
                n_batches = max(1, n_ep // n_th)
                th_perm = rng.permutation(th_idx)
                perm = torch.as_tensor(np.concatenate([
                    np.concatenate([th_perm[b * n_th:(b + 1) * n_th], rng.choice(other_idx, bs - n_th)])
                    for b in range(n_batches)]))
            else:
                perm = torch.as_tensor(rng.permutation(n))
                n_batches = max(1, n // bs)
            d_losses, g_losses = [], []
            for b in range(n_batches):
                idx = perm[b * bs:(b + 1) * bs]
                real = Xt[idx]
                c = None
                if Ct is not None:
                    noise = self.condition_jitter * torch.randn(len(idx), Ct.shape[1]) * jitter_mask
                    if self.gfa_condition:  # unknown columns stay exactly 0
                        known = Ct[idx][:, [self._base_dim, self._base_dim + 6]]
                        noise[:, :self._base_dim] *= known[:, :1]
                        noise[:, self._base_dim + 5] *= known[:, 1]
                    c = Ct[idx] + noise
                # critic step(s)
                for _ in range(self.n_critic if self.loss == "wgan-gp" else 1):
                    z = torch.randn(len(idx), self.noise_dim)
                    with torch.no_grad():
                        fake = G(z, c)
                    if self.loss == "wgan-gp":
                        d_real = D(disc_input(real), c)
                        d_fake = D(disc_input(fake), c)
                        alpha = torch.rand(len(idx), 1)
                        inter = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
                        d_inter = D(disc_input(inter), c)
                        grad = torch.autograd.grad(d_inter.sum(), inter, create_graph=True)[0]
                        gp = ((grad.norm(2, dim=1) - 1) ** 2).mean()
                        d_loss = d_fake.mean() - d_real.mean() + self.gp_weight * gp
                    else:
                        d_real = D(disc_input(real), c)
                        d_fake = D(disc_input(fake), c)
                        d_loss = bce(d_real, torch.ones_like(d_real)) + bce(d_fake, torch.zeros_like(d_fake))
                    opt_d.zero_grad()
                    d_loss.backward()
                    opt_d.step()
                # generator step
                z = torch.randn(len(idx), self.noise_dim)
                fake = G(z, c)
                d_fake = D(disc_input(fake), c)
                if self.loss == "wgan-gp":
                    g_loss = -d_fake.mean()
                else:
                    g_loss = bce(d_fake, torch.ones_like(d_fake))
                opt_g.zero_grad()
                g_loss.backward()
                opt_g.step()
                if G_s is not G:
                    with torch.no_grad():
                        for pe, pg in zip(G_s.parameters(), G.parameters()):
                            pe.mul_(ema).add_(pg.detach(), alpha=1.0 - ema)
                d_losses.append(float(d_loss.detach()))
                g_losses.append(float(g_loss.detach()))

            val_w = None
            if val is not None and (epoch % self.val_every == 0 or epoch == self.epochs):
                val_w = self.validation_wasserstein(val[0], val[1], seed=self.seed + 7, _metric=wasserstein)
                if val_w < best_w - 1e-6:
                    best_w = val_w
                    best_state = copy.deepcopy(G_s.state_dict())
                    self.history_.best_epoch = epoch
                    bad = 0
                else:
                    bad += 1
            d_mean, g_mean = float(np.mean(d_losses)), float(np.mean(g_losses))
            self.history_.records.append((epoch, d_mean, g_mean, val_w))
            self.history_.epochs = epoch
            if callback is not None:
                callback(epoch, d_mean, g_mean, val_w)
            if val is not None and bad >= self.patience:
                self.history_.stopped_early = True
                break
        if val is not None:
            G_s.load_state_dict(best_state)
            self.history_.best_val_wasserstein = best_w
        else:
            self.history_.best_epoch = self.history_.epochs
        G_s.eval()
        return self

    # -- sampling ---------------------------------------------------------------------
    def _check_fitted(self):
        if getattr(self, "generator_", None) is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted: call fit() or GAN.from_state() first")

    def raw_fractions(self, n: int, conditions: np.ndarray | None = None, seed: int = 0,
                      normalized: bool = False, sharpen: float | None = None) -> np.ndarray:
        """Generator output (n, k) before post-processing.

        ``conditions``: one row (broadcast) or n rows of raw condition values (Tg, Tx, Tl in K —
        or Trg, γ for ``condition="TrgGamma"`` when passed with 2 columns).
        """
        self._check_fitted()
        gen = torch.Generator().manual_seed(int(seed))
        z = torch.randn(n, self.noise_dim, generator=gen)
        c = None
        if self.conditional:
            if conditions is None:
                raise ValueError("CGAN.sample needs conditions")
            cond = np.atleast_2d(np.asarray(conditions, dtype=float))
            if not (normalized and cond.shape[1] == self.cond_dim):
                cond = self.condition_matrix(cond, normalized=normalized)
            if cond.shape[0] == 1:
                cond = np.repeat(cond, n, axis=0)
            if cond.shape[0] != n:
                raise ValueError("conditions must have one row or n rows")
            c = torch.as_tensor(cond, dtype=torch.float32)
        with torch.no_grad():
            out = self.generator_(z, c, self.sample_sharpen if sharpen is None else sharpen).numpy().astype(float)
        return out

    def sample_fractions(self, n: int, conditions: np.ndarray | None = None, seed: int = 0) -> np.ndarray:
        return postprocess_fractions(self.raw_fractions(n, conditions, seed))

    def sample(self, n: int, conditions: np.ndarray | None = None, seed: int = 0) -> list[Composition]:
        """n post-processed compositions (each through the composition parser)."""
        return to_compositions(self.sample_fractions(n, conditions, seed), self.vocabulary_)

    def validation_wasserstein(self, X_val: np.ndarray, C_val: np.ndarray | None, seed: int = 0,
                               n: int | None = None, _metric=None) -> float:
        """Wasserstein distance (fractions, Euclidean cost) between post-processed samples and
        X_val. A CGAN is conditioned on the validation rows' own conditions (cycled to n; by
        default n = ``val_samples`` × len(X_val): more samples than validation rows lower the
        variance of the generator side of the estimate, so early stopping chases less noise)."""
        if _metric is None:
            from ml.metrics import wasserstein as _metric
        n = n or int(self.val_samples) * len(X_val)
        cond = None
        if self.conditional:
            reps = int(math.ceil(n / len(C_val)))
            cond = np.tile(np.asarray(C_val, dtype=float), (reps, 1))[:n]
        was_training = self.generator_.training
        self.generator_.eval()
        F = self.sample_fractions(n, cond, seed)
        if was_training:
            self.generator_.train()
        return float(_metric(F, X_val))


class CGAN(GAN):
    """Conditional GAN: conditions on (Tg, Tx, Tl) or (Trg, γ)."""

    conditional = True


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) and math.isfinite(v)


def _finite_or_none(v):
    return None if v is None or not math.isfinite(v) else float(v)
