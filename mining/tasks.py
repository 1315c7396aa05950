"""Celery tasks for mining: they only call services."""

from core.jobs import job_task

from . import services


@job_task("mining.run_batch")
def run_batch_task(batch_id, *, task_id=None):
    """Run an extraction batch (idempotent: only a queued batch runs)."""
    return services.run_batch(batch_id, task_id=task_id).status


@job_task("mining.read_pdf")
def read_pdf_task(reading_id, *, task_id=None):
    """Read a source's PDF text (idempotent: only a queued reading runs)."""
    return services.read_pdf(reading_id, task_id=task_id).status


@job_task("mining.bulk_approve")
def bulk_approve_task(job_id, *, task_id=None):
    """Approve a batch's clean records (idempotent: only pending records are approved)."""
    return services.run_bulk_approval(job_id, task_id=task_id).status
