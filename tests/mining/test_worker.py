"""The batch task run for real by a Celery worker through Redis."""

import time

import pytest
from django.db import connection

from mining import services
from mining.models import ExtractionBatch
from tests.celery_broker import redis_up

BROKER = "redis://127.0.0.1:6379/14"


@pytest.fixture
def worker_app():
    if connection.vendor != "postgresql":
        pytest.skip("the worker test runs on PostgreSQL (DATABASE_URL=postgres://...): the worker thread needs a real shared database")
    if not redis_up():
        pytest.skip("Redis is not running on 127.0.0.1:6379")
    from celery.contrib.testing.worker import start_worker

    from tests.celery_broker import use_broker

    with use_broker(BROKER) as app:
        with app.connection_for_write() as conn:
            conn.default_channel.client.flushdb()  # only our own db 14
        with start_worker(app, perform_ping_check=False, pool="solo", loglevel="WARNING"):
            yield app


@pytest.mark.django_db(transaction=True)
def test_batch_runs_through_a_real_worker(worker_app):
    sources = [services.create_source(text=f"The Zr57Cu28Al10Ni5 alloy shows Tg = {680 + i} K and Tx = 763 K.") for i in range(3)]
    batch = services.create_batch(name="via worker", sources=sources, extractor="rules")  # enqueued on commit
    deadline = time.time() + 30
    while time.time() < deadline:
        batch.refresh_from_db()
        if batch.is_finished:
            break
        time.sleep(0.2)
    assert batch.error == ""
    assert batch.status == ExtractionBatch.Status.DONE and batch.sources_done == 3
    assert batch.records.count() == 3
    assert all("duplicate" in r.flag_names for r in batch.records.all())  # same alloy, within 10 K


def _wait(job, seconds=30):
    deadline = time.time() + seconds
    while time.time() < deadline:
        job.refresh_from_db()
        if job.is_finished:
            return job
        time.sleep(0.2)
    return job


@pytest.mark.django_db(transaction=True)
def test_a_pdf_is_read_and_clean_records_approved_by_a_real_worker(worker_app, django_user_model, settings):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from core.roles import assign_role
    from tests.security.test_pdf_limits import make_pdf, text_page

    reviewer = django_user_model.objects.create_user("rhys-worker")
    assign_role(reviewer, "reviewer")
    pdf = make_pdf([text_page("The Zr57Cu28Al10Ni5 alloy shows Tg = 683 K, Tx = 763 K and Tl = 1118 K.")], compress=True)
    source = services.create_source(upload=SimpleUploadedFile("paper.pdf", pdf), user=reviewer)  # reading enqueued on commit
    reading = _wait(source.pdf_reading)
    assert reading.status == "done" and reading.pages_read == 1, reading.error
    source.refresh_from_db()
    assert "Zr57Cu28Al10Ni5" in source.text and source.text_status == "ready"
    batch = _wait(services.create_batch(name="pdf via worker", sources=[source], extractor="rules"))
    assert batch.status == ExtractionBatch.Status.DONE and batch.records.count() == 1
    approval, _ = services.request_bulk_approval(batch.pk, user=reviewer)
    approval = _wait(approval)
    assert approval.status == "done" and (approval.approved, approval.skipped) == (1, 0), approval.error
    assert batch.records.get().status == "approved"
    # A PDF over the page limit is refused by the worker, naming the limit; nothing is left running.
    settings.GLASSLOOP_PDF_MAX_PAGES = 1
    long = services.create_source(upload=SimpleUploadedFile("long.pdf", make_pdf([text_page("a"), text_page("b")])), user=reviewer)
    refused = _wait(long.pdf_reading)
    assert refused.status == "failed" and "GLASSLOOP_PDF_MAX_PAGES" in refused.error
