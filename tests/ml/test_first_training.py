"""A first run that designs out of the box: the first training is queued by ``make run``
(``manage.py queue_first_training``, idempotent), and a training refused for too little data
says so in one plain sentence with what to do — never a traceback on a page."""

import re
from pathlib import Path

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from ml.dataprep import DataError, TooFewAlloysError
from tests.design.conftest import add_literature, synthetic_rows
from training import services
from training.models import ModelVersion, TrainingRun

pytestmark = pytest.mark.django_db

REPO = Path(__file__).resolve().parents[2]
PLAIN_5 = ("Only 5 alloys have usable Tg, Tx and Tl values; the models need at least 10. "
           "Import a table or load the starter corpus.")


@pytest.fixture(autouse=True)
def _fast(settings, tmp_path):
    settings.MODEL_ARTEFACT_ROOT = tmp_path / "models"
    settings.GLASSLOOP_TRAINING_EPOCHS = 10
    settings.GLASSLOOP_JOB_STALE_SECONDS = 300


def first_training(capture):
    """Run the command as `make run` does; return (its output, the runs now)."""
    import io

    out = io.StringIO()
    with capture(execute=False):  # the message would be published after commit; no broker here
        call_command("queue_first_training", stdout=out)
    return out.getvalue(), list(TrainingRun.objects.order_by("pk"))


# ---------------------------------------------------------------- plain_training_error


def test_too_few_alloys_becomes_one_plain_sentence():
    exc = TooFewAlloysError(5)
    assert services.plain_training_error(exc) == PLAIN_5
    one = services.plain_training_error(TooFewAlloysError(1))
    assert one.startswith("Only 1 alloy has usable")


def test_no_usable_rows_becomes_a_plain_sentence():
    plain = services.plain_training_error(DataError("no usable rows: 6 read, 6 refused, 0 dropped"))
    assert plain.startswith("No alloy has usable Tg, Tx and Tl values yet; the models need at least 10.")
    assert plain.endswith("Import a table or load the starter corpus.")


def test_an_unexpected_error_is_one_line_naming_it_never_a_traceback():
    try:
        raise KeyError("p_bmg")
    except KeyError as exc:
        plain = services.plain_training_error(exc)
    assert "KeyError" in plain and "p_bmg" in plain and "\n" not in plain and "Traceback" not in plain


# ---------------------------------------------------------------- a refused run, recorded and shown


def test_refused_run_is_stored_and_shown_in_plain_words_without_a_traceback(client, experimenter, caplog):
    add_literature(synthetic_rows(5, seed=3))
    run = services.run_training(services.request_retrain(enqueue=False).run.pk)
    assert run.status == TrainingRun.Status.FAILED
    assert run.error == PLAIN_5
    assert "Traceback" not in run.log and "failed: " + PLAIN_5 in run.log
    assert "Training run %s refused" % run.pk in caplog.text  # the technical side goes to the logs

    client.force_login(experimenter)
    html = client.get(reverse("ml:run_detail", args=[run.pk])).content.decode()
    assert PLAIN_5 in html
    assert "Traceback" not in html and "ValueError" not in html
    todo = re.search(r'<p class="run-error-todo">(.*?)</p>', html, re.S)
    assert todo and reverse("lab:import_list") in todo.group(1) and "load_starter_set" in todo.group(1)
    # No empty curves placeholder for a run that never trained an epoch.
    assert reverse("ml:run_curves", args=[run.pk]) not in html


def test_unexpected_error_keeps_the_traceback_in_the_logs_only(client, viewer, monkeypatch, caplog):
    add_literature(synthetic_rows(30, seed=4))

    def broken(*args, **kwargs):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(services, "fit_bundle", broken)
    run = services.run_training(services.request_retrain(enqueue=False).run.pk)
    assert run.status == TrainingRun.Status.FAILED
    assert "ZeroDivisionError" in run.error and "Traceback" not in run.error and "Traceback" not in run.log
    assert "Traceback (most recent call last)" in caplog.text  # logger.exception keeps it
    client.force_login(viewer)
    html = client.get(reverse("ml:run_detail", args=[run.pk])).content.decode()
    assert "ZeroDivisionError" in html and "Traceback" not in html


def test_an_older_run_whose_log_holds_a_traceback_does_not_show_it(client, viewer):
    old = TrainingRun.objects.create(
        snapshot_hash="b" * 64, snapshot_path="s.csv", snapshot_taken_at=timezone.now(), status=TrainingRun.Status.FAILED,
        error="ValueError: only 5 usable alloys after cleaning; need at least 10 to fit",
        log='[12:00:00] failed\nTraceback (most recent call last):\n  File "ml/pipeline.py", line 55\nValueError: ...\n',
    )
    client.force_login(viewer)
    html = client.get(reverse("ml:run_detail", args=[old.pk])).content.decode()
    assert "Traceback" not in html and 'File "ml/pipeline.py"' not in html


# ---------------------------------------------------------------- queue_first_training


def test_queue_first_training_is_idempotent(django_capture_on_commit_callbacks):
    add_literature(synthetic_rows(30, seed=5))
    out, runs = first_training(django_capture_on_commit_callbacks)
    assert len(runs) == 1 and runs[0].status == TrainingRun.Status.QUEUED
    assert runs[0].trigger == TrainingRun.Trigger.BOOTSTRAP and "queued" in out
    out, again = first_training(django_capture_on_commit_callbacks)
    assert [r.pk for r in again] == [runs[0].pk] and "already queued" in out

    # Running: still nothing new.
    TrainingRun.objects.filter(pk=runs[0].pk).update(status=TrainingRun.Status.RUNNING, heartbeat_at=timezone.now())
    _, again = first_training(django_capture_on_commit_callbacks)
    assert len(again) == 1

    # Done, with a version: nothing to do, even on new data.
    TrainingRun.objects.filter(pk=runs[0].pk).update(status=TrainingRun.Status.DONE)
    ModelVersion.objects.create(training_run=runs[0], artefact_dir="v", snapshot_hash=runs[0].snapshot_hash,
                                snapshot_taken_at=timezone.now(), status=ModelVersion.Status.ACTIVE)
    add_literature(synthetic_rows(3, seed=6), label="more")
    out, again = first_training(django_capture_on_commit_callbacks)
    assert len(again) == 1 and "exists already" in out


def test_queue_first_training_does_not_repeat_a_failure_on_the_same_data(django_capture_on_commit_callbacks):
    add_literature(synthetic_rows(5, seed=7))
    _, runs = first_training(django_capture_on_commit_callbacks)
    services.run_training(runs[0].pk)  # refused: too few alloys
    out, again = first_training(django_capture_on_commit_callbacks)
    assert len(again) == 1 and PLAIN_5 in out
    # New data: the first training is queued again.
    add_literature(synthetic_rows(20, seed=8), label="imported")
    _, again = first_training(django_capture_on_commit_callbacks)
    assert len(again) == 2 and again[-1].status == TrainingRun.Status.QUEUED


def test_queue_first_training_without_data_queues_nothing(django_capture_on_commit_callbacks):
    out, runs = first_training(django_capture_on_commit_callbacks)
    assert runs == [] and "no training data yet" in out.lower()


def test_make_run_queues_the_first_training_after_the_starter_set():
    setup = re.search(r"^setup:.*?\n((?:\t.*\n)+)", (REPO / "Makefile").read_text(), re.M).group(1)
    lines = [line.strip() for line in setup.splitlines()]
    starter = next(i for i, line in enumerate(lines) if "load_starter_set" in line)
    queue = next(i for i, line in enumerate(lines) if "queue_first_training" in line)
    assert queue > starter


def test_an_error_holding_a_traceback_is_never_shown(client, viewer):
    raw = TrainingRun.objects.create(
        snapshot_hash="c" * 64, snapshot_path="s.csv", snapshot_taken_at=timezone.now(), status=TrainingRun.Status.FAILED,
        error='Traceback (most recent call last):\n  File "x.py", line 1\nRuntimeError: boom',
    )
    client.force_login(viewer)
    for url in (reverse("ml:run_detail", args=[raw.pk]), "/"):
        html = client.get(url).content.decode()
        assert "Traceback" not in html and 'File "x.py"' not in html, url
        assert "the details are in the worker's log" in html, url
