"""Time limits on reading uploads on the worker (issue 16): a table import stops after
GLASSLOOP_IMPORT_MAX_SECONDS, a PDF reading after GLASSLOOP_PDF_MAX_SECONDS, at the work's next
safe point (core.jobs.Deadline through ctx.check_time), failing with a message that names the
limit and keeping nothing; the task's Celery soft time limit backs it up between safe points.

The slow parsers here advance a fake clock (Deadline.clock): no test waits or times anything."""

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile

from core import jobs
from lab import importing, tables
from lab import services as lab_services
from lab.models import Alloy, AlloyImport, Sample, XRDAnalysis, XRDMeasurement
from lab.models_imports import ImportRow
from mining import services as mining_services
from mining.models import PdfReading
from tests.lab.patterns_fixtures import synthetic_xrd_pattern
from tests.security.test_pdf_limits import make_pdf, text_page
from tests.test_settings import dump, start


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now

    def slow_down(self, monkeypatch, owner, name, seconds):
        """``owner.name`` (a parser's step) advances this clock by ``seconds`` per call."""
        real = getattr(owner, name)

        def slow(*args, **kwargs):
            self.now += seconds
            return real(*args, **kwargs)

        monkeypatch.setattr(owner, name, slow)


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(jobs.Deadline, "clock", staticmethod(fake))
    return fake


def table(rows):
    lines = ["composition,Tg_K,Tx_K,Tl_K"] + [f"Cu{50 + i % 20}Zr{50 - i % 20},{600 + i % 50},{700 + i % 50},1100"
                                               for i in range(rows)]
    return ("\n".join(lines) + "\n").encode()


def queued_import(rows, name="t.csv"):
    return AlloyImport.objects.create(upload=ContentFile(table(rows), name=name), original_name=name)


# ---------------------------------------------------------------- the settings


def test_the_limits_default_to_300_and_120_seconds(tmp_path):
    out = dump(tmp_path, names=("GLASSLOOP_IMPORT_MAX_SECONDS", "GLASSLOOP_PDF_MAX_SECONDS"))
    assert out["settings"] == {"GLASSLOOP_IMPORT_MAX_SECONDS": 300.0, "GLASSLOOP_PDF_MAX_SECONDS": 120.0}
    out = dump(tmp_path, names=("GLASSLOOP_IMPORT_MAX_SECONDS", "GLASSLOOP_PDF_MAX_SECONDS"),
               GLASSLOOP_IMPORT_MAX_SECONDS=" 45.5 ", GLASSLOOP_PDF_MAX_SECONDS="600")
    assert out["settings"] == {"GLASSLOOP_IMPORT_MAX_SECONDS": 45.5, "GLASSLOOP_PDF_MAX_SECONDS": 600.0}


def test_the_xrd_limit_defaults_to_60_seconds(tmp_path):
    assert dump(tmp_path, names=("GLASSLOOP_XRD_MAX_SECONDS",))["settings"] == {"GLASSLOOP_XRD_MAX_SECONDS": 60.0}
    assert dump(tmp_path, names=("GLASSLOOP_XRD_MAX_SECONDS",), GLASSLOOP_XRD_MAX_SECONDS="90")["settings"] == {
        "GLASSLOOP_XRD_MAX_SECONDS": 90.0}


@pytest.mark.parametrize("name", ["GLASSLOOP_IMPORT_MAX_SECONDS", "GLASSLOOP_PDF_MAX_SECONDS", "GLASSLOOP_XRD_MAX_SECONDS"])
@pytest.mark.parametrize("value", ["5m", "0", "-1", "nan"])
def test_a_bad_limit_fails_at_start_with_its_name(tmp_path, name, value):
    proc = start(tmp_path, **{name: value})
    assert proc.returncode != 0 and "ImproperlyConfigured" in proc.stderr and f"{name}={value!r}" in proc.stderr


# ---------------------------------------------------------------- the helper


def test_a_deadline_names_its_setting_once_it_passed(settings, clock):
    settings.GLASSLOOP_IMPORT_MAX_SECONDS = 300
    deadline = jobs.Deadline("GLASSLOOP_IMPORT_MAX_SECONDS")
    clock.now += 300
    deadline.check("reading row 10 of t.csv")  # not past it yet
    clock.now += 0.5
    with pytest.raises(jobs.JobError) as info:
        deadline.check("reading row 12,000 of t.csv")
    assert str(info.value) == (
        "Stopped after 300 s (GLASSLOOP_IMPORT_MAX_SECONDS): the limit passed at “reading row 12,000 of t.csv”. "
        "Nothing it did was kept; split the file into smaller ones, or raise the limit.")


def test_each_kind_that_reads_uploads_names_its_limit(settings):
    assert AlloyImport.job_time_limit_setting == "GLASSLOOP_IMPORT_MAX_SECONDS"
    assert PdfReading.job_time_limit_setting == "GLASSLOOP_PDF_MAX_SECONDS"
    assert XRDAnalysis.job_time_limit_setting == "GLASSLOOP_XRD_MAX_SECONDS"
    for model in jobs.job_models():  # a limit names a declared setting
        assert not model.job_time_limit_setting or hasattr(settings, model.job_time_limit_setting), model


# ---------------------------------------------------------------- imports


@pytest.mark.django_db
def test_a_slow_import_stops_at_its_limit_and_keeps_nothing(settings, clock, monkeypatch):
    """A row parser that takes a (fake) second a row: past 5 s the next safe point (every 200
    rows) stops the job, naming the setting; the import's transaction is rolled back."""
    settings.GLASSLOOP_IMPORT_MAX_SECONDS = 5
    clock.slow_down(monkeypatch, importing, "_prepare", 1.0)
    job = importing.run_alloy_import(queued_import(1000).pk)
    assert job.status == "failed"
    assert job.error.startswith("Stopped after 5 s (GLASSLOOP_IMPORT_MAX_SECONDS): the limit passed at “reading row 201 of 1,000”."), job.error
    assert "Nothing it did was kept" in job.error
    assert not Alloy.objects.exists() and not ImportRow.objects.exists()


@pytest.mark.django_db
def test_a_slow_read_of_the_file_stops_at_its_limit(settings, clock, monkeypatch):
    """The file's own reading (lab.tables) checks the limit every thousand rows too."""
    settings.GLASSLOOP_IMPORT_MAX_SECONDS = 5
    clock.slow_down(monkeypatch, tables, "_checked", 0.01)
    job = importing.run_alloy_import(queued_import(2500, name="big.csv").pk)
    assert job.status == "failed"
    assert job.error.startswith("Stopped after 5 s (GLASSLOOP_IMPORT_MAX_SECONDS): the limit passed at “reading row 1,000 of big.csv”."), job.error
    assert not Alloy.objects.exists()


@pytest.mark.django_db
def test_an_import_within_its_limit_is_not_stopped(settings, clock, monkeypatch):
    settings.GLASSLOOP_IMPORT_MAX_SECONDS = 5
    clock.slow_down(monkeypatch, importing, "_prepare", 0.01)  # 4 s for the 400 rows
    job = importing.run_alloy_import(queued_import(400).pk)
    assert job.status == "done", job.error
    assert job.counts["rows"] == 400


@pytest.mark.django_db
def test_the_soft_time_limit_between_safe_points_fails_the_import_with_the_same_message(settings, monkeypatch):
    """What Celery raises in the task when its soft time limit passes (here: inside one row)."""
    settings.GLASSLOOP_IMPORT_MAX_SECONDS = 300

    def stuck(line, raw):
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(importing, "_prepare", stuck)
    job = importing.run_alloy_import(queued_import(3).pk)
    assert job.status == "failed"
    assert job.error.startswith("Stopped after 300 s (GLASSLOOP_IMPORT_MAX_SECONDS): the limit passed at “reading row 1 of 3”."), job.error
    assert not Alloy.objects.exists()


@pytest.mark.django_db
def test_the_task_message_carries_the_soft_time_limit(settings, monkeypatch):
    settings.GLASSLOOP_IMPORT_MAX_SECONDS = 300
    settings.GLASSLOOP_PDF_MAX_SECONDS = 120
    assert jobs.soft_time_limit(AlloyImport) == 300 + jobs.TIME_LIMIT_GRACE_SECONDS
    assert jobs.soft_time_limit(PdfReading) == 120 + jobs.TIME_LIMIT_GRACE_SECONDS
    assert all(jobs.soft_time_limit(m) is None for m in jobs.job_models() if not m.job_time_limit_setting)
    sent = []
    task = jobs._task(AlloyImport)
    monkeypatch.setattr(task, "apply_async", lambda *args, **kwargs: sent.append(kwargs))
    job = queued_import(1)
    assert jobs.send(AlloyImport, job.pk, "t-1")
    assert sent == [{"args": [job.pk], "task_id": "t-1", "retry": False, "soft_time_limit": 330.0}]
    # The task itself keeps late acks and the worker-lost handling.
    assert task.acks_late and task.reject_on_worker_lost and task.Request is jobs.JobRequest


# ---------------------------------------------------------------- PDF readings


def stored_pdf(pages):
    data = make_pdf([text_page(f"Zr57Cu28Al10Ni5 page {i} Tg = 683 K.") for i in range(pages)])
    source = mining_services.create_source(upload=SimpleUploadedFile("slow.pdf", data))
    return source, source.pdf_reading


@pytest.mark.django_db
def test_a_slow_pdf_stops_at_its_limit_and_keeps_no_text(settings, clock, monkeypatch):
    """A page extractor that takes a (fake) 50 s a page: past 120 s the next page is not read."""
    from pypdf import PageObject

    settings.GLASSLOOP_PDF_MAX_SECONDS = 120
    clock.slow_down(monkeypatch, PageObject, "extract_text", 50)
    source, reading = stored_pdf(5)
    reading = mining_services.read_pdf(reading.pk)
    assert reading.status == "failed"
    assert reading.error.startswith("Stopped after 120 s (GLASSLOOP_PDF_MAX_SECONDS): the limit passed at “page 4 of 5”."), reading.error
    source.refresh_from_db()
    assert source.text == ""


@pytest.mark.django_db
def test_the_soft_time_limit_inside_a_pdf_page_fails_the_reading_with_the_same_message(settings, monkeypatch):
    """Raised inside pypdf (one huge page): not turned into "could not be read"."""
    from pypdf import PageObject

    settings.GLASSLOOP_PDF_MAX_SECONDS = 120

    def stuck(page, *args, **kwargs):
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(PageObject, "extract_text", stuck)
    source, reading = stored_pdf(2)
    reading = mining_services.read_pdf(reading.pk)
    assert reading.status == "failed"
    # At the last progress message (the page it was reading).
    assert reading.error.startswith("Stopped after 120 s (GLASSLOOP_PDF_MAX_SECONDS): the limit passed at “page 1 of 2”."), \
        reading.error


@pytest.mark.django_db
def test_a_pdf_within_its_limit_reads(settings, clock, monkeypatch):
    from pypdf import PageObject

    settings.GLASSLOOP_PDF_MAX_SECONDS = 120
    clock.slow_down(monkeypatch, PageObject, "extract_text", 20)
    source, reading = stored_pdf(5)
    reading = mining_services.read_pdf(reading.pk)
    assert reading.status == "done", reading.error
    source.refresh_from_db()
    assert "page 4" in source.text


# ---------------------------------------------------------------- XRD analyses


def queued_xrd(make_user):
    """A pattern recorded as a page records it: stored pending, its analysis queued."""
    erin = make_user("erin", "viewer", "experimenter")
    sample = lab_services.log_experiment(user=erin, composition="Cu50Zr50", label="T-1", diameter_mm=1.0)
    return lab_services.record_xrd(sample, user=erin, uploaded_file=SimpleUploadedFile("p.xy", synthetic_xrd_pattern("amorphous")))


def _assert_stopped_and_no_evidence(xrd, job, seconds):
    assert job.status == "failed"
    assert job.error.startswith(
        f"Stopped after {seconds:g} s (GLASSLOOP_XRD_MAX_SECONDS): the limit passed at “"), job.error
    xrd = XRDMeasurement.objects.get(pk=xrd.pk)
    assert xrd.analysis_status == XRDMeasurement.Analysis.FAILED and xrd.verdict == ""
    assert Sample.objects.get(pk=xrd.sample_id).alloy.gfa_class == ""


@pytest.mark.django_db
def test_a_slow_xrd_analysis_stops_at_its_limit_and_is_no_evidence(settings, clock, monkeypatch, make_user):
    settings.GLASSLOOP_XRD_MAX_SECONDS = 5
    clock.slow_down(monkeypatch, lab_services, "_pattern_analysis", 6.0)
    xrd = queued_xrd(make_user)
    job = lab_services.analyse_xrd(XRDAnalysis.objects.get(measurement=xrd).pk)
    _assert_stopped_and_no_evidence(xrd, job, 5)
    assert "analysing the pattern" in job.error


@pytest.mark.django_db
def test_the_soft_time_limit_inside_an_xrd_analysis_fails_it_with_the_same_message(settings, monkeypatch, make_user):
    settings.GLASSLOOP_XRD_MAX_SECONDS = 60

    def stuck(xrd):
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(lab_services, "_pattern_analysis", stuck)
    xrd = queued_xrd(make_user)
    job = lab_services.analyse_xrd(XRDAnalysis.objects.get(measurement=xrd).pk)
    _assert_stopped_and_no_evidence(xrd, job, 60)


@pytest.mark.django_db
def test_an_xrd_analysis_within_its_limit_gives_its_verdict(settings, clock, make_user):
    settings.GLASSLOOP_XRD_MAX_SECONDS = 60
    xrd = queued_xrd(make_user)
    job = lab_services.analyse_xrd(XRDAnalysis.objects.get(measurement=xrd).pk)
    assert job.status == "done" and XRDMeasurement.objects.get(pk=xrd.pk).verdict == "amorphous"
