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
    assert "841.5 K" in main_text(page)  # the typo is in the mean
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
