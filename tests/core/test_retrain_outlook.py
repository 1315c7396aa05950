"""The Models page says what the loop will do with the lab results (issue 18: it said
"4 new lab results… retrains at 3" before any model existed, and nothing when the count was
reached but no retrain came)."""

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from lab.models import DSCMeasurement, Sample
from lab.services import get_or_create_alloy
from training.models import ModelVersion, TrainingRun

pytestmark = pytest.mark.django_db


def lab_results(n, start=0):
    for i in range(start, start + n):
        alloy, _ = get_or_create_alloy(f"Zr{50 + i}Cu{40 - i}Al10")
        sample = Sample.objects.create(alloy=alloy, label=f"R-{i}")
        DSCMeasurement.objects.create(sample=sample, tg_k=680 + i, tx_k=760 + i, tl_k=1100 + i)


def trained_before_now():
    """A model version whose snapshot was taken an hour ago (the results after it are new)."""
    taken = timezone.now() - datetime.timedelta(hours=1)
    run = TrainingRun.objects.create(snapshot_hash="a" * 64, snapshot_taken_at=taken, status=TrainingRun.Status.DONE)
    return ModelVersion.objects.create(training_run=run, artefact_dir="v1", snapshot_hash=run.snapshot_hash,
                                       snapshot_taken_at=taken, status=ModelVersion.Status.ACTIVE)


def outlook(client):
    response = client.get(reverse("ml:model_list"))
    assert response.status_code == 200
    return response.context["outlook"], response.content.decode()


def test_before_any_model_the_first_training_takes_every_lab_result(viewer_client, settings):
    settings.GLASSLOOP_RETRAIN_MIN_NEW_RESULTS = 3
    lab_results(4)
    found, html = outlook(viewer_client)
    assert found["state"] == "first"
    assert "No model yet: the first training uses all 4 lab results" in found["text"]
    assert "4 new lab results" not in html and "retrains by itself at 3" not in html
    assert found["text"] in html


def test_before_any_model_while_the_first_training_runs(viewer_client):
    lab_results(1)
    run = TrainingRun.objects.create(snapshot_hash="b" * 64, snapshot_taken_at=timezone.now(), status=TrainingRun.Status.RUNNING)
    found, _ = outlook(viewer_client)
    assert found["state"] == "first"
    assert "all 1 lab result with" in found["text"] and f"run {run.pk} is running" in found["text"]


def test_below_the_threshold_counts_down(viewer_client, settings):
    settings.GLASSLOOP_RETRAIN_MIN_NEW_RESULTS = 3
    trained_before_now()
    lab_results(1)
    found, _ = outlook(viewer_client)
    assert found["state"] == "counting"
    assert found["text"] == "1 new lab result since the latest training; the loop retrains by itself at 3 (2 more)."


def test_at_the_threshold_with_a_run_queued(viewer_client, settings):
    settings.GLASSLOOP_RETRAIN_MIN_NEW_RESULTS = 3
    trained_before_now()
    lab_results(3)
    run = TrainingRun.objects.create(snapshot_hash="c" * 64, snapshot_taken_at=timezone.now(), status=TrainingRun.Status.QUEUED)
    found, _ = outlook(viewer_client)
    assert found["state"] == "running"
    assert f"3 new lab results since the latest training; run {run.pk} is queued" in found["text"]


def test_at_the_threshold_after_a_failed_training_says_why_none_runs(viewer_client, settings):
    settings.GLASSLOOP_RETRAIN_MIN_NEW_RESULTS = 3
    trained_before_now()
    lab_results(4)
    failed = TrainingRun.objects.create(snapshot_hash="d" * 64, snapshot_taken_at=timezone.now(),
                                        status=TrainingRun.Status.FAILED, error="Too few alloys.")
    found, html = outlook(viewer_client)
    assert found["state"] == "failed"
    assert f"4 new lab results since the latest training, at or above the 3 that start a retrain, but the latest training (run {failed.pk}) failed" in found["text"]
    assert "Retrain now tries again" in found["text"]


def test_at_the_threshold_with_nothing_queued_says_what_starts_it(viewer_client, settings):
    settings.GLASSLOOP_RETRAIN_MIN_NEW_RESULTS = 3
    settings.GLASSLOOP_RETRAIN_SCHEDULE_HOURS = 24.0
    trained_before_now()
    lab_results(3)
    found, _ = outlook(viewer_client)
    assert found["state"] == "waiting"
    assert "none is queued yet: the next lab result, the scheduled retrain (every 24 h) or Retrain now starts it" in found["text"]
