"""A bulk approval whose worker child is killed (kill -9) mid-way, on PostgreSQL and a private
Redis: the job shows failed with the reason at once (no job left running), Retry approves the
rest, and no record is approved twice (issue 16)."""

import io
import os
import signal
import time

import pytest
from django.db import connection

from core import jobs
from lab.models import PropertyValue
from mining import services
from mining.models import BulkApproval, ExtractedRecord
from tests.faults.conftest import celery_on_private_redis, private_redis  # noqa: F401 (fixtures)
from tests.faults.workers import celery_worker, pool_children, wait_for, worker_env

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def needs_postgres():
    if connection.vendor != "postgresql":
        pytest.skip("the fault tests run on PostgreSQL (DATABASE_URL=postgres://...): workers need a shared database")


def clean_rows(n):
    out = ["composition,Tg_K,Tx_K,Tl_K,snippet"]
    for zr in range(40, 71):
        for al in range(2, 20):
            for ni in range(1, 12):
                cu = 100 - zr - al - ni
                if cu < 5 or len(out) > n:
                    continue
                comp, tg = f"Zr{zr}Cu{cu}Al{al}Ni{ni}", 600 + len(out) % 150
                out.append(f"{comp},{tg},{tg + 60},{tg + 460},{comp}: Tg {tg} K Tx {tg + 60} K Tl {tg + 460} K")
    return "\n".join(out) + "\n"


def test_kill_9_during_a_bulk_approval_then_retry_approves_each_record_once(make_user, celery_on_private_redis, tmp_path):  # noqa: F811
    reviewer = make_user("rhys", "viewer", "reviewer")
    n = 4000
    batch_id = services.import_extracted(io.StringIO(clean_rows(n)), batch_name="to kill")["batch_id"]
    assert ExtractedRecord.objects.filter(batch_id=batch_id, flag_count=0).count() == n
    job, _ = services.request_bulk_approval(batch_id, user=reviewer)  # sent at once (autocommit)
    log = tmp_path / "worker.log"
    with celery_worker(worker_env(celery_on_private_redis.url, tmp_path), log) as worker:
        wait_for(lambda: BulkApproval.objects.filter(pk=job.pk, approved__gt=0).exists(), 120, "a first chunk approved", log)
        children = pool_children(worker.pid)
        assert len(children) == 1, children
        os.kill(children[0], signal.SIGKILL)
        failed = wait_for(lambda: BulkApproval.objects.filter(pk=job.pk, status="failed").first(), 30, "the job to fail", log)
        assert failed.error.startswith(jobs.WORKER_LOST) and failed.can_retry, failed.error
        kept = failed.approved
        assert 0 < kept < n and ExtractedRecord.objects.filter(batch_id=batch_id, status="approved").count() == kept
        retried, message = jobs.retry(failed)
        assert message == "Queued again."
        done = wait_for(lambda: BulkApproval.objects.filter(pk=job.pk, status__in=("done", "failed")).first(), 180,
                        "the retry to finish", log)
    assert done.status == "done", done.error
    assert done.approved == n and done.attempts == 2
    assert ExtractedRecord.objects.filter(batch_id=batch_id, status="approved").count() == n
    assert PropertyValue.objects.count() == n  # none twice
    assert not BulkApproval.objects.filter(status__in=("queued", "running")).exists()
