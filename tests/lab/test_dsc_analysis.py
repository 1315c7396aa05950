"""DSC trace analysis: proposals within 3 K of the synthesised (onset-aligned) values,
for several shapes, noise levels, drifts and both sign conventions; refusals with reasons."""

import xml.etree.ElementTree as ET

import pytest

from lab.dsc_analysis import TANGENT_END, TANGENT_ONSET, analyse_dsc, analyse_dsc_file, heating_rate_from_header
from lab.patterns import read_dsc_file
from lab.plots import dsc_plot_svg
from tests.lab.patterns_fixtures import synthetic_dsc_curve

TG, TX, TL = 650.0, 725.0, 1050.0
TM = TL - 60.0  # the generator's default melting onset

VARIANTS = [
    # shape, noise σ (W/g), exo up, drift (W/g), unit
    ("sharp", 0.001, True, 0.0, "K"),
    ("sharp", 0.004, False, 0.3, "C"),
    ("broad", 0.002, True, 0.3, "K"),
    ("broad", 0.004, False, 0.0, "K"),
    ("double", 0.001, False, 0.3, "C"),
    ("double", 0.004, True, -0.2, "K"),
    ("lagged", 0.002, True, 0.0, "K"),
    ("lagged", 0.004, False, 0.3, "K"),
]


@pytest.mark.parametrize("shape,noise,exo_up,drift,unit", VARIANTS)
def test_proposals_within_3_k(shape, noise, exo_up, drift, unit):
    data = synthetic_dsc_curve(TG, TX, TL, shape=shape, noise=noise, exo_up=exo_up, drift=drift, unit=unit, seed=7)
    a = analyse_dsc(read_dsc_file(data, temperature_unit=unit))  # no header: the sign is detected
    assert a.sign_source == "detected" and a.exo_up is exo_up
    for proposal, true in ((a.tg_k, TG), (a.tx_k, TX), (a.melting_onset_k, TM), (a.tl_k, TL)):
        assert proposal.found, proposal.reason
        assert abs(proposal.value_k - true) <= 3.0, (proposal.name, proposal.value_k, true)
    assert a.tg_k.method == TANGENT_ONSET and a.tl_k.method == TANGENT_END


@pytest.mark.parametrize("seed", range(4))
def test_noise_seeds_and_explicit_convention(seed):
    data = synthetic_dsc_curve(680, 760, 1120, shape="broad", noise=0.004, exo_up=False, drift=0.2, tm_k=1040, seed=seed)
    a = analyse_dsc(read_dsc_file(data), exo_up=False)
    assert a.sign_source == "given"
    errors = [abs(a.tg_k.value_k - 680), abs(a.tx_k.value_k - 760), abs(a.melting_onset_k.value_k - 1040), abs(a.tl_k.value_k - 1120)]
    assert max(errors) <= 3.0


def test_file_reader_takes_header_rate_and_convention():
    data = synthetic_dsc_curve(TG, TX, TL, shape="sharp", exo_up=False, heating_rate_k_min=20, unit="C")
    a = analyse_dsc_file(data, temperature_unit="C")
    assert a.heating_rate_k_min == 20.0 and a.exo_up is False and a.sign_source == "given"
    assert abs(a.tx_k.value_k - TX) <= 3.0
    assert analyse_dsc(read_dsc_file(data, temperature_unit="C")).heating_rate_k_min is None


@pytest.mark.parametrize(
    "header,rate",
    [("# Heating rate: 20 K/min", 20.0), ("Rate 10 °C/min", 10.0), ("; beta = 0,5 K/s", 30.0), ("# Temperature (K), Heat flow", None)],
)
def test_heating_rate_from_header(header, rate):
    assert heating_rate_from_header(f"{header}\n300 0.1\n301 0.1\n".encode()) == rate


def test_flat_trace_refused():
    import numpy as np

    rng = np.random.default_rng(3)
    t = np.arange(500.0, 1200.0, 0.5)
    flow = -0.05 + 0.0001 * (t - 500) + rng.normal(0, 0.003, len(t))
    data = "\n".join(f"{a:.2f}\t{b:.5f}" for a, b in zip(t, flow)).encode()
    a = analyse_dsc(read_dsc_file(data))
    for proposal in a.proposals:
        assert proposal.value_k is None and proposal.reason
    assert "flat" in a.tx_k.reason
    assert a.exo_up is None and a.sign_source == "undetermined"


def test_scan_stopping_before_melting():
    data = synthetic_dsc_curve(TG, TX, TL, shape="sharp", noise=0.002, t_end_k=900.0)
    a = analyse_dsc(read_dsc_file(data))
    assert abs(a.tg_k.value_k - TG) <= 3 and abs(a.tx_k.value_k - TX) <= 3
    assert a.melting_onset_k.value_k is None and a.tl_k.value_k is None
    assert "not reached" in a.tl_k.reason


def test_scan_stopping_during_melting():
    data = synthetic_dsc_curve(TG, TX, TL, shape="sharp", noise=0.002, t_end_k=TL - 30)
    a = analyse_dsc(read_dsc_file(data))
    assert abs(a.melting_onset_k.value_k - TM) <= 3
    assert a.tl_k.value_k is None and "not reached" in a.tl_k.reason


def test_plot_shows_proposals_with_method():
    curve = read_dsc_file(synthetic_dsc_curve(TG, TX, TL, shape="sharp"))
    a = analyse_dsc(curve)
    svg = dsc_plot_svg(curve, tg_k=651, proposals=a.plot_proposals())
    ET.fromstring(svg)
    for gid in ("tg-proposal", "tx-proposal", "tm-proposal", "tl-proposal", "tg-marker"):
        assert f'id="{gid}' in svg
    assert "tangent onset" in svg and "tangent end" in svg
    assert a.as_dict()["tx_k"]["method"] == TANGENT_ONSET
