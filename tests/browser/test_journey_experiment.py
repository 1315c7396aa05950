"""Journey 1: an experimenter logs a cast sample of a new alloy with its XRD pattern and DSC curve.

The files are real synthetic measurements written to disk and chosen through the page's
file inputs; the page that follows says the pattern is being analysed (on the worker, issue 16)
and follows its progress; once the worker is done it shows the verdict, FWHM, Tg/Tx/Tl, Trg
and γ, and the database holds the sample, its measurements and an experimental property value.
"""

import re

import pytest

from lab.models import Alloy, DSCMeasurement, PropertyValue, Sample, XRDMeasurement
from tests.lab.patterns_fixtures import synthetic_dsc_curve, synthetic_xrd_pattern
from tests.lab.xrd_helpers import run_xrd_analyses

from .conftest import images_loaded, main_text

pytestmark = pytest.mark.browser

COMPOSITION = "Zr57Cu28Al10Ni5"
TG_K, TX_K, TL_K = 680.0, 760.0, 1140.0


def test_experimenter_logs_sample_with_xrd_and_dsc(page, live_server, login, make_user, tmp_path, memory_broker, xrd_on_worker):
    make_user("erin", "viewer", "experimenter")
    assert not Alloy.objects.exists()
    xrd_path = tmp_path / "zr55-halo.xy"
    xrd_path.write_bytes(synthetic_xrd_pattern("amorphous", seed=3))
    dsc_path = tmp_path / "zr55-dsc.txt"
    dsc_path.write_bytes(synthetic_dsc_curve(TG_K, TX_K, TL_K, seed=3))

    login("erin")
    # The nav leads there (an experimenter sees the link).
    page.click("nav >> text=Log an experiment")
    page.wait_for_url(re.compile(r"/lab/experiments/new/"))

    page.fill("#id_composition", COMPOSITION)
    page.fill("#id_alloy_name", "J1 test glass")
    page.fill("#id_label", "J1-001")
    page.select_option("#id_method", "arc_suction")
    page.fill("#id_diameter_mm", "2")
    page.set_input_files("#id_xrd_file", str(xrd_path))
    page.fill("#id_tg", f"{TG_K:g}")
    page.fill("#id_tx", f"{TX_K:g}")
    page.fill("#id_tl", f"{TL_K:g}")
    page.check("input[name=temperature_unit][value=K]")
    page.set_input_files("#id_dsc_curve", str(dsc_path))
    page.select_option("#id_dsc_curve_unit", "K")
    page.click("button:has-text('Save the experiment')")
    page.wait_for_url(re.compile(r"/lab/samples/\d+/$"))
    page.wait_for_load_state("load")

    text = main_text(page)
    assert "Sample J1-001" in text
    assert "Logged sample + XRD + DSC for J1-001" in text
    # The pattern is stored and waits for the worker: the page says so and polls its job.
    assert "The XRD pattern is being analysed" in text and "Analysing the pattern…" in text
    assert page.locator("table.xrd tbody tr").first.locator(".badge.pending").inner_text().strip() == "analysing…"
    assert page.locator(".xrd-analysis[data-job-url] progress.job-progress").count() == 1
    assert page.locator(".badge.amorphous, .badge.crystalline").count() == 0  # no verdict it does not have
    # The worker analyses it (here: in-process); the page reloads by itself once the job is done.
    assert [job.status for job in run_xrd_analyses()] == ["done"]
    page.wait_for_selector("table.xrd .badge.amorphous", timeout=20000)
    page.wait_for_load_state("load")
    assert page.locator(".xrd-analysis").count() == 0
    # XRD: amorphous verdict with the halo's FWHM (synthetic halo 0.40 Å⁻¹).
    xrd_row = page.locator("table.xrd tbody tr").first
    assert xrd_row.locator(".badge.amorphous").inner_text().strip() == "amorphous"
    fwhm_shown = float(xrd_row.locator("td").nth(4).inner_text())
    assert 0.3 < fwhm_shown < 0.5
    # DSC: Tg, Tx, Tl with Trg = Tg/Tl and γ = Tx/(Tg+Tl).
    dsc_cells = [c.strip() for c in page.locator("table.dsc tbody tr").first.locator("td").all_inner_texts()]
    assert dsc_cells[1:6] == ["680.0", "760.0", "1140.0", f"{TG_K / TL_K:.3f}", f"{TX_K / (TG_K + TL_K):.3f}"]
    # Both plots were served (an <img> that failed would have naturalWidth 0).
    assert page.locator("figure.plot img").count() == 2
    assert images_loaded(page, "figure.plot img") == []
    assert page.console_errors == []

    # The database holds exactly what the page says.
    sample = Sample.objects.select_related("alloy").get(label="J1-001")
    assert sample.alloy.formula == "Zr57Cu28Al10Ni5"
    assert sample.alloy.name == "J1 test glass"
    assert sample.operator.username == "erin"
    xrd = XRDMeasurement.objects.get(sample=sample)
    assert xrd.computed_verdict == XRDMeasurement.Verdict.AMORPHOUS
    assert xrd.fwhm_inv_a == pytest.approx(fwhm_shown, abs=0.0006)
    dsc = DSCMeasurement.objects.get(sample=sample)
    assert (dsc.tg_k, dsc.tx_k, dsc.tl_k) == (TG_K, TX_K, TL_K)
    assert dsc.curve.name
    value = PropertyValue.objects.get(alloy=sample.alloy)
    assert value.origin == PropertyValue.Origin.EXPERIMENT
    assert value.dsc_id == dsc.pk
    assert value.tg_k == TG_K

    # The alloy page shows the experimental value with its provenance.
    page.click(f"main a[href='/lab/alloys/{sample.alloy.pk}/']")
    page.wait_for_url(re.compile(rf"/lab/alloys/{sample.alloy.pk}/$"))
    alloy_text = main_text(page)
    assert "DSC of sample J1-001" in alloy_text
    assert "Experiment (this lab)" in alloy_text
    assert page.console_errors == []
