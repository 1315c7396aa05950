"""core.jobs on its own (no worker): claim, redelivery, cancel, retry, sweep, ownership.

The fault tests (tests/faults/test_job_lifecycle.py) run the same lifecycle against killed
workers and a broken broker on PostgreSQL; these run anywhere, fast.
"""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from core import jobs
from lab.models import Alloy, AlloyImport
from tests.celery_broker import dead_broker_url, use_broker

pytestmark = pytest.mark.django_db

TABLE = b"composition,Tg_K,Tx_K,Tl_K\nZr55Cu30Al10Ni5,680,760,1150\nZr60Cu25Al10Ni5,670,750,1160\n"


@pytest.fixture
def job(experimenter):
    return AlloyImport.objects.create(upload=SimpleUploadedFile("t.csv", TABLE), original_name="t.csv", created_by=experimenter)


def ago(seconds):
    return timezone.now() - timezone.timedelta(seconds=seconds)


def test_only_a_queued_job_is_claimed_and_each_claim_is_an_attempt(job):
    claimed = jobs.claim(AlloyImport, job.pk, task_id="m1")
    assert claimed.status == "running" and claimed.attempts == 1 and claimed.task_id == "m1"
    assert jobs.claim(AlloyImport, job.pk, task_id="m2") is None  # another message: nothing to run
    assert AlloyImport.objects.get(pk=job.pk).attempts == 1


def test_the_same_message_again_after_the_heartbeat_stopped_fails_the_job(job, settings):
    settings.GLASSLOOP_JOB_STALE_SECONDS = 60
    jobs.claim(AlloyImport, job.pk, task_id="m1")
    assert jobs.claim(AlloyImport, job.pk, task_id="m1") is None  # fresh heartbeat: a duplicate, ignored
    assert AlloyImport.objects.get(pk=job.pk).status == "running"
    AlloyImport.objects.filter(pk=job.pk).update(heartbeat_at=ago(61))
    assert jobs.claim(AlloyImport, job.pk, task_id="m1") is None
    job.refresh_from_db()
    assert job.status == "failed" and job.error.startswith(jobs.WORKER_LOST) and job.can_retry


def test_cancel_a_queued_job_at_once_and_a_running_one_at_its_next_safe_point(job, experimenter, settings):
    settings.GLASSLOOP_JOB_STALE_SECONDS = 60
    cancelled, text = jobs.cancel(job)
    assert cancelled.status == "cancelled" and text == "Cancelled."
    assert jobs.claim(AlloyImport, job.pk) is None  # a late message runs nothing

    other = AlloyImport.objects.create(upload=SimpleUploadedFile("u.csv", TABLE), original_name="u.csv", created_by=experimenter)
    running = jobs.claim(AlloyImport, other.pk)
    asked, text = jobs.cancel(running)
    assert asked.status == "running" and asked.cancel_requested and "next safe point" in text
    ctx = jobs.JobContext(running)
    with pytest.raises(jobs.JobCancelled):
        ctx.check_cancel(every_s=0)
    # A running job whose worker is gone is cancelled at once.
    AlloyImport.objects.filter(pk=other.pk).update(heartbeat_at=ago(61))
    gone, text = jobs.cancel(AlloyImport.objects.get(pk=other.pk))
    assert gone.status == "cancelled" and "worker had stopped" in text


def test_retry_refuses_a_live_job_and_requeues_a_failed_one(job, settings, django_capture_on_commit_callbacks):
    settings.GLASSLOOP_JOB_STALE_SECONDS = 60
    running = jobs.claim(AlloyImport, job.pk)
    same, text = jobs.retry(running)
    assert same.status == "running" and "cancel it first" in text
    AlloyImport.objects.filter(pk=job.pk).update(heartbeat_at=ago(61))  # its worker died
    with use_broker(eager=True), django_capture_on_commit_callbacks(execute=True):
        retried, text = jobs.retry(AlloyImport.objects.get(pk=job.pk))
    job.refresh_from_db()
    assert text == "Queued again." and job.status == "done" and job.attempts == 2
    assert Alloy.objects.count() == 2


def test_the_sweep_fails_silent_jobs_and_resends_lost_messages(job, experimenter, settings, django_capture_on_commit_callbacks):
    settings.GLASSLOOP_JOB_STALE_SECONDS = 60
    settings.GLASSLOOP_JOB_REQUEUE_SECONDS = 300
    jobs.claim(AlloyImport, job.pk)
    AlloyImport.objects.filter(pk=job.pk).update(heartbeat_at=ago(61))
    lost = AlloyImport.objects.create(upload=SimpleUploadedFile("u.csv", TABLE), original_name="u.csv", created_by=experimenter,
                                      queued_at=ago(301), task_id="old")
    waiting = AlloyImport.objects.create(upload=SimpleUploadedFile("w.csv", TABLE), original_name="w.csv", created_by=experimenter,
                                         queued_at=ago(10), task_id="recent")
    with use_broker(dead_broker_url()), django_capture_on_commit_callbacks(execute=True):
        report = jobs.sweep()
    assert report["failed"] == [job.job_label()] and report["resent"] == [lost.job_label()]
    lost.refresh_from_db()
    waiting.refresh_from_db()
    assert lost.task_id != "old" and lost.queue_unavailable  # sent again (the broker is down: it says so)
    assert waiting.task_id == "recent"  # still within its time: left alone


def test_an_attempt_given_up_while_it_ran_keeps_nothing(job, monkeypatch):
    """The sweep failed the import while it ran (a stale heartbeat): its rows roll back."""
    from lab import importing

    original = importing._import

    def import_then_look_dead(*args, **kwargs):
        original(*args, **kwargs)
        AlloyImport.objects.filter(pk=job.pk).update(status="failed", error="given up")

    monkeypatch.setattr(importing, "_import", import_then_look_dead)
    importing.run_alloy_import(job.pk)
    job.refresh_from_db()
    # (Here the "sweep" wrote inside the import's transaction, so it rolled back with it; the
    # real sweep commits on its own connection and the attempt's final write then does nothing.)
    assert job.status == "failed" and job.error.startswith("This attempt was given up")
    assert not Alloy.objects.exists()


def test_progress_reaches_the_row_and_the_payload(job):
    running = jobs.claim(AlloyImport, job.pk)
    with jobs.running(running) as ctx:
        ctx.report(0.4, "reading row 400 of 1,000")
    payload = jobs.status_payload(AlloyImport.objects.get(pk=job.pk))
    assert payload["progress"] == 0.4 and payload["message"] == "reading row 400 of 1,000"
    assert payload["status"] == "running" and payload["can_cancel"] and not payload["can_retry"]
