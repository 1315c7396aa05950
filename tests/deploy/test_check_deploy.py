"""Transport security from the environment: off for a first run over http://127.0.0.1, on with
the container's example environment, where ``manage.py check --deploy`` finds nothing."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PASSED_THROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")


def example_env():
    """docker/.env.example as a dict (comments and blank lines skipped)."""
    env = {}
    for line in (ROOT / "docker" / ".env.example").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            env[key.strip()] = value.strip()
    return env


def run(tmp_path, *args, **env):
    full = {k: v for k, v in os.environ.items() if k in PASSED_THROUGH}
    full.update(DJANGO_SETTINGS_MODULE="config.settings", PYTHONPATH=str(ROOT),
                GLASSLOOP_VAR_DIR=str(tmp_path / "var"), STATIC_ROOT=str(tmp_path / "static"), **env)
    return subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], cwd=ROOT, env=full,
                          capture_output=True, text=True, timeout=300)


def test_check_deploy_with_the_example_environment_finds_nothing(tmp_path):
    env = example_env()
    for name in ("SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SECURE_HSTS_SECONDS",
                 "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_HSTS_PRELOAD", "GLASSLOOP_PROXY_SSL_HEADER"):
        assert name in env, f"docker/.env.example does not set {name}"
    # The placeholder key is there to be replaced (and check --deploy says so: W009); a real one is used.
    assert env["SECRET_KEY"].startswith("change-me")
    env["SECRET_KEY"] = secrets.token_urlsafe(50)
    result = run(tmp_path, "check", "--deploy", "--fail-level", "WARNING", **env)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "System check identified no issues" in output, output


def test_without_environment_a_first_run_is_plain_http(tmp_path):
    code = ("import django, json; django.setup(); from django.conf import settings as s; print(json.dumps([s.SECURE_SSL_REDIRECT,"
            " s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_SECONDS, s.SECURE_HSTS_INCLUDE_SUBDOMAINS,"
            " s.SECURE_HSTS_PRELOAD, s.SECURE_PROXY_SSL_HEADER]))")
    result = run(tmp_path, "shell", "-c", code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[false, false, false, 0, false, false, null]"
    result = run(tmp_path, "shell", "-c", code, SECURE_HSTS_SECONDS="3600", GLASSLOOP_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO",
                 SECURE_SSL_REDIRECT="yes")
    assert result.stdout.strip().splitlines()[-1] == '[true, false, false, 3600, false, false, ["HTTP_X_FORWARDED_PROTO", "https"]]'


@pytest.mark.parametrize(("name", "value", "says"), [
    ("SECURE_SSL_REDIRECT", "ture", "is not a boolean"),
    ("SECURE_HSTS_SECONDS", "1 year", "is not a whole number"),
    ("SECURE_HSTS_SECONDS", "-1", "too small"),
    ("GLASSLOOP_PROXY_SSL_HEADER", "X-Forwarded-Proto", "HTTP_X_FORWARDED_PROTO"),
    ("GLASSLOOP_NUM_PROXIES", "-1", "too small"),
    ("GLASSLOOP_TOKEN_RATE", "20 per minute", "is not a rate"),
    ("GLASSLOOP_TOKEN_RATE", "0/minute", "is not a rate"),
    ("GLASSLOOP_CACHE_URL", "memcached://127.0.0.1:11211", "is not a redis:// URL"),
    ("GLASSLOOP_LOGIN_MAX_FAILURES", "0", "too small"),
])
def test_a_bad_value_stops_the_start_naming_the_variable(tmp_path, name, value, says):
    result = run(tmp_path, "check", **{name: value})
    assert result.returncode != 0
    assert name in result.stderr and says in result.stderr, result.stderr


def test_the_compose_health_check_passes_the_ssl_redirect():
    compose = (ROOT / "docker" / "docker-compose.yml").read_text()
    assert "X-Forwarded-Proto" in compose  # otherwise the redirect to https fails the health check
