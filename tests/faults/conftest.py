"""Fixtures of the fault tests: a private Redis broker that a test may kill.

The machine's own Redis (port 6379) is used by other tests and is never touched here: each
test that needs a broker starts its own ``redis-server`` on a free port.
"""

import os
import shutil
import socket
import subprocess
import time

import pytest

from tests.celery_broker import free_port, use_broker

# pytest-django's live_server listens on this address (its default is "localhost").
os.environ.setdefault("DJANGO_LIVE_TEST_SERVER_ADDRESS", "127.0.0.1")


def _answers_ping(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class PrivateRedis:
    def __init__(self):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = None

    def start(self):
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--daemonize", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not _answers_ping(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server on port {self.port} did not start")
            time.sleep(0.05)

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        assert not _answers_ping(self.port)

    def llen(self, key="celery"):
        import redis

        client = redis.Redis.from_url(self.url)
        try:
            return client.llen(key)
        finally:
            client.close()


@pytest.fixture
def private_redis():
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    server = PrivateRedis()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def celery_on_private_redis(private_redis, settings):
    """Point the Celery app (and Django's settings) at the private Redis; restore afterwards."""
    settings.CELERY_BROKER_URL = private_redis.url
    settings.CELERY_TASK_ALWAYS_EAGER = False
    with use_broker(private_redis.url):
        yield private_redis
