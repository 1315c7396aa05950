"""SVG plot of a training run: critic and generator losses and the validation Wasserstein
distance per epoch (rendering: core.plots; ids ``d_loss``, ``g_loss``, ``val_w``)."""

from __future__ import annotations

import numpy as np

from core.plots import empty_svg, new_figure, plain, render_svg

FIGSIZE_IN = (7.0, 4.6)


def training_curves_svg(curves, *, title=""):
    """curves: [{epoch, d_loss, g_loss, val_w}]."""
    pts = [c for c in curves or [] if c.get("epoch") is not None]
    if not pts:
        return empty_svg("No training curve recorded yet.")
    fig, ax = new_figure(FIGSIZE_IN)
    epochs = np.array([c["epoch"] for c in pts], dtype=float)

    def series(key):
        return np.array([np.nan if c.get(key) is None else c[key] for c in pts], dtype=float)

    for key, label, colour in (("d_loss", "critic loss", "#2457a6"), ("g_loss", "generator loss", "#e67e22")):
        y = series(key)
        if np.isfinite(y).any():
            ax.plot(epochs, y, color=colour, linewidth=1.0, label=label, gid=key)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    w = series("val_w")
    if np.isfinite(w).any():
        ax2 = ax.twinx()
        ok = np.isfinite(w)
        ax2.plot(epochs[ok], w[ok], "o-", color="#1f7a3d", markersize=3, linewidth=1.2, label="validation Wasserstein", gid="val_w")
        ax2.set_ylabel("validation Wasserstein")
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = ax2.get_legend_handles_labels()
        ax.legend(h1 + h2, l1 + l2, fontsize=8, loc="upper right")
    else:
        ax.legend(fontsize=8, loc="upper right")
    if title:
        ax.set_title(plain(title), fontsize=10)
    return render_svg(fig)
