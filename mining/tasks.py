"""Celery tasks for mining: they only call services."""

from celery import shared_task

from . import services


@shared_task(name="mining.run_batch", acks_late=True)
def run_batch_task(batch_id, source_ids=None):
    return services.run_batch(batch_id, source_ids)
