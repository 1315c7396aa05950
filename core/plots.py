"""SVG rendering shared by every app's plots (matplotlib, no pyplot, no Django).

Figures are built with the object-oriented API and rendered by FigureCanvasSVG, so nothing
touches pyplot's global state and rendering is safe in threaded web workers. SVG text stays
text (``svg.fonttype = "none"``: no embedded glyph paths) and ids are reproducible
(``svg.hashsalt``); these two rcParams are set once here, on import, for every SVG this
process renders. ``render_svg`` returns a string starting at ``<svg`` (no XML declaration) so
it can be served as image/svg+xml or inlined in HTML.
"""

from __future__ import annotations

import io
import re

import matplotlib
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure

matplotlib.rcParams["svg.fonttype"] = "none"
matplotlib.rcParams["svg.hashsalt"] = "glassloop"

GRID_COLOUR = "#dddddd"
MUTED_TEXT_COLOUR = "#5b6475"


def plain(text: str) -> str:
    """User text shown literally (no mathtext)."""
    return (text or "").replace("$", r"\$")


def new_figure(figsize: tuple[float, float]) -> tuple[Figure, object]:
    """A figure with one gridded axes, laid out to fit its labels."""
    fig = Figure(figsize=figsize, dpi=100, layout="constrained")
    ax = fig.add_subplot()
    ax.grid(True, color=GRID_COLOUR, linewidth=0.6)
    ax.set_axisbelow(True)
    return fig, ax


def empty_svg(message: str) -> str:
    """A one-line placeholder where a plot has nothing to show yet."""
    fig = Figure(figsize=(7.0, 1.2), dpi=100)
    fig.text(0.5, 0.5, message, ha="center", va="center", color=MUTED_TEXT_COLOUR)
    return render_svg(fig)


def render_svg(fig: Figure) -> str:
    """The figure as an SVG string starting at ``<svg`` (see the module docstring)."""
    FigureCanvasSVG(fig)
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None}, bbox_inches="tight")
    svg = buf.getvalue()
    start = svg.find("<svg")
    return svg[start:] if start >= 0 else svg


def svg_ids(svg: str) -> set[str]:
    """The element ids in an SVG string (handy for tests and templates)."""
    return set(re.findall(r'\bid="([^"]+)"', svg))
