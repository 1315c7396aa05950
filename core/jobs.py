"""Sending long work to the Celery worker from a request, without ever losing it.

The record (import, batch, round, run) is saved as queued first; ``send_task_or_note`` then
publishes the task. If the broker cannot be reached, the record keeps its queued status and
its ``error`` says so, for the page to show ("start the broker and worker, then queue it
again"); a later successful send clears that note.
"""

import logging

logger = logging.getLogger(__name__)

QUEUE_UNAVAILABLE = "The task queue is unavailable"


def send_task_or_note(task, args, *, record_queryset, what, then):
    """Publish ``task(*args)``; on failure write the reason into ``record_queryset``'s error.

    ``what`` names the record in the log ("import 12"); ``then`` tells the person what
    happens next ("The upload is kept; …"). Returns True when the task was sent.
    """
    try:
        # retry=False: a web request must not hang retrying a broker that is down.
        task.apply_async(args=list(args), retry=False)
    except Exception as exc:  # kombu and redis raise many types here; all mean "not sent"
        logger.warning("Could not queue %s: %s: %s", what, type(exc).__name__, exc)
        record_queryset.update(error=f"{QUEUE_UNAVAILABLE} ({type(exc).__name__}: {exc}). {then}")
        return False
    record_queryset.filter(error__startswith=QUEUE_UNAVAILABLE).update(error="")
    return True
