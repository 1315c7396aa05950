"""One way for tests to point the Celery app at a broker (or run tasks eagerly) and back.

Celery caches broker connections in three places (the app's pool, its producer pool and
kombu's global pools); a worker stopped by ``start_worker`` closes the shared ones. Every
switch therefore drops all three, so the next publish connects to the URL now configured
instead of failing with "Acquire on closed pool" or going to the previous broker.

Celery's ``conf.broker_url`` prefers the CELERY_BROKER_URL environment variable (which CI
sets), so the switch sets the variable and the read/write URLs too.
"""

import contextlib
import os
import socket

from kombu import pools

from config.celery import app

_KEYS = ("broker_url", "broker_write_url", "broker_read_url", "task_always_eager")


def reset_connections():
    pools.reset()
    if getattr(app, "_pool", None) is not None:
        app._pool.force_close_all()
        app._pool = None
    app.amqp._producer_pool = None


def redis_up(host="127.0.0.1", port=6379):
    """Is a Redis server listening where the real-worker tests expect it?"""
    try:
        socket.create_connection((host, port), timeout=0.5).close()
        return True
    except OSError:
        return False


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dead_broker_url():
    """A Redis URL on a port nothing listens on: publishing fails at once."""
    return f"redis://127.0.0.1:{free_port()}/0"


@contextlib.contextmanager
def use_broker(url=None, *, eager=False):
    """Publish to ``url`` (or keep the configured broker when None); ``eager`` runs tasks inline."""
    saved = {k: app.conf[k] for k in _KEYS}
    saved_env = os.environ.get("CELERY_BROKER_URL")
    changes = {"task_always_eager": eager}
    if url is not None:
        changes.update(broker_url=url, broker_write_url=url, broker_read_url=url)
        os.environ["CELERY_BROKER_URL"] = url
    app.conf.update(changes)
    reset_connections()
    try:
        yield app
    finally:
        app.conf.update(saved)
        if saved_env is None:
            os.environ.pop("CELERY_BROKER_URL", None)
        else:
            os.environ["CELERY_BROKER_URL"] = saved_env
        reset_connections()
