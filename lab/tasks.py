"""Celery tasks of the lab: each only calls a service."""

from celery import shared_task

from . import importing


@shared_task(name="lab.run_alloy_import")
def run_alloy_import(import_id):
    """Run a web-started import (idempotent: a finished import is not run again)."""
    job = importing.run_alloy_import(import_id)
    return job.status if job else None
