"""config/settings.py: every setting declared with its default, values from the environment
parsed strictly (a bad one stops the start with the variable's name), Celery's schedule and
broker options. Settings are module-level code, so each case starts a fresh interpreter."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_float, env_int, env_json_object, env_list, env_str

REPO = Path(__file__).resolve().parent.parent
# Only what an interpreter needs: no GLASSLOOP_*, DEBUG, DATABASE_URL... from the caller's shell.
PASSED_THROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")

DUMP = """
import json
import django
django.setup()
from django.conf import settings
from config.celery import app
names = {names!r}
print(json.dumps({{
    "settings": {{n: getattr(settings, n) for n in names}},
    "beat": app.conf.beat_schedule,
    "celery": {{k: app.conf[k] for k in ("broker_connection_timeout", "broker_transport_options",
        "task_acks_late", "task_reject_on_worker_lost", "worker_prefetch_multiplier", "result_backend")}},
}}, default=str))
"""

NEW_JOB_SETTINGS = {
    "GLASSLOOP_JOB_HEARTBEAT_SECONDS": 5.0,
    "GLASSLOOP_JOB_STALE_SECONDS": 120.0,
    "GLASSLOOP_JOB_REQUEUE_SECONDS": 300.0,
    "GLASSLOOP_SWEEP_SECONDS": 60.0,
    "GLASSLOOP_RETRAIN_SCHEDULE_HOURS": 24.0,
    "GLASSLOOP_BROKER_TIMEOUT_SECONDS": 3.0,
}
DEFAULTS = {
    **NEW_JOB_SETTINGS,
    "DEBUG": False,
    "CELERY_TASK_ALWAYS_EAGER": False,
    "GLASSLOOP_MAX_UPLOAD_BYTES": 20 * 1024 * 1024,
    "GLASSLOOP_RETRAIN_MIN_NEW_RESULTS": 3,
    "GLASSLOOP_TRAINING_EPOCHS": 600,
    "GLASSLOOP_GAN_DESCRIPTORS": "D1",
    "GLASSLOOP_GAN_PARAMS": None,
    "GLASSLOOP_FORWARD_PARAMS": None,
    "GLASSLOOP_PROMOTION_MAE_TOLERANCE": 0.05,
    "GLASSLOOP_PROMOTION_F1_TOLERANCE": 0.02,
    "GLASSLOOP_LLM_MODEL": "",
    "OPENAI_BASE_URL": "",
    "OPENAI_API_KEY": "",
    "GLASSLOOP_LLM_TIMEOUT_S": 60.0,
    "GLASSLOOP_LLM_MAX_ATTEMPTS": 4,
    "GLASSLOOP_LLM_BACKOFF_S": 2.0,
    "GLASSLOOP_LLM_CHUNK_CHARS": 12000,
    "GLASSLOOP_LLM_OVERLAP_CHARS": 800,
    "LOG_LEVEL": "INFO",
    "ALLOWED_HOSTS": ["127.0.0.1", "localhost", "testserver"],
    "CSRF_TRUSTED_ORIGINS": [],
    "GLASSLOOP_TOKEN_TTL_HOURS": 720.0,
    "GLASSLOOP_API_DOCS_PUBLIC": False,
}


def start(tmp_path, code="import django; django.setup()", **env):
    """A fresh interpreter that loads the settings with only ``env`` set (and a private var/)."""
    full = {k: v for k, v in os.environ.items() if k in PASSED_THROUGH}
    full.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        GLASSLOOP_VAR_DIR=str(tmp_path / "var"),
        STATIC_ROOT=str(tmp_path / "static"),
        PYTHONPATH=str(REPO),
        **env,
    )
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, env=full, capture_output=True, text=True, timeout=120, check=False)


def dump(tmp_path, names=tuple(DEFAULTS), **env):
    proc = start(tmp_path, DUMP.format(names=list(names)), **env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- a bad value stops the start


@pytest.mark.parametrize(("name", "value"), [
    ("DEBUG", "ture"),
    ("GLASSLOOP_RETRAIN_MIN_NEW_RESULTS", "three"),
    ("CELERY_TASK_ALWAYS_EAGER", "maybe"),
    ("CELERY_TASK_ALWAYS_EAGER", "2"),
    ("DB_CONN_MAX_AGE", "60s"),
    ("GLASSLOOP_MAX_UPLOAD_BYTES", "20MB"),
    ("GLASSLOOP_JOB_STALE_SECONDS", "2m"),
    ("GLASSLOOP_BROKER_TIMEOUT_SECONDS", "nan"),
    ("GLASSLOOP_SWEEP_SECONDS", "0"),  # a zero period
    ("GLASSLOOP_TRAINING_EPOCHS", "-5"),
    ("GLASSLOOP_LLM_MAX_ATTEMPTS", "0"),
    ("GLASSLOOP_GAN_PARAMS", "{hidden: 64}"),
    ("GLASSLOOP_FORWARD_PARAMS", "[1, 2]"),
    ("GLASSLOOP_GAN_DESCRIPTORS", "D4"),
    ("LOG_LEVEL", "verbose"),
    ("GLASSLOOP_TOKEN_TTL_HOURS", "30d"),
    ("GLASSLOOP_TOKEN_TTL_HOURS", "-1"),
    ("GLASSLOOP_API_DOCS_PUBLIC", "public"),
])
def test_a_bad_value_fails_at_start_with_the_variables_name(tmp_path, name, value):
    proc = start(tmp_path, **{name: value})
    assert proc.returncode != 0
    assert "ImproperlyConfigured" in proc.stderr
    assert f"{name}={value!r}" in proc.stderr  # the name and the offending value, as typed


def test_the_bad_boolean_message_lists_the_accepted_words(tmp_path):
    proc = start(tmp_path, DEBUG="ture")
    assert "DEBUG='ture' is not a boolean; use 1/0, true/false, yes/no or on/off." in proc.stderr


@pytest.mark.parametrize(("env", "named"), [
    ({"GLASSLOOP_LLM_CHUNK_CHARS": "500", "GLASSLOOP_LLM_OVERLAP_CHARS": "500"}, "GLASSLOOP_LLM_OVERLAP_CHARS"),
    ({"GLASSLOOP_JOB_HEARTBEAT_SECONDS": "200"}, "GLASSLOOP_JOB_STALE_SECONDS"),
])
def test_inconsistent_values_fail_at_start(tmp_path, env, named):
    proc = start(tmp_path, **env)
    assert proc.returncode != 0 and named in proc.stderr


# ---------------------------------------------------------------- good values and defaults


def test_defaults_without_any_environment(tmp_path):
    out = dump(tmp_path)
    assert out["settings"] == DEFAULTS


def test_good_values_parse(tmp_path):
    out = dump(
        tmp_path,
        DEBUG="Yes", CELERY_TASK_ALWAYS_EAGER="on", GLASSLOOP_LLM_MAX_ATTEMPTS="2",
        GLASSLOOP_RETRAIN_MIN_NEW_RESULTS=" 7 ", GLASSLOOP_JOB_STALE_SECONDS="90.5",
        GLASSLOOP_MAX_UPLOAD_BYTES="1_000_000", GLASSLOOP_GAN_PARAMS='{"hidden": 64}',
        ALLOWED_HOSTS="a.example, b.example,,", LOG_LEVEL="WARNING", GLASSLOOP_LLM_MODEL="m1",
    )
    s = out["settings"]
    assert (s["DEBUG"], s["CELERY_TASK_ALWAYS_EAGER"], s["GLASSLOOP_LLM_MAX_ATTEMPTS"]) == (True, True, 2)
    assert s["GLASSLOOP_RETRAIN_MIN_NEW_RESULTS"] == 7 and s["GLASSLOOP_JOB_STALE_SECONDS"] == 90.5
    assert s["GLASSLOOP_MAX_UPLOAD_BYTES"] == 1_000_000 and s["GLASSLOOP_GAN_PARAMS"] == {"hidden": 64}
    assert s["ALLOWED_HOSTS"] == ["a.example", "b.example"] and s["LOG_LEVEL"] == "WARNING"
    assert s["GLASSLOOP_LLM_MODEL"] == "m1"


def test_a_blank_value_means_the_default(tmp_path):
    """docker compose passes VAR= for a variable left empty in .env."""
    out = dump(tmp_path, DEBUG="", GLASSLOOP_RETRAIN_MIN_NEW_RESULTS=" ")
    assert out["settings"]["DEBUG"] is False and out["settings"]["GLASSLOOP_RETRAIN_MIN_NEW_RESULTS"] == 3


# ---------------------------------------------------------------- Celery


def test_the_beat_schedule_names_the_sweep_and_the_scheduled_retrain(tmp_path):
    beat = dump(tmp_path)["beat"]
    assert {entry["task"] for entry in beat.values()} == {"core.sweep_jobs", "ml.scheduled_retrain"}
    assert beat["sweep-jobs"] == {"task": "core.sweep_jobs", "schedule": 60.0}
    assert beat["scheduled-retrain"] == {"task": "ml.scheduled_retrain", "schedule": 24 * 3600.0}
    beat = dump(tmp_path, GLASSLOOP_SWEEP_SECONDS="15", GLASSLOOP_RETRAIN_SCHEDULE_HOURS="0.5")["beat"]
    assert (beat["sweep-jobs"]["schedule"], beat["scheduled-retrain"]["schedule"]) == (15.0, 1800.0)


def test_celery_reliability_options_reach_the_app(tmp_path):
    celery = dump(tmp_path, GLASSLOOP_BROKER_TIMEOUT_SECONDS="1.5")["celery"]
    assert celery["broker_connection_timeout"] == 1.5
    assert celery["task_acks_late"] is True and celery["task_reject_on_worker_lost"] is True
    assert celery["worker_prefetch_multiplier"] == 1
    assert celery["result_backend"] is None
    # The default (SQLAlchemy) broker gets no redis socket options: create_engine() would refuse them.
    assert celery["broker_transport_options"] == {"max_retries": 1, "interval_start": 0, "interval_step": 0.2}


def test_a_redis_broker_gets_socket_timeouts(tmp_path):
    options = dump(tmp_path, CELERY_BROKER_URL="redis://127.0.0.1:6379/0", GLASSLOOP_BROKER_TIMEOUT_SECONDS="2")
    options = options["celery"]["broker_transport_options"]
    assert options["socket_connect_timeout"] == 2.0 and options["socket_timeout"] == 2.0
    assert options["max_retries"] == 1  # the publish-retry options stay


def test_the_default_broker_opens_with_the_configured_options(tmp_path):
    code = (
        "import django; django.setup()\n"
        "from config.celery import app\n"
        "with app.connection_for_write() as conn:\n"
        "    queue = conn.SimpleQueue('settings-test')\n"
        "    queue.put({'n': 1})\n"
        "    message = queue.get(timeout=5)\n"
        "    message.ack()\n"
        "    print(message.payload['n'], 'ok')\n"
    )
    proc = start(tmp_path, code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("1 ok")
    assert (tmp_path / "var" / "celery-broker.sqlite3").exists()


# ---------------------------------------------------------------- every setting the code reads is declared


READ_RE = re.compile(r"""settings\.(GLASSLOOP_\w+)|_setting\(\s*["'](GLASSLOOP_\w+)["']""")


def test_every_glassloop_setting_the_code_reads_is_declared():
    from django.conf import settings

    read = set()
    for path in REPO.rglob("*.py"):
        parts = path.relative_to(REPO).parts
        if parts[0] in {".venv", "tests", "bench"} or "migrations" in parts:
            continue
        for match in READ_RE.finditer(path.read_text(encoding="utf-8")):
            read.add(match.group(1) or match.group(2))
    assert "GLASSLOOP_MAX_UPLOAD_BYTES" in read  # the scan finds reads at all
    missing = sorted(name for name in read if not hasattr(settings, name))
    assert missing == []


def test_the_descriptor_choices_follow_the_ml_core():
    from ml.descriptors import ALL_DESCRIPTOR_SETS

    source = (REPO / "config" / "settings.py").read_text(encoding="utf-8")
    declared = re.search(r'"GLASSLOOP_GAN_DESCRIPTORS", "D1", choices=(\([^)]*\))', source).group(1)
    assert set(eval(declared)) == set(ALL_DESCRIPTOR_SETS)


# ---------------------------------------------------------------- mining/llm.py reads settings, not the environment


def test_llm_configuration_comes_from_settings_not_the_environment(settings, monkeypatch):
    from mining.llm import LLMConfig

    monkeypatch.setenv("GLASSLOOP_LLM_MODEL", "from-the-environment")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    settings.GLASSLOOP_LLM_MODEL = ""
    assert LLMConfig.from_settings() is None
    settings.GLASSLOOP_LLM_MODEL = "from-settings"
    settings.OPENAI_API_KEY = ""
    config = LLMConfig.from_settings()
    assert config.model == "from-settings" and config.api_key == "no-key" and config.base_url is None
    assert "sk-" not in repr(config)


def test_llm_configuration_from_an_argument():
    from mining.llm import LLMConfig

    given = SimpleNamespace(
        GLASSLOOP_LLM_MODEL="m", OPENAI_BASE_URL="http://127.0.0.1:1/v1", OPENAI_API_KEY="sk-secret",
        GLASSLOOP_LLM_TIMEOUT_S=5.0, GLASSLOOP_LLM_MAX_ATTEMPTS=2, GLASSLOOP_LLM_BACKOFF_S=0.5,
        GLASSLOOP_LLM_CHUNK_CHARS=1000, GLASSLOOP_LLM_OVERLAP_CHARS=10, GLASSLOOP_LLM_MAX_REQUESTS_PER_BATCH=7,
    )
    config = LLMConfig.from_settings(settings=given)
    assert (config.base_url, config.api_key, config.timeout_s, config.max_attempts) == ("http://127.0.0.1:1/v1", "sk-secret", 5.0, 2)
    assert (config.chunk_chars, config.overlap_chars, config.max_requests_per_batch) == (1000, 10, 7)
    assert "sk-secret" not in repr(config)
    assert LLMConfig.from_settings(model="other", settings=given).model == "other"


# ---------------------------------------------------------------- the parsers (config/env.py)


@pytest.mark.parametrize(("raw", "expected"), [
    ("1", True), ("true", True), ("TRUE", True), ("Yes", True), ("on", True), (" on ", True),
    ("0", False), ("false", False), ("No", False), ("OFF", False),
])
def test_env_bool_words(raw, expected):
    assert env_bool("X", not expected, environ={"X": raw}) is expected


@pytest.mark.parametrize("raw", ["ture", "y", "2", "enabled", "none", "-1"])
def test_env_bool_refuses_other_words(raw):
    with pytest.raises(ImproperlyConfigured, match=r"^X=.* is not a boolean; use 1/0, true/false, yes/no or on/off\.$"):
        env_bool("X", False, environ={"X": raw})


def test_env_numbers_lists_and_strings():
    assert env_int("N", 3, environ={}) == 3
    assert env_int("N", 3, min=0, environ={"N": "0"}) == 0
    with pytest.raises(ImproperlyConfigured, match="N='1.5' is not a whole number"):
        env_int("N", 3, environ={"N": "1.5"})
    with pytest.raises(ImproperlyConfigured, match="at least 0"):
        env_int("N", 3, min=0, environ={"N": "-1"})
    assert env_float("F", 1.0, environ={"F": "2.5e1"}) == 25.0
    with pytest.raises(ImproperlyConfigured, match="greater than 0"):
        env_float("F", 1.0, above=0, environ={"F": "0"})
    with pytest.raises(ImproperlyConfigured, match="not a finite number"):
        env_float("F", 1.0, environ={"F": "inf"})
    assert env_list("L", ["a"], environ={}) == ["a"]
    assert env_list("L", ["a"], environ={"L": " b ,c,, "}) == ["b", "c"]
    assert env_str("S", "d", environ={"S": " v "}) == "v"
    with pytest.raises(ImproperlyConfigured, match="S='x' is not one of a, b"):
        env_str("S", "a", choices=("a", "b"), environ={"S": "x"})
    assert env_json_object("J", None, environ={"J": '{"a": 1}'}) == {"a": 1}
    with pytest.raises(ImproperlyConfigured, match="J='1' is not a JSON object"):
        env_json_object("J", None, environ={"J": "1"})
