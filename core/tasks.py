"""Celery tasks shared by every app (scheduled by beat: settings.CELERY_BEAT_SCHEDULE)."""

from celery import shared_task

from . import jobs


@shared_task(name="core.sweep_jobs")
def sweep_jobs():
    """Fail jobs whose worker died; re-send queued jobs whose message was lost."""
    return jobs.sweep()
