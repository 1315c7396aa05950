"""manage.py queue_first_training: queue the first training of a fresh site for the worker.

Run by ``make run`` (the Makefile's ``setup``) after ``load_starter_set --if-empty``. Does
nothing while a model version exists or a training run is queued or running, nor again after
the first training failed on exactly the same data (its page, and the home page, say why).
Never fails the setup: a refusal is a sentence, not an error.
"""

from django.core.management.base import BaseCommand

from training import services


class Command(BaseCommand):
    help = "Queue the first training when no model version exists and no run is live (idempotent)."

    def handle(self, *args, **options):
        result = services.request_first_training()
        if result.created:
            self.stdout.write(self.style.SUCCESS(f"{result.message} The worker started by `make run` trains it."))
        else:
            self.stdout.write(result.message)
