"""The one job lifecycle (core.jobs) against real faults, on PostgreSQL and a private Redis.

As an operator would meet them:
* ``kill -9`` of the worker's pool child during an import, an extraction batch, a generation
  round and a training run: the job shows failed with the reason at once, Retry queues it,
  and the retry completes on the worker's replacement child;
* the whole worker killed: the sweep (beat) fails the job once its heartbeat is stale;
* Redis restarted with work queued (the queue is lost): the sweep sends it again and it runs;
* Redis paused (SIGSTOP): queuing answers "unavailable" within seconds, not a hung request;
* the beat schedule names the sweep and the scheduled retrain, and both tasks run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/glassloop .venv/bin/python -m pytest tests/faults/test_job_lifecycle.py
"""

import io
import json
import os
import signal
import threading
import time
from http.server import ThreadingHTTPServer

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, transaction

from core import jobs
from lab.importing import enqueue_import
from lab.models import AlloyImport
from tests.faults.workers import celery_worker, pool_children, wait_for, worker_env

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def needs_postgres():
    if connection.vendor != "postgresql":
        pytest.skip("the fault tests run on PostgreSQL (DATABASE_URL=postgres://...): workers need a shared database")


@pytest.fixture
def fast_models(settings, tmp_path):
    settings.MODEL_ARTEFACT_ROOT = tmp_path / "models"
    settings.GLASSLOOP_TRAINING_EPOCHS = 10
    settings.GLASSLOOP_FORWARD_PARAMS = {"n_estimators": 40, "n_members": 2}
    settings.GLASSLOOP_GAN_PARAMS = {"val_every": 5, "hidden": 64}
    return {
        "GLASSLOOP_FORWARD_PARAMS": json.dumps(settings.GLASSLOOP_FORWARD_PARAMS),
        "GLASSLOOP_GAN_PARAMS": json.dumps(settings.GLASSLOOP_GAN_PARAMS),
    }


def big_table(n_rows):
    """A literature table of ``n_rows`` distinct made-up Zr–Cu–Al–Ni alloys (slow enough to be
    caught running)."""
    out = io.StringIO()
    out.write("composition,Tg_K,Tx_K,Tl_K\n")
    i = 0
    for zr in range(40, 71):
        for al in range(2, 16):
            for ni in range(0, 16):
                for tenth in range(10):
                    if i == n_rows:
                        return out.getvalue().encode()
                    cu = 100 - zr - al - ni - tenth / 10
                    out.write(f"Zr{zr}Cu{cu:.1f}Al{al}Ni{ni}.{tenth},{600 + i % 90},{680 + i % 90},{1100 + i % 90}\n")
                    i += 1
    return out.getvalue().encode()


def queued_import(user, n_rows):
    with transaction.atomic():
        job = AlloyImport.objects.create(
            upload=SimpleUploadedFile("big.csv", big_table(n_rows)), original_name="big.csv", created_by=user
        )
        enqueue_import(job)
    return job


# ------------------------------------------------------------------------------ the four kinds of job


class FakeLLMServer:
    """The tests' OpenAI-compatible server (tests.mining.conftest), here for a worker process."""

    def __init__(self):
        from tests.mining.conftest import FakeLLM, _handler

        self.fake = FakeLLM()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self.fake))
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.env = {
            "OPENAI_BASE_URL": f"http://127.0.0.1:{self.server.server_address[1]}/v1",
            "OPENAI_API_KEY": "sk-test-fault-key",
            "GLASSLOOP_LLM_MODEL": "fake-model",
            "GLASSLOOP_LLM_TIMEOUT_S": "60",
        }

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def start_import(ctx):
    return queued_import(ctx["user"], 12_000), lambda job: None


def start_batch(ctx):
    from mining import services

    llm = ctx["llm"]
    # The first paper takes 60 s to answer (the worker is killed meanwhile); later ones answer at once.
    llm.fake.script = [{"sleep": 60, "content": json.dumps({"records": []})}]
    llm.fake.default = {"content": json.dumps({"records": []})}
    sources = [services.create_source(text=f"The alloy Zr{50 + i}Cu{40 - i}Al10 has Tg = 700 K.") for i in range(3)]
    with transaction.atomic():
        batch = services.create_batch(name="slow llm", sources=sources, extractor="llm:fake-model")
    return batch, lambda job: None


def start_round(ctx):
    from design import services as design_services
    from design.models import DesignCampaign
    from tests.design.conftest import add_literature, synthetic_rows
    from training import services

    add_literature(synthetic_rows())
    first = services.run_training(services.request_retrain(enqueue=False).run.pk)
    assert first.status == "done", first.error
    campaign = design_services.create_campaign(
        owner=ctx["user"], name="slow", targets={"tg_k": {"min": 680}}, base_element="Zr", max_elements=4,
        min_p_glass=0.0, min_novelty=0.02, batch_size=5, n_draws=200_000,
    )
    gen_round = design_services.start_generation(campaign)

    def make_retry_quick(job):
        DesignCampaign.objects.filter(pk=campaign.pk).update(n_draws=2000)

    return gen_round, make_retry_quick


def start_training(ctx):
    from tests.design.conftest import add_literature, synthetic_rows
    from training import services
    from training.models import TrainingRun

    add_literature(synthetic_rows())
    run = services.request_retrain(epochs=5000).run  # long enough to be caught running

    def make_retry_quick(job):
        TrainingRun.objects.filter(pk=job.pk).update(epochs=10)

    return run, make_retry_quick


KINDS = {"import": start_import, "extraction batch": start_batch, "generation round": start_round, "training run": start_training}


@pytest.mark.parametrize("kind", list(KINDS))
def test_kill_9_of_the_worker_child_fails_the_job_with_the_reason_and_retry_completes(
    kind, make_user, celery_on_private_redis, fast_models, tmp_path
):
    user = make_user("erin", "viewer", "experimenter", "approver")
    llm = FakeLLMServer()
    log = tmp_path / "worker.log"
    try:
        job, make_retry_quick = KINDS[kind]({"user": user, "llm": llm})
        model = type(job)
        env = worker_env(celery_on_private_redis.url, tmp_path, **fast_models, **llm.env)
        with celery_worker(env, log) as worker:
            wait_for(lambda: model.objects.filter(pk=job.pk, status="running").exists(), 120, f"the {kind} to run", log)
            time.sleep(1.0)  # well inside the work
            children = pool_children(worker.pid)
            assert len(children) == 1, children
            os.kill(children[0], signal.SIGKILL)

            failed = wait_for(lambda: model.objects.filter(pk=job.pk, status="failed").first(), 30, "the job to fail", log)
            assert failed.error.startswith(jobs.WORKER_LOST), failed.error
            assert "signal 9" in failed.error or "SIGKILL" in failed.error, failed.error
            assert failed.can_retry and not failed.can_cancel

            make_retry_quick(failed)
            retried, message = jobs.retry(failed)
            assert retried.status == "queued" and message == "Queued again.", message
            done = wait_for(lambda: model.objects.filter(pk=job.pk, status__in=("done", "failed")).first(), 180,
                            "the retry to finish", log)
        assert done.status == "done", done.error
        assert done.attempts == 2 and done.error == ""
    finally:
        llm.close()


def test_whole_worker_killed_the_sweep_fails_the_job_and_retry_completes(make_user, celery_on_private_redis, settings, tmp_path):
    user = make_user("erin", "viewer", "experimenter")
    job = queued_import(user, 12_000)
    log = tmp_path / "worker.log"
    env = worker_env(celery_on_private_redis.url, tmp_path)
    with celery_worker(env, log) as worker:
        wait_for(lambda: AlloyImport.objects.filter(pk=job.pk, status="running").exists(), 60, "the import to run", log)
        os.killpg(worker.pid, signal.SIGKILL)  # the parent too: nobody is left to notice
        worker.wait(timeout=30)

    job.refresh_from_db()
    assert job.status == "running"
    settings.GLASSLOOP_JOB_STALE_SECONDS = 3
    time.sleep(3.5)  # one stale period with no heartbeat
    report = jobs.sweep()
    job.refresh_from_db()
    assert job.status == "failed" and job.error.startswith(jobs.WORKER_LOST) and "no heartbeat" in job.error
    assert report["failed"] == [job.job_label()]

    retried, _ = jobs.retry(job)
    assert retried.status == "queued"
    with celery_worker(env, log):
        done = wait_for(lambda: AlloyImport.objects.filter(pk=job.pk, status__in=("done", "failed")).first(), 60,
                        "the retry", log)
    assert done.status == "done", done.error


def test_redis_restarted_with_work_queued_the_work_runs_after_it_returns(make_user, celery_on_private_redis, settings, tmp_path):
    redis_server = celery_on_private_redis
    user = make_user("erin", "viewer", "experimenter")
    job = queued_import(user, 20)
    job.refresh_from_db()
    assert job.error == "" and redis_server.llen("celery") == 1

    redis_server.stop()
    redis_server.start()  # no persistence: the queued message is gone
    assert redis_server.llen("celery") == 0

    settings.GLASSLOOP_JOB_REQUEUE_SECONDS = 0.5
    time.sleep(0.6)
    report = jobs.sweep()
    assert report["resent"] == [job.job_label()] and redis_server.llen("celery") == 1
    log = tmp_path / "worker.log"
    with celery_worker(worker_env(redis_server.url, tmp_path), log):
        done = wait_for(lambda: AlloyImport.objects.filter(pk=job.pk, status__in=("done", "failed")).first(), 60,
                        "the import", log)
    assert done.status == "done", done.error
    assert done.counts["created"] == 20


def test_paused_redis_gives_the_unavailable_message_within_5_s(make_user, celery_on_private_redis):
    redis_server = celery_on_private_redis
    user = make_user("erin", "viewer", "experimenter")
    queued_import(user, 5)  # a live pooled connection to the broker, as in a running site
    redis_server.process.send_signal(signal.SIGSTOP)
    try:
        started = time.monotonic()
        job = queued_import(user, 5)
        elapsed = time.monotonic() - started
    finally:
        redis_server.process.send_signal(signal.SIGCONT)
    job.refresh_from_db()
    assert elapsed < 5, f"queuing took {elapsed:.1f} s against a paused broker"
    assert job.status == "queued" and job.queue_unavailable, job.error


def test_beat_schedule_names_the_sweep_and_the_scheduled_retrain_and_both_run(settings, make_user, fast_models):
    from config.celery import app
    from core.tasks import sweep_jobs
    from tests.design.conftest import add_literature, synthetic_rows
    from tests.celery_broker import use_broker
    from training.models import TrainingRun
    from training.tasks import scheduled_retrain

    schedule = {entry["task"] for entry in app.conf.beat_schedule.values()}
    assert {"core.sweep_jobs", "ml.scheduled_retrain"} <= schedule
    assert {"core.sweep_jobs", "ml.scheduled_retrain"} <= set(app.tasks.keys())  # what beat sends, a worker runs

    with use_broker(eager=True):
        assert sweep_jobs() == {"failed": [], "resent": []}
        add_literature(synthetic_rows(30))
        message = scheduled_retrain()
    run = TrainingRun.objects.get()
    assert run.trigger == TrainingRun.Trigger.SCHEDULE and "queued" in message
    assert run.status == "done", run.error
