"""Design pages: campaign list and form, campaign page (map, table, progress JSON), roles."""

import pytest
from django.urls import reverse

from design.models import DesignCampaign, GenerationRound

from .test_approval import make_candidate

FORM = {
    "name": "Zr glasses above 700 K", "description": "", "tg_k_min": "700", "trg_min": "0.62",
    "base_element": "Zr", "allowed_text": "", "forbidden_text": "Be", "max_elements": "5",
    "ranges_text": "Zr 45-70, Al 5-15", "min_p_glass": "0.5", "min_novelty": "0.05", "batch_size": "10",
    "n_draws": "10000", "kappa": "1", "novelty_weight": "1",
}


def test_create_campaign_through_the_form(experimenter_client, experimenter):
    response = experimenter_client.post(reverse("design:campaign_create"), FORM)
    assert response.status_code == 302, response.content.decode()[:2000]
    c = DesignCampaign.objects.get()
    assert c.targets == {"tg_k": {"min": 700.0}, "trg": {"min": 0.62}}
    assert c.element_ranges == {"Zr": [45.0, 70.0], "Al": [5.0, 15.0]}
    assert c.forbidden_elements == ["Be"] and c.owner == experimenter
    assert c.history.first().history_user == experimenter


@pytest.mark.parametrize(
    "change, message",
    [
        ({"tg_k_min": "", "trg_min": ""}, "State at least one target"),
        ({"forbidden_text": "Zr Xx"}, "&#x27;Xx&#x27; is not an element symbol."),  # ml.rules.parse_element_list
        ({"ranges_text": "Zr from 45"}, "write e.g. “Zr 45-70”"),
        ({"tg_k_min": "800", "tg_k_max": "700"}, "must be below the maximum"),
        ({"forbidden_text": "Zr"}, "The base element is forbidden"),
        ({"ranges_text": "Zr 70-45"}, "0 ≤ min &lt; max ≤ 100"),
    ],
)
def test_bad_campaign_input_is_refused_with_a_reason(experimenter_client, change, message):
    response = experimenter_client.post(reverse("design:campaign_create"), {**FORM, **change})
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not DesignCampaign.objects.exists()


def test_viewer_cannot_create_or_generate(viewer_client, campaign_factory):
    response = viewer_client.get(reverse("design:campaign_create"), follow=True)
    assert "needs the experimenter or approver role" in response.content.decode()
    campaign = campaign_factory()
    viewer_client.post(reverse("design:campaign_generate", args=[campaign.pk]))
    assert not GenerationRound.objects.exists()


def test_generate_without_a_model_says_what_to_do(experimenter_client, campaign_factory):
    campaign = campaign_factory()
    response = experimenter_client.post(reverse("design:campaign_generate", args=[campaign.pk]), follow=True)
    assert "No model is trained yet" in response.content.decode()


def test_campaign_page_table_map_and_status(approver_client, campaign_factory, literature):
    campaign = campaign_factory()
    a = make_candidate(campaign, "Zr55Cu25Al12Ni8", 1)
    b = make_candidate(campaign, "Zr60Cu20Al12Ni8", 2)
    b.p_glass = 0.99
    b.save()
    page = approver_client.get(reverse("design:campaign_detail", args=[campaign.pk]) + "?sort=p_glass").content.decode()
    assert page.index(b.formula) < page.index(a.formula)  # sorted by P(glass), highest first
    assert "A = Σ_t tanh(m_t)" in page  # the ranking formula is stated
    assert reverse("design:candidate_approve", args=[a.pk]) in page
    svg = approver_client.get(reverse("design:campaign_map", args=[campaign.pk]))
    assert svg["Content-Type"] == "image/svg+xml"
    assert b'id="candidates"' in svg.content and b"known alloys (" in svg.content
    status = approver_client.get(reverse("design:campaign_status", args=[campaign.pk])).json()
    assert status["n_candidates"] == 2 and status["round"]["status"] == "done"
    assert approver_client.get(reverse("design:campaign_parity", args=[campaign.pk])).status_code == 200
    assert approver_client.get(reverse("design:campaign_list")).status_code == 200
    detail = approver_client.get(reverse("design:candidate_detail", args=[a.pk])).content.decode()
    assert "Approve for synthesis" in detail and "Relative error" in detail


def test_models_page_without_a_model(approver_client):
    page = approver_client.get(reverse("ml:model_list")).content.decode()
    assert "No model is active yet" in page and "Retrain now" in page


def test_retrain_button_needs_approver(viewer_client):
    assert viewer_client.post(reverse("ml:retrain")).status_code == 403


def test_a_round_whose_worker_died_does_not_block_the_campaign(campaign_factory, settings):
    from django.utils import timezone

    from core import jobs
    from design import services

    campaign = campaign_factory()
    make_candidate(campaign)  # round 1 (done) with an active version
    settings.GLASSLOOP_JOB_STALE_SECONDS = 120
    long_ago = timezone.now() - timezone.timedelta(seconds=121)
    dead = GenerationRound.objects.create(campaign=campaign, number=2, status="running", started_at=long_ago,
                                          heartbeat_at=long_ago)
    with pytest.raises(Exception, match="still"):
        GenerationRound.objects.filter(pk=dead.pk).update(heartbeat_at=timezone.now())
        services.create_round(campaign)
    GenerationRound.objects.filter(pk=dead.pk).update(heartbeat_at=long_ago)
    fresh = services.create_round(campaign)
    dead.refresh_from_db()
    assert dead.status == "failed" and dead.error.startswith(jobs.WORKER_LOST)
    assert fresh.number == 3 and fresh.status == "queued"
