"""One lifecycle for all background work: imports, extraction batches, generation rounds and
training runs.

A job is a row (a model that inherits ``Job``) and at most one Celery message that may run it.

    queued ──claim──> running ──> done | failed | cancelled
       ^                 │
       └──── retry ──────┘ (from failed or cancelled; a running job whose worker died is
                            failed first, by the worker's parent or by the sweep)

* **Queueing** (``enqueue``): the row is saved as queued with a fresh ``task_id``; the message
  is published once the transaction commits, with that id. A broker that cannot be reached
  (down, or hung: short connect/socket timeouts in settings) leaves the job queued and its
  ``error`` says so (``QUEUE_UNAVAILABLE``); the page shows it and the sweep sends it again.
* **Claiming** (``claim``, under ``select_for_update``): only a queued job is claimed; its
  ``attempts`` counter becomes the claim token, so a late write of an abandoned attempt
  changes nothing. A message delivered again for the job it is already running (the process
  running it died and the broker re-delivered it) fails the job with the reason instead of
  running it twice: a job that kills its worker (out of memory) must not loop.
* **Running** (``running``): a thread stamps ``heartbeat_at`` (and the latest progress and
  message, on its own database connection, so they show even while the work sits inside
  one transaction) every ``GLASSLOOP_JOB_HEARTBEAT_SECONDS``; the work checks
  ``ctx.check_cancel()`` at safe points.
* **A killed worker**: tasks are ``acks_late`` with ``reject_on_worker_lost``; the worker's
  parent process marks the job failed at once (``JobRequest``) when its child is killed. If
  the whole worker dies, the **sweep** (Celery beat, every ``GLASSLOOP_SWEEP_SECONDS``) fails
  running jobs whose heartbeat is older than ``GLASSLOOP_JOB_STALE_SECONDS``, and re-sends
  queued jobs whose message was not picked up within ``GLASSLOOP_JOB_REQUEUE_SECONDS`` (a
  broker restarted without persistence loses its queue).
* **A time limit** (``Deadline``): a kind of work that reads uploads names the setting of its
  wall-clock limit (``job_time_limit_setting``, e.g. GLASSLOOP_IMPORT_MAX_SECONDS); the work
  calls ``ctx.check_time()`` at its safe points and is failed with "Stopped after 300 s
  (GLASSLOOP_IMPORT_MAX_SECONDS): …". Its message carries a Celery soft time limit
  ``TIME_LIMIT_GRACE_SECONDS`` later, for work stuck between safe points (one huge PDF page):
  SoftTimeLimitExceeded is raised in the task and fails the job with the same message. The
  task still returns, so the message is acknowledged as usual (acks_late); a killed worker is
  handled as before.
* **Cancel and retry always work** (``cancel``, ``retry``): a queued job is cancelled at once;
  a running one is asked to stop (or, if its heartbeat is stale, cancelled at once).
* **Ending without success** (``Job.on_failed_or_cancelled``): every path that marks a job
  failed or cancelled (the work's own failure, a lost worker, the sweep, a cancel) calls the
  kind's hook in the transaction that records it, so a row the job was filling in never says
  "in progress" after its job has ended (an XRD measurement left "pending", issue 16).
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
import uuid

from celery import Task, current_app, shared_task
from celery.exceptions import SoftTimeLimitExceeded, WorkerLostError
from celery.worker.request import Request
from django.apps import apps
from django.conf import settings
from django.db import connections, models, transaction
from django.utils import timezone

from .roles import VIEWER

logger = logging.getLogger(__name__)

QUEUE_UNAVAILABLE = "The task queue is unavailable"
WORKER_LOST = "The worker running this job stopped before it finished"
# The soft time limit's lead over a job's own limit: the work's next safe point usually stops
# it first, with what it was doing in the message.
TIME_LIMIT_GRACE_SECONDS = 30.0


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


FINISHED = (JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED)


class Job(models.Model):
    """The fields every kind of background work shares. A subclass names its Celery task
    (``job_task_name``) and may override ``reset_for_retry`` and ``job_label``."""

    Status = JobStatus
    job_task_name = ""  # e.g. "lab.run_alloy_import"; the task takes the job's pk
    job_api_name = ""  # its kind in the API: /api/jobs/<job_api_name>/<pk>/
    # Who may see it and who may cancel or retry it, on its page and in the API alike.
    job_read_roles = (VIEWER,)
    job_control_roles = ()
    # The setting holding this kind's wall-clock limit in seconds (see Deadline); "" for none.
    job_time_limit_setting = ""

    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.QUEUED, db_index=True)
    progress = models.FloatField(default=0.0, help_text="0–1, written while it runs")
    message = models.CharField(max_length=255, blank=True, help_text="What it is doing now")
    error = models.TextField(blank=True)
    task_id = models.CharField(max_length=64, blank=True, help_text="The Celery message that may run it")
    attempts = models.PositiveIntegerField(default=0, help_text="Times a worker has started it")
    cancel_requested = models.BooleanField(default=False)
    queued_at = models.DateTimeField(null=True, blank=True, help_text="When its message was last sent")
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True, help_text="Last sign of life of its worker")
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True

    @property
    def is_finished(self):
        return self.status in FINISHED

    @property
    def queue_unavailable(self):
        return self.status == JobStatus.QUEUED and self.error.startswith(QUEUE_UNAVAILABLE)

    @property
    def can_cancel(self):
        # A running job already asked to stop can be cancelled again only once its worker is gone.
        return self.status == JobStatus.QUEUED or (
            self.status == JobStatus.RUNNING and (not self.cancel_requested or self.heartbeat_is_stale())
        )

    @property
    def can_retry(self):
        return self.status in (JobStatus.FAILED, JobStatus.CANCELLED) or self.queue_unavailable or (
            self.status == JobStatus.RUNNING and self.heartbeat_is_stale()
        )

    def heartbeat_is_stale(self, now=None):
        if self.status != JobStatus.RUNNING:
            return False
        beat = self.heartbeat_at or self.started_at
        now = now or timezone.now()
        return beat is None or (now - beat).total_seconds() > settings.GLASSLOOP_JOB_STALE_SECONDS

    def job_label(self):
        return f"{self._meta.verbose_name} {self.pk}"

    def on_failed_or_cancelled(self):
        """Called once the job is marked failed or cancelled, on every path and in the same
        transaction; a kind whose own rows must follow says so here. Nothing by default."""

    def retry_refusal(self):
        """Why this job must not run again ("" when it may): a kind whose work is gone says so,
        and ``retry`` answers that sentence instead of queuing it. Nothing by default."""
        return ""

    def reset_for_retry(self):
        """Clear what the previous attempt left (a subclass adds its own fields)."""
        self.progress = 0.0
        self.message = ""
        self.started_at = self.heartbeat_at = self.finished_at = None


class JobError(Exception):
    """The work cannot go on; the message is shown to the person as it is."""


class JobCancelled(Exception):
    """Raised by ``ctx.check_cancel()`` when a person asked the job to stop."""


class JobDeferred(Exception):
    """Raised by the work before it has changed anything, when it cannot start yet (another job
    holds what it needs): the job goes back to "queued" with this message and its message is
    sent again ``after_s`` seconds later, so no worker sits waiting and its time limit starts
    when it really runs (``defer``)."""

    def __init__(self, message, *, after_s=5.0):
        super().__init__(message)
        self.after_s = float(after_s)


# What the work must let through to run_job (not wrap in its own "unexpected error").
STOP_EXCEPTIONS = (JobCancelled, JobError, JobDeferred, SoftTimeLimitExceeded)


class Deadline:
    """A wall-clock limit on one job's work, named by its setting (issue 16: reading an upload is
    limited in time as in size). ``check(doing)`` at a safe point raises JobError once it passed."""

    clock = staticmethod(time.monotonic)  # a test's slow fake parser advances a fake one

    def __init__(self, setting, seconds=None):
        self.setting = setting
        self.seconds = float(getattr(settings, setting) if seconds is None else seconds)
        self.started = self.clock()

    @classmethod
    def for_job(cls, job):
        """The job's kind's deadline, or None when it has no limit."""
        return cls(job.job_time_limit_setting) if job.job_time_limit_setting else None

    def passed(self):
        return self.clock() - self.started > self.seconds

    def message(self, doing=""):
        text = f"Stopped after {self.seconds:g} s ({self.setting}): the limit passed"
        text += f" at “{doing}”." if doing else "."
        return text + " Nothing it did was kept; split the file into smaller ones, or raise the limit."

    def check(self, doing=""):
        if self.passed():
            raise JobError(self.message(doing))


def job_models():
    return [m for m in apps.get_models() if issubclass(m, Job) and m.job_task_name]


def _task(model):
    """The Celery task of a job model (its app's tasks module registers it)."""
    importlib.import_module(f"{model._meta.app_config.name}.tasks")
    return current_app.tasks[model.job_task_name]


def status_payload(job):
    """What a page polls for (and what the API returns): status, progress, message, error."""
    return {
        "id": job.pk,
        "status": job.status,
        "status_display": job.get_status_display(),
        "progress": round(job.progress, 4),
        "message": job.message,
        "error": job.error,
        "attempts": job.attempts,
        "cancel_requested": job.cancel_requested,
        "finished": job.is_finished,
        "can_cancel": job.can_cancel,
        "can_retry": job.can_retry,
        "heartbeat_at": job.heartbeat_at.isoformat() if job.heartbeat_at else None,
    }


# ------------------------------------------------------------------------------ queueing


def enqueue(job, *, then="start the broker and worker; the job is sent again automatically or with Retry.",
            countdown=None):
    """Mark ``job`` queued with a new message id and publish it after the current transaction
    commits (at once outside one); ``countdown``: seconds before a worker may take it. Returns the job."""
    job.status = JobStatus.QUEUED
    job.task_id = uuid.uuid4().hex
    job.queued_at = timezone.now()
    job.cancel_requested = False
    type(job).objects.filter(pk=job.pk).update(
        status=job.status, task_id=job.task_id, queued_at=job.queued_at, cancel_requested=False
    )
    model, pk, task_id = type(job), job.pk, job.task_id
    transaction.on_commit(lambda: send(model, pk, task_id, then=then, countdown=countdown))
    return job


def soft_time_limit(model):
    """The soft time limit (seconds) of the model's messages, or None: its own limit plus grace."""
    if not model.job_time_limit_setting:
        return None
    return getattr(settings, model.job_time_limit_setting) + TIME_LIMIT_GRACE_SECONDS


def send(model, pk, task_id, *, then="", countdown=None):
    """Publish the job's message; if the broker cannot be reached, say so on the job. True if sent."""
    record = model.objects.filter(pk=pk)
    try:
        # retry=False: a request must not hang retrying a broker that is down.
        later = {"countdown": countdown} if countdown else {}
        _task(model).apply_async(args=[pk], task_id=task_id, retry=False, soft_time_limit=soft_time_limit(model), **later)
    except Exception as exc:  # kombu and redis raise many types here; all mean "not sent"
        logger.warning("Could not queue %s %s: %s: %s", model._meta.verbose_name, pk, type(exc).__name__, exc)
        record.filter(status=JobStatus.QUEUED).update(error=f"{QUEUE_UNAVAILABLE} ({type(exc).__name__}: {exc}). {then}".strip())
        return False
    record.filter(error__startswith=QUEUE_UNAVAILABLE).update(error="")
    return True


# ------------------------------------------------------------------------------ claiming and running


def claim(model, pk, *, task_id=None):
    """Move a queued job to running and return it; None when there is nothing to run.

    ``task_id`` is the delivering message's id (None when run in-process). A message that
    arrives again for the job it is running, after that job's heartbeat went stale, means the
    process that ran it died: the job is failed with the reason (see the module docstring).
    """
    now = timezone.now()
    with transaction.atomic():
        job = model.objects.select_for_update().filter(pk=pk).first()
        if job is None:
            logger.warning("%s %s no longer exists; nothing to run.", model._meta.verbose_name, pk)
            return None
        if job.status == JobStatus.RUNNING and task_id and task_id == job.task_id and job.heartbeat_is_stale(now):
            _mark_lost(job, now, "its message was delivered again")
            return None
        if job.status != JobStatus.QUEUED:
            return None
        if job.cancel_requested:
            _end(job, JobStatus.CANCELLED, now, message="cancelled before it started")
            return None
        job.status = JobStatus.RUNNING
        job.attempts += 1
        job.task_id = task_id or job.task_id
        job.started_at = job.heartbeat_at = now
        job.finished_at = None
        job.error = ""
        job.progress = 0.0
        job.message = "starting"
        job.save()
        return job


def _end(job, status, now, **fields):
    """Record the end of a job locked in the current transaction, failed or cancelled, with
    ``fields``; its kind's rows follow (on_failed_or_cancelled), in the same transaction."""
    job.status, job.finished_at = status, now
    for name, value in fields.items():
        setattr(job, name, value)
    job.save(update_fields=["status", "finished_at", *fields])
    job.on_failed_or_cancelled()


def _mark_lost(job, now, how):
    beat = job.heartbeat_at or job.started_at
    _end(job, JobStatus.FAILED, now, error=(
        f"{WORKER_LOST} (killed, out of memory, or its machine stopped; {how}; last sign of life "
        f"{beat:%Y-%m-%d %H:%M:%S} UTC). Nothing it did was kept unless shown above. Retry runs it again."
    ))
    logger.warning("%s marked failed: %s", job.job_label(), how)


def _owned(job):
    """The rows of this attempt, still running (a sweep or a retry may have taken it)."""
    return type(job).objects.filter(pk=job.pk, status=JobStatus.RUNNING, attempts=job.attempts)


def assert_owned(job):
    """Inside the work's own transaction, just before it commits: raise JobError if this
    attempt was given up meanwhile (failed by the sweep, or retried), so its writes roll back
    instead of landing under a job that says it failed. Locks the job row until the commit."""
    if not _owned(job).select_for_update().exists():
        raise JobError("This attempt was given up while it ran (its heartbeat looked stale); nothing it did was kept.")


def finish(job, status=JobStatus.DONE, **fields):
    """Record the end of this attempt; False if the job was meanwhile failed or retried."""
    now = timezone.now()
    values = {"status": status, "finished_at": now, "heartbeat_at": now, **fields}
    if status == JobStatus.DONE:
        values.setdefault("progress", 1.0)
    with transaction.atomic():
        updated = _owned(job).update(**values)
        for name, value in values.items():
            setattr(job, name, value)
        if updated and status in (JobStatus.FAILED, JobStatus.CANCELLED):
            job.on_failed_or_cancelled()
    return bool(updated)


def fail(job, error, **fields):
    return finish(job, JobStatus.FAILED, error=str(error)[:10000], **fields)


def defer(job, message, after_s):
    """The attempt stops before it changed anything (JobDeferred): the job is "queued" again
    with ``message`` and sent ``after_s`` seconds later. A cancel asked for meanwhile cancels it
    instead. False when the attempt no longer owns the job (a sweep or a person took it)."""
    with transaction.atomic():
        row = _owned(job).select_for_update().first()
        if row is None:
            return False
        if row.cancel_requested:
            return finish(job, JobStatus.CANCELLED, message="cancelled while it waited")
        # a wait is not an attempt: the page's "(attempt n)" counts runs (the next claim adds it back)
        type(job).objects.filter(pk=job.pk).update(message=str(message)[:255], progress=0.0, started_at=None,
                                                   heartbeat_at=None, attempts=models.F("attempts") - 1)
        enqueue(job, countdown=after_s)
    return True


class JobContext:
    """Given to the work while it runs: report progress, check for cancellation.

    Progress is kept in memory and written by the heartbeat thread on its own connection.
    """

    def __init__(self, job):
        self.job = job
        self.progress_value = job.progress
        self.message = job.message
        self.deadline = Deadline.for_job(job)
        self._last_cancel_check = 0.0
        self._lock = threading.Lock()

    def report(self, progress=None, message=None):
        with self._lock:
            if progress is not None:
                self.progress_value = max(0.0, min(1.0, float(progress)))
            if message is not None:
                self.message = str(message)[:255]

    def snapshot(self):
        with self._lock:
            return self.progress_value, self.message

    def check_cancel(self, every_s=1.0):
        """Raise JobCancelled if a person asked to stop (reads the row at most every ``every_s``)."""
        now = time.monotonic()
        if now - self._last_cancel_check < every_s:
            return
        self._last_cancel_check = now
        if type(self.job).objects.filter(pk=self.job.pk, cancel_requested=True).exists():
            raise JobCancelled()

    def check_time(self, doing=None):
        """Raise JobError naming the limit if the job's kind has one and it passed; ``doing``
        (default: the last progress message) says where it stopped."""
        if self.deadline is not None:
            self.deadline.check(self.snapshot()[1] if doing is None else doing)

    def time_up_message(self):
        """The failure when the soft time limit interrupted the work between safe points."""
        if self.deadline is not None:
            return self.deadline.message(self.snapshot()[1])
        return "Stopped by the worker's time limit; nothing it did was kept."


class _Heartbeat(threading.Thread):
    def __init__(self, ctx, every_s):
        super().__init__(name=f"heartbeat-{ctx.job.job_label()}", daemon=True)
        self.ctx, self.every_s, self.stop_event = ctx, every_s, threading.Event()

    def run(self):
        warned = False
        try:
            while not self.stop_event.wait(self.every_s):
                progress, message = self.ctx.snapshot()
                try:
                    _owned(self.ctx.job).update(heartbeat_at=timezone.now(), progress=progress, message=message)
                except Exception:  # SQLite locked by the work's transaction: the next beat tries again
                    if not warned:
                        logger.warning("Heartbeat of %s could not be written", self.ctx.job.job_label(), exc_info=True)
                        warned = True
        finally:
            connections.close_all()  # this thread's own connections


def running(job):
    """``with running(job) as ctx:`` — heartbeat thread on while the work runs."""
    return _Running(job)


class _Running:
    def __init__(self, job):
        self.ctx = JobContext(job)
        every_s = settings.GLASSLOOP_JOB_HEARTBEAT_SECONDS
        self.thread = _Heartbeat(self.ctx, every_s) if every_s > 0 else None

    def __enter__(self):
        if self.thread is not None:
            self.thread.start()
        return self.ctx

    def __exit__(self, *exc):
        if self.thread is not None:
            self.thread.stop_event.set()
            self.thread.join(timeout=10)
        progress, message = self.ctx.snapshot()
        _owned(self.ctx.job).update(progress=progress, message=message, heartbeat_at=timezone.now())
        return False


def run_job(model, pk, work, *, task_id=None):
    """Claim the job, run ``work(job, ctx)`` with a heartbeat, record how it ended.

    ``work`` returns the fields to save with "done" (it may set ``status`` itself), or None
    when it recorded the end itself inside its own transaction (``finish`` there, as a
    generation round and a training run do: the final write then finds nothing to update); it raises
    JobError for a failure the person can act on, JobCancelled (via ``ctx.check_cancel``) to
    stop. Any other exception fails the job with its type and message; the worker lives on.
    Returns the job as it is now (also when there was nothing to run).
    """
    job = claim(model, pk, task_id=task_id)
    if job is None:
        return model.objects.filter(pk=pk).first()
    run = running(job)
    try:
        with run as ctx:
            fields = work(job, ctx)
    except JobCancelled:
        finish(job, JobStatus.CANCELLED, message="cancelled while running")
    except JobDeferred as exc:
        defer(job, str(exc), exc.after_s)
    except JobError as exc:
        fail(job, str(exc))
    except SoftTimeLimitExceeded:  # the task's soft time limit (see enqueue), between safe points
        logger.warning("%s stopped by its soft time limit", job.job_label())
        fail(job, run.ctx.time_up_message())
    except Exception as exc:
        logger.exception("%s failed", job.job_label())
        fail(job, f"Unexpected error: {type(exc).__name__}: {exc}")
    else:
        if fields is not None:
            fields = dict(fields)
            finish(job, fields.pop("status", JobStatus.DONE), **fields)
    return model.objects.filter(pk=pk).first()


# ------------------------------------------------------------------------------ cancel, retry, sweep


def cancel(job):
    """Cancel a queued job now; ask a running one to stop (at once if its worker is gone).
    Returns a sentence for the person."""
    model = type(job)
    with transaction.atomic():
        job = model.objects.select_for_update().get(pk=job.pk)
        now = timezone.now()
        if job.status == JobStatus.QUEUED:
            _end(job, JobStatus.CANCELLED, now, cancel_requested=True, message="cancelled before it started")
            return job, "Cancelled."
        if job.status == JobStatus.RUNNING:
            if job.heartbeat_is_stale(now):
                _end(job, JobStatus.CANCELLED, now, cancel_requested=True, message="cancelled; its worker had stopped")
                return job, "Cancelled (its worker had stopped)."
            job.cancel_requested = True
            job.save(update_fields=["cancel_requested"])
            return job, "Asked to stop: it stops at the next safe point."
        return job, f"It is already {job.get_status_display().lower()}."


def retry(job):
    """Queue the job again: from failed or cancelled, a queued job whose message could not be
    sent, or a running job whose worker is gone. Returns (job, sentence)."""
    model = type(job)
    with transaction.atomic():
        job = model.objects.select_for_update().get(pk=job.pk)
        now = timezone.now()
        if job.status == JobStatus.RUNNING and job.heartbeat_is_stale(now):
            _mark_lost(job, now, "noticed on retry")
        if job.status == JobStatus.DONE:
            return job, "It is done; there is nothing to retry."
        if job.status == JobStatus.RUNNING:
            return job, "It is running; cancel it first or wait for it to finish."
        refusal = job.retry_refusal()
        if refusal:
            return job, refusal
        job.reset_for_retry()
        job.error = ""
        job.status = JobStatus.QUEUED
        job.save()
        enqueue(job)
    job.refresh_from_db()
    if job.queue_unavailable:
        return job, job.error
    return job, "Queued again."


def fail_stale(model, now=None):
    """Fail the model's running jobs whose heartbeat stopped (their worker died). Returns them."""
    now = now or timezone.now()
    cutoff = now - timezone.timedelta(seconds=settings.GLASSLOOP_JOB_STALE_SECONDS)
    failed = []
    silent = models.Q(heartbeat_at__lt=cutoff) | models.Q(heartbeat_at__isnull=True, started_at__lt=cutoff)
    for pk in model.objects.filter(silent, status=JobStatus.RUNNING).values_list("pk", flat=True):
        with transaction.atomic():
            job = model.objects.select_for_update().get(pk=pk)
            if job.heartbeat_is_stale(now):
                _mark_lost(job, now, f"no heartbeat for more than {settings.GLASSLOOP_JOB_STALE_SECONDS:.0f} s")
                failed.append(job)
    return failed


def resend_lost(model, now=None):
    """Send again the model's queued jobs whose message was not picked up in time (lost by a
    broker restart, or never sent while the broker was down). Returns them."""
    now = now or timezone.now()
    cutoff = now - timezone.timedelta(seconds=settings.GLASSLOOP_JOB_REQUEUE_SECONDS)
    lost = model.objects.filter(status=JobStatus.QUEUED, cancel_requested=False).filter(
        models.Q(queued_at__lt=cutoff) | models.Q(queued_at__isnull=True) | models.Q(error__startswith=QUEUE_UNAVAILABLE)
    )
    resent = []
    for pk in lost.values_list("pk", flat=True):
        with transaction.atomic():
            job = model.objects.select_for_update().get(pk=pk)
            if job.status == JobStatus.QUEUED and not job.cancel_requested:
                enqueue(job)
                resent.append(job)
    return resent


def sweep(now=None):
    """The beat task's work: for every job model, fail running jobs whose heartbeat stopped
    and re-send queued jobs whose message was lost. Returns {"failed": [...], "resent": [...]}."""
    now = now or timezone.now()
    report = {"failed": [], "resent": []}
    for model in job_models():
        report["failed"] += [job.job_label() for job in fail_stale(model, now)]
        report["resent"] += [job.job_label() for job in resend_lost(model, now)]
    if report["failed"] or report["resent"]:
        logger.warning("Job sweep: %s", report)
    return report


# ------------------------------------------------------------------------------ Celery side


def _job_model_for_task(name):
    for model in job_models():
        if model.job_task_name == name:
            return model
    return None


class JobRequest(Request):
    """Runs in the worker's parent process: when the child running a job is killed, the job
    is failed at once with the reason (the re-delivered message then finds nothing to run)."""

    def on_failure(self, exc_info, send_failed_event=True, return_ok=False):
        exc = getattr(exc_info, "exception", None)
        exc = getattr(exc, "exc", exc)  # billiard wraps it in an ExceptionWithTraceback
        if isinstance(exc, WorkerLostError):
            try:
                _fail_lost_job(self.task.name, self.args, self.id, str(exc))
            except Exception:
                logger.exception("Could not mark the job of task %s failed", self.id)
        return super().on_failure(exc_info, send_failed_event=send_failed_event, return_ok=return_ok)


def _fail_lost_job(task_name, args, task_id, reason):
    model = _job_model_for_task(task_name)
    if model is None or not args:
        return
    with transaction.atomic():
        job = model.objects.select_for_update().filter(pk=args[0], status=JobStatus.RUNNING, task_id=task_id).first()
        if job is not None:
            _mark_lost(job, timezone.now(), f"the worker process exited: {reason}")


class JobTask(Task):
    """The base of every job's task: acknowledged after it ran, re-delivered if the worker is lost."""

    Request = JobRequest
    acks_late = True
    reject_on_worker_lost = True
    ignore_result = True


def job_task(name):
    """Decorator for a tasks.py function ``fn(job_id, *, task_id)`` that runs one job; ``name``
    is the job model's ``job_task_name``."""

    def decorate(fn):
        @shared_task(name=name, bind=True, base=JobTask)
        def task(self, job_id, *legacy_args):  # legacy_args: messages queued by older versions
            return fn(job_id, task_id=self.request.id)

        task.__doc__ = fn.__doc__
        return task

    return decorate
