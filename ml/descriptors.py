r"""Composition descriptors D1, D2, D3 (Zhou et al. 2023) — vectorised, no Django.

Descriptor sets
---------------
* **D1** — atomic fractions over an element vocabulary fixed at fit time (``frac_<El>``).
* **D2** — the 13 empirical parameters of Zhou et al. (see :func:`d2_features`).
* **D3** — 8 theory-guided descriptors: atomic-size effect (residual strain), local chemical
  affinity (cohesive and pair-interaction energies) and non-ideal mixing entropy (see
  :func:`d3_features`).
* **CD1** = D1 + D3, **CD2** = D1 + D2, **D1D2D3** = all three (in that order).

All formulas take atomic fractions :math:`c_i` (rows summing to 1; rows are renormalised).
Element data come from :mod:`ml.elements` (matminer's shipped tables; units there).

Implementation note: descriptors only involve the elements present in a row, so rows are
grouped by their number of elements m and each group is compacted to an ``(n_g, m)`` array;
pair sums are evaluated on ``(n_g, m, m)`` instead of ``(n, k, k)`` over the whole vocabulary.
10,000 rows of up to 8 elements take ~0.1 s for D1+D2+D3 on one core.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Mapping, Sequence

import numpy as np

from ml.elements import (
    PROPERTY_NAMES,
    UnknownElementError,
    element_data_notes,
    element_table,
    missing_mixing_pairs,
    mixing_enthalpy_matrix,
)

__all__ = [
    "DESCRIPTOR_SETS",
    "ALL_DESCRIPTOR_SETS",
    "D2_NAMES",
    "D3_NAMES",
    "PACKING_FRACTION",
    "Featurizer",
    "fractions_matrix",
    "d1_names",
    "d2_features",
    "d3_features",
    "LIQUIDUS_NAMES",
    "liquidus_features",
    "UnknownElementError",
]

DESCRIPTOR_SETS = ("D1", "D2", "D3", "CD1", "CD2")
ALL_DESCRIPTOR_SETS = DESCRIPTOR_SETS + ("D1D2D3",)
_BLOCKS = {
    "D1": ("D1",),
    "D2": ("D2",),
    "D3": ("D3",),
    "CD1": ("D1", "D3"),
    "CD2": ("D1", "D2"),
    "D1D2D3": ("D1", "D2", "D3"),
}

GAS_CONSTANT_J_MOL_K = 8.314462618
# Dense random packing of hard spheres (Takeuchi & Inoue; Ye et al. use ~0.64-0.68).
PACKING_FRACTION = 0.64
# Solid angle subtended by one touching neighbour of equal size: 2π(1 − cos 30°).
_OMEGA_EQUAL = 2.0 * np.pi * (1.0 - np.sqrt(3.0) / 2.0)

D2_NAMES = (
    "d2_r_mean_pm",
    "d2_delta_pct",
    "d2_tm_mean_k",
    "d2_tm_std_k",
    "d2_dh_mix_kj_mol",
    "d2_dh_mix_std_kj_mol",
    "d2_s_ideal_j_mol_k",
    "d2_chi_mean",
    "d2_chi_std",
    "d2_vec_mean",
    "d2_vec_std",
    "d2_k_mean_gpa",
    "d2_k_std_gpa",
)
D3_NAMES = (
    "d3_eps_rms",
    "d3_eps_max_abs",
    "d3_ec_mean_ev",
    "d3_ec_std_ev",
    "d3_pair_h_mean_kj_mol",
    "d3_pair_h_std_kj_mol",
    "d3_s_excess_kb",
    "d3_s_nonideal_kb",
)


def d1_names(vocabulary: Sequence[str]) -> list[str]:
    return [f"frac_{el}" for el in vocabulary]


# ---------------------------------------------------------------------------------------
# fractions


def fractions_matrix(compositions: Sequence[Mapping[str, float]], vocabulary: Sequence[str]) -> np.ndarray:
    """(n, k) atomic fractions of ``compositions`` over ``vocabulary`` (rows sum to 1).

    Accepts :class:`ml.composition.Composition` or any element -> amount mapping (amounts
    are normalised). Raises ``ValueError`` naming the elements outside the vocabulary and
    the first row where each occurs, or a row with negative/zero total amount.
    """
    vocabulary = list(vocabulary)
    col = {el: j for j, el in enumerate(vocabulary)}
    X = np.zeros((len(compositions), len(vocabulary)), dtype=float)
    unknown: dict[str, int] = {}
    for i, comp in enumerate(compositions):
        for el, amount in comp.items():
            j = col.get(el)
            if j is None:
                unknown.setdefault(el, i)
                continue
            X[i, j] += float(amount)
    if unknown:
        where = ", ".join(f"{el} (row {i})" for el, i in sorted(unknown.items()))
        raise ValueError(
            f"elements outside the model vocabulary: {where}; vocabulary is {'-'.join(vocabulary)}"
        )
    return _normalise_rows(X)


def l1_distances(Q: np.ndarray, X: np.ndarray, dtype=np.float64, chunk: int = 2_000_000) -> np.ndarray:
    """(n, m) L1 distances between fraction rows (rows summing to 1), via the simplex identity
    |a − b|₁ = Σa + Σb − 2 Σ_j min(a_j, b_j) with the sum over a's non-zero elements only.

    ``dtype=np.float32`` works in single precision (~3× faster, error ~1e-7) and returns
    float32; used at prediction time, while fits keep float64."""
    Q = np.asarray(Q, dtype=float)
    X = np.asarray(X, dtype=float)
    n, m = Q.shape[0], X.shape[0]
    out = np.empty((n, m), dtype=dtype)
    if n == 0 or m == 0:
        return out
    nnz = max(1, int((Q > 0).sum(axis=1).max()))
    cols = np.argsort(-Q, axis=1, kind="stable")[:, :nnz]
    vals = np.take_along_axis(Q, cols, axis=1).astype(dtype)
    sums = Q.sum(axis=1).astype(dtype)
    ref_sums = X.sum(axis=1).astype(dtype)
    XT = X.T.astype(dtype)
    step = max(1, int(chunk // m))
    for s in range(0, n, step):
        c, v = cols[s:s + step], vals[s:s + step]
        overlap = np.zeros((len(c), m), dtype=dtype)
        for t in range(nnz):  # one (chunk, m) pass per non-zero element of the queries
            overlap += np.minimum(v[:, t:t + 1], XT[c[:, t]])
        d = sums[s:s + step, None] + ref_sums[None, :] - 2.0 * overlap
        out[s:s + step] = np.maximum(d, 0.0)
    return out


def _normalise_rows(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X, dtype=float)
    if X.ndim != 2:
        raise ValueError(f"fractions must be a 2-D array, got shape {X.shape}")
    if not np.all(np.isfinite(X)):
        raise ValueError("fractions contain NaN or infinite values")
    if np.any(X < 0):
        rows = np.unique(np.nonzero(X < 0)[0])[:5].tolist()
        raise ValueError(f"negative fractions in rows {rows}")
    totals = X.sum(axis=1)
    if np.any(totals <= 0):
        rows = np.nonzero(totals <= 0)[0][:5].tolist()
        raise ValueError(f"rows with no element (all fractions zero): {rows}")
    return X / totals[:, None]


# ---------------------------------------------------------------------------------------
# element data per vocabulary (cached)


@lru_cache(maxsize=64)
def _element_data(vocabulary: tuple[str, ...]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    return element_table(vocabulary), mixing_enthalpy_matrix(vocabulary)


class _Compact:
    """Rows compacted to their m non-zero elements: fractions C (n,m), index idx (n,m)."""

    def __init__(self, X: np.ndarray):
        nnz = int((X > 0).sum(axis=1).max()) if X.size else 0
        m = max(nnz, 1)
        if m < X.shape[1]:
            idx = np.argpartition(-X, m - 1, axis=1)[:, :m]
        else:
            idx = np.broadcast_to(np.arange(X.shape[1]), X.shape).copy()
        self.idx = idx
        self.C = np.take_along_axis(X, idx, axis=1)
        self.present = self.C > 0
        i_upper = np.triu(np.ones((idx.shape[1], idx.shape[1]), dtype=bool), k=1)
        # weights c_i c_j of unlike pairs i<j (padding has c=0, so weight 0)
        self.W = self.C[:, :, None] * self.C[:, None, :] * i_upper

    def prop(self, values: np.ndarray) -> np.ndarray:
        return values[self.idx]

    def pair(self, matrix: np.ndarray) -> np.ndarray:
        return matrix[self.idx[:, :, None], self.idx[:, None, :]]

    def mean(self, p: np.ndarray) -> np.ndarray:
        return (self.C * p).sum(axis=1)

    def std(self, p: np.ndarray, mean: np.ndarray | None = None) -> np.ndarray:
        """sqrt(Σ c_i (p_i − p̄)²)."""
        if mean is None:
            mean = self.mean(p)
        return np.sqrt(np.maximum((self.C * (p - mean[:, None]) ** 2).sum(axis=1), 0.0))


def _s_ideal_over_r(C: np.ndarray) -> np.ndarray:
    """−Σ c_i ln c_i (0 ln 0 = 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(C > 0, C * np.log(np.where(C > 0, C, 1.0)), 0.0)
    return 0.0 - terms.sum(axis=1)  # "0.0 -" avoids -0.0 for pure elements


def _by_element_count(X: np.ndarray, compute, width: int) -> np.ndarray:
    """Apply ``compute(_Compact)`` to groups of rows with the same number of elements.

    Pair terms cost O(m²) per row, so a batch mixing binaries with 15-element rows would
    otherwise pay m = 15 for every row; grouping keeps each row at its own m.
    """
    counts = (X > 0).sum(axis=1)
    out = np.empty((X.shape[0], width))
    for m in np.unique(counts):
        rows = np.nonzero(counts == m)[0]
        out[rows] = compute(_Compact(X[rows]))
    return out


# ---------------------------------------------------------------------------------------
# D2


def _d2(cp: _Compact, props: dict[str, np.ndarray], H: np.ndarray) -> np.ndarray:
    r = cp.prop(props["radius_pm"])
    r_mean = cp.mean(r)
    delta = 100.0 * np.sqrt(np.maximum((cp.C * (1.0 - r / r_mean[:, None]) ** 2).sum(axis=1), 0.0))
    tm = cp.prop(props["melting_t_k"])
    chi = cp.prop(props["electronegativity"])
    vec = cp.prop(props["vec"])
    kb = cp.prop(props["bulk_modulus_gpa"])
    Hp = 4.0 * cp.pair(H)  # Ω_ij = 4 ΔH^mix_ij (regular-solution interaction parameter)
    dh_mix = (cp.W * Hp).sum(axis=(1, 2))
    dh_std = np.sqrt(np.maximum((cp.W * (Hp - dh_mix[:, None, None]) ** 2).sum(axis=(1, 2)), 0.0))
    s_ideal = GAS_CONSTANT_J_MOL_K * _s_ideal_over_r(cp.C)
    tm_mean, chi_mean, vec_mean, kb_mean = cp.mean(tm), cp.mean(chi), cp.mean(vec), cp.mean(kb)
    return np.column_stack(
        [
            r_mean,
            delta,
            tm_mean,
            cp.std(tm, tm_mean),
            dh_mix,
            dh_std,
            s_ideal,
            chi_mean,
            cp.std(chi, chi_mean),
            vec_mean,
            cp.std(vec, vec_mean),
            kb_mean,
            cp.std(kb, kb_mean),
        ]
    )


def d2_features(X_frac: np.ndarray, vocabulary: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    r"""The 13 empirical parameters of Zhou et al. (D2), shape (n, 13).

    With :math:`c_i` the atomic fractions and, for a property :math:`p`,
    :math:`\bar p = \sum_i c_i p_i` and :math:`\sigma_p = \sqrt{\sum_i c_i (p_i-\bar p)^2}`:

    ========================  ===========================================================
    ``d2_r_mean_pm``          :math:`\bar r = \sum_i c_i r_i` (Miracle radii, pm)
    ``d2_delta_pct``          :math:`\delta = 100\sqrt{\sum_i c_i (1 - r_i/\bar r)^2}` (**per cent**)
    ``d2_tm_mean_k``          :math:`\bar T_m` (K);   ``d2_tm_std_k``: :math:`\sigma_{T_m}`
    ``d2_dh_mix_kj_mol``      :math:`\Delta H_{mix} = \sum_{i<j} 4\Delta H_{ij} c_i c_j`
                              (Takeuchi & Inoue 2005, Miedema ΔH_ij of the equiatomic liquid)
    ``d2_dh_mix_std_kj_mol``  :math:`\sqrt{\sum_{i<j} c_i c_j (4\Delta H_{ij} - \Delta H_{mix})^2}`
                              (spread of the pair interaction parameters Ω_ij = 4ΔH_ij around
                              ΔH_mix; 0 for a pure element)
    ``d2_s_ideal_j_mol_k``    :math:`\Delta S_{id} = -R\sum_i c_i \ln c_i` (J mol⁻¹ K⁻¹)
    ``d2_chi_mean``           :math:`\bar\chi` (Pauling);   ``d2_chi_std``: :math:`\sigma_\chi`
    ``d2_vec_mean``           VEC :math:`=\sum_i c_i\,VEC_i` (Magpie NValence); ``d2_vec_std``
    ``d2_k_mean_gpa``         :math:`\bar K` (GPa);   ``d2_k_std_gpa``: :math:`\sigma_K`
    ========================  ===========================================================

    Pairs without a tabulated ΔH_ij count as 0 (see :func:`ml.elements.missing_mixing_pairs`).
    """
    vocabulary = tuple(vocabulary)
    props, H = _element_data(vocabulary)
    X = _check_width(_normalise_rows(X_frac), vocabulary)
    return _by_element_count(X, lambda cp: _d2(cp, props, H), len(D2_NAMES)), list(D2_NAMES)


# ---------------------------------------------------------------------------------------
# D3


def _solid_angle(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Solid angle subtended at the centre of a sphere of radius a by a touching sphere b."""
    return 2.0 * np.pi * (1.0 - np.sqrt(a * (a + 2.0 * b)) / (a + b))


def _residual_strain(C: np.ndarray, r: np.ndarray, iterations: int = 12) -> np.ndarray:
    r"""Local residual strain ε_i of every element in every row, shape (n, m).

    See :func:`d3_features`. Newton iterations on t = r_i'/r_i starting at 1; g(t) is
    decreasing and convex, so the iteration converges monotonically after the first step.
    """
    # rho[n, i, j] = r_j / r_i ; only present neighbours (c_j > 0) carry weight
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = np.where(C[:, None, :] > 0, r[:, None, :] / np.where(r > 0, r, 1.0)[:, :, None], 1.0)
    w = C[:, None, :]
    t = np.ones_like(C)
    for _ in range(iterations):
        a = t[:, :, None]
        g = (w * _solid_angle(a, rho)).sum(axis=2) - _OMEGA_EQUAL
        root = np.sqrt(a * (a + 2.0 * rho))
        dg = (w * (-2.0 * np.pi * rho**2 / ((a + rho) ** 2 * root))).sum(axis=2)
        t_new = np.clip(t - g / dg, 0.05, 20.0)
        converged = np.max(np.abs(t_new - t), initial=0.0) < 1e-12
        t = t_new
        if converged:
            break
    eps = np.where(C > 0, t - 1.0, 0.0)
    return eps


def _s_excess_over_kb(C: np.ndarray, d: np.ndarray, xi: float) -> np.ndarray:
    r"""Mansoori–Carnahan–Starling–Leland hard-sphere excess entropy S_E/k_B (≤ 0)."""
    zeta = 1.0 / (1.0 - xi)
    v = C * d**3
    phi = v / v.sum(axis=1, keepdims=True)  # ξ_i / ξ
    with np.errstate(divide="ignore", invalid="ignore"):
        dd = d[:, :, None] * d[:, None, :]
        dd_safe = np.where(dd > 0, dd, 1.0)
        delta = (
            np.sqrt(phi[:, :, None] * phi[:, None, :])
            * (d[:, :, None] - d[:, None, :]) ** 2
            / dd_safe
            * np.sqrt(C[:, :, None] * C[:, None, :])
        )
        upper = np.triu(np.ones(delta.shape[1:], dtype=bool), k=1)
        delta = np.where(upper, delta, 0.0)
        y1 = (delta * (d[:, :, None] + d[:, None, :]) / np.sqrt(dd_safe)).sum(axis=(1, 2))
        inv_d = np.where(C > 0, 1.0 / np.where(d > 0, d, 1.0), 0.0)
        y2 = (delta * np.sqrt(dd)).sum(axis=(1, 2)) * (phi * inv_d).sum(axis=1)
        y3 = ((phi ** (2.0 / 3.0)) * (C ** (1.0 / 3.0))).sum(axis=1) ** 3
    return (
        1.5 * (zeta**2 - 1.0) * y1
        + 1.5 * (zeta - 1.0) ** 2 * y2
        - (0.5 * (zeta - 1.0) * (zeta - 3.0) + np.log(zeta)) * (1.0 - y3)
    )


def _d3(cp: _Compact, props: dict[str, np.ndarray], H: np.ndarray, xi: float = PACKING_FRACTION) -> np.ndarray:
    r = cp.prop(props["radius_pm"])
    eps = _residual_strain(cp.C, r)
    eps_rms = np.sqrt((cp.C * eps**2).sum(axis=1))
    eps_max = np.abs(eps).max(axis=1)
    ec = cp.prop(props["cohesive_energy_ev"])
    ec_mean = cp.mean(ec)
    ec_std = cp.std(ec, ec_mean)
    Hp = cp.pair(H)
    wsum = cp.W.sum(axis=(1, 2))
    has_pairs = wsum > 0
    wsafe = np.where(has_pairs, wsum, 1.0)
    h_mean = np.where(has_pairs, (cp.W * Hp).sum(axis=(1, 2)) / wsafe, 0.0)
    h_var = (cp.W * (Hp - h_mean[:, None, None]) ** 2).sum(axis=(1, 2)) / wsafe
    h_std = np.where(has_pairs, np.sqrt(np.maximum(h_var, 0.0)), 0.0)
    s_e = _s_excess_over_kb(cp.C, 2.0 * r, xi)
    s_nonideal = _s_ideal_over_r(cp.C) + s_e
    return np.column_stack([eps_rms, eps_max, ec_mean, ec_std, h_mean, h_std, s_e, s_nonideal])


def d3_features(X_frac: np.ndarray, vocabulary: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    r"""8 theory-guided descriptors (D3), shape (n, 8).

    **Atomic-size effect** — local residual strain (after Ye, Liu & Yang, "A geometric model
    for intrinsic residual strain and phase stability in high entropy alloys", Acta Mater.
    94 (2015) 152). *Simplified, mean-field version of their geometric construction:* an
    atom of element i (radius r_i) keeps the coordination shell it has in the pure element,
    where each touching neighbour subtends :math:`\Omega_0 = 2\pi(1-\cos 30^\circ)`.
    In the alloy a neighbour is element j with probability c_j and subtends
    :math:`\Omega(a, r_j) = 2\pi\left(1-\sqrt{a(a+2r_j)}/(a+r_j)\right)` at a centre of
    radius a. The apparent radius :math:`r_i'` that closes the shell solves
    :math:`\sum_j c_j\,\Omega(r_i', r_j) = \Omega_0`, and
    :math:`\varepsilon_i = r_i'/r_i - 1` (ε_i > 0: atom i stretched by larger neighbours).

    * ``d3_eps_rms`` — :math:`\varepsilon_{rms} = \sqrt{\sum_i c_i \varepsilon_i^2}`
    * ``d3_eps_max_abs`` — :math:`\max_i |\varepsilon_i|` over the elements present

    **Local chemical affinity**

    * ``d3_ec_mean_ev``, ``d3_ec_std_ev`` — :math:`\bar E_c=\sum_i c_iE_{c,i}` and
      :math:`\sqrt{\sum_i c_i(E_{c,i}-\bar E_c)^2}` (cohesive energies, eV/atom, Kittel)
    * ``d3_pair_h_mean_kj_mol``, ``d3_pair_h_std_kj_mol`` — statistics of the unlike-pair
      interaction energies (Miedema ΔH_ij, Takeuchi–Inoue table) over the pair population:
      with weights :math:`w_{ij} = c_ic_j/\sum_{k<l}c_kc_l` (i<j),
      :math:`\bar h=\sum w_{ij}\Delta H_{ij}` and :math:`\sqrt{\sum w_{ij}(\Delta H_{ij}-\bar h)^2}`
      (both 0 for a pure element). Unlike ΔH_mix this is the mean bond chemistry, not
      scaled by how many unlike bonds there are.

    **Non-ideal mixing entropy** (hard spheres; Mansoori, Carnahan, Starling & Leland,
    J. Chem. Phys. 54 (1971) 1523; as used by Takeuchi & Inoue and by Ye et al., Scripta
    Mater. 104 (2015) 53), with diameters :math:`d_i = 2r_i`, packing fraction
    :math:`\xi = 0.64` (dense random packing), :math:`\zeta = 1/(1-\xi)`,
    :math:`\xi_i/\xi = c_i d_i^3/\sum_k c_k d_k^3`:

    .. math::
        \Delta_{ij} = \frac{\sqrt{\xi_i\xi_j}}{\xi}\frac{(d_i-d_j)^2}{d_id_j}\sqrt{c_ic_j},\quad
        y_1 = \sum_{i<j}\Delta_{ij}\frac{d_i+d_j}{\sqrt{d_id_j}},\quad
        y_2 = \sum_{i<j}\Delta_{ij}\sum_k\frac{\xi_k}{\xi}\frac{\sqrt{d_id_j}}{d_k},\quad
        y_3 = \Big(\sum_i (\xi_i/\xi)^{2/3} c_i^{1/3}\Big)^3

    .. math::
        S_E/k_B = \tfrac32(\zeta^2-1)y_1 + \tfrac32(\zeta-1)^2y_2
                  - \big[\tfrac12(\zeta-1)(\zeta-3)+\ln\zeta\big](1-y_3)

    * ``d3_s_excess_kb`` — :math:`S_E/k_B`: the mixture's hard-sphere excess entropy minus
      that of one-size spheres at the same ξ (0 for equal sizes). With the MCSL expression as
      written it is positive for size-dispersed mixtures (polydisperse spheres pack more
      easily) — Takeuchi & Inoue's normalised mismatch entropy :math:`S_\sigma/k_B`; some
      papers quote only its magnitude, so mind the sign when comparing.
    * ``d3_s_nonideal_kb`` — :math:`S_{mix}/k_B = -\sum_i c_i\ln c_i + S_E/k_B` (per atom)
    """
    vocabulary = tuple(vocabulary)
    props, H = _element_data(vocabulary)
    X = _check_width(_normalise_rows(X_frac), vocabulary)
    return _by_element_count(X, lambda cp: _d3(cp, props, H), len(D3_NAMES)), list(D3_NAMES)


# ---------------------------------------------------------------------------------------
# liquidus estimates (used by ml.forward's liquidus block; not a descriptor set)

LIQUIDUS_NAMES = (
    "liq_ideal_k",
    "liq_ideal_over_tm",
    "liq_regular_k",
    "liq_regular_over_tm",
    "liq_regular_depression_k",
    "liq_regular_gap_k",
)
# Richard's rule: entropy of fusion ≈ R for metals (fixed, not fitted)
FUSION_ENTROPY_OVER_R = 1.0


def _liquidus(cp: _Compact, tm_k: np.ndarray, H: np.ndarray) -> np.ndarray:
    C = cp.C
    present = cp.present
    tm = cp.prop(tm_k)
    s = FUSION_ENTROPY_OVER_R
    R = GAS_CONSTANT_J_MOL_K
    logc = np.log(np.where(present, C, 1.0))
    # ideal solution, pure-element solid i: ln c_i = −(ΔS_f/R)(Tm_i/T − 1)
    t_ideal = np.where(present, tm * s / (s - logc), -np.inf)
    # regular solution (Ω_ij = 4ΔH_ij): μ_i^ex = Σ_j Ω_ij c_j − G_ex, G_ex = Σ_{j<k} Ω_jk c_j c_k;
    # R T ln c_i + μ_i^ex = −ΔS_f (Tm_i − T)  =>  T = (s R Tm_i + μ_i^ex) / (R (s − ln c_i))
    omega = 4000.0 * cp.pair(H)  # J/mol
    g_ex = (cp.W * omega).sum(axis=(1, 2))
    mu_ex = np.einsum("nij,nj->ni", omega, C) - g_ex[:, None]
    t_reg = (s * R * tm + mu_ex) / (R * (s - logc))
    t_reg = np.where(present, np.maximum(t_reg, 0.2 * tm), -np.inf)
    tm_mean = cp.mean(np.where(present, tm, 0.0))
    ideal = t_ideal.max(axis=1)
    top2 = -np.sort(-t_reg, axis=1)[:, :2]
    reg = top2[:, 0]
    # gap between the two highest single-phase liquidus branches: small near a eutectic valley
    gap = top2[:, 0] - top2[:, 1] if top2.shape[1] > 1 else np.zeros_like(reg)
    gap = np.where(np.isfinite(gap), gap, 0.0)
    return np.column_stack([ideal, ideal / tm_mean, reg, reg / tm_mean, tm_mean - reg, gap])


def liquidus_features(X_frac: np.ndarray, vocabulary: Sequence[str], melting_k: np.ndarray | None = None,
                      mixing_kj_mol: np.ndarray | None = None) -> tuple[np.ndarray, list[str]]:
    r"""Liquidus estimates from the elements' melting points and mixing enthalpies, (n, 6).

    Each element present is treated as a pure solid phase i in equilibrium with the liquid
    (Schröder–van Laar, entropy of fusion ΔS_f = R by Richard's rule); the liquidus is the
    highest of these single-phase branches:

    * ``liq_ideal_k`` — ideal liquid: :math:`T_i = T_{m,i}/(1 - \ln c_i)`, max over i;
    * ``liq_regular_k`` — regular liquid with :math:`\Omega_{ij} = 4\Delta H_{ij}` (Miedema,
      as D2's ΔH_mix): :math:`T_i = (R T_{m,i} + \mu_i^{ex}) / (R(1 - \ln c_i))`,
      :math:`\mu_i^{ex} = \sum_j \Omega_{ij}c_j - \sum_{j<k}\Omega_{jk}c_jc_k` (each branch
      kept ≥ 0.2 T_m,i), max over i;
    * ``*_over_tm`` — the same over the rule-of-mixtures :math:`\bar T_m`;
      ``liq_regular_depression_k`` = :math:`\bar T_m` − regular liquidus (a eutectic-depth
      proxy); ``liq_regular_gap_k`` — the gap between the two highest branches (0 at a
      two-phase eutectic valley; 0 for a pure element).

    ``melting_k`` / ``mixing_kj_mol``: element data over the vocabulary (default: the tables).
    """
    vocabulary = tuple(vocabulary)
    if melting_k is None or mixing_kj_mol is None:
        props, H = _element_data(vocabulary)
        melting_k = props["melting_t_k"] if melting_k is None else melting_k
        mixing_kj_mol = H if mixing_kj_mol is None else mixing_kj_mol
    tm = np.asarray(melting_k, dtype=float)
    H = np.asarray(mixing_kj_mol, dtype=float)
    X = _check_width(_normalise_rows(X_frac), vocabulary)
    return _by_element_count(X, lambda cp: _liquidus(cp, tm, H), len(LIQUIDUS_NAMES)), list(LIQUIDUS_NAMES)


def _check_width(X: np.ndarray, vocabulary: Sequence[str]) -> np.ndarray:
    if X.shape[1] != len(vocabulary):
        raise ValueError(
            f"fractions have {X.shape[1]} columns but the vocabulary has {len(vocabulary)} elements"
        )
    return X


# ---------------------------------------------------------------------------------------
# Featurizer


class Featurizer:
    """scikit-learn style featurizer: compositions -> descriptor matrix.

    ``fit`` fixes the vocabulary (sorted symbols seen, unless given) and loads the element
    data for it (raising :class:`UnknownElementError` for elements without data); the
    element data are then stored in :meth:`to_dict`, so a saved featurizer reproduces its
    features without re-reading matminer and regardless of later table changes.

    Attributes after fit: ``vocabulary_``, ``feature_names_``, ``missing_mixing_pairs_``
    (pairs whose ΔH_ij was taken as 0), ``element_notes_`` (documented fallbacks used).
    """

    def __init__(self, descriptor_set: str = "CD1", vocabulary: Sequence[str] | None = None):
        if descriptor_set not in _BLOCKS:
            raise ValueError(
                f"unknown descriptor set {descriptor_set!r}; choose one of {', '.join(ALL_DESCRIPTOR_SETS)}"
            )
        self.descriptor_set = descriptor_set
        self.vocabulary = list(vocabulary) if vocabulary is not None else None
        self.packing_fraction = PACKING_FRACTION

    # -- fitting -----------------------------------------------------------------------
    def fit(self, compositions: Sequence[Mapping[str, float]] | None = None) -> "Featurizer":
        if self.vocabulary is not None:
            vocab = list(self.vocabulary)
        else:
            if not compositions:
                raise ValueError("fit needs compositions (or a vocabulary) to fix the element vocabulary")
            vocab = sorted({el for comp in compositions for el in comp})
        if len(set(vocab)) != len(vocab):
            raise ValueError(f"vocabulary has duplicate elements: {vocab}")
        if not vocab:
            raise ValueError("empty element vocabulary")
        props = element_table(vocab)  # raises UnknownElementError naming the elements
        self._set_state(vocab, props, mixing_enthalpy_matrix(vocab))
        self.missing_mixing_pairs_ = [list(p) for p in missing_mixing_pairs(vocab)]
        self.element_notes_ = element_data_notes(vocab)
        if compositions is not None and self.vocabulary is not None:
            fractions_matrix(compositions, vocab)  # validates: elements outside the vocabulary
        return self

    def _set_state(self, vocab: list[str], props: dict[str, np.ndarray], H: np.ndarray) -> None:
        self.vocabulary_ = list(vocab)
        self._props = {p: np.asarray(v, dtype=float) for p, v in props.items()}
        self._H = np.asarray(H, dtype=float)
        names: list[str] = []
        for block in _BLOCKS[self.descriptor_set]:
            names += d1_names(vocab) if block == "D1" else list(D2_NAMES if block == "D2" else D3_NAMES)
        self.feature_names_ = names

    def _check_fitted(self) -> None:
        if not hasattr(self, "vocabulary_"):
            raise RuntimeError("Featurizer is not fitted: call fit() or from_dict() first")

    @property
    def n_features_(self) -> int:
        self._check_fitted()
        return len(self.feature_names_)

    # -- transforming ------------------------------------------------------------------
    def transform_fractions(self, X_frac: np.ndarray) -> np.ndarray:
        """(n, k) fractions over ``vocabulary_`` -> (n, n_features). Rows are renormalised."""
        self._check_fitted()
        X = _check_width(_normalise_rows(X_frac), self.vocabulary_)
        blocks = _BLOCKS[self.descriptor_set]
        physics = [b for b in blocks if b != "D1"]

        def compute(cp: _Compact) -> np.ndarray:
            cols = [
                _d2(cp, self._props, self._H) if b == "D2" else _d3(cp, self._props, self._H, self.packing_fraction)
                for b in physics
            ]
            return np.hstack(cols)

        width = sum(len(D2_NAMES) if b == "D2" else len(D3_NAMES) for b in physics)
        parts = [X] if "D1" in blocks else []
        if physics:
            parts.append(_by_element_count(X, compute, width))
        return np.hstack(parts) if len(parts) > 1 else parts[0]

    def transform(self, compositions: Sequence[Mapping[str, float]]) -> np.ndarray:
        self._check_fitted()
        return self.transform_fractions(fractions_matrix(compositions, self.vocabulary_))

    def fit_transform(self, compositions: Sequence[Mapping[str, float]]) -> np.ndarray:
        return self.fit(compositions).transform(compositions)

    # -- persistence -------------------------------------------------------------------
    def to_dict(self) -> dict:
        """JSON-safe state (descriptor set, vocabulary, the element data used, notes)."""
        self._check_fitted()
        from ml.elements import data_source_versions

        return {
            "format": "glassloop.featurizer/1",
            "descriptor_set": self.descriptor_set,
            "vocabulary": list(self.vocabulary_),
            "feature_names": list(self.feature_names_),
            "packing_fraction": self.packing_fraction,
            "element_properties": {p: [float(x) for x in v] for p, v in self._props.items()},
            "mixing_enthalpy_kj_mol": [[float(x) for x in row] for row in self._H],
            "missing_mixing_pairs": [list(p) for p in getattr(self, "missing_mixing_pairs_", [])],
            "element_notes": list(getattr(self, "element_notes_", [])),
            "data_sources": data_source_versions(),
        }

    @classmethod
    def from_dict(cls, d: Mapping) -> "Featurizer":
        try:
            if d.get("format") != "glassloop.featurizer/1":
                raise ValueError(f"unsupported featurizer format {d.get('format')!r}")
            f = cls(d["descriptor_set"], d["vocabulary"])
            vocab = list(d["vocabulary"])
            props = {p: np.asarray(d["element_properties"][p], dtype=float) for p in PROPERTY_NAMES}
            H = np.asarray(d["mixing_enthalpy_kj_mol"], dtype=float)
        except KeyError as exc:
            raise ValueError(f"featurizer state is missing the field {exc}") from None
        k = len(vocab)
        if H.shape != (k, k) or any(v.shape != (k,) for v in props.values()):
            raise ValueError("featurizer state is inconsistent: element data do not match the vocabulary")
        f.packing_fraction = float(d.get("packing_fraction", PACKING_FRACTION))
        f._set_state(vocab, props, H)
        if list(d.get("feature_names", f.feature_names_)) != f.feature_names_:
            raise ValueError("featurizer state is inconsistent: stored feature names differ from the descriptor set")
        f.missing_mixing_pairs_ = [list(p) for p in d.get("missing_mixing_pairs", [])]
        f.element_notes_ = list(d.get("element_notes", []))
        return f

    def __repr__(self) -> str:
        vocab = getattr(self, "vocabulary_", self.vocabulary)
        return f"Featurizer(descriptor_set={self.descriptor_set!r}, vocabulary={vocab!r})"
