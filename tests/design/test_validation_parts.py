"""Validation in two parts: glass formation (an amorphous XRD of a rod of stated diameter) and the
thermal targets (a DSC); the status follows both; the synthesis sample is editable; every status
is shown by its name, never its slug."""

import pytest
from django.urls import reverse

from design import services
from design.models import Candidate
from design.validation import FAILED, INCOMPLETE, MISSED, OK, PENDING, glass_part, thermal_part
from lab import services as lab_services
from lab.models import Sample

from .conftest import xrd_upload
from .test_approval import make_candidate

TARGETS = {"tg_k": {"min": 680}, "trg": {"min": 0.58}}


def test_glass_part():
    assert glass_part("", None, TARGETS).state == PENDING
    assert glass_part("crystalline", 2, TARGETS).state == FAILED
    p = glass_part("amorphous", None, TARGETS)
    assert p.state == INCOMPLETE and "rod diameter not stated" in p.text
    assert glass_part("amorphous", 3, TARGETS).text == "glass ✓ (amorphous 3 mm rod)"
    thin = glass_part("amorphous", 2, {**TARGETS, "dmax_mm": {"min": 3}})
    assert thin.state == INCOMPLETE and "thinner than the Dmax target ≥ 3 mm" in thin.text
    assert glass_part("amorphous", 3, {"dmax_mm": {"min": 3}}).state == OK


def test_thermal_part():
    assert thermal_part(None, None, None, TARGETS).text == "thermal … (awaiting DSC)"
    ok = thermal_part(702, 770, 1130, TARGETS)
    assert ok.state == OK and ok.text == "thermal ✓ (DSC: Tg 702 K, Trg 0.621)"
    missed = thermal_part(650, 720, 1130, TARGETS)
    assert missed.state == MISSED and missed.text == "thermal ✗ (DSC: Tg 650 K < 680, Trg 0.575 < 0.58)"
    open_ = thermal_part(702, 770, None, TARGETS)  # no Tl: Trg cannot be judged
    assert open_.state == INCOMPLETE and "Trg" in open_.text
    assert thermal_part(702, 770, None, {"dmax_mm": {"min": 2}}).text == "thermal ✓ (DSC: Tg 702 K; no thermal target)"


def test_thermal_part_rounds_a_half_kelvin_up_as_the_pages_do():
    # f"{702.5:.0f}" gives "702" (half to even); every page rounds halves up (ml.rules.display_k).
    assert thermal_part(702.5, 770, 1130, TARGETS).text == "thermal ✓ (DSC: Tg 703 K, Trg 0.622)"


@pytest.fixture
def approved(campaign_factory, approver):
    c = make_candidate(campaign_factory(targets=TARGETS))
    return services.approve_candidate(c, user=approver)


def _status(c):
    return Candidate.objects.get(pk=c.pk).status


def test_validated_only_with_an_amorphous_rod_of_stated_diameter_and_a_dsc(approved, experimenter, approver_client):
    c = approved
    lab_services.record_xrd(c.sample, user=experimenter, uploaded_file=xrd_upload("amorphous", seed=1))
    assert _status(c) == Candidate.Status.IN_SYNTHESIS  # the XRD alone does not validate
    glass, thermal = Candidate.objects.get(pk=c.pk).validation_parts()
    assert (glass.state, thermal.state) == (INCOMPLETE, PENDING)

    c = services.update_synthesis_sample(c, user=experimenter, diameter_mm=3.0)
    assert c.status == Candidate.Status.IN_SYNTHESIS  # glass ✓, thermal still awaiting its DSC
    assert [p.state for p in c.validation_parts()] == [OK, PENDING]

    lab_services.record_dsc(c.sample, user=experimenter, tg_k=702, tx_k=770, tl_k=1130)
    c = Candidate.objects.get(pk=c.pk)
    assert c.status == Candidate.Status.VALIDATED
    assert list(c.events.values_list("to_status", flat=True)) == [
        "proposed", "approved_for_synthesis", "in_synthesis", "validated"]
    page = approver_client.get(c.get_absolute_url()).content.decode()
    assert "glass ✓ (amorphous 3 mm rod)" in page and "thermal ✓ (DSC: Tg 702 K, Trg 0.621)" in page
    assert "Validated: glass and thermal targets" in page
    table = approver_client.get(c.campaign.get_absolute_url()).content.decode()
    assert "glass ✓ (amorphous 3 mm rod)" in table and "thermal ✓ (DSC: Tg 702 K, Trg 0.621)" in table
    body = approver_client.get(f"/api/design-candidates/{c.pk}/").json()
    assert body["status_display"] == "Validated: glass and thermal targets"
    assert body["validation"] == {"glass": {"state": "ok", "text": "glass ✓ (amorphous 3 mm rod)"},
                                  "thermal": {"state": "ok", "text": "thermal ✓ (DSC: Tg 702 K, Trg 0.621)"}}


def test_dsc_first_then_a_glass_that_misses_the_thermal_targets(approved, experimenter):
    c = approved
    lab_services.record_dsc(c.sample, user=experimenter, tg_k=650, tx_k=720, tl_k=1130)
    assert _status(c) == Candidate.Status.IN_SYNTHESIS
    services.update_synthesis_sample(c, user=experimenter, diameter_mm=2.0)
    lab_services.record_xrd(c.sample, user=experimenter, uploaded_file=xrd_upload("amorphous", seed=2))
    assert _status(c) == Candidate.Status.MISSED_TARGETS
    xrd = c.sample.xrd_measurements.get()
    lab_services.override_xrd_verdict(xrd, user=experimenter, verdict="crystalline", reason="sharp peak by eye")
    assert _status(c) == Candidate.Status.FAILED


def test_synthesis_sample_is_editable_from_the_candidate_page(approved, experimenter_client, experimenter):
    c = approved
    url = reverse("design:candidate_sample", args=[c.pk])
    bad = experimenter_client.post(url, {"method": "arc_suction", "diameter_mm": "500"})
    assert bad.status_code == 400 and "A rod diameter must be between 0 and 100 mm." in bad.content.decode()
    response = experimenter_client.post(url, {"method": "copper_mold", "diameter_mm": "3", "cast_on": "2026-11-30",
                                              "operator": experimenter.pk})
    assert response.status_code == 302
    sample = Sample.objects.get(pk=c.sample_id)
    assert (sample.method, sample.diameter_mm, str(sample.cast_on), sample.operator) == ("copper_mold", 3.0, "2026-11-30", experimenter)
    assert sample.history.first().history_user == experimenter
    page = experimenter_client.get(c.get_absolute_url()).content.decode()
    assert "rod diameter 3 mm" in page and "cast 2026-11-30 by erin" in page
    assert 'value="2026-11-30"' in page  # the date field shows the stored date (ISO, as type=date needs)


def test_viewer_cannot_edit_the_sample(approved, viewer_client):
    viewer_client.post(reverse("design:candidate_sample", args=[approved.pk]), {"method": "other", "diameter_mm": "2"})
    assert Sample.objects.get(pk=approved.sample_id).diameter_mm is None


def test_no_raw_status_slug_on_the_pages_or_in_the_api_display(approved, experimenter, approver_client):
    c = approved
    services.start_synthesis(c, user=experimenter)
    pages = [approver_client.get(u).content.decode() for u in
             (c.get_absolute_url(), c.campaign.get_absolute_url(), reverse("design:campaign_list"))]
    for page in pages:
        visible = page.replace('c.status == "approved_for_synthesis"', "")
        for slug in ("approved_for_synthesis", "in_synthesis", "missed_targets"):
            assert f">{slug}<" not in visible and f"{slug} →" not in visible and f"→ {slug}" not in visible, slug
    detail = pages[0]
    assert "Approved for synthesis" in detail and "In synthesis" in detail
    body = approver_client.get(f"/api/design-candidates/{c.pk}/").json()
    assert body["status"] == "in_synthesis" and body["status_display"] == "In synthesis"
    assert body["validation"]["glass"]["text"] == "glass … (awaiting XRD)"
    assert approver_client.get(f"/api/design-campaigns/{c.campaign_id}/").json()["status_display"] == "Open"
    h = Candidate.objects.get(pk=c.pk).history.order_by("-history_date").first()
    assert h.history_change_reason == "Approved for synthesis → In synthesis"
