"""An XRD measurement never stays "pending" after its analysis job ended without a verdict
(issue 16): however the job was failed or cancelled (a killed worker, the sweep, a cancel, a
retraction), the measurement says "failed" in the same transaction (XRDAnalysis.on_failed_or_cancelled),
is no evidence, and Retry makes it "pending" again. A cancelled analysis is "failed" too: no
verdict is coming either way; the job's message says it was cancelled.

No real worker is killed here (tests/faults does that for core.jobs): the worker's parent is
played by its Request's on_failure with the WorkerLostError it gets."""

from unittest import mock

import pytest
from celery.exceptions import WorkerLostError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from core import jobs
from core.jobs import JobStatus
from lab import patterns, services
from lab.models import Sample, XRDAnalysis, XRDMeasurement
from lab.templatetags.lab_rows import verdict_badge
from tests.api.conftest import token_client
from tests.lab.patterns_fixtures import synthetic_xrd_pattern
from tests.lab.xrd_helpers import run_xrd_analyses

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("xrd_on_worker")]


@pytest.fixture
def sample(experimenter):
    return services.log_experiment(user=experimenter, composition="Cu46Zr46Al8", label="R-1", diameter_mm=3.0)


@pytest.fixture
def pending(experimenter, sample):
    """A pattern stored "pending", its analysis queued."""
    services.record_xrd(sample, user=experimenter, uploaded_file=SimpleUploadedFile("p.xy", synthetic_xrd_pattern("amorphous")))
    return XRDMeasurement.objects.get()


@pytest.fixture
def viewer_browser(viewer):
    """A viewer's own browser (the viewer_client and experimenter_client fixtures are one client)."""
    from django.test import Client

    browser = Client()
    browser.force_login(viewer)
    return browser


def ago(seconds):
    return timezone.now() - timezone.timedelta(seconds=seconds)


def assert_failed_and_no_evidence(xrd, job_says):
    xrd.refresh_from_db()
    assert xrd.analysis_status == "failed" and xrd.verdict == ""
    assert xrd.analysis_state_display == f"Analysis failed: {job_says}"
    assert "analysis failed" in verdict_badge(xrd)
    assert services.latest_castings(Sample, XRDMeasurement, [xrd.sample.alloy_id]) == {}


def assert_retry_analyses_it(xrd, client):
    """Retry (the page's button) makes it "pending" again and the worker then analyses it."""
    job = XRDAnalysis.objects.get(measurement=xrd)
    assert client.post(reverse("lab:xrd_analysis_action", args=[job.pk, "retry"])).status_code == 302
    xrd.refresh_from_db()
    assert xrd.analysis_status == "pending" and XRDAnalysis.objects.get(pk=job.pk).status == JobStatus.QUEUED
    assert xrd.analysis_state_display == "Analysing the pattern…" and "analysing…" in verdict_badge(xrd)
    assert [j.status for j in run_xrd_analyses()] == ["done"]
    xrd.refresh_from_db()
    assert xrd.analysis_status == "done" and xrd.verdict == "amorphous"
    assert services.latest_castings(Sample, XRDMeasurement, [xrd.sample.alloy_id]) == {xrd.sample.alloy_id: [("R-1", 3.0, True)]}


def worker_lost(job):
    """What the worker's parent does when the child running ``job``'s message is killed (-9, OOM)."""
    from celery.contrib.testing.mocks import TaskMessage
    from billiard.einfo import ExceptionInfo

    from config.celery import app

    task = jobs._task(XRDAnalysis)
    request = task.Request(TaskMessage(task.name, id=job.task_id, args=[job.pk]), app=app, task=task)
    try:
        raise WorkerLostError("Worker exited prematurely: signal 9 (SIGKILL) Job: 0.")
    except WorkerLostError:
        request.on_failure(ExceptionInfo())


def test_a_killed_worker_fails_the_measurement_and_retry_brings_it_back(pending, experimenter_client, viewer_browser):
    job = XRDAnalysis.objects.get()
    jobs.claim(XRDAnalysis, job.pk, task_id=job.task_id)  # the child took it, then was killed
    worker_lost(XRDAnalysis.objects.get(pk=job.pk))
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and job.error.startswith(jobs.WORKER_LOST)
    assert_failed_and_no_evidence(pending, job.error)
    # what the pages and the API show for it: failed (with Retry), not "analysing…"
    page = experimenter_client.get(reverse("lab:xrd_detail", args=[pending.pk])).content.decode()
    assert f"Analysis failed: {jobs.WORKER_LOST}" in page and "Analyse the pattern again" in page
    assert "data-job-url" not in page  # nothing left to follow
    listed = viewer_browser.get("/api/xrd-measurements/").json()["results"][0]
    assert (listed["analysis_status"], listed["verdict"], listed["is_amorphous"]) == ("failed", None, None)
    assert listed["analysis_state"].startswith(f"Analysis failed: {jobs.WORKER_LOST}")
    assert_retry_analyses_it(pending, experimenter_client)


def test_the_sweep_fails_a_silent_analysis_and_its_measurement(pending, experimenter_client, settings):
    settings.GLASSLOOP_JOB_STALE_SECONDS = 60
    job = XRDAnalysis.objects.get()
    jobs.claim(XRDAnalysis, job.pk, task_id=job.task_id)
    XRDAnalysis.objects.filter(pk=job.pk).update(heartbeat_at=ago(61))  # the whole worker died
    assert [j.pk for j in jobs.fail_stale(XRDAnalysis)] == [job.pk]
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and "no heartbeat for more than 60 s" in job.error
    assert_failed_and_no_evidence(pending, job.error)
    assert_retry_analyses_it(pending, experimenter_client)


def test_cancelling_a_queued_analysis_fails_the_measurement(pending, experimenter_client, viewer_browser):
    job = XRDAnalysis.objects.get()
    assert viewer_browser.post(reverse("lab:xrd_analysis_action", args=[job.pk, "cancel"])).status_code == 403
    assert XRDMeasurement.objects.get().analysis_status == "pending"
    assert experimenter_client.post(reverse("lab:xrd_analysis_action", args=[job.pk, "cancel"])).status_code == 302
    assert XRDAnalysis.objects.get().status == JobStatus.CANCELLED
    assert_failed_and_no_evidence(pending, "cancelled before it started")
    page = experimenter_client.get(reverse("lab:xrd_detail", args=[pending.pk])).content.decode()
    assert "Its analysis was cancelled: analyse the pattern again for a verdict." in page
    assert "upload a readable file" not in page  # the file was never found unreadable
    assert run_xrd_analyses() == []  # nothing runs for it
    assert_retry_analyses_it(pending, experimenter_client)


def test_a_running_analysis_cancelled_stops_and_fails_the_measurement(pending, experimenter_client):
    job = XRDAnalysis.objects.get()
    real = patterns.analyse_xrd_file

    def cancelled_meanwhile(data, **kw):  # the person presses Cancel while the worker analyses
        assert jobs.cancel(XRDAnalysis.objects.get(pk=job.pk))[0].cancel_requested
        return real(data, **kw)

    with mock.patch("lab.patterns.analyse_xrd_file", side_effect=cancelled_meanwhile):
        assert [j.status for j in run_xrd_analyses()] == ["cancelled"]
    assert_failed_and_no_evidence(pending, "cancelled while running")
    assert_retry_analyses_it(pending, experimenter_client)


def test_a_stale_running_analysis_cancelled_fails_the_measurement_at_once(pending, experimenter_client, settings):
    settings.GLASSLOOP_JOB_STALE_SECONDS = 60
    job = XRDAnalysis.objects.get()
    jobs.claim(XRDAnalysis, job.pk, task_id=job.task_id)
    XRDAnalysis.objects.filter(pk=job.pk).update(heartbeat_at=ago(61))
    assert jobs.cancel(XRDAnalysis.objects.get(pk=job.pk))[1] == "Cancelled (its worker had stopped)."
    assert_failed_and_no_evidence(pending, "cancelled; its worker had stopped")
    assert_retry_analyses_it(pending, experimenter_client)


# ------------------------------------------------------------------ retraction


def test_retracting_a_pending_pattern_cancels_its_analysis(pending, experimenter_client, viewer_browser):
    job = XRDAnalysis.objects.get()
    # the same role rules as the job's Cancel: a viewer can neither retract nor cancel
    assert viewer_browser.post(reverse("lab:retract_xrd", args=[pending.pk]), {"reason": "wrong sample", "version": "1"}).status_code == 403
    assert XRDAnalysis.objects.get().status == JobStatus.QUEUED
    response = experimenter_client.post(reverse("lab:retract_xrd", args=[pending.pk]), {"reason": "wrong sample", "version": "1"})
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED
    xrd = XRDMeasurement.objects.get()
    assert xrd.retracted_at is not None
    assert_failed_and_no_evidence(xrd, "cancelled before it started")
    with mock.patch("lab.patterns.analyse_xrd_file") as analysed:
        assert run_xrd_analyses() == []  # a late message runs nothing
        assert services.analyse_xrd(job.pk).status == JobStatus.CANCELLED
        # Retry: the page offers none for a retracted pattern, and the API's answers why and queues nothing.
        page = experimenter_client.get(reverse("lab:xrd_detail", args=[xrd.pk])).content.decode()
        assert "Analyse the pattern again" not in page and "It was retracted, so it is not analysed." in page
        response = token_client(pending.operator).post(f"/api/jobs/xrd-analyses/{job.pk}/retry/")
        assert response.status_code == 200
        assert response.json()["outcome"] == f"XRD #{xrd.pk} was retracted (wrong sample); a retracted pattern is not analysed."
        assert XRDAnalysis.objects.get(pk=job.pk).status == JobStatus.CANCELLED
        assert run_xrd_analyses() == []
        # a message sent before the retraction and delivered late: refused by the work itself
        XRDAnalysis.objects.filter(pk=job.pk).update(status=JobStatus.QUEUED, cancel_requested=False)
        [late] = run_xrd_analyses()
    assert analysed.call_count == 0
    assert late.status == JobStatus.FAILED and late.error == response.json()["outcome"]
    xrd.refresh_from_db()
    assert xrd.analysis_status == "failed" and xrd.verdict == ""


def test_retracting_a_pattern_while_it_is_analysed_keeps_no_verdict(pending):
    job = XRDAnalysis.objects.get()
    real = patterns.analyse_xrd_file

    def retracted_meanwhile(data, **kw):
        services.retract_xrd(xrd=pending.pk, user=pending.operator, reason="wrong file")
        assert XRDAnalysis.objects.get(pk=job.pk).cancel_requested
        return real(data, **kw)

    # Past its last cancel check, the analysis' own write refuses the retracted row (locked).
    with mock.patch("lab.patterns.analyse_xrd_file", side_effect=retracted_meanwhile), \
            mock.patch.object(jobs.JobContext, "check_cancel"):
        assert [j.status for j in run_xrd_analyses()] == ["cancelled"]
    xrd = XRDMeasurement.objects.get()
    assert xrd.retracted_at is not None and xrd.computed_verdict == "" and not xrd.plot
    assert_failed_and_no_evidence(xrd, "cancelled while running")


def test_retracting_a_sample_cancels_its_pending_analysis_and_leaves_a_done_one(experimenter, sample, pending):
    done = services.record_xrd(sample, user=experimenter, analyse_now=True,
                               uploaded_file=SimpleUploadedFile("q.xy", synthetic_xrd_pattern("crystalline")))
    done_job = XRDAnalysis.objects.get(measurement=done)
    before = (done_job.status, done_job.finished_at, done_job.message)
    services.retract_sample(sample=sample, user=experimenter, reason="lost rod")
    assert XRDAnalysis.objects.get(measurement=pending).status == JobStatus.CANCELLED
    assert_failed_and_no_evidence(XRDMeasurement.objects.get(pk=pending.pk), "cancelled before it started")
    done_job.refresh_from_db()
    assert (done_job.status, done_job.finished_at, done_job.message) == before and before[0] == JobStatus.DONE
    done.refresh_from_db()
    assert done.analysis_status == "done" and done.verdict == "crystalline"



def test_the_migration_mends_rows_left_pending_by_an_ended_job(experimenter, sample, pending):
    """lab 0013: a measurement left "pending" before this hook existed says "failed" now."""
    import importlib

    from django.apps import apps

    mend = importlib.import_module("lab.migrations.0013_xrd_pending_follows_its_job").mend
    queued = services.record_xrd(sample, user=experimenter, uploaded_file=SimpleUploadedFile("q.xy", synthetic_xrd_pattern("amorphous")))
    XRDAnalysis.objects.filter(measurement=pending).update(status=JobStatus.FAILED, error=jobs.WORKER_LOST)  # as before the hook
    mend(apps, None)
    assert XRDMeasurement.objects.get(pk=pending.pk).analysis_status == "failed"
    assert XRDMeasurement.objects.get(pk=queued.pk).analysis_status == "pending"  # its job is still queued
