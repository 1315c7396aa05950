"""Retrain forward model, surrogate and CGAN on the current data (a TrainingRun).

    python manage.py retrain            # queue a run for the worker, print its id
    python manage.py retrain --wait     # ... and wait for it, printing progress
    python manage.py retrain --inline   # run it in this process (no worker needed)
    python manage.py retrain --csv PATH --inline   # train from a CSV instead of the database
"""

import time

from django.core.management.base import BaseCommand, CommandError

from core.jobs import QUEUE_UNAVAILABLE
from training import services
from training.models import ModelVersion, TrainingRun


def follow(run, write, poll_s=2.0, timeout_s=None):
    """Print progress of a run until it finishes; returns the finished run."""
    last = None
    start = time.monotonic()
    while True:
        run.refresh_from_db()
        line = f"run {run.pk}: {run.get_status_display()} — {run.phase} {run.epoch}/{run.total_epochs}"
        if line != last:
            write(line)
            last = line
        if run.is_finished:
            return run
        if run.status == TrainingRun.Status.QUEUED and run.error.startswith(QUEUE_UNAVAILABLE):
            raise CommandError(run.error)
        if timeout_s is not None and time.monotonic() - start > timeout_s:
            raise CommandError(f"Run {run.pk} did not finish within {timeout_s:.0f} s (is a worker running?).")
        time.sleep(poll_s)


def report(run, write, style):
    version = ModelVersion.objects.filter(training_run=run).first()
    if run.status == TrainingRun.Status.FAILED:
        raise CommandError(f"Run {run.pk} failed: {run.error}")
    if version is None:
        write(f"Run {run.pk} finished without a new version.")
        return
    write(style.SUCCESS(f"v{version.pk} is {version.get_status_display().lower()}: {version.status_reason}"))


class Command(BaseCommand):
    help = "Retrain the models on the current data (coalesces with a run on the same data)."

    def add_arguments(self, parser):
        parser.add_argument("--wait", action="store_true", help="Wait for the worker to finish the run")
        parser.add_argument("--inline", action="store_true", help="Run the training in this process")
        parser.add_argument("--epochs", type=int, default=None, help="Maximum CGAN epochs (early stopping may end sooner)")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--csv", default=None, help="Train from this CSV (composition,Tg_K,Tx_K,Tl_K) instead of the database")
        parser.add_argument("--timeout", type=float, default=None, help="With --wait: give up after this many seconds")

    def handle(self, *args, **opts):
        from ml.dataprep import DataError

        try:
            result = services.request_retrain(
                trigger=TrainingRun.Trigger.MANUAL, epochs=opts["epochs"], seed=opts["seed"], csv_path=opts["csv"],
                enqueue=not opts["inline"],
            )
        except DataError as exc:
            raise CommandError(str(exc)) from None
        if result.run is None:
            raise CommandError(result.message)
        run = result.run
        self.stdout.write(result.message)
        if opts["inline"]:
            if run.status == TrainingRun.Status.QUEUED:
                run = services.run_training(run.pk)
            else:
                run = follow(run, self.stdout.write, timeout_s=opts["timeout"])
            report(run, self.stdout.write, self.style)
        elif opts["wait"]:
            if run.error.startswith(QUEUE_UNAVAILABLE):
                raise CommandError(run.error)
            run = follow(run, self.stdout.write, timeout_s=opts["timeout"])
            report(run, self.stdout.write, self.style)
