"""Journey 3: an approver approves a generated candidate for synthesis, the experimenter enters
its XRD and DSC through the lab forms, and the candidate shows validated with predicted vs
measured; the new lab result triggers a retrain (a TrainingRun of the loop).

Setup through the real services: a small synthetic literature set (made up here, smooth
Tg/Tx/Tl of Zr–Cu–Al–Ni alloys), a tiny training (few epochs, small models), a campaign and
one generation round run in-process. Celery publishes to kombu's in-memory transport so a
queued retrain is recorded without a broker server.
"""

import re

import pytest

pytestmark = pytest.mark.browser

from design.models import Candidate
from lab.models import DSCMeasurement, XRDMeasurement
from ml.rules import display_k
from tests.lab.patterns_fixtures import synthetic_xrd_pattern
from training.models import TrainingRun

from .conftest import main_text
from .design_fixtures import campaign_with_candidates


def test_approved_candidate_is_cast_measured_validated_and_retrains(
    page, live_server, login, make_user, tmp_path, small_models, memory_broker, settings
):
    settings.GLASSLOOP_RETRAIN_MIN_NEW_RESULTS = 1  # one new lab result is enough to retrain
    approver = make_user("ada", "viewer", "approver")
    experimenter = make_user("erin", "viewer", "experimenter")
    campaign = campaign_with_candidates(approver, name="J3 Zr-based, high Tg")
    runs_before = TrainingRun.objects.count()

    # The approver opens the campaign and a candidate, and approves it for synthesis.
    login("ada")
    page.goto(f"{live_server.url}/design/")
    page.click(f"main a:has-text('{campaign.name}')")
    page.wait_for_url(re.compile(rf"/design/{campaign.pk}/$"))
    candidate = campaign.candidates.order_by("rank").first()
    page.click(f"#candidate-{candidate.pk} a[href='/design/candidates/{candidate.pk}/']")
    page.wait_for_url(re.compile(rf"/design/candidates/{candidate.pk}/$"))
    page.fill("#id_note", "Cast a 2 mm rod first")
    with page.expect_navigation():
        page.click("button:has-text('Approve for synthesis')")
    assert "approved for synthesis" in main_text(page)
    assert page.inner_text("#candidate-status").strip() == "Approved for synthesis"
    candidate.refresh_from_db()
    assert candidate.status == Candidate.Status.APPROVED and candidate.sample is not None
    assert page.console_errors == []

    # The experimenter casts it and enters its XRD and DSC through the lab forms.
    page.click("header button:has-text('Log out')")
    page.wait_for_load_state()
    login("erin")
    page.goto(f"{live_server.url}/design/candidates/{candidate.pk}/")
    page.fill("#id_diameter_mm", "2")  # the rod's diameter: half of what validates the glass part
    with page.expect_navigation():
        page.click("#sample-form button")
    assert "rod diameter 2 mm" in page.inner_text("#synthesis-sample")
    page.click(f"main a[href='/lab/samples/{candidate.sample_id}/']")
    page.wait_for_url(re.compile(rf"/lab/samples/{candidate.sample_id}/$"))
    xrd_file = tmp_path / "cast.xy"
    xrd_file.write_bytes(synthetic_xrd_pattern("amorphous", seed=5))
    page.click("main a:has-text('Add XRD')")
    page.set_input_files("#id_xrd_file", str(xrd_file))
    with page.expect_navigation():
        page.click("button:has-text('Analyse and save')")
    assert "amorphous" in main_text(page)
    tg, tx, tl = round(candidate.tg_k_pred) + 5, round(candidate.tg_k_pred) + 70, round(candidate.tl_k_pred) - 10
    page.click("main a:has-text('Add DSC')")
    page.fill("#id_tg", str(tg))
    page.fill("#id_tx", str(tx))
    page.fill("#id_tl", str(tl))
    with page.expect_navigation():
        page.click("main button:has-text('Save')")
    assert f"DSC of {candidate.sample.label} recorded" in main_text(page)

    # The candidate follows: validated, predicted vs measured side by side.
    page.goto(f"{live_server.url}/design/candidates/{candidate.pk}/")
    assert page.inner_text("#candidate-status").strip() == "Validated: glass and thermal targets"
    rows = {r.split("\t")[0].strip(): r for r in page.locator("#comparison tbody tr").all_inner_texts()}
    assert display_k(tg) in rows["Tg (K)"] and display_k(candidate.tg_k_pred) in rows["Tg (K)"]  # the one rounding rule
    assert display_k(tl) in rows["Tl (K)"]
    assert "%" in rows["Tg (K)"]  # a relative error is shown
    assert page.console_errors == []

    candidate.refresh_from_db()
    assert candidate.status == Candidate.Status.VALIDATED
    assert candidate.xrd_verdict == XRDMeasurement.Verdict.AMORPHOUS
    assert (candidate.tg_k_measured, candidate.tx_k_measured, candidate.tl_k_measured) == (tg, tx, tl)
    assert XRDMeasurement.objects.filter(sample=candidate.sample, operator=experimenter).count() == 1
    assert DSCMeasurement.objects.filter(sample=candidate.sample).count() == 1
    retrain = TrainingRun.objects.filter(trigger=TrainingRun.Trigger.LOOP)
    assert TrainingRun.objects.count() == runs_before + 1
    assert retrain.count() == 1 and retrain.get().n_lab_results >= 1
