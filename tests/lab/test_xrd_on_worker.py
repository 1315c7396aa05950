"""An uploaded XRD pattern is analysed on the worker (issue 16), not in the web request: the
request peeks at its first 64 KB and stores the measurement "pending"; an XRDAnalysis job
fills in the verdict. Until then the measurement is no evidence of anything."""

from unittest import mock

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from core.jobs import JobStatus
from lab import patterns, selectors, services
from lab.models import Alloy, Sample, XRDAnalysis, XRDMeasurement
from lab.templatetags.lab_rows import verdict_badge
from tests.api.conftest import token_client
from tests.lab.patterns_fixtures import synthetic_xrd_pattern
from tests.lab.xrd_helpers import run_xrd_analyses
from training.selectors import count_new_lab_results, latest_castings

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("xrd_on_worker")]


def upload(kind="amorphous", seed=0, name="p.xy"):
    return SimpleUploadedFile(name, synthetic_xrd_pattern(kind, seed=seed))


def big_pattern(bad_line_at=None):
    """A long amorphous pattern (> 64 KB: a fine 2θ step), optionally with a NaN far past the peek."""
    lines = synthetic_xrd_pattern("amorphous", step_deg=0.004).decode().splitlines(keepends=True)
    if bad_line_at is not None:
        lines[bad_line_at] = f"{lines[bad_line_at].split()[0]} nan\n"
    return "".join(lines).encode()


@pytest.fixture
def sample(experimenter):
    return services.log_experiment(user=experimenter, composition="Cu46Zr46Al8", label="R-1", diameter_mm=3.0)


def test_the_request_only_peeks_and_the_worker_analyses_once(experimenter_client, sample):
    data = big_pattern()
    assert len(data) > 2 * patterns.PEEK_BYTES
    analyse = mock.patch("lab.patterns.analyse_xrd_file", wraps=patterns.analyse_xrd_file)
    read = mock.patch("lab.patterns.read_two_column", wraps=patterns.read_two_column)
    with analyse as analysed, read as reads:
        response = experimenter_client.post(reverse("lab:add_xrd", args=[sample.pk]),
                                            {"xrd_file": SimpleUploadedFile("long.xy", data)}, follow=True)
        assert analysed.call_count == 0  # nothing analysed in the request
        assert reads.call_count == 1 and len(reads.call_args.args[0]) <= patterns.PEEK_BYTES  # only the peek read
        assert "the pattern is being analysed" in response.content.decode()
        xrd = XRDMeasurement.objects.get()
        assert xrd.analysis_status == "pending" and xrd.computed_verdict == "" and xrd.verdict == ""
        assert xrd.xrd_analysis.status == JobStatus.QUEUED
        assert "Analysing the pattern…" in response.content.decode()

        assert [j.status for j in run_xrd_analyses()] == ["done"]  # the worker
        assert analysed.call_count == 1
        assert max(len(c.args[0]) for c in reads.call_args_list) == len(data)  # the whole file, there
    xrd.refresh_from_db()
    assert xrd.analysis_status == "done" and xrd.computed_verdict in ("amorphous", "crystalline") and xrd.plot


def test_log_experiment_page_stores_the_pattern_pending_and_says_so(experimenter_client):
    with mock.patch("lab.patterns.analyse_xrd_file") as analysed:
        response = experimenter_client.post(reverse("lab:log_experiment"), {
            "composition": "Cu50Zr50", "label": "L-1", "method": "arc_suction", "xrd_file": upload(),
            "wavelength_a": "1.5406"}, follow=True)
    assert analysed.call_count == 0
    assert response.redirect_chain and response.redirect_chain[-1][0] == reverse("lab:sample_detail", args=[Sample.objects.get().pk])
    page = response.content.decode()
    assert "The XRD pattern is being analysed" in page and "analysing…" in page
    assert 'data-job-url="/api/jobs/xrd-analyses/' in page and "js/job-progress.js" in page


def test_a_pending_pattern_is_no_evidence(experimenter, sample, viewer_client):
    services.record_xrd(sample, user=experimenter, uploaded_file=upload("amorphous"))
    xrd = XRDMeasurement.objects.get()
    alloy = Alloy.objects.get(pk=sample.alloy_id)
    # not "not amorphous": no class from the casting, no Dmax bound, no training row, no new result
    assert (alloy.gfa_class, alloy.dmax_mm, alloy.dmax_is_bound) == ("", None, False)
    assert services.latest_castings(Sample, XRDMeasurement, [alloy.pk]) == {}
    assert selectors.casting_evidence(selectors.sample_list()) == []
    assert latest_castings() == [] and count_new_lab_results(None) == 0
    assert xrd.verdict == ""
    assert "analysing…" in verdict_badge(xrd) and "crystalline" not in verdict_badge(xrd)
    body = viewer_client.get(f"/api/samples/{sample.pk}/").json()
    assert body["latest_verdict"] is None
    listed = viewer_client.get("/api/xrd-measurements/").json()["results"][0]
    assert (listed["verdict"], listed["is_amorphous"], listed["analysis_status"]) == (None, None, "pending")
    assert [viewer_client.get("/api/xrd-measurements/", {"verdict": v}).json()["count"] for v in ("amorphous", "crystalline")] == [0, 0]
    # the plot view answers a placeholder, never analysing the pattern in the request
    with mock.patch("lab.patterns.analyse_xrd_file") as analysed:
        plot = viewer_client.get(reverse("lab:xrd_plot", args=[xrd.pk]))
    assert analysed.call_count == 0 and plot.status_code == 200 and "Analysing the pattern…" in plot.content.decode()

    run_xrd_analyses()
    alloy.refresh_from_db()
    assert (alloy.gfa_class, alloy.dmax_mm, alloy.dmax_is_bound) == ("bmg", 3.0, True)  # evidence once analysed
    assert [row[2] for row in latest_castings()] == ["amorphous"] and count_new_lab_results(None) == 1


def test_an_older_analysed_pattern_stays_the_evidence_while_a_newer_one_is_pending(experimenter, sample):
    services.record_xrd(sample, user=experimenter, uploaded_file=upload("amorphous"), analyse_now=True)
    services.record_xrd(sample, user=experimenter, uploaded_file=upload("crystalline"))
    assert XRDMeasurement.objects.filter(analysis_status="pending").count() == 1
    assert services.latest_castings(Sample, XRDMeasurement, [sample.alloy_id]) == {sample.alloy_id: [("R-1", 3.0, True)]}
    assert [row[2] for row in latest_castings()] == ["amorphous"]
    run_xrd_analyses()
    assert services.latest_castings(Sample, XRDMeasurement, [sample.alloy_id]) == {sample.alloy_id: [("R-1", 3.0, False)]}


def test_an_unreadable_pattern_fails_with_the_readers_sentence_and_retry_runs_it_again(experimenter, experimenter_client, sample):
    # A NaN far past the peek: the request accepts the file, the worker's reader refuses it.
    data = big_pattern(bad_line_at=15000)  # line 15001 of the file
    services.record_xrd(sample, user=experimenter, uploaded_file=SimpleUploadedFile("deep.xy", data))
    [job] = run_xrd_analyses()
    xrd = XRDMeasurement.objects.get()
    assert job.status == JobStatus.FAILED
    assert job.error.startswith("deep.xy: Line 15001 contains a NaN or infinite value")
    assert xrd.analysis_status == "failed" and xrd.verdict == ""
    assert xrd.analysis_state_display == f"Analysis failed: {job.error}"
    assert services.latest_castings(Sample, XRDMeasurement, [sample.alloy_id]) == {} and latest_castings() == []
    page = experimenter_client.get(reverse("lab:xrd_detail", args=[xrd.pk])).content.decode()
    assert "Analysis failed: deep.xy: Line 15001" in page and "Analyse the pattern again" in page
    assert "analysis failed" in experimenter_client.get(reverse("lab:sample_detail", args=[sample.pk])).content.decode()
    # an override of a pattern without analysis is refused (nothing to disagree with)
    with pytest.raises(services.ValidationError) as err:
        services.override_xrd_verdict(xrd, user=experimenter, verdict="amorphous", reason="looks fine")
    assert "upload it again" in err.value.message_dict["verdict"][0]

    # Retry (the page's button) queues it again and the measurement is pending again.
    response = experimenter_client.post(reverse("lab:xrd_analysis_action", args=[job.pk, "retry"]))
    assert response.status_code == 302 and response.url == reverse("lab:xrd_detail", args=[xrd.pk])
    xrd.refresh_from_db()
    assert xrd.analysis_status == "pending" and XRDAnalysis.objects.get().status == JobStatus.QUEUED
    # ...and the worker runs it again: with the reader's verdict on the file this time changed
    # under it (as after a fix of the reader), it is analysed.
    real = patterns.analyse_xrd_file
    with mock.patch("lab.patterns.analyse_xrd_file", side_effect=lambda d, **kw: real(big_pattern(), **kw)):
        assert [j.status for j in run_xrd_analyses()] == ["done"]
    xrd.refresh_from_db()
    assert xrd.analysis_status == "done" and xrd.verdict


def test_an_unexpected_worker_error_also_leaves_the_measurement_failed_not_pending(experimenter, sample):
    services.record_xrd(sample, user=experimenter, uploaded_file=upload())
    with mock.patch("lab.patterns.analyse_xrd_file", side_effect=MemoryError("out of memory")):
        [job] = run_xrd_analyses()
    assert job.status == JobStatus.FAILED and "MemoryError" in job.error
    xrd = XRDMeasurement.objects.get()
    assert xrd.analysis_status == "failed" and xrd.analysis_state_display.startswith("Analysis failed: ")


def test_the_analysis_is_idempotent(experimenter, sample):
    xrd = services.record_xrd(sample, user=experimenter, uploaded_file=upload(), analyse_now=True)
    job = XRDAnalysis.objects.get()
    before = (xrd.version, xrd.history.count(), xrd.computed_verdict, xrd.analysis)
    assert services.analyse_xrd(job.pk).status == JobStatus.DONE  # a second delivery runs nothing
    # even queued again by hand, a done measurement is left as it is
    XRDAnalysis.objects.filter(pk=job.pk).update(status=JobStatus.QUEUED)
    with mock.patch("lab.patterns.analyse_xrd_file") as analysed:
        again = services.analyse_xrd(job.pk)
    assert analysed.call_count == 0 and again.status == JobStatus.DONE and "nothing changed" in again.message
    xrd = XRDMeasurement.objects.get()
    assert (xrd.version, xrd.history.count(), xrd.computed_verdict, xrd.analysis) == before


def test_an_override_waits_for_the_analysis(experimenter, experimenter_client, sample):
    xrd = services.record_xrd(sample, user=experimenter, uploaded_file=upload())
    with pytest.raises(services.ValidationError) as err:
        services.override_xrd_verdict(xrd, user=experimenter, verdict="crystalline", reason="TEM")
    assert "still being analysed" in err.value.message_dict["verdict"][0]
    api = token_client(experimenter)
    response = api.post(f"/api/xrd-measurements/{xrd.pk}/override-verdict/", {"verdict": "crystalline", "reason": "TEM"}, format="json")
    assert response.status_code == 400 and "still being analysed" in response.content.decode()
    page = experimenter_client.get(reverse("lab:xrd_detail", args=[xrd.pk])).content.decode()
    assert "Once the pattern is analysed its verdict can be overridden" in page
    run_xrd_analyses()
    services.override_xrd_verdict(xrd, user=experimenter, verdict="crystalline", reason="TEM")
    assert XRDMeasurement.objects.get().verdict == "crystalline"


def test_only_experimenters_control_the_analysis_job(experimenter, viewer, viewer_client, sample):
    services.record_xrd(sample, user=experimenter, uploaded_file=upload())
    with mock.patch("lab.patterns.analyse_xrd_file", side_effect=patterns.PatternError("unreadable")):
        [job] = run_xrd_analyses()
    assert viewer_client.post(reverse("lab:xrd_analysis_action", args=[job.pk, "retry"])).status_code == 403
    viewer_api, experimenter_api = token_client(viewer), token_client(experimenter)
    status_url = f"/api/jobs/xrd-analyses/{job.pk}/"
    assert viewer_api.get(status_url).json()["status"] == "failed"  # a viewer may follow it
    assert viewer_api.post(f"{status_url}retry/").status_code == 403
    assert XRDAnalysis.objects.get().status == JobStatus.FAILED
    assert experimenter_api.post(f"{status_url}retry/").status_code == 200
    assert XRDAnalysis.objects.get().status == JobStatus.QUEUED


def test_the_xrd_upload_api_queues_the_analysis_on_commit(experimenter, sample, django_capture_on_commit_callbacks):
    api = token_client(experimenter)
    with mock.patch("core.jobs.send") as send, django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/xrd-measurements/", {"sample": sample.pk, "xrd_file": upload()}, format="multipart")
    assert response.status_code == 202
    job = XRDAnalysis.objects.get()
    assert send.call_count == 1 and send.call_args.args[:3] == (XRDAnalysis, job.pk, job.task_id)
    assert response.json()["progress_url"].endswith(f"/api/jobs/xrd-analyses/{job.pk}/")


def test_the_command_finishes_queued_analyses(experimenter, sample):
    from io import StringIO

    from django.core.management import call_command

    services.record_xrd(sample, user=experimenter, uploaded_file=upload())
    out = StringIO()
    call_command("analyse_stored_measurements", stdout=out, stderr=StringIO())
    assert "Ran 1 queued XRD analysis(es) of uploaded patterns." in out.getvalue()
    assert XRDMeasurement.objects.get().analysis_status == "done" and XRDAnalysis.objects.get().status == JobStatus.DONE
    out = StringIO()
    call_command("analyse_stored_measurements", stdout=out, stderr=StringIO())
    assert "Ran 0 queued XRD analysis(es)" in out.getvalue()  # safe to re-run


@pytest.mark.django_db(transaction=True)
def test_an_uploaded_pattern_is_analysed_by_a_real_celery_worker(experimenter, experimenter_client, settings, tmp_path):
    import time

    from celery.contrib.testing.worker import start_worker

    from config.celery import app as celery_app
    from tests.celery_broker import use_broker

    sample = services.log_experiment(user=experimenter, composition="Cu46Zr46Al8", label="W-1", diameter_mm=2.0)
    url = settings.CELERY_BROKER_URL
    if not url.startswith("redis://"):
        url = f"sqla+sqlite:///{tmp_path / 'broker.sqlite3'}"  # never the person's own var/ broker
    with use_broker(url), start_worker(celery_app, perform_ping_check=False, shutdown_timeout=30):
        response = experimenter_client.post(reverse("lab:add_xrd", args=[sample.pk]), {"xrd_file": upload("crystalline")})
        assert response.status_code == 302
        job = XRDAnalysis.objects.get()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            status = experimenter_client.get(f"/api/jobs/xrd-analyses/{job.pk}/").json()
            if status["finished"]:
                break
            time.sleep(0.3)
    assert status["status"] == "done", status
    xrd = XRDMeasurement.objects.get()
    assert xrd.analysis_status == "done" and xrd.verdict == "crystalline"
    assert services.latest_castings(Sample, XRDMeasurement, [sample.alloy_id]) == {sample.alloy_id: [("W-1", 2.0, False)]}
