"""SVG plots of the design loop (matplotlib Figure API + FigureCanvasSVG; no pyplot, no Django).

* ``pca_map_svg``: known alloys as a density map on a 2-D PCA of atomic fractions, with the
  campaign's candidates and the validated / failed results on top (ids ``candidates``,
  ``validated``, ``failed`` on the marker groups).
* ``parity_svg``: predicted vs measured Tg/Tx/Tl of validated candidates.
* ``contributions_svg``: a candidate's top feature contributions to one prediction as a small
  horizontal bar chart (plain SVG written here: one per prediction on the candidate page, so
  no matplotlib figure per request).
"""

from __future__ import annotations

import math
from html import escape

import numpy as np
from matplotlib.figure import Figure

from core.plots import empty_svg, render_svg
from ml.descriptors import fractions_matrix

FIGSIZE_IN = (7.0, 4.6)


def pca_map_svg(known, candidates=(), validated=(), failed=(), *, title="", highlight=None, highlight_label=""):
    """known/candidates/validated/failed: lists of element -> fraction dicts; ``highlight``: one
    more (a candidate's fractions) drawn as a large ring with id ``highlight``."""
    from ml.metrics import PCAMap

    if len(known) < 3:
        return empty_svg("Too few known alloys for a composition map.")
    extra = [highlight] if highlight else []
    vocab = sorted({el for group in (known, candidates, validated, failed, extra) for f in group for el in f})
    K = fractions_matrix(known, vocab)
    pca = PCAMap(2).fit(K)
    fig = Figure(figsize=FIGSIZE_IN, dpi=100, layout="constrained")
    ax = fig.add_subplot()
    groups = [fractions_matrix(g, vocab) for g in (candidates, validated, failed, extra) if len(g)]
    Z_all = np.vstack([pca.transform(K)] + [pca.transform(G) for G in groups])
    lo, hi = Z_all.min(axis=0), Z_all.max(axis=0)
    pad = 0.08 * np.where(hi - lo > 0, hi - lo, 1.0)
    bounds = ((lo[0] - pad[0], hi[0] + pad[0]), (lo[1] - pad[1], hi[1] + pad[1]))
    xx, yy, zz = pca.density(K, grid_size=80, bounds=bounds)
    top = float(np.nanmax(zz)) if np.isfinite(zz).any() else 0.0
    if top > 0:  # the faintest 3 % stays white, so the map shows where alloys are
        ax.contourf(xx, yy, zz, levels=np.linspace(0.03 * top, top, 12), cmap="Greys", alpha=0.85)
    Zk = pca.transform(K)
    ax.scatter(Zk[:, 0], Zk[:, 1], s=3, c="#7f8c8d", alpha=0.5, linewidths=0, label=f"known alloys ({len(known)})")
    styles = [
        ("candidates", candidates, dict(marker="o", s=28, facecolors="none", edgecolors="#2457a6", linewidths=1.2)),
        ("validated", validated, dict(marker="*", s=110, c="#1f7a3d", edgecolors="white", linewidths=0.5)),
        ("failed", failed, dict(marker="X", s=60, c="#b42318", edgecolors="white", linewidths=0.5)),
    ]
    for gid, group, style in styles:
        if len(group):
            Z = pca.transform(fractions_matrix(group, vocab))
            coll = ax.scatter(Z[:, 0], Z[:, 1], label=f"{gid} ({len(group)})", **style)
            coll.set_gid(gid)
    if highlight:
        Z = pca.transform(fractions_matrix([highlight], vocab))
        coll = ax.scatter(Z[:, 0], Z[:, 1], marker="o", s=220, facecolors="none", edgecolors="#e67e22", linewidths=2.4,
                          label=(highlight_label or "this candidate").replace("$", r"\$"))
        coll.set_gid("highlight")
    ev = pca.explained_variance_ratio_
    ax.set_xlabel(f"PC1 ({100 * ev[0]:.0f} % of variance)")
    ax.set_ylabel(f"PC2 ({100 * ev[1]:.0f} % of variance)")
    ax.set_xlim(*bounds[0])
    ax.set_ylim(*bounds[1])
    ax.legend(loc="best", fontsize=8, framealpha=0.85)
    if title:
        ax.set_title(title.replace("$", r"\$"), fontsize=10)
    return render_svg(fig)


def parity_svg(rows, *, title=""):
    """rows: [(label, {"Tg": (pred, meas), "Tx": ..., "Tl": ...})] of validated candidates."""
    pts = {"Tg": [], "Tx": [], "Tl": []}
    for _, values in rows:
        for name, (pred, meas) in values.items():
            if pred is not None and meas is not None:
                pts[name].append((meas, pred))
    if not any(pts.values()):
        return empty_svg("No measured results yet.")
    fig = Figure(figsize=(5.2, 4.6), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    ax.grid(True, color="#dddddd", linewidth=0.6)
    allv = [v for p in pts.values() for pair in p for v in pair]
    lo, hi = min(allv) - 30, max(allv) + 30
    ax.plot([lo, hi], [lo, hi], color="#7f8c8d", linewidth=0.8, linestyle="--")
    for (name, p), colour in zip(pts.items(), ("#2457a6", "#e67e22", "#b42318")):
        if p:
            a = np.array(p)
            ax.scatter(a[:, 0], a[:, 1], s=30, c=colour, label=name, gid=f"parity-{name}")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_xlabel("measured (K)")
    ax.set_ylabel("predicted (K)")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title.replace("$", r"\$"), fontsize=10)
    return render_svg(fig)


CONTRIBUTION_UP = "#2457a6"
CONTRIBUTION_DOWN = "#b42318"


def contributions_svg(rows, *, gid="contributions", title=""):
    """rows: [(feature, value)] of one prediction, largest first; bars to the right raise the
    prediction, to the left lower it; lengths relative to the largest |value|. Plain SVG."""
    rows = [(str(f), float(v)) for f, v in rows if v is not None and math.isfinite(float(v))]
    if not rows:
        return ""
    label_w, bar_w, value_w, row_h = 170, 180, 60, 18
    width, height = label_w + bar_w + value_w, row_h * len(rows) + 6
    top = max(abs(v) for _, v in rows) or 1.0
    mid = label_w + bar_w / 2
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" id="{escape(gid)}" class="contributions" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title or "feature contributions")}">',
        f'<line x1="{mid}" y1="0" x2="{mid}" y2="{height}" stroke="#7f8c8d" stroke-width="1"/>',
    ]
    for i, (feature, value) in enumerate(rows):
        y = 3 + i * row_h
        length = (bar_w / 2 - 2) * abs(value) / top
        x = mid if value >= 0 else mid - length
        colour = CONTRIBUTION_UP if value >= 0 else CONTRIBUTION_DOWN
        name = escape(feature if len(feature) <= 28 else feature[:27] + "…")
        parts.append(
            f'<g class="contribution"><title>{escape(feature)}: {value:+.3g}</title>'
            f'<text x="{label_w - 6}" y="{y + 12}" text-anchor="end" font-size="11">{name}</text>'
            f'<rect x="{x:.1f}" y="{y + 2}" width="{max(length, 0.5):.1f}" height="{row_h - 6}" fill="{colour}"/>'
            f'<text x="{label_w + bar_w + 4}" y="{y + 12}" font-size="11">{value:+.3g}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)
