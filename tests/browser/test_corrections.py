"""Corrections in the browser (issue 18): an experimenter corrects a mistyped DSC value and the
alloy page, its history (before → after) and the next training rows change; a K-in-°C entry is
stopped and then confirmed; a failed form keeps its files."""

import re

import pytest

from lab import services
from lab.models import Alloy, DSCMeasurement, Sample
from tests.lab.patterns_fixtures import synthetic_dsc_curve, synthetic_xrd_pattern
from training.selectors import training_rows

from .conftest import main_text

pytestmark = pytest.mark.browser

COMPOSITION = "Cu46Zr46Al8"


@pytest.fixture
def olga(make_user):
    return make_user("olga", "experimenter")


@pytest.fixture
def two_dscs(olga):
    services.log_experiment(user=olga, composition=COMPOSITION, label="S-1", dsc={"tg_k": 705.0, "tx_k": 780.0, "tl_k": 1160.0})
    bad = services.log_experiment(user=olga, composition=COMPOSITION, label="S-2", dsc={"tg_k": 978.0, "tx_k": 1053.0, "tl_k": 1433.0})
    return bad.dsc_measurements.get()


def test_an_experimenter_corrects_a_mistyped_dsc_value(page, live_server, login, two_dscs):
    bad = two_dscs
    alloy = Alloy.objects.get()
    login("olga")
    page.goto(f"{live_server.url}/lab/alloys/{alloy.pk}/")
    before = main_text(page)  # the typo conflicts with S-1: both visible, neither averaged in until resolved
    assert "978.0" in before and "705.0" in before and "841.5 K" not in before
    assert not [r for r in training_rows() if r["Tg_K"]]
    page.goto(f"{live_server.url}/lab/samples/{bad.sample_id}/")
    page.click(f"a[href='/lab/dsc/{bad.pk}/correct/']")
    page.wait_for_url(re.compile(rf"/lab/dsc/{bad.pk}/correct/$"))
    page.fill("#id_tg", "706")
    page.fill("#id_tx", "781")
    page.fill("#id_tl", "1161")
    page.fill("#id_reason", "typed in °C")
    page.click("button:has-text('Save')")
    page.wait_for_url(re.compile(rf"/lab/samples/{bad.sample_id}/$"))
    assert "Tg 978.0 → 706.0 K" in main_text(page)
    page.goto(f"{live_server.url}/lab/alloys/{alloy.pk}/")
    text = main_text(page)
    assert "705.5 K" in text
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d · olga · Tg 978\.0 → 706\.0 K, Tx 1053\.0 → 781\.0 K, Tl 1433\.0 → 1161\.0 K · reason: typed in °C", text)
    assert sorted(float(r["Tg_K"]) for r in training_rows() if r["Tg_K"]) == [705.0, 706.0]
    assert not page.console_errors, page.console_errors


def test_a_kelvin_value_with_celsius_ticked_is_stopped_then_confirmed(page, live_server, login, olga):
    sample = services.log_experiment(user=olga, composition=COMPOSITION, label="S-1",
                                     dsc={"tg_k": 705.0, "tx_k": 780.0, "tl_k": 1160.0})
    login("olga")
    page.goto(f"{live_server.url}/lab/samples/{sample.pk}/dsc/new/")
    assert page.locator("input[name=confirm_units]").count() == 0
    page.fill("#id_tg", "705")
    page.fill("#id_tx", "781")
    page.check("input[name=temperature_unit][value=C]")
    page.click("button:has-text('Save')")
    page.wait_for_load_state()
    text = main_text(page)
    assert "You typed Tg = 705 °C (978.1 K), Tx = 781 °C (1054.2 K)" in text and "Did you mean K?" in text
    assert DSCMeasurement.objects.count() == 1
    page.check("input[name=confirm_units]")
    page.click("button:has-text('Save')")
    page.wait_for_url(re.compile(rf"/lab/samples/{sample.pk}/$"))
    assert DSCMeasurement.objects.count() == 2
    assert not page.console_errors, page.console_errors


def test_a_failed_form_keeps_its_files(page, live_server, login, olga, tmp_path, settings):
    settings.GLASSLOOP_KEPT_UPLOADS_DIR = str(tmp_path / "kept")
    xrd_path, dsc_path = tmp_path / "pattern.xy", tmp_path / "scan.txt"
    xrd_path.write_bytes(synthetic_xrd_pattern("amorphous"))
    dsc_path.write_bytes(synthetic_dsc_curve(705, 780, 1160))
    login("olga")
    page.goto(f"{live_server.url}/lab/experiments/new/")
    page.fill("#id_composition", COMPOSITION)
    page.fill("#id_label", "B-1")
    page.set_input_files("#id_xrd_file", str(xrd_path))
    page.fill("#id_tg", "705")
    page.fill("#id_tx", "650")  # Tx < Tg: refused
    page.fill("#id_tl", "1160")
    page.check("input[name=temperature_unit][value=K]")
    page.set_input_files("#id_dsc_curve", str(dsc_path))
    page.click("button:has-text('Save the experiment')")
    page.wait_for_load_state()
    text = main_text(page)
    assert "pattern.xy — kept" in text and "scan.txt — kept" in text
    page.fill("#id_tx", "780")  # fixed; no file chosen again
    page.click("button:has-text('Save the experiment')")
    page.wait_for_url(re.compile(r"/lab/samples/\d+/$"))
    sample = Sample.objects.get(label="B-1")
    assert sample.xrd_measurements.get().pattern.name.endswith("pattern.xy")
    assert sample.dsc_measurements.get().curve.name.endswith("scan.txt")
    assert not page.console_errors, page.console_errors


def _flat_trace():
    import numpy as np

    rng = np.random.default_rng(3)
    t = np.arange(500.0, 1200.0, 0.5)
    flow = -0.05 + 0.0001 * (t - 500) + rng.normal(0, 0.003, len(t))
    return "\n".join(f"{a:.2f}\t{b:.5f}" for a, b in zip(t, flow)).encode()


@pytest.mark.parametrize("shape,noise,exo_up", [("sharp", 0.001, True), ("broad", 0.004, False), ("double", 0.002, False)])
def test_an_uploaded_trace_gives_proposals_the_experimenter_accepts(page, live_server, login, olga, tmp_path, shape, noise, exo_up):
    """Upload a trace with Tg and Tx typed a few K off and Tl blank: the sample page shows the
    trace's proposals within 3 K of the synthesised values; Accept for Tg, then Accept all; the
    history says "accepted the trace's proposal (tangent onset)" and the alloy page's mean follows."""
    tg, tx, tl = 650.0, 725.0, 1050.0
    sample = services.log_experiment(user=olga, composition=COMPOSITION, label="T-1")
    trace = tmp_path / "trace.txt"
    trace.write_bytes(synthetic_dsc_curve(tg, tx, tl, shape=shape, noise=noise, exo_up=exo_up, seed=5))
    login("olga")
    page.goto(f"{live_server.url}/lab/samples/{sample.pk}/dsc/new/")
    page.fill("#id_tg", "656")
    page.fill("#id_tx", "720")
    page.set_input_files("#id_dsc_curve", str(trace))
    page.click("button:has-text('Save')")
    page.wait_for_url(re.compile(rf"/lab/samples/{sample.pk}/$"))
    dsc = DSCMeasurement.objects.get()
    table = page.locator(f"#dsc-{dsc.pk}-proposals")
    for key, true in (("tg_k", tg), ("tx_k", tx), ("tl_k", tl)):
        cell = table.locator(f"tr[data-proposal={key}] td").nth(2).inner_text()
        assert abs(float(cell.split()[0]) - true) <= 3.0, (key, cell)
    page.click(f"#dsc-{dsc.pk}-proposals tr[data-proposal=tg_k] button:has-text('Accept')")
    page.wait_for_url(re.compile(rf"/lab/samples/{sample.pk}/$"))
    dsc.refresh_from_db()
    assert abs(dsc.tg_k - tg) <= 3.0 and dsc.tx_k == 720.0
    text = main_text(page)
    assert re.search(r"olga · Tg 656\.0 → \d+\.\d K · reason: accepted the trace's proposal \(tangent onset\)", text), text
    page.click("button:has-text('Accept all proposals')")
    page.wait_for_url(re.compile(rf"/lab/samples/{sample.pk}/$"))
    dsc.refresh_from_db()
    assert abs(dsc.tx_k - tx) <= 3.0 and abs(dsc.tl_k - tl) <= 3.0
    assert page.locator("button:has-text('Accept all proposals')").is_disabled()
    page.goto(f"{live_server.url}/lab/alloys/{sample.alloy_id}/")
    assert f"{dsc.tg_k:.1f} K" in main_text(page)
    assert "Tg: accepted the trace's proposal (tangent onset)" in main_text(page)
    assert not page.console_errors, page.console_errors


def test_a_flat_trace_says_not_found_and_offers_nothing(page, live_server, login, olga, tmp_path):
    sample = services.log_experiment(user=olga, composition=COMPOSITION, label="T-2")
    trace = tmp_path / "flat.txt"
    trace.write_bytes(_flat_trace())
    login("olga")
    page.goto(f"{live_server.url}/lab/samples/{sample.pk}/dsc/new/")
    page.set_input_files("#id_dsc_curve", str(trace))  # Tg and Tx left blank: the trace has none
    page.click("button:has-text('Save')")
    page.wait_for_load_state()
    assert "left blank and the trace gives none" in main_text(page) and DSCMeasurement.objects.count() == 0
    page.fill("#id_tg", "650")
    page.fill("#id_tx", "725")
    page.click("button:has-text('Save')")  # the curve was kept
    page.wait_for_url(re.compile(rf"/lab/samples/{sample.pk}/$"))
    dsc = DSCMeasurement.objects.get()
    rows = page.locator(f"#dsc-{dsc.pk}-proposals")
    assert "not found" in rows.inner_text() and "flat within its noise" in rows.inner_text()
    assert rows.locator("button:has-text('Accept')").count() == 0
    assert page.locator("button:has-text('Accept all proposals')").is_disabled()
    assert not page.console_errors, page.console_errors
