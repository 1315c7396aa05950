"""Approval for synthesis: once only (row lock), in the history, creates the sample; roles."""

import threading

import pytest
from django.db import connection
from django.urls import reverse

from design import services
from design.models import Candidate, CandidateEvent, DesignCampaign, GenerationRound
from lab.models import Sample
from ml.composition import parse_composition
from training.models import ModelVersion


def make_candidate(campaign, formula="Zr55Cu25Al12Ni8", number=1):
    """A stored candidate without running the models (approval does not need them)."""
    from django.utils import timezone

    version = ModelVersion.objects.first() or ModelVersion.objects.create(
        artefact_dir="none", snapshot_hash="0" * 64, snapshot_taken_at=timezone.now(), status=ModelVersion.Status.ACTIVE
    )
    gen_round, _ = GenerationRound.objects.get_or_create(campaign=campaign, number=1, defaults={"status": "done", "model_version": version})
    comp = parse_composition(formula)
    c = Candidate.objects.create(
        campaign=campaign, generation_round=gen_round, number=number, rank=number, composition_key=comp.key,
        formula=comp.formula, fractions=dict(comp), model_version=version, tg_k_pred=700, tg_k_std=5, tx_k_pred=770,
        tx_k_std=5, tl_k_pred=1120, tl_k_std=8, trg_pred=0.625, gamma_pred=0.425, delta_tx_k_pred=70, p_glass=0.9,
        nearest_distance=0.1, acquisition_score=2.1,
    )
    CandidateEvent.objects.create(candidate=c, to_status=Candidate.Status.PROPOSED)
    return c


@pytest.fixture
def candidate(campaign_factory):
    return make_candidate(campaign_factory())


def test_approval_creates_the_sample_and_cannot_happen_twice(candidate, approver, make_user):
    other = make_user("bob", "viewer", "approver")
    c = services.approve_candidate(candidate, user=approver, note="cast a 2 mm rod")
    sample = Sample.objects.get(pk=c.sample_id)
    assert sample.label == f"C{c.campaign_id}-1"
    assert sample.alloy.composition_key == c.composition_key and c.alloy == sample.alloy
    assert "cast a 2 mm rod" in sample.notes and "Predicted Tg 700 K" in sample.notes
    with pytest.raises(services.TransitionError, match=r"already approved for synthesis by ada"):
        services.approve_candidate(candidate, user=other)
    with pytest.raises(services.TransitionError, match="cannot be approved or rejected again"):
        services.reject_candidate(candidate, user=other, note="changed my mind")
    assert Sample.objects.count() == 1
    c.refresh_from_db()
    assert c.status == Candidate.Status.APPROVED
    # In the history, with who and why.
    h = c.history.order_by("-history_date").first()
    assert h.history_user == approver and "Proposed → Approved for synthesis" in h.history_change_reason
    event = c.events.last()
    assert (event.user, event.from_status, event.to_status, event.note) == (approver, "proposed", "approved_for_synthesis", "cast a 2 mm rod")


def test_reject_needs_a_note(candidate, approver):
    with pytest.raises(Exception, match="Say why"):
        services.reject_candidate(candidate, user=approver, note=" ")
    c = services.reject_candidate(candidate, user=approver, note="too close to Vit105")
    assert c.status == Candidate.Status.REJECTED and c.sample_id is None


def test_start_synthesis_only_after_approval(candidate, approver, experimenter):
    with pytest.raises(services.TransitionError):
        services.start_synthesis(candidate, user=experimenter)
    services.approve_candidate(candidate, user=approver)
    c = services.start_synthesis(candidate, user=experimenter)
    assert c.status == Candidate.Status.IN_SYNTHESIS


def test_views_approve_once_and_roles(candidate, client, approver, viewer, experimenter):
    url = reverse("design:candidate_approve", args=[candidate.pk])
    client.force_login(viewer)
    assert client.post(url, {"note": "x"}).status_code == 403
    client.force_login(experimenter)
    assert client.post(url, {"note": "x"}).status_code == 403
    client.force_login(approver)
    response = client.post(url, {"note": "go"}, follow=True)
    assert response.status_code == 200
    assert "approved for synthesis" in response.content.decode()
    response = client.post(url, {"note": "again"}, follow=True)
    assert "already approved for synthesis by ada" in response.content.decode()
    assert Sample.objects.count() == 1
    assert client.get(reverse("design:candidate_approve", args=[candidate.pk])).status_code == 405


def test_same_label_taken_gets_a_suffix(candidate, approver):
    from lab.services import get_or_create_alloy

    alloy, _ = get_or_create_alloy("Cu50Hf50")
    Sample.objects.create(alloy=alloy, label=f"C{candidate.campaign_id}-1")
    c = services.approve_candidate(candidate, user=approver)
    assert c.sample.label.startswith(f"C{candidate.campaign_id}-1-")


@pytest.mark.django_db(transaction=True)
def test_two_approvals_at_once_one_wins(campaign_factory, make_user):
    if connection.vendor != "postgresql":
        pytest.skip("concurrent row locks need PostgreSQL (DATABASE_URL=postgres://...); SQLite serialises writers")
    a, b = make_user("ann", "viewer", "approver"), make_user("ben", "viewer", "approver")
    candidate = make_candidate(campaign_factory())
    barrier = threading.Barrier(2)
    outcomes = []

    def approve(user):
        from django.db import connections

        try:
            barrier.wait(timeout=10)
            services.approve_candidate(candidate, user=user)
            outcomes.append("ok")
        except services.TransitionError as exc:
            outcomes.append(str(exc))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=approve, args=(u,)) for u in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(o == "ok" for o in outcomes) == [False, True], outcomes
    assert Sample.objects.count() == 1
    assert CandidateEvent.objects.filter(to_status=Candidate.Status.APPROVED).count() == 1


def test_closed_campaign_cannot_generate(campaign_factory, approver, active_model):
    campaign = campaign_factory()
    services.close_campaign(campaign, user=approver)
    assert DesignCampaign.objects.get(pk=campaign.pk).status == "closed"
    with pytest.raises(Exception, match="closed"):
        services.create_round(campaign)


def test_xrd_override_moves_the_candidate(candidate, approver, experimenter):
    """The person's verdict wins over the computed one, and the candidate follows it."""
    from lab import services as lab_services

    from .conftest import xrd_upload

    c = services.approve_candidate(candidate, user=approver)
    c = services.update_synthesis_sample(c, user=experimenter, diameter_mm=2.0)
    xrd = lab_services.record_xrd(c.sample, user=experimenter, uploaded_file=xrd_upload("amorphous", seed=5))
    c.refresh_from_db()
    # Glass confirmed; validated only once a DSC is in too (tests/design/test_validation_parts.py).
    assert c.status == Candidate.Status.IN_SYNTHESIS and c.xrd_verdict == "amorphous"
    assert c.glass_part().state == "ok" and c.thermal_part().state == "pending"
    assert c.tg_k_measured is None  # no DSC yet
    lab_services.override_xrd_verdict(xrd, user=experimenter, verdict="crystalline", reason="sharp peak at 38° seen by eye")
    c.refresh_from_db()
    assert c.status == Candidate.Status.FAILED and c.xrd_verdict == "crystalline"
    lab_services.record_dsc(c.sample, user=experimenter, tg_k=690, tx_k=760, tl_k=1130)
    c.refresh_from_db()
    assert (c.tg_k_measured, c.tx_k_measured, c.tl_k_measured) == (690, 760, 1130)
    assert c.predicted_vs_measured()[0] == ("Tg (K)", 700, 690, pytest.approx(100 * 10 / 690))
