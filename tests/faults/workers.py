"""Real Celery worker processes for the fault tests, on the test database and a private Redis.

A worker here is ``celery -A config worker`` in its own process group (prefork pool, one
child), with the lifecycle timings shortened through the environment, exactly as an operator
would run it. Tests kill its pool child or the whole group.
"""

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.db import connection

REPO = Path(__file__).resolve().parents[2]

# Short lifecycle timings so a test sees a dead worker within seconds.
FAST_LIFECYCLE = {
    "GLASSLOOP_JOB_HEARTBEAT_SECONDS": "0.5",
    "GLASSLOOP_JOB_STALE_SECONDS": "3",
    "GLASSLOOP_JOB_REQUEUE_SECONDS": "2",
}


def database_url():
    db = connection.settings_dict
    user = db["USER"] or "postgres"
    return f"postgres://{user}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def worker_env(broker_url, tmp_path, **extra):
    env = dict(
        os.environ,
        DATABASE_URL=database_url(),
        CELERY_BROKER_URL=broker_url,
        MEDIA_ROOT=str(settings.MEDIA_ROOT),
        MODEL_ARTEFACT_ROOT=str(settings.MODEL_ARTEFACT_ROOT),
        GLASSLOOP_VAR_DIR=str(tmp_path / "worker-var"),
        LOG_LEVEL="WARNING",
        **FAST_LIFECYCLE,
    )
    if connection.settings_dict.get("PASSWORD"):
        env["PGPASSWORD"] = connection.settings_dict["PASSWORD"]
    env.update({k: str(v) for k, v in extra.items()})
    return env


@contextlib.contextmanager
def celery_worker(env, log_path):
    """A worker process (prefork, one child); killed with its children at the end."""
    log = open(log_path, "ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "-P", "prefork", "-c", "1",
         "--without-heartbeat", "--without-mingle", "--without-gossip", "-l", "WARNING"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        log.close()


def pool_children(pid):
    """The pids whose parent is ``pid`` (the prefork pool's children)."""
    children = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid:
            children.append(int(entry))
    return children


def wait_for(predicate, timeout_s, what, log_path=None):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    tail = ""
    if log_path is not None and Path(log_path).exists():
        tail = "\nworker log:\n" + Path(log_path).read_text(errors="replace")[-3000:]
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}{tail}")
