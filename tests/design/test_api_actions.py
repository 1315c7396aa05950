"""Every action the design pages offer is in the API with the pages' roles (issue 16):
generate a round, read rounds, approve / reject / start the synthesis of a candidate."""

import pytest
import yaml
from django.urls import reverse

from design.models import Candidate, DesignCampaign, GenerationRound
from lab.models import Sample

from .test_approval import make_candidate

pytestmark = pytest.mark.django_db


def post(client, url, body=None):
    return client.post(url, body or {}, content_type="application/json")


def action_url(candidate, name):
    return f"/api/design-candidates/{candidate.pk}/{name}/"


@pytest.fixture
def candidate(campaign_factory):
    return make_candidate(campaign_factory())


# ---------------------------------------------------------------- approve, reject, start synthesis


def test_approver_approves_through_the_api_as_through_the_page(approver_client, approver, candidate):
    response = post(approver_client, action_url(candidate, "approve"), {"note": "worth a rod"})
    assert response.status_code == 200, response.json()
    body = response.json()
    candidate.refresh_from_db()
    assert candidate.status == Candidate.Status.APPROVED
    sample = Sample.objects.get(pk=candidate.sample_id)
    assert sample.label == f"C{candidate.campaign_id}-{candidate.number}" and "Approval note: worth a rod" in sample.notes
    assert body["candidate"]["status"] == "approved_for_synthesis" and body["candidate"]["sample"] == sample.pk
    assert body["outcome"] == f"{candidate.label} approved for synthesis: sample {sample.label} is ready to cast."
    event = candidate.events.last()
    assert event.user == approver and event.note == "worth a rod"

    # Again: the service's words, as the page shows them, and a 409.
    again = post(approver_client, action_url(candidate, "approve"))
    assert again.status_code == 409
    assert "is already approved for synthesis by" in again.json()["error"]
    assert post(approver_client, action_url(candidate, "reject"), {"note": "no"}).status_code == 409
    assert Sample.objects.count() == 1


def test_approver_rejects_with_a_note_only(approver_client, candidate):
    response = post(approver_client, action_url(candidate, "reject"))
    assert response.status_code == 400
    assert response.json()["detail"] == {"note": ["Say why the candidate is rejected."]}
    candidate.refresh_from_db()
    assert candidate.status == Candidate.Status.PROPOSED

    response = post(approver_client, action_url(candidate, "reject"), {"note": "too much Ni"})
    assert response.status_code == 200, response.json()
    candidate.refresh_from_db()
    assert candidate.status == Candidate.Status.REJECTED and candidate.sample_id is None
    assert candidate.events.last().note == "too much Ni"
    assert response.json()["outcome"] == f"{candidate.label} rejected."
    assert post(approver_client, action_url(candidate, "approve")).status_code == 409
    assert not Sample.objects.exists()


@pytest.mark.parametrize("who", ["viewer_client", "experimenter_client"])
def test_viewer_and_experimenter_cannot_approve_or_reject(request, who, candidate):
    client = request.getfixturevalue(who)
    for name, body in (("approve", {}), ("reject", {"note": "no"})):
        response = post(client, action_url(candidate, name), body)
        assert response.status_code == 403, (who, name)
        assert response.json()["error"] == "This needs the approver role."
    candidate.refresh_from_db()
    assert candidate.status == Candidate.Status.PROPOSED and not Sample.objects.exists()


def logged_in(user):
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client


def test_start_synthesis_needs_an_approved_candidate_and_the_experimenter_role(approver, experimenter, viewer, candidate):
    approver_client, experimenter_client, viewer_client = logged_in(approver), logged_in(experimenter), logged_in(viewer)
    url = action_url(candidate, "start-synthesis")
    response = post(experimenter_client, url)
    assert response.status_code == 409
    assert response.json()["error"] == f"{candidate.label} is proposed, not approved for synthesis."

    assert post(approver_client, action_url(candidate, "approve")).status_code == 200
    response = post(viewer_client, url)
    assert response.status_code == 403 and "experimenter or approver" in response.json()["error"]
    candidate.refresh_from_db()
    assert candidate.status == Candidate.Status.APPROVED

    response = post(experimenter_client, url, {"note": "casting today"})
    assert response.status_code == 200, response.json()
    candidate.refresh_from_db()
    assert candidate.status == Candidate.Status.IN_SYNTHESIS
    assert candidate.events.last().user == experimenter
    assert response.json()["outcome"] == f"{candidate.label} is in synthesis."
    assert post(experimenter_client, url).status_code == 409


def test_sample_details_through_the_api_as_through_the_page(approver, experimenter, viewer, candidate):
    url = action_url(candidate, "sample")
    response = post(logged_in(experimenter), url, {"diameter_mm": 2})
    assert response.status_code == 409
    assert response.json()["error"] == f"{candidate.label} has no sample yet: approve it for synthesis first."
    assert post(logged_in(approver), action_url(candidate, "approve")).status_code == 200
    response = post(logged_in(viewer), url, {"diameter_mm": 2})
    assert response.status_code == 403 and "experimenter or approver" in response.json()["error"]

    response = post(logged_in(experimenter), url, {"diameter_mm": 101})
    assert response.status_code == 400
    assert response.json()["detail"] == {"diameter_mm": ["A rod diameter must be between 0 and 100 mm."]}
    response = post(logged_in(experimenter), url, {"diameter_mm": 2.5, "method": "copper_mold", "operator": experimenter.username})
    assert response.status_code == 200, response.json()
    candidate.refresh_from_db()
    sample = Sample.objects.get(pk=candidate.sample_id)
    assert (sample.diameter_mm, sample.method, sample.operator) == (2.5, "copper_mold", experimenter)
    assert response.json()["outcome"].startswith(f"Sample {sample.label} saved; {candidate.label} is ")
    assert post(logged_in(experimenter), url, {"method": "nope"}).status_code == 400


def test_an_unknown_candidate_is_a_404(approver_client):
    assert post(approver_client, "/api/design-candidates/999999/approve/").status_code == 404


# ---------------------------------------------------------------- generate, rounds


def test_generate_answers_202_with_the_round_and_its_progress_url(
    experimenter_client, experimenter, active_model, campaign_factory, django_capture_on_commit_callbacks
):
    campaign = campaign_factory()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = post(experimenter_client, f"/api/design-campaigns/{campaign.pk}/generate/")
    assert response.status_code == 202, response.json()
    body = response.json()
    gen_round = GenerationRound.objects.get(campaign=campaign)
    assert gen_round.status == GenerationRound.Status.QUEUED and gen_round.requested_by == experimenter
    assert gen_round.task_id and len(callbacks) == 1  # sent to the worker once committed, as the page does
    assert body["round"]["id"] == gen_round.pk and body["round"]["number"] == 1 and body["round"]["status"] == "queued"
    assert body["progress_url"].endswith(f"/api/jobs/generation-rounds/{gen_round.pk}/")
    assert body["round"]["job"]["cancel_url"].endswith(f"/api/jobs/generation-rounds/{gen_round.pk}/cancel/")
    assert body["outcome"] == f"Round 1 queued: sampling {campaign.n_draws:,} compositions."
    job = experimenter_client.get(body["progress_url"]).json()
    assert job["kind"] == "generation-rounds" and job["status"] == "queued"

    # A round already live: the service's words, 409, nothing new.
    again = post(experimenter_client, f"/api/design-campaigns/{campaign.pk}/generate/")
    assert again.status_code == 409
    assert again.json()["error"] == "Round 1 is still queued; wait for it to finish."
    assert GenerationRound.objects.filter(campaign=campaign).count() == 1

    # The rounds, as the campaign page lists them.
    rounds = experimenter_client.get(f"/api/design-rounds/?campaign={campaign.pk}").json()
    assert [r["id"] for r in rounds["results"]] == [gen_round.pk]
    one = experimenter_client.get(f"/api/design-rounds/{gen_round.pk}/").json()
    assert one["status"] == "queued" and one["progress"] == 0.0 and one["explanation"] == "" and one["n_candidates"] == 0
    assert experimenter_client.get("/api/design-rounds/?campaign=x").status_code == 400


def test_generate_refusals_are_409_with_the_pages_words(experimenter_client, approver, campaign_factory):
    from design import services

    campaign = campaign_factory()
    url = f"/api/design-campaigns/{campaign.pk}/generate/"
    response = post(experimenter_client, url)
    assert response.status_code == 409
    assert response.json()["error"] == "No model is trained yet: start a training on the Models page first."
    services.close_campaign(campaign, user=approver)
    response = post(experimenter_client, url)
    assert response.status_code == 409 and response.json()["error"] == "The campaign is closed."
    assert not GenerationRound.objects.exists()


def test_a_viewer_cannot_generate(viewer_client, campaign_factory):
    campaign = campaign_factory()
    response = post(viewer_client, f"/api/design-campaigns/{campaign.pk}/generate/")
    assert response.status_code == 403 and response.json()["error"] == "This needs the experimenter or approver role."
    assert not GenerationRound.objects.exists()
    assert viewer_client.get("/api/design-rounds/").status_code == 200  # reading is for viewers
    assert DesignCampaign.objects.get().status == DesignCampaign.Status.OPEN


def test_a_finished_round_shows_its_counts_and_explanation(viewer_client, campaign_factory):
    campaign = campaign_factory(batch_size=5)
    make_candidate(campaign)
    counts = {"draws": 3000, "unique": 2900, "meet_element_constraints": 100, "not_known_or_proposed": 100,
              "novel": 40, "meet_all": 1, "stored": 1}
    GenerationRound.objects.filter(campaign=campaign).update(counts=counts, progress=1.0)
    body = viewer_client.get(f"/api/design-rounds/?campaign={campaign.pk}").json()["results"][0]
    assert body["status"] == "done" and body["progress"] == 1.0 and body["counts"] == counts and body["n_candidates"] == 1
    assert body["explanation"].startswith("1 of 5 candidates from 3,000 draws: ")


def test_only_an_approver_closes_a_campaign(approver, experimenter, campaign_factory):
    campaign = campaign_factory()
    url = f"/api/design-campaigns/{campaign.pk}/close/"
    response = post(logged_in(experimenter), url)
    assert response.status_code == 403 and response.json()["error"] == "This needs the approver role."
    campaign.refresh_from_db()
    assert campaign.status == DesignCampaign.Status.OPEN
    response = post(logged_in(approver), url)
    assert response.status_code == 200, response.json()
    assert response.json()["campaign"]["status"] == "closed" and response.json()["outcome"] == "Campaign closed."
    campaign.refresh_from_db()
    assert campaign.status == DesignCampaign.Status.CLOSED
    assert post(logged_in(experimenter), f"/api/design-campaigns/{campaign.pk}/generate/").status_code == 409


def test_the_action_routes_are_in_the_schema(viewer_client):
    paths = yaml.safe_load(viewer_client.get("/api/schema/").content)["paths"]
    for path in ("/api/design-campaigns/{id}/generate/", "/api/design-campaigns/{id}/close/", "/api/design-rounds/", "/api/design-rounds/{id}/",
                 "/api/design-candidates/{id}/approve/", "/api/design-candidates/{id}/reject/",
                 "/api/design-candidates/{id}/start-synthesis/", "/api/design-candidates/{id}/sample/"):
        assert path in paths, path
    assert "post" in paths["/api/design-candidates/{id}/approve/"]
    assert reverse("design-candidate-start-synthesis", args=[1]) == "/api/design-candidates/1/start-synthesis/"
