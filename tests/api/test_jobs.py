"""Background jobs through the API and the pages: status, cancel, retry, with the same roles."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from core import jobs
from lab.models import AlloyImport
from tests.celery_broker import dead_broker_url, use_broker

from .conftest import token_client

TABLE = b"composition,Tg_K,Tx_K,Tl_K\nZr55Cu30Al10Ni5,680,760,1150\n"

pytestmark = pytest.mark.django_db


@pytest.fixture
def failed_import(experimenter):
    return AlloyImport.objects.create(
        upload=SimpleUploadedFile("t.csv", TABLE), original_name="t.csv", created_by=experimenter,
        status=jobs.JobStatus.FAILED, error="boom", attempts=1, finished_at=timezone.now(),
    )


def url(kind, pk, action=""):
    return f"/api/jobs/{kind}/{pk}/" + (f"{action}/" if action else "")


def test_status_needs_the_kinds_read_role(api, viewer_api, experimenter_api, failed_import):
    assert api.get(url("imports", failed_import.pk)).status_code == 401
    denied = viewer_api.get(url("imports", failed_import.pk))  # the import pages are for experimenters
    assert denied.status_code == 403 and "experimenter" in denied.json()["error"]
    body = experimenter_api.get(url("imports", failed_import.pk)).json()
    assert body["kind"] == "imports" and body["status"] == "failed" and body["error"] == "boom"
    assert body["can_retry"] and not body["can_cancel"]


def test_unknown_kind_lists_the_kinds(experimenter_api):
    response = experimenter_api.get(url("lasers", 1))
    assert response.status_code == 404
    assert "imports" in response.json()["error"] and "training-runs" in response.json()["error"]


def test_retry_through_the_api_runs_the_import_again(experimenter_api, failed_import, django_capture_on_commit_callbacks):
    with use_broker(eager=True), django_capture_on_commit_callbacks(execute=True):
        response = experimenter_api.post(url("imports", failed_import.pk, "retry"))
    assert response.status_code == 200 and response.json()["outcome"] == "Queued again."
    failed_import.refresh_from_db()
    assert failed_import.status == "done" and failed_import.attempts == 2 and failed_import.error == ""
    assert failed_import.counts["created"] == 1


def test_cancel_and_retry_need_the_control_role(make_user, failed_import):
    viewer_only = token_client(make_user("val", "viewer"))
    for action in ("cancel", "retry"):
        assert viewer_only.post(url("imports", failed_import.pk, action)).status_code == 403
    failed_import.refresh_from_db()
    assert failed_import.status == "failed"


def test_cancel_of_a_queued_training_run_through_the_api(make_user):
    from training.models import TrainingRun

    run = TrainingRun.objects.create(snapshot_hash="a" * 64, snapshot_path="x.csv", snapshot_taken_at=timezone.now())
    assert token_client(make_user("exp", "viewer", "experimenter")).post(url("training-runs", run.pk, "cancel")).status_code == 403
    body = token_client(make_user("apr", "viewer", "approver")).post(url("training-runs", run.pk, "cancel")).json()
    assert body["status"] == "cancelled" and body["outcome"] == "Cancelled."


def test_retry_against_a_dead_broker_says_so(experimenter_api, failed_import, django_capture_on_commit_callbacks):
    with use_broker(dead_broker_url()), django_capture_on_commit_callbacks(execute=True):
        body = experimenter_api.post(url("imports", failed_import.pk, "retry")).json()
    failed_import.refresh_from_db()
    assert failed_import.status == "queued" and failed_import.queue_unavailable
    assert body["status"] == "queued"


def test_the_page_buttons_follow_the_same_roles(client, make_user, failed_import):
    """The import page's Retry needs the experimenter role, as in the API; a viewer is refused."""
    client.force_login(make_user("val", "viewer"))
    response = client.post(reverse("lab:import_action", args=[failed_import.pk, "retry"]))
    assert response.status_code == 403
    failed_import.refresh_from_db()
    assert failed_import.status == "failed"


def test_a_viewer_cannot_requeue_a_generation_round(client, make_user):
    from design.models import DesignCampaign, GenerationRound

    owner = make_user("olga", "viewer", "experimenter")
    campaign = DesignCampaign.objects.create(owner=owner, name="c", targets={"tg_k": {"min": 600}})
    gen_round = GenerationRound.objects.create(campaign=campaign, number=1, status="failed", error="x")
    client.force_login(make_user("val", "viewer"))
    assert client.post(reverse("design:round_action", args=[gen_round.pk, "retry"])).status_code == 403
    gen_round.refresh_from_db()
    assert gen_round.status == "failed"
