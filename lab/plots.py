"""SVG plots of XRD patterns and DSC curves (rendering: core.plots).

Marker groups carry ids (``main-peak``, ``fwhm-bar``, ``sharp-peaks``, ``tg-marker``,
``tx-marker``, ``tl-marker``) for tests and CSS.
"""

from __future__ import annotations

import math

import numpy as np

from core.plots import new_figure, plain, render_svg

from .patterns import (
    KELVIN_OFFSET,
    DSCCurve,
    XRDAnalysis,
    fwhm_two_theta_deg,
    q_to_two_theta,
    two_theta_to_q,
)

FIGSIZE_IN = (7.0, 4.2)
MAX_PLOTTED_POINTS = 2400  # enough for a 600-px-wide plot; keeps the SVG small
CURVE_COLOUR = "#1f4e79"
MARK_COLOUR = "#c0392b"
SHARP_COLOUR = "#e67e22"
BACKGROUND_COLOUR = "#7f8c8d"


def _decimate(x: np.ndarray, y: np.ndarray, max_points: int = MAX_PLOTTED_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """Keep each bin's min and max so sharp peaks survive thinning."""
    n = len(x)
    if n <= max_points:
        return x, y
    bins = max_points // 2
    edges = np.linspace(0, n, bins + 1).astype(int)
    keep = []
    for a, b in zip(edges[:-1], edges[1:]):
        if b <= a:
            continue
        seg = y[a:b]
        i, j = a + int(np.argmin(seg)), a + int(np.argmax(seg))
        keep.extend(sorted({i, j}))
    keep = np.asarray(keep)
    return x[keep], y[keep]








XRD_PLOT_DATA_VERSION = 1


def _rounded(values, digits=5) -> list:
    return [round(float(v), digits) if math.isfinite(float(v)) else None for v in values]


def xrd_plot_data(analysis: XRDAnalysis) -> dict:
    """What ``xrd_plot_svg`` draws, small enough for a JSON field (stored on the measurement at
    upload, so a GET of the plot never reads or analyses the pattern again): the pattern and its
    fitted background thinned to MAX_PLOTTED_POINTS (min and max of each bin kept), the main
    peak, the half-maximum bar and the sharp peaks with their heights on the curve."""
    a = analysis
    q, inten = np.asarray(a.q_inv_a, dtype=float), np.asarray(a.intensity, dtype=float)
    qd, yd = _decimate(q, inten)
    data = {
        "version": XRD_PLOT_DATA_VERSION,
        "wavelength_a": float(a.wavelength_a),
        "q": _rounded(qd), "intensity": _rounded(yd, 3),
        "background_q": [], "background": [],
        "peak_q": _finite(a.peak_q_inv_a), "peak_two_theta": _finite(a.peak_two_theta_deg),
        "peak_y": _finite(a.peak_intensity if math.isfinite(a.peak_intensity) else float(np.interp(a.peak_q_inv_a, q, inten))),
        "half_max_y": _finite(a.half_max_intensity), "half_max_left_q": _finite(a.half_max_left_q),
        "half_max_right_q": _finite(a.half_max_right_q), "fwhm_inv_a": _finite(a.fwhm_inv_a),
        "sharp_q": [], "sharp_y": [],
        "q_range": [float(q[0]), float(q[-1])], "span": float(np.ptp(inten)) or 1.0,
    }
    if len(a.background) == len(q):
        qb, yb = _decimate(q, np.asarray(a.background, dtype=float))
        data["background_q"], data["background"] = _rounded(qb), _rounded(yb, 3)
    if a.sharp_peaks_q_inv_a:
        sq = np.asarray(a.sharp_peaks_q_inv_a, dtype=float)
        data["sharp_q"], data["sharp_y"] = _rounded(sq), _rounded(np.interp(sq, q, inten), 3)
    return data


def _finite(value):
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def xrd_plot_svg(analysis, *, title: str = "", verdict: str | None = None) -> str:
    """Intensity vs q with 2θ on the top axis; main peak, FWHM bar at half maximum and
    sharp Bragg peaks marked; the fitted background dashed.

    ``analysis``: an XRDAnalysis or its stored ``xrd_plot_data``. ``verdict``: the verdict to
    title the plot with (the person's override when there is one); the analysis's own when None."""
    if isinstance(analysis, XRDAnalysis):
        if verdict is None:
            verdict = analysis.verdict
        analysis = xrd_plot_data(analysis)
    d = analysis
    fig, ax = new_figure(FIGSIZE_IN)
    ax.plot(d["q"], d["intensity"], color=CURVE_COLOUR, linewidth=0.8, label="pattern", gid="pattern")
    if d.get("background"):
        ax.plot(d["background_q"], d["background"], color=BACKGROUND_COLOUR, linewidth=0.8, linestyle="--",
                label="background", gid="background")

    peak_q, peak_y = d.get("peak_q"), d.get("peak_y")
    if peak_q is not None and peak_y is not None:
        ax.plot([peak_q], [peak_y], marker="v", markersize=8, color=MARK_COLOUR, linestyle="none", gid="main-peak",
                label=f"main peak q = {peak_q:.3f} Å⁻¹")
        two_theta = d.get("peak_two_theta")
        ax.annotate(
            f"q = {peak_q:.3f} Å⁻¹" + (f"\n2θ = {two_theta:.2f}°" if two_theta is not None else ""),
            xy=(peak_q, peak_y), xytext=(10, 6), textcoords="offset points", fontsize=8, color=MARK_COLOUR,
        )

    wl = d["wavelength_a"]
    level, fwhm = d.get("half_max_y"), d.get("fwhm_inv_a")
    left, right = d.get("half_max_left_q"), d.get("half_max_right_q")
    if None not in (level, fwhm, left, right):
        fwhm_deg = fwhm_two_theta_deg(left, right, wl)
        in_deg = f" = {fwhm_deg:.2f}° 2θ" if fwhm_deg is not None else ""
        ax.plot([left, right], [level, level], color=MARK_COLOUR, linewidth=2.0,
                marker="|", markersize=10, gid="fwhm-bar", label=f"FWHM = {fwhm:.3f} Å⁻¹{in_deg}")
        ax.text(right, level, f"  FWHM {fwhm:.3f} Å⁻¹{in_deg}", va="center", ha="left",
                fontsize=8, color=MARK_COLOUR, gid="fwhm-label")

    if d.get("sharp_q"):
        span = d.get("span") or 1.0
        ax.plot(d["sharp_q"], [y + 0.04 * span for y in d["sharp_y"]], marker="v", markersize=6, color=SHARP_COLOUR,
                linestyle="none", gid="sharp-peaks", label=f"sharp Bragg peaks ({len(d['sharp_q'])})")

    ax.set_xlabel("q (Å⁻¹)")
    ax.set_ylabel("intensity (counts)")
    ax.set_xlim(*d["q_range"])
    top = ax.secondary_xaxis(
        "top",
        functions=(
            lambda v: np.nan_to_num(q_to_two_theta(np.clip(v, 0, 4 * np.pi / wl), wl)),
            lambda t: two_theta_to_q(np.clip(t, 0, 180), wl),
        ),
    )
    top.set_xlabel(f"2θ (°), λ = {wl:g} Å", fontsize=9)
    verdict = verdict or "?"
    heading = f"{plain(title)} — {verdict}" if title else f"XRD: {verdict}"
    ax.set_title(heading, fontsize=10, gid="plot-title")
    ax.legend(fontsize=8, loc="upper right", frameon=False)
    return render_svg(fig)


def dsc_plot_svg(curve: DSCCurve, *, tg_k=None, tx_k=None, tl_k=None, title: str = "", proposals=None) -> str:
    """Heat flow vs temperature (K, with °C on the top axis); Tg, Tx, Tl as labelled vertical lines.

    ``proposals``: optional {"Tg"/"Tx"/"Tm"/"Tl": value_k or (value_k, method)} (e.g.
    ``DSCAnalysis.plot_proposals()``), drawn as dotted lines labelled "Tg? 650 K (method)"
    with ids ``tg-proposal``/``tg-proposal-label``.
    """
    fig, ax = new_figure(FIGSIZE_IN)
    t, flow = _decimate(np.asarray(curve.temperature_k), np.asarray(curve.heat_flow))
    ax.plot(t, flow, color=CURVE_COLOUR, linewidth=0.9, gid="curve")
    colours = {"Tg": "#2e86c1", "Tx": MARK_COLOUR, "Tm": "#16a085", "Tl": "#8e44ad"}
    trans = ax.get_xaxis_transform()
    for name, value in (("Tg", tg_k), ("Tx", tx_k), ("Tl", tl_k)):
        if value is None:
            continue
        value = float(value)
        if not math.isfinite(value):
            continue
        ax.axvline(value, color=colours[name], linestyle="--", linewidth=1.0, gid=f"{name.lower()}-marker")
        ax.text(value, 0.98, f" {name} = {value:.0f} K", transform=trans, rotation=90, va="top", ha="right",
                fontsize=8, color=colours[name], gid=f"{name.lower()}-label")
    shown = []
    for name, item in (proposals or {}).items():
        value, method = item if isinstance(item, (tuple, list)) else (item, "")
        if name not in colours or value is None or not math.isfinite(float(value)):
            continue
        value = float(value)
        shown.append(value)
        ax.axvline(value, color=colours[name], linestyle=":", linewidth=1.0, alpha=0.8, gid=f"{name.lower()}-proposal")
        label = f" {name}? {value:.0f} K" + (f" ({method.split(' (')[0]})" if method else "")
        ax.text(value, 0.02, label, transform=trans, rotation=90, va="bottom", ha="left",
                fontsize=7, color=colours[name], gid=f"{name.lower()}-proposal-label")
    ax.set_xlabel("temperature (K)")
    ax.set_ylabel("heat flow (exo ↑)")
    lo = min([float(t[0])] + [float(v) for v in (tg_k, tx_k, tl_k) if v is not None] + shown)
    hi = max([float(t[-1])] + [float(v) for v in (tg_k, tx_k, tl_k) if v is not None] + shown)
    ax.set_xlim(lo, hi)
    top = ax.secondary_xaxis("top", functions=(lambda k: k - KELVIN_OFFSET, lambda c: c + KELVIN_OFFSET))
    top.set_xlabel("temperature (°C)", fontsize=9)
    ax.set_title(plain(title) if title else "DSC", fontsize=10)
    return render_svg(fig)
