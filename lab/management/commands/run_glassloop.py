"""manage.py run_glassloop [--host 127.0.0.1] [--port 8000]

Starts the web server and a Celery worker as child processes, forwards Ctrl-C / SIGTERM to
both, and stops when either stops (exit status non-zero if one of them failed).
"""

import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

STOP_GRACE_SECONDS = 15


class Command(BaseCommand):
    help = "Run the GlassLoop web server and its Celery worker together."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--skip-collectstatic", action="store_true", help="Static files are already collected.")

    def handle(self, *args, host, port, skip_collectstatic=False, **options):
        if not skip_collectstatic:
            # DEBUG is off by default: whitenoise serves the collected files.
            call_command("collectstatic", interactive=False, verbosity=0)
        manage_py = settings.BASE_DIR / "manage.py"
        commands = {
            "web server": [sys.executable, str(manage_py), "runserver", "--noreload", f"{host}:{port}"],
            # solo pool: one process, safe with the SQLite-backed default broker. --beat runs the
            # schedule (job sweep, scheduled retrain: settings.CELERY_BEAT_SCHEDULE) in it too.
            "Celery worker": [sys.executable, "-m", "celery", "-A", "config", "worker", "--loglevel=INFO",
                              "--concurrency=1", "--pool=solo", "--beat",
                              f"--schedule={settings.VAR_DIR / 'celerybeat-schedule'}"],
        }
        children = {}
        stopping = {"signal": None}

        def forward(signum, frame):
            stopping["signal"] = signum
            for proc in children.values():
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)

        previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            for name, command in commands.items():
                # A session of their own: the terminal's Ctrl-C reaches only us, and we
                # forward one SIGTERM (a second SIGINT would make Celery stop cold).
                children[name] = subprocess.Popen(command, cwd=settings.BASE_DIR, start_new_session=True)
            self.stdout.write(self.style.SUCCESS(
                f"GlassLoop is running at http://{host}:{port}/ "
                f"(web server pid {children['web server'].pid}, Celery worker pid {children['Celery worker'].pid}). "
                "Press Ctrl-C to stop."
            ))
            self.stdout.flush()
            failed = None
            while True:
                for name, proc in children.items():
                    if proc.poll() is not None:
                        failed = failed or (name, proc.returncode)
                if failed or stopping["signal"]:
                    break
                time.sleep(0.3)
            forward(stopping["signal"] or signal.SIGTERM, None)
            deadline = time.monotonic() + STOP_GRACE_SECONDS
            for proc in children.values():
                try:
                    proc.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        finally:
            for proc in children.values():
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if stopping["signal"] is None and failed:
            name, code = failed
            raise CommandError(f"The {name} stopped (exit status {code}); GlassLoop stopped too.", returncode=code or 1)
        self.stdout.write("GlassLoop stopped.")
