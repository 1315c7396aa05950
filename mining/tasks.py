"""Celery tasks for mining: they only call services."""

from core.jobs import job_task

from . import services


@job_task("mining.run_batch")
def run_batch_task(batch_id, *, task_id=None):
    """Run an extraction batch (idempotent: only a queued batch runs)."""
    return services.run_batch(batch_id, task_id=task_id).status
