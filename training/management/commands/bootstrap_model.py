"""Train the first model version in this process, so a fresh site can start designing.

    python manage.py bootstrap_model                # from the database (literature + lab)
    python manage.py bootstrap_model --csv PATH     # from a CSV (composition,Tg_K,Tx_K,Tl_K)

Does nothing when a version is already active (use ``retrain`` then) unless --force.
"""

from django.core.management.base import BaseCommand, CommandError

from training import selectors, services
from training.models import TrainingRun

from .retrain import follow, report


class Command(BaseCommand):
    help = "Train the first model version (in-process; no worker needed)."

    def add_arguments(self, parser):
        parser.add_argument("--csv", default=None)
        parser.add_argument("--epochs", type=int, default=None)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--force", action="store_true", help="Train even if a version is already active")

    def handle(self, *args, **opts):
        from ml.dataprep import DataError

        active = selectors.active_version()
        if active is not None and not opts["force"]:
            self.stdout.write(f"v{active.pk} is already active; nothing to do (use retrain, or --force).")
            return
        try:
            result = services.request_retrain(
                trigger=TrainingRun.Trigger.BOOTSTRAP, epochs=opts["epochs"], seed=opts["seed"], csv_path=opts["csv"],
                enqueue=False,
            )
        except DataError as exc:
            raise CommandError(str(exc)) from None
        if result.run is None:
            raise CommandError(result.message)
        self.stdout.write(result.message)
        run = result.run
        if run.status == TrainingRun.Status.QUEUED:
            run = services.run_training(run.pk)
        elif not run.is_finished:
            run = follow(run, self.stdout.write)
        report(run, self.stdout.write, self.style)
