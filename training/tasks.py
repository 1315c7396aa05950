"""Celery tasks of the training app: each only calls a service."""

from celery import shared_task

from core.jobs import job_task

from . import services


@job_task("ml.train_model_version")
def train_model_version(run_id, *, task_id=None):
    """Train the bundle of a queued run (idempotent: only a queued run is trained)."""
    run = services.run_training(run_id, task_id=task_id)
    return None if run is None else run.status


@shared_task(name="ml.scheduled_retrain")
def scheduled_retrain():
    """For celery beat: retrain when the data changed since the last run (coalesces otherwise)."""
    from .models import TrainingRun

    result = services.request_retrain(trigger=TrainingRun.Trigger.SCHEDULE)
    return result.message
