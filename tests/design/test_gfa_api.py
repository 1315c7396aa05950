"""The design API (design.api): campaigns with their GFA targets, candidates with P(BMG), Dmax."""

from design.models import Candidate, DesignCampaign, GenerationRound
from ml.rules import DMAX_MAX_MM

from .test_approval import make_candidate

NEW = {
    "name": "Castable Zr glasses", "targets": {"tg_k": {"min": 680}, "dmax_mm": {"min": 3}}, "base_element": "zr",
    "forbidden_elements": ["Be"], "max_elements": 5, "min_p_glass": 0.5, "min_p_bmg": 0.4, "n_draws": 3000,
}


def post(client, url, body):
    return client.post(url, body, content_type="application/json")


def test_create_campaign_with_gfa_targets(experimenter_client, experimenter):
    response = post(experimenter_client, "/api/design-campaigns/", NEW)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["targets"]["dmax_mm"] == {"min": 3} and body["min_p_bmg"] == 0.4 and body["base_element"] == "Zr"
    campaign = DesignCampaign.objects.get()
    assert campaign.owner == experimenter and campaign.min_p_bmg == 0.4
    assert experimenter_client.get(f"/api/design-campaigns/{campaign.pk}/").json()["min_p_bmg"] == 0.4


def test_api_refuses_every_bad_gfa_value_at_once(experimenter_client):
    bad = {**NEW, "targets": {"dmax_mm": {"min": 0, "max": DMAX_MAX_MM + 1}}, "min_p_bmg": 1.5, "min_p_glass": -0.2}
    response = post(experimenter_client, "/api/design-campaigns/", bad)
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert set(detail) == {"targets", "min_p_bmg", "min_p_glass"}
    assert "must be above 0 mm" in detail["targets"][0] and f"at most {DMAX_MAX_MM:g} mm" in detail["targets"][1]
    assert detail["min_p_bmg"] == ["A probability between 0 and 1 (got 1.5)."]
    assert not DesignCampaign.objects.exists()


def test_patch_changes_gfa_targets_with_the_same_validation(experimenter_client, campaign_factory):
    campaign = campaign_factory()
    url = f"/api/design-campaigns/{campaign.pk}/"
    response = experimenter_client.patch(url, {"min_p_bmg": 0.6, "targets": {"trg": {"min": 0.6}, "dmax_mm": {"min": 5}}},
                                         content_type="application/json")
    assert response.status_code == 200, response.json()
    campaign.refresh_from_db()
    assert campaign.min_p_bmg == 0.6 and campaign.targets["dmax_mm"] == {"min": 5}
    response = experimenter_client.patch(url, {"targets": {"dmax_mm": {"min": 300}}}, content_type="application/json")
    assert response.status_code == 400 and "at most 200 mm" in response.json()["error"]
    response = experimenter_client.patch(url, {"base_element": "Cu"}, content_type="application/json")
    assert response.status_code == 400 and "cannot be changed: base_element" in response.json()["error"]
    assert experimenter_client.put(url, NEW, content_type="application/json").status_code == 405


def test_viewer_reads_but_cannot_write(viewer_client, campaign_factory):
    campaign = campaign_factory()
    assert viewer_client.get("/api/design-campaigns/").json()["count"] == 1
    assert post(viewer_client, "/api/design-campaigns/", NEW).status_code == 403
    r = viewer_client.patch(f"/api/design-campaigns/{campaign.pk}/", {"min_p_bmg": 0.2}, content_type="application/json")
    assert r.status_code == 403


def test_candidates_expose_the_gfa_predictions(viewer_client, campaign_factory):
    campaign = campaign_factory()
    c = make_candidate(campaign)
    Candidate.objects.filter(pk=c.pk).update(p_bmg=0.71, dmax_mm_pred=3.2, dmax_low_mm=1.1, dmax_high_mm=7.5,
                                             contributions={"p_bmg": [["Trg_pred", 0.3]]})
    other = make_candidate(campaign, "Zr60Cu20Al12Ni8", 2)
    Candidate.objects.filter(pk=other.pk).update(p_glass=None)
    body = viewer_client.get(f"/api/design-candidates/?campaign={campaign.pk}&ordering=-p_bmg").json()
    first, second = body["results"]
    assert first["id"] == c.pk and first["p_bmg"] == 0.71 and first["dmax_mm_pred"] == 3.2
    assert (first["dmax_low_mm"], first["dmax_high_mm"]) == (1.1, 7.5)
    assert first["contributions"] == {"p_bmg": [["Trg_pred", 0.3]]}
    assert second["p_glass"] is None and second["p_bmg"] is None and second["contributions"] == {}
    assert viewer_client.get("/api/design-candidates/?campaign=x").status_code == 400


def test_candidates_filter_by_round(viewer_client, campaign_factory):
    campaign = campaign_factory()
    first = make_candidate(campaign)
    later = make_candidate(campaign, "Zr60Cu20Al12Ni8", 2)
    later_round = GenerationRound.objects.create(campaign=campaign, number=2, status="done",
                                                 model_version=first.generation_round.model_version)
    Candidate.objects.filter(pk=later.pk).update(generation_round=later_round)
    ids = [r["id"] for r in viewer_client.get(f"/api/design-candidates/?round={later_round.pk}").json()["results"]]
    assert ids == [later.pk]
    both = viewer_client.get(f"/api/design-candidates/?campaign={campaign.pk}").json()["results"]
    assert {r["id"] for r in both} == {first.pk, later.pk}
    refused = viewer_client.get("/api/design-candidates/?round=x")
    assert refused.status_code == 400 and "round id" in refused.content.decode()
