"""The campaign form's physical bounds (every problem at once), the feasibility line before a
round, and the sentence saying which filter emptied a round."""

import pytest
from django.urls import reverse

from design.feasibility import feasibility, round_explanation
from design.models import DesignCampaign, target_problems
from lab.models import PropertyValue
from lab.services import get_or_create_alloy
from ml.rules import DMAX_MAX_MM, DTX_MAX_K, T_MAX_K, T_MIN_K

from .test_approval import make_candidate
from .test_views import FORM


def _post(client, change):
    return client.post(reverse("design:campaign_create"), {**FORM, **change})


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("tx_k_min", "-50", f"Tx must be between {T_MIN_K:g} and {T_MAX_K:g} K (got -50 K) (was it entered in °C?)."),
        ("tl_k_max", "3000", f"Tl must be between {T_MIN_K:g} and {T_MAX_K:g} K (got 3000 K)."),
        ("trg_min", "1.5", "Trg must be above 0 and below 1 (got 1.5)."),
        ("trg_min", "0", "Trg must be above 0 and below 1 (got 0)."),
        ("gamma_max", "1", "γ must be above 0 and below 1 (got 1)."),
        ("delta_tx_k_min", f"{DTX_MAX_K + 1:g}", f"ΔTx must be above 0 K and at most {DTX_MAX_K:g} K (got {DTX_MAX_K + 1:g} K)."),
        ("dmax_mm_max", f"{DMAX_MAX_MM + 1:g}", f"at most {DMAX_MAX_MM:g} mm"),
    ],
)
def test_each_physical_bound_is_refused_on_its_field(experimenter_client, field, value, message):
    response = _post(experimenter_client, {field: value})
    assert response.status_code == 200
    form = response.context["form"]
    assert any(message in e for e in form.errors[field]), form.errors
    assert not DesignCampaign.objects.exists()


def test_edge_values_inside_the_bounds_are_accepted(experimenter_client):
    response = _post(experimenter_client, {"tg_k_min": f"{T_MIN_K:g}", "tl_k_max": f"{T_MAX_K:g}", "trg_min": "0.99",
                                           "delta_tx_k_max": f"{DTX_MAX_K:g}"})
    assert response.status_code == 302, response.context["form"].errors


def test_every_error_is_shown_at_once(experimenter_client):
    response = _post(experimenter_client, {
        "tg_k_min": "800", "tg_k_max": "700", "tx_k_min": "-50", "trg_min": "1.5", "gamma_min": "2",
        "dmax_mm_min": "0", "forbidden_text": "Xx", "batch_size": "0", "min_p_glass": "1.5", "name": "",
    })
    form = response.context["form"]
    for field in ("tx_k_min", "trg_min", "gamma_min", "dmax_mm_min", "forbidden_text", "batch_size", "min_p_glass", "name"):
        assert field in form.errors, (field, form.errors)
    page = response.content.decode()
    assert "must be below the maximum" in page  # tg min > max, a whole-targets error, on the same submit
    assert "Trg must be above 0 and below 1" in page and "Tx must be between" in page
    assert 'novalidate' in page  # the browser does not stop at its first out-of-range field
    assert 'id="form-error-summary"' in page


def test_api_and_model_share_the_bounds(experimenter_client):
    problems = target_problems({"trg": {"min": 1.5}, "tx_k": {"min": -50}, "gamma": {"max": 1.2}})
    assert len(problems) == 3
    response = experimenter_client.post("/api/design-campaigns/", {"name": "x", "targets": {"trg": {"min": 1.5}, "tx_k": {"min": -50}}},
                                        content_type="application/json")
    assert response.status_code == 400
    targets = response.json()["detail"]["targets"]
    assert any("Trg must be above 0 and below 1" in t for t in targets) and any("Tx must be between" in t for t in targets)


def _alloy(formula, tg, tx, tl):
    alloy, _ = get_or_create_alloy(formula)
    PropertyValue.objects.create(alloy=alloy, origin="literature", tg_k=tg, tx_k=tx, tl_k=tl, source_label="t")
    return alloy


def test_feasibility_counts_known_alloys_and_names_the_nearest_miss(approver_client, campaign_factory):
    _alloy("Zr55Cu25Al12Ni8", 705, 780, 1120)  # meets
    _alloy("Zr60Cu20Al12Ni8", 712, 790, 1130)  # meets
    _alloy("Cu50Zr45Al5", 720, 790, 1150)  # meets, not Zr-based
    _alloy("Zr65Cu25Al10", 660, 730, 1080)  # misses Tg by 40 K (Trg 0.611 fine): the nearest miss
    _alloy("Zr70Cu30", 600, 650, 1200)  # misses Tg by 100 K and Trg
    get_or_create_alloy("Zr50Cu50")  # no values: not a known alloy for this
    campaign = campaign_factory(targets={"tg_k": {"min": 700}, "trg": {"min": 0.6}}, element_ranges={})
    f = feasibility(campaign)
    assert (f["n_known"], f["n_meet"], f["n_meet_in_family"]) == (5, 3, 2)
    assert f["sentence"] == (
        "3 of 5 known alloys with Tg and Trg meet all targets (2 of them within the campaign's element constraints); "
        "the nearest of the others (Zr65Cu25Al10) misses Tg by 40 K."
    )
    page = approver_client.get(campaign.get_absolute_url()).content.decode()
    assert "3 of 5 known alloys with Tg and Trg meet all targets" in page
    assert reverse("lab:alloy_detail", args=[f["nearest"]["alloy_id"]]) in page


def test_impossible_targets_say_so(campaign_factory):
    _alloy("Zr65Cu25Al10", 660, 730, 1080)
    campaign = campaign_factory(targets={"tg_k": {"min": 900}}, element_ranges={})
    f = feasibility(campaign)
    assert f["sentence"].startswith("0 of 1 known alloy with Tg meet all targets; the nearest (Zr65Cu25Al10) misses Tg by 240 K.")
    assert "No known alloy reaches these targets" in f["sentence"]


def test_an_empty_round_says_which_filter_removed_the_draws(approver_client, campaign_factory):
    campaign = campaign_factory()
    counts = {"draws": 3000, "unique": 2100, "meet_element_constraints": 0, "not_known_or_proposed": 0, "novel": 0,
              "scored": 0, "removed_by_p_glass": 0, "removed_by_p_bmg": 0, "removed_by_dmax": 0, "meet_all": 0, "stored": 0,
              "conditions_inside_targets": 1}
    text = round_explanation(counts, campaign)
    assert text.startswith("0 of 5 candidates from 3,000 draws: duplicate draws of one composition removed 900 and "
                           "the element constraints (Zr-based, at most 4 elements, no Be, Zr 45–70 at.%) removed 2,100.")
    assert "No draw was left after the element constraints" in text
    thermal = {**counts, "meet_element_constraints": 2000, "not_known_or_proposed": 1990, "novel": 1500, "scored": 1500,
               "removed_by_p_glass": 100}
    text = round_explanation(thermal, campaign)
    assert "the thermal targets (even optimistically, μ + κσ) removed 1,400" in text
    assert "No draw was left after the thermal targets" in text
    assert round_explanation({**counts, "stored": 5}, campaign) == ""
    # On the campaign page, for the round that came out empty.
    c = make_candidate(campaign)
    c.generation_round.counts = counts
    c.generation_round.save()
    page = approver_client.get(campaign.get_absolute_url()).content.decode()
    assert 'id="round-explanation"' in page and "No draw was left after the element constraints" in page
