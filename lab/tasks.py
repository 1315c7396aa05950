"""Celery tasks of the lab: each only calls a service."""

from core.jobs import job_task

from . import importing, services


@job_task("lab.run_alloy_import")
def run_alloy_import(import_id, *, task_id=None):
    """Run a web-started import (idempotent: only a queued import runs)."""
    job = importing.run_alloy_import(import_id, task_id=task_id)
    return job.status if job else None


@job_task("lab.analyse_xrd")
def analyse_xrd(job_id, *, task_id=None):
    """Analyse an uploaded XRD pattern (idempotent: only a queued analysis runs)."""
    return services.analyse_xrd(job_id, task_id=task_id).status
