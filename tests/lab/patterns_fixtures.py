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


DSC_SHAPES = ("legacy", "sharp", "broad", "double", "lagged")


def _smoothed_piecewise_linear(t, knots, sigma):
    """A piecewise-linear profile through ``knots`` [(T, y), ...] (flat beyond the end knots), convolved
    with a Gaussian of ``sigma`` K (thermal lag). Linear segments longer than ~3 sigma keep
    their line, so a tangent along one still meets the baseline at its knot."""
    from scipy.special import ndtr

    xs = [k[0] for k in knots]
    ys = [k[1] for k in knots]
    slopes = [0.0] + [(ys[i + 1] - ys[i]) / (xs[i + 1] - xs[i]) for i in range(len(xs) - 1)] + [0.0]
    out = np.zeros_like(t, dtype=float)
    for i, x0 in enumerate(xs):
        change = slopes[i + 1] - slopes[i]
        z = (t - x0) / sigma
        out += change * sigma * (z * ndtr(z) + np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi))
    return out + ys[0]


def _onset_aligned_flow(t, tg_k, tx_k, tl_k, tm_k, shape):
    """Exo-up heat flow (no baseline, no noise) whose tangent constructions give exactly
    Tg (onset of the step), Tx (onset of the first exotherm), Tm (onset of the first
    endotherm) and Tl (end of the last endotherm)."""
    sigma = {"sharp": 1.2, "broad": 2.0, "double": 1.5, "lagged": 3.0}[shape]
    step_width = {"sharp": 10.0, "broad": 22.0, "double": 14.0, "lagged": 16.0}[shape]
    rise, fall = {"sharp": (6.0, 16.0), "broad": (12.0, 32.0), "double": (7.0, 18.0), "lagged": (10.0, 26.0)}[shape]
    flow = _smoothed_piecewise_linear(t, [(tg_k, 0.0), (tg_k + step_width, -0.08)], sigma)  # heat-capacity step
    flow += _smoothed_piecewise_linear(t, [(tx_k, 0.0), (tx_k + rise, 1.0), (tx_k + rise + fall, 0.0)], sigma)
    if shape == "double":
        second = tx_k + rise + fall + 15.0
        flow += _smoothed_piecewise_linear(t, [(second, 0.0), (second + 8.0, 0.45), (second + 26.0, 0.0)], sigma)
    if tl_k is not None:
        if shape in ("broad", "double"):  # a sharp eutectic-like peak, then a broad one ending at the liquidus
            knots = [(tm_k, 0.0), (tm_k + 6.0, 0.5), (tm_k + 16.0, 0.08), (tl_k - 14.0, 0.3), (tl_k, 0.0)]
        else:  # one endotherm, rising slowly, ending steeply at the liquidus
            peak = tm_k + 0.7 * (tl_k - tm_k)
            knots = [(tm_k, 0.0), (peak, 0.45), (tl_k, 0.0)]
        flow -= _smoothed_piecewise_linear(t, knots, sigma)
    return flow


def synthetic_dsc_curve(
    tg_k: float,
    tx_k: float,
    tl_k: float | None = None,
    *,
    seed: int = 0,
    unit: str = "K",
    shape: str = "legacy",
    noise: float = 0.002,
    exo_up: bool = True,
    drift: float = 0.0,
    tm_k: float | None = None,
    heating_rate_k_min: float | None = None,
    t_end_k: float | None = None,
    step_k: float = 0.5,
) -> bytes:
    """A DSC heating curve (W/g): step at Tg, exothermic crystallisation after Tx,
    endothermic melting ending at Tl. Temperatures written in ``unit`` ("K" or "C").

    ``shape="legacy"`` (the default, unchanged output): logistic step centred on Tg,
    Gaussian exotherm centred at Tx + 10 K (tangent onset ≈ Tx + 1.5 K), melting ending
    smoothly at Tl.  The other shapes ("sharp", "broad", "double" — two exotherms and two
    endotherms —, "lagged" — strong thermal smearing) are onset-aligned: piecewise-linear
    events smeared by a Gaussian, so Tg, Tx and ``tm_k`` (default Tl − 60 K) are exactly
    the tangent onsets of the step, first exotherm and first endotherm, and Tl the tangent
    end of the last endotherm — the values a metallurgist reads off the trace.
    ``noise``: white-noise σ (W/g); ``drift``: extra bowed baseline change over the scan
    (W/g); ``exo_up=False`` writes the endo-up convention; ``heating_rate_k_min`` adds a
    header line stating it; ``t_end_k`` stops the scan early.
    """
    unit = normalise_temperature_unit(unit)
    if not tg_k < tx_k or (tl_k is not None and not tx_k < tl_k):
        raise ValueError("Need Tg < Tx < Tl.")
    if shape not in DSC_SHAPES:
        raise ValueError(f"Unknown shape {shape!r}; use one of {', '.join(DSC_SHAPES)}.")
    rng = np.random.default_rng(seed)
    t_end = (tl_k + 60.0) if tl_k is not None else tx_k + 200.0
    if t_end_k is not None:
        t_end = t_end_k
    t = np.arange(tg_k - 150.0, t_end, step_k)
    flow = -0.05 - 0.00005 * (t - t[0])
    if shape == "legacy":
        flow -= 0.08 / (1.0 + np.exp(-(t - tg_k) / 4.0))  # heat-capacity step at Tg
        flow += 1.2 * _gauss(t, tx_k + 10.0, 10.0)  # crystallisation (onset ≈ Tx)
        if tl_k is not None:
            melt_start = tl_k - 80.0
            ramp = np.clip((t - melt_start) / (tl_k - melt_start), 0, 1)
            melt = np.where(t <= tl_k, np.sin(np.pi * ramp) ** 2 * (0.3 + 0.7 * ramp), 0.0)
            flow -= 0.6 * melt
    else:
        if tl_k is not None:
            tm_k = tl_k - 60.0 if tm_k is None else tm_k
            if not tx_k < tm_k < tl_k:
                raise ValueError("Need Tx < Tm < Tl.")
        flow += _onset_aligned_flow(t, tg_k, tx_k, tl_k, tm_k, shape)
    if drift:
        u = (t - t[0]) / (t[-1] - t[0])
        flow += drift * (u + u * u) / 2.0
    flow += rng.normal(0, noise, len(t))
    if not exo_up:
        flow = -flow
    shown = t - KELVIN_OFFSET if unit == "C" else t
    header = f"# Temperature ({'°C' if unit == 'C' else 'K'}), Heat flow (W/g, {'exo' if exo_up else 'endo'} up)"
    lines = [header]
    if heating_rate_k_min is not None:
        lines.append(f"# Heating rate: {heating_rate_k_min:g} K/min")
    lines += [f"{a:.2f}\t{b:.5f}" for a, b in zip(shown, flow)]
    return ("\n".join(lines) + "\n").encode("utf-8")
