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
