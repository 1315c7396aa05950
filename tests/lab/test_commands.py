"""Management commands: import_alloys, ensure_admin, load_starter_set, run_glassloop."""

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import urllib.request
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from lab.management.commands.load_starter_set import starter_rows
from lab.models import Alloy
from core.roles import ALL_ROLES, user_roles

REPO = Path(__file__).resolve().parents[2]
TABLE = "composition,Tg_K,Tx_K,Tl_K\nCu50Hf50,670,720,1200\nHf50Cu50,672,718,\nCu50Hf50Q,1,2,3\n"


def run(*args):
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def isolated_env(tmp_path):
    """A first-run environment: SQLite and the SQLAlchemy broker under a temporary var/."""
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL", "DJANGO_SUPERUSER_PASSWORD"}}
    env.update(GLASSLOOP_VAR_DIR=str(tmp_path / "var"), STATIC_ROOT=str(tmp_path / "static"), PYTHONUNBUFFERED="1")
    return env


@pytest.mark.django_db
def test_import_alloys_json_and_report(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text(TABLE)
    counts = json.loads(run("import_alloys", str(path), "--json", "--dry-run"))
    assert counts == {"rows": 3, "created": 1, "merged": 1, "conflicts": 0, "refused": 1, "dry_run": True}
    assert not Alloy.objects.exists()
    text = run("import_alloys", str(path))
    assert "refused" in text and "Q" in text  # the parser's reason for the bad symbol
    assert "3 rows: 1 created, 1 merged, 0 conflicts, 1 refused." in text
    assert json.loads(run("import_alloys", str(path), "--json"))["created"] == 0


@pytest.mark.django_db
def test_import_alloys_bad_file_is_one_clear_error(tmp_path):
    with pytest.raises(CommandError, match="no such file"):
        run("import_alloys", str(tmp_path / "missing.csv"))
    bad = tmp_path / "bad.csv"
    bad.write_text("formula,Tg\nCu50Hf50,700\n")
    with pytest.raises(CommandError, match="Tg_K, Tx_K, Tl_K"):
        run("import_alloys", str(bad))


def test_import_alloys_exit_status_for_a_missing_file(tmp_path):
    proc = subprocess.run(
        [sys.executable, "manage.py", "import_alloys", str(tmp_path / "missing.csv")],
        cwd=REPO, env=isolated_env(tmp_path), capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode != 0
    assert proc.stderr.strip().count("\n") == 0 and "no such file" in proc.stderr


@pytest.mark.django_db
def test_ensure_admin_creates_once(tmp_path, settings, monkeypatch):
    monkeypatch.delenv("DJANGO_SUPERUSER_PASSWORD", raising=False)
    settings.VAR_DIR = tmp_path
    first = run("ensure_admin")
    password_file = tmp_path / "admin_password.txt"
    password = password_file.read_text().strip()
    assert f"Log in at http://127.0.0.1:8000/ as admin / {password}" in first
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser and admin.check_password(password)
    assert set(admin.groups.values_list("name", flat=True)) == set(ALL_ROLES) == user_roles(admin)

    second = run("ensure_admin")
    assert "changepassword admin" in second and password not in second
    assert get_user_model().objects.count() == 1
    assert get_user_model().objects.get().check_password(password)  # untouched


@pytest.mark.django_db
def test_ensure_admin_takes_the_password_from_the_environment(tmp_path, settings, monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "from-the-env-42")
    settings.VAR_DIR = tmp_path
    assert "as admin / from-the-env-42" in run("ensure_admin")
    assert get_user_model().objects.get(username="admin").check_password("from-the-env-42")


@pytest.mark.django_db
def test_load_starter_set_if_empty():
    Alloy.objects.create(composition_key="Cu50Hf50", formula="Cu50Hf50", fractions={"Cu": 0.5, "Hf": 0.5}, base_element="Cu", n_elements=2)
    assert "not loaded" in run("load_starter_set", "--if-empty")
    assert Alloy.objects.count() == 1
    assert "created" in run("load_starter_set", "--no-corpus")  # the corpus: tests/lab/test_starter_corpus.py
    assert Alloy.objects.count() == 1 + len(starter_rows())


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_run_glassloop_starts_web_and_worker_and_stops_both(tmp_path):
    env = isolated_env(tmp_path)
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=REPO, env=env, check=True, timeout=180)
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "run_glassloop", "--port", str(port)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 120
        status = None
        while time.monotonic() < deadline and proc.poll() is None:
            output = "".join(lines)
            worker_ready = " ready." in output
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/accounts/login/", timeout=2) as response:
                    status = response.status
            except OSError:
                status = None
            if status == 200 and worker_ready:
                break
            time.sleep(0.5)
        output = "".join(lines)
        assert status == 200, output[-3000:]
        assert " ready." in output, output[-3000:]  # Celery's "celery@host ready."
        line = next(l for l in output.splitlines() if "GlassLoop is running" in l)
        assert f"http://127.0.0.1:{port}/" in line
        web_pid = int(line.split("web server pid ")[1].split(",")[0])
        worker_pid = int(line.split("Celery worker pid ")[1].split(")")[0])
        assert _alive(web_pid) and _alive(worker_pid)

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, "".join(lines)[-3000:]
        deadline = time.monotonic() + 10
        while (_alive(web_pid) or _alive(worker_pid)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _alive(web_pid) and not _alive(worker_pid)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
