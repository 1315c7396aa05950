"""The loop's tasks run by real Celery workers on the Redis broker (PostgreSQL needed: the
workers use their own database connections).

* a retrain and a generation round through an in-process worker (celery.contrib.testing);
* a worker process killed with SIGKILL in the middle of a training: the run is marked failed
  by the next trigger, the previous version stays active, and the next run starts cleanly.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/glassloop_h8 \\
    CELERY_BROKER_URL=redis://127.0.0.1:6379/13 .venv/bin/python -m pytest tests/design/test_worker.py
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connection

from design import services as design_services
from design.models import GenerationRound
from training import services
from training.models import ModelVersion, TrainingRun
from core import jobs
from tests.celery_broker import redis_up
from tests.faults.workers import wait_for

from .conftest import add_literature, synthetic_rows

BROKER = os.environ.get("GLASSLOOP_TEST_BROKER", "redis://127.0.0.1:6379/13")
REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db(transaction=True)


def needs_postgres_and_redis():
    if connection.vendor != "postgresql":
        pytest.skip("the worker tests run on PostgreSQL (DATABASE_URL=postgres://...): workers need a shared database")
    if not redis_up():
        pytest.skip("Redis is not running on 127.0.0.1:6379")


@pytest.fixture
def broker_app():
    needs_postgres_and_redis()
    from tests.celery_broker import use_broker

    with use_broker(BROKER) as app:
        with app.connection_for_write() as conn:
            conn.default_channel.client.flushdb()  # only our own db
        yield app


@pytest.fixture
def worker(broker_app):
    from celery.contrib.testing.worker import start_worker

    with start_worker(broker_app, perform_ping_check=False, pool="solo", loglevel="WARNING", shutdown_timeout=60):
        yield broker_app


def test_retrain_and_generation_through_a_real_worker(worker, campaign_factory):
    add_literature(synthetic_rows())
    result = services.request_retrain()  # queued on commit, picked up by the worker
    assert result.created and result.run.error == ""
    run = wait_for(lambda: TrainingRun.objects.filter(pk=result.run.pk, status__in=("done", "failed")).first(), 120, "the training")
    assert run.status == TrainingRun.Status.DONE, run.error
    assert run.heartbeat_at is not None and run.curves
    version = ModelVersion.objects.get(training_run=run)
    assert version.status == ModelVersion.Status.ACTIVE

    campaign = campaign_factory()
    gen_round = design_services.start_generation(campaign)
    done = wait_for(lambda: GenerationRound.objects.filter(pk=gen_round.pk, status__in=("done", "failed")).first(), 60, "generation")
    assert done.status == GenerationRound.Status.DONE, done.error
    assert done.candidates.exists() and done.model_version == version


def test_killed_worker_leaves_previous_version_active_and_next_trigger_starts_cleanly(broker_app, settings, tmp_path):
    add_literature(synthetic_rows())
    first = services.run_training(services.request_retrain(enqueue=False).run.pk)
    v1 = ModelVersion.objects.get(training_run=first)
    assert v1.status == ModelVersion.Status.ACTIVE

    # A real worker process on this test database and broker.
    db = connection.settings_dict
    env = dict(
        os.environ,
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        CELERY_BROKER_URL=BROKER,
        MODEL_ARTEFACT_ROOT=str(django_settings.MODEL_ARTEFACT_ROOT),
        GLASSLOOP_VAR_DIR=str(tmp_path / "var"),
        LOG_LEVEL="WARNING",
    )
    if db.get("PASSWORD"):
        env["PGPASSWORD"] = db["PASSWORD"]
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "-P", "solo", "--without-heartbeat",
         "--without-mingle", "--without-gossip", "-l", "WARNING"],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        add_literature([{"composition": "Zr50Cu40Al10", "Tg_K": 700, "Tx_K": 770, "Tl_K": 1150}])
        doomed = services.request_retrain(epochs=3000).run  # long enough to be caught running
        wait_for(lambda: TrainingRun.objects.filter(pk=doomed.pk, status="running").exists(), 120, "the worker to start training")
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=30)

    settings.GLASSLOOP_JOB_STALE_SECONDS = 2
    time.sleep(2.5)
    doomed.refresh_from_db()
    assert doomed.status == TrainingRun.Status.RUNNING  # nobody has noticed yet
    result = services.request_retrain(enqueue=False)
    doomed.refresh_from_db()
    assert doomed.status == TrainingRun.Status.FAILED and doomed.error.startswith(jobs.WORKER_LOST)
    v1.refresh_from_db()
    assert v1.status == ModelVersion.Status.ACTIVE
    assert not ModelVersion.objects.filter(training_run=doomed).exists()
    # The next trigger on the same data starts a fresh run, which finishes normally.
    assert result.created and result.run.snapshot_hash == doomed.snapshot_hash
    fresh = services.run_training(result.run.pk)
    assert fresh.status == TrainingRun.Status.DONE, fresh.error
    assert ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).count() == 1
