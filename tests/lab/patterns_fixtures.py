"""Realistic synthetic XRD patterns and DSC curves for tests (two-column text files as a
diffractometer or a calorimeter would write them)."""

from __future__ import annotations

import math

import numpy as np

from lab.patterns import CU_KALPHA_A, KELVIN_OFFSET, normalise_temperature_unit, q_to_two_theta, two_theta_to_q


def _gauss(x, centre, fwhm):
    return np.exp(-4.0 * math.log(2.0) * ((x - centre) / fwhm) ** 2)


def _lorentz(x, centre, fwhm):
    return 1.0 / (1.0 + 4.0 * ((x - centre) / fwhm) ** 2)


SYNTHETIC_HALO_Q = 2.65  # Å⁻¹, a Zr/Cu-based glass's first halo
SYNTHETIC_HALO_FWHM = 0.40  # Å⁻¹


def synthetic_xrd_pattern(
    kind: str = "amorphous",
    *,
    seed: int = 0,
    wavelength_a: float = CU_KALPHA_A,
    two_theta_range_deg: tuple[float, float] | None = None,
    step_deg: float = 0.02,
    halo_q: float = SYNTHETIC_HALO_Q,
    halo_fwhm_inv_a: float = SYNTHETIC_HALO_FWHM,
    counts: float = 1000.0,
) -> bytes:
    """A realistic two-column XRD pattern (header line, "2theta intensity"), Poisson noise.

    kind: "amorphous" (Gaussian halo in q at ``halo_q`` with ``halo_fwhm_inv_a`` plus a weaker
    second halo at 1.7 q, on a decaying background), "crystalline" (sharp pseudo-Voigt peaks,
    FWHM 0.15° in 2θ), or "partly_crystalline" (the halo plus three sharp peaks).
    2θ runs 20–80° in 0.02° steps for Cu Kα; for other wavelengths, over the same q range
    unless ``two_theta_range_deg`` is given.
    """
    if kind not in ("amorphous", "crystalline", "partly_crystalline"):
        raise ValueError(f"Unknown kind {kind!r}; use amorphous, crystalline or partly_crystalline.")
    rng = np.random.default_rng(seed)
    if two_theta_range_deg is None:
        q_lo, q_hi = two_theta_to_q([20.0, 80.0], CU_KALPHA_A)
        lo_hi = q_to_two_theta([q_lo, q_hi], wavelength_a)
        two_theta_range_deg = (round(float(lo_hi[0]), 1), round(float(lo_hi[1]), 1))
    start, stop = two_theta_range_deg
    tt = np.round(np.arange(start, stop + step_deg / 2, step_deg), 4)
    q = two_theta_to_q(tt, wavelength_a)
    background = 0.15 * counts + 0.35 * counts * np.exp(-(q - q[0]) / 0.8) + 0.02 * counts * (q - q[0])
    signal = np.zeros_like(q)
    if kind in ("amorphous", "partly_crystalline"):
        signal += counts * _gauss(q, halo_q, halo_fwhm_inv_a)
        signal += 0.25 * counts * _gauss(q, 1.7 * halo_q, 1.6 * halo_fwhm_inv_a)
    # Bragg peaks placed in q (so they exist for any wavelength): fcc-like sequence.
    dq_per_deg = (2 * math.pi / wavelength_a) * math.cos(math.radians(20.0)) * math.pi / 180
    sharp_fwhm_q = 0.15 * dq_per_deg
    if kind == "crystalline":
        for qc, amp in ((2.78, 4.0), (3.21, 1.8), (4.54, 1.1), (5.06, 1.3)):
            shape = 0.5 * _gauss(q, qc, sharp_fwhm_q) + 0.5 * _lorentz(q, qc, sharp_fwhm_q)
            signal += amp * counts * shape
    elif kind == "partly_crystalline":
        for qc, amp in ((2.45, 0.5), (2.98, 0.4), (3.55, 0.35)):
            shape = 0.5 * _gauss(q, qc, sharp_fwhm_q) + 0.5 * _lorentz(q, qc, sharp_fwhm_q)
            signal += amp * counts * shape
    mean = background + signal
    y = rng.poisson(mean).astype(float)
    lines = ["# 2theta(deg) intensity(counts) synthetic " + kind + f" lambda={wavelength_a}"]
    lines += [f"{a:.4f} {b:.0f}" for a, b in zip(tt, y)]
    return ("\n".join(lines) + "\n").encode("ascii")


def synthetic_dsc_curve(tg_k: float, tx_k: float, tl_k: float | None = None, *, seed: int = 0, unit: str = "K") -> bytes:
    """A DSC heating curve (exo up, W/g): step down at Tg, exothermic peak just after Tx,
    endothermic melting ending at Tl. Temperatures written in ``unit`` ("K" or "C")."""
    unit = normalise_temperature_unit(unit)
    if not tg_k < tx_k or (tl_k is not None and not tx_k < tl_k):
        raise ValueError("Need Tg < Tx < Tl.")
    rng = np.random.default_rng(seed)
    t_end = (tl_k + 60.0) if tl_k is not None else tx_k + 200.0
    t = np.arange(tg_k - 150.0, t_end, 0.5)
    flow = -0.05 - 0.00005 * (t - t[0])
    flow -= 0.08 / (1.0 + np.exp(-(t - tg_k) / 4.0))  # heat-capacity step at Tg
    flow += 1.2 * _gauss(t, tx_k + 10.0, 10.0)  # crystallisation (onset ≈ Tx)
    if tl_k is not None:
        melt_start = tl_k - 80.0
        ramp = np.clip((t - melt_start) / (tl_k - melt_start), 0, 1)
        melt = np.where(t <= tl_k, np.sin(np.pi * ramp) ** 2 * (0.3 + 0.7 * ramp), 0.0)
        flow -= 0.6 * melt
    flow += rng.normal(0, 0.002, len(t))
    shown = t - KELVIN_OFFSET if unit == "C" else t
    header = f"# Temperature ({'°C' if unit == 'C' else 'K'}), Heat flow (W/g, exo up)"
    lines = [header] + [f"{a:.2f}\t{b:.5f}" for a, b in zip(shown, flow)]
    return ("\n".join(lines) + "\n").encode("utf-8")
