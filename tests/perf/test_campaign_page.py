"""The campaign page (the load bench's heaviest): its queries do not grow with the candidates
(their rounds, samples and measurements), its rows read no column they do not show, and the
active model version is found among the versions it lists."""

import pytest
from django.db import connection
from django.template import Context, Template
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from design import selectors
from design.models import Candidate, GenerationRound
from lab.models import Sample
from lab.services import get_or_create_alloy
from tests.design.test_approval import make_candidate
from training.models import ModelVersion

pytestmark = pytest.mark.django_db

FORMULAS = ["Zr60Cu30Al10", "Zr50Cu40Al10", "Cu50Zr45Al5", "Zr55Cu30Al10Ni5", "Zr65Cu15Al10Ni10", "Cu47Zr47Al6",
            "Zr52Cu38Al10", "Zr57Cu28Al15"]


@pytest.fixture
def campaign(approver):
    from design.services import create_campaign

    return create_campaign(owner=approver, name="Page campaign", targets={"tg_k": {"min": 680}, "trg": {"min": 0.55}})


def add_candidates(campaign, start, stop):
    """Candidates ``start``..``stop``: every other one in round 2, cast (a sample) and measured."""
    alloy, _ = get_or_create_alloy("Cu46Zr46Al8")
    for i in range(start, stop):
        c = make_candidate(campaign, formula=FORMULAS[i], number=i + 1)
        if i % 2:
            gen_round, _ = GenerationRound.objects.get_or_create(
                campaign=campaign, number=2, defaults={"status": "done", "model_version": c.model_version})
            sample = Sample.objects.create(alloy=alloy, label=f"P-{i}", diameter_mm=2.0)
            Candidate.objects.filter(pk=c.pk).update(
                generation_round=gen_round, sample=sample, status="validated", xrd_verdict="amorphous", tg_k_measured=690.0 + i,
                nearest_known_alloy=alloy, nearest_known_formula="Cu46Zr46Al8",
            )


def page(client, campaign, sort="rank"):
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(reverse("design:campaign_detail", args=[campaign.pk]), {"sort": sort})
    assert response.status_code == 200
    return len(ctx.captured_queries), response.content.decode()


@pytest.mark.parametrize("sort", ["rank", "status", "p_bmg"])
def test_campaign_page_queries_do_not_grow_with_candidates(approver_client, campaign, sort):
    add_candidates(campaign, 0, 2)
    few, html = page(approver_client, campaign, sort)
    assert "r1·1" in html and "r2·2" in html and "P-1" in html
    add_candidates(campaign, 2, 8)
    many, html = page(approver_client, campaign, sort)
    assert "r2·8" in html and "P-7" in html and html.count("part-glass") == 4
    assert many == few


def test_candidate_rows_read_only_the_columns_they_show(campaign):
    """The rows' fractions and contributions are deferred (never read) and the round's number is
    an annotation: rendering the fetched rows runs no query."""
    add_candidates(campaign, 0, 4)
    candidates = list(selectors.campaign_candidates(campaign))
    assert {"fractions", "contributions"} <= candidates[0].get_deferred_fields()
    template = Template("{% load design_rows %}{% candidate_rows candidates %}")
    with CaptureQueriesContext(connection) as ctx:
        html = template.render(Context({"candidates": candidates, "can_approve": True, "can_synthesise": True}))
    assert ctx.captured_queries == []
    assert "r2·4" in html and "Cu46Zr46Al8</a>" in html


def test_the_page_offers_generation_with_the_active_version(approver_client, campaign):
    add_candidates(campaign, 0, 1)
    ModelVersion.objects.update(status=ModelVersion.Status.RETIRED)
    _, html = page(approver_client, campaign)
    assert "No model is trained yet" in html
    newer = ModelVersion.objects.create(artefact_dir="none", snapshot_hash="1" * 64, snapshot_taken_at=timezone.now(),
                                        status=ModelVersion.Status.ACTIVE)
    ModelVersion.objects.create(artefact_dir="none", snapshot_hash="2" * 64, snapshot_taken_at=timezone.now())
    _, html = page(approver_client, campaign)
    assert f"with model v{newer.pk}</span>" in html and "No model is trained yet" not in html
