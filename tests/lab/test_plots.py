"""SVG plots: valid XML, markers present, text kept as text, user text escaped."""

import xml.etree.ElementTree as ET

import pytest

from lab.patterns import analyse_xrd_file, read_dsc_file
from tests.lab.patterns_fixtures import synthetic_dsc_curve, synthetic_xrd_pattern
from core.plots import svg_ids
from lab.plots import dsc_plot_svg, xrd_plot_svg

SVG_NS = "{http://www.w3.org/2000/svg}"


def _texts(root):
    return " ".join("".join(el.itertext()) for el in root.iter(f"{SVG_NS}text"))


@pytest.fixture(scope="module")
def partly():
    return analyse_xrd_file(synthetic_xrd_pattern("partly_crystalline"))


def test_xrd_plot_is_valid_svg_with_markers(partly):
    svg = xrd_plot_svg(partly, title="S-1 as cast")
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG_NS}svg"
    assert {"pattern", "background", "main-peak", "fwhm-bar", "fwhm-label", "sharp-peaks"} <= svg_ids(svg)
    text = _texts(root)
    assert "FWHM" in text and "q (Å⁻¹)" in text and "2θ" in text
    assert "S-1 as cast — crystalline" in text
    assert f"{partly.fwhm_inv_a:.3f}" in text
    assert len(svg) < 150_000  # text not glyph paths; thinned curve


def test_amorphous_plot_has_no_sharp_peak_markers():
    a = analyse_xrd_file(synthetic_xrd_pattern("amorphous"))
    svg = xrd_plot_svg(a)
    ids = svg_ids(svg)
    assert "fwhm-bar" in ids and "sharp-peaks" not in ids
    assert "XRD: amorphous" in _texts(ET.fromstring(svg))


def test_user_title_is_escaped_not_markup(partly):
    svg = xrd_plot_svg(partly, title="<script>alert(1)</script> $x$ & co")
    assert "<script>" not in svg
    root = ET.fromstring(svg)
    assert "<script>alert(1)</script> $x$ & co" in _texts(root)


def test_dsc_plot_marks_tg_tx_tl():
    curve = read_dsc_file(synthetic_dsc_curve(650, 720, 1050))
    svg = dsc_plot_svg(curve, tg_k=650, tx_k=720.4, tl_k=1050, title="DSC of S-1")
    root = ET.fromstring(svg)
    assert {"tg-marker", "tx-marker", "tl-marker"} <= svg_ids(svg)
    text = _texts(root)
    assert "Tg = 650 K" in text and "Tx = 720 K" in text and "Tl = 1050 K" in text
    assert "temperature (°C)" in text


def test_dsc_plot_without_temperatures():
    curve = read_dsc_file(synthetic_dsc_curve(650, 720))
    svg = dsc_plot_svg(curve)
    ET.fromstring(svg)
    assert not {"tg-marker", "tx-marker", "tl-marker"} & svg_ids(svg)


def test_plots_are_reproducible(partly):
    assert xrd_plot_svg(partly) == xrd_plot_svg(partly)
