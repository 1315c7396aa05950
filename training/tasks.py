"""Celery tasks of the ML glue: each only calls a service."""

from celery import shared_task

from . import services


@shared_task(name="ml.train_model_version")
def train_model_version(run_id):
    """Train the bundle of a queued run (idempotent: a run that is not queued is left alone)."""
    run = services.run_training(run_id)
    return None if run is None else run.status


@shared_task(name="ml.scheduled_retrain")
def scheduled_retrain():
    """For celery beat: retrain when the data changed since the last run (coalesces otherwise)."""
    from .models import TrainingRun

    result = services.request_retrain(trigger=TrainingRun.Trigger.SCHEDULE)
    return result.message
