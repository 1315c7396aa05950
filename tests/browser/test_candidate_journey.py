"""Issue 15's candidate journey in the browser: the approver reads a candidate's evidence (nearest
known alloys, the map, the casting recipe) and approves it; the experimenter states the rod
diameter on the candidate page, enters the XRD (glass ✓, still awaiting the DSC) and the DSC
through the lab forms; the candidate is validated, both parts shown. A screenshot of the
candidate page is kept under test-artifacts/."""

import re

import pytest

pytestmark = pytest.mark.browser

from design.models import Candidate
from tests.lab.patterns_fixtures import synthetic_xrd_pattern

from .conftest import ARTIFACTS, images_loaded, main_text
from .design_fixtures import campaign_with_candidates


def test_approve_cast_xrd_dsc_validated(page, live_server, login, make_user, tmp_path, small_models, memory_broker, settings):
    settings.GLASSLOOP_RETRAIN_MIN_NEW_RESULTS = 100  # no retrain in this journey
    approver = make_user("ada", "viewer", "approver")
    make_user("erin", "viewer", "experimenter")
    campaign = campaign_with_candidates(approver, name="Journey Zr-based, Tg ≥ 650 K")
    candidate = campaign.candidates.order_by("rank").first()
    url = f"{live_server.url}/design/candidates/{candidate.pk}/"

    # The approver reads the evidence and the recipe, then approves.
    login("ada")
    page.goto(url)
    assert page.locator("#nearest-alloys tr.nearest-alloy").count() >= 3
    assert page.locator("#nearest-alloys a[href^='/lab/alloys/']").count() >= 3
    assert "80 % interval" in page.inner_text("#pred-tg")  # calibrated, from the forward model
    assert images_loaded(page, "#candidate-map img") == []
    page.fill("#id_ingot_g", "20")
    with page.expect_navigation():
        page.click("#recipe-form button")
    assert page.locator("#recipe-table caption").inner_text().endswith("ingot of 20 g")
    page.fill("#id_note", "Cast a 3 mm rod")
    with page.expect_navigation():
        page.click("button:has-text('Approve for synthesis')")
    assert page.inner_text("#candidate-status").strip() == "Approved for synthesis"
    assert page.console_errors == []
    candidate.refresh_from_db()

    # The experimenter states the rod, then enters XRD and DSC on the lab's sample page.
    page.click("header button:has-text('Log out')")
    page.wait_for_load_state()
    login("erin")
    page.goto(url)
    page.fill("#id_diameter_mm", "3")
    page.fill("#id_cast_on", "2026-11-30")
    with page.expect_navigation():
        page.click("#sample-form button")
    assert "rod diameter 3 mm" in page.inner_text("#synthesis-sample")
    page.click(f"#synthesis-sample a[href='/lab/samples/{candidate.sample_id}/']")
    page.wait_for_url(re.compile(rf"/lab/samples/{candidate.sample_id}/$"))
    xrd_file = tmp_path / "rod.xy"
    xrd_file.write_bytes(synthetic_xrd_pattern("amorphous", seed=7))
    page.click("main a:has-text('Add XRD')")
    page.set_input_files("#id_xrd_file", str(xrd_file))
    with page.expect_navigation():
        page.click("button:has-text('Analyse and save')")
    page.goto(url)
    assert page.inner_text("#part-glass").strip() == "glass ✓ (amorphous 3 mm rod)"
    assert page.inner_text("#part-thermal").strip() == "thermal … (awaiting DSC)"
    assert page.inner_text("#candidate-status").strip() == "In synthesis"

    tg, tx, tl = 700, 770, round(candidate.tl_k_pred)
    page.click(f"#synthesis-sample a[href='/lab/samples/{candidate.sample_id}/']")
    page.wait_for_url(re.compile(rf"/lab/samples/{candidate.sample_id}/$"))
    page.click("main a:has-text('Add DSC')")
    page.fill("#id_tg", str(tg))
    page.fill("#id_tx", str(tx))
    page.fill("#id_tl", str(tl))
    with page.expect_navigation():
        page.click("main button:has-text('Save')")
    page.goto(url)
    assert page.inner_text("#candidate-status").strip() == "Validated: glass and thermal targets"
    assert page.inner_text("#part-thermal").strip() == "thermal ✓ (DSC: Tg 700 K)"
    assert "approved_for_synthesis" not in main_text(page) and "in_synthesis" not in main_text(page)
    assert page.console_errors == []
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "candidate_journey_validated.png"), full_page=True)
    assert Candidate.objects.get(pk=candidate.pk).status == Candidate.Status.VALIDATED
