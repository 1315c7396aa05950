"""An import that finds an earlier one running goes back to the queue instead of waiting on the
worker (issue 16: the wait counted against its GLASSLOOP_IMPORT_MAX_SECONDS and held a worker):
core.jobs.JobDeferred puts the job "queued" with a message and sends it again a few seconds later;
it reads its file only when it runs, and its time limit counts from then.

No broker here: the message is caught on its way out (the task's apply_async)."""

import pytest
from django.core.files.base import ContentFile

from core import jobs
from core.jobs import JobStatus
from lab import importing
from lab.models import Alloy, AlloyImport

pytestmark = pytest.mark.django_db

TABLE = b"composition,Tg_K,Tx_K,Tl_K\nZr55Cu30Al10Ni5,680,760,1150\nZr60Cu25Al10Ni5,670,750,1160\n"


@pytest.fixture
def sent(monkeypatch):
    """The messages sent (their apply_async keyword arguments)."""
    out = []
    monkeypatch.setattr(jobs._task(AlloyImport), "apply_async", lambda *a, **kw: out.append(kw))
    return out


def queued(name, user):
    return AlloyImport.objects.create(upload=ContentFile(TABLE, name=name), original_name=name, created_by=user)


def test_an_import_behind_a_running_one_is_queued_again_without_reading_its_file(experimenter, sent, monkeypatch,
                                                                                   django_capture_on_commit_callbacks):
    first, second = queued("a.csv", experimenter), queued("b.csv", experimenter)
    jobs.claim(AlloyImport, first.pk, task_id="m-a")  # the first one is running (a worker has it)
    read = []
    monkeypatch.setattr(importing, "read_table", lambda *a, **kw: read.append(a) or [])
    with django_capture_on_commit_callbacks(execute=True):
        importing.run_alloy_import(second.pk, task_id=second.task_id)
    second.refresh_from_db()
    assert read == []  # its file was not read
    assert second.status == JobStatus.QUEUED and second.started_at is None and second.error == ""
    assert second.message == f"waiting for import {first.pk} (a.csv) to finish"
    assert [m["countdown"] for m in sent] == [importing.IMPORT_DEFER_S] and sent[0]["task_id"] == second.task_id
    assert not Alloy.objects.exists()


def test_it_runs_once_the_earlier_one_has_finished(experimenter, sent, django_capture_on_commit_callbacks):
    first, second = queued("a.csv", experimenter), queued("b.csv", experimenter)
    jobs.claim(AlloyImport, first.pk, task_id="m-a")
    with django_capture_on_commit_callbacks(execute=True):
        importing.run_alloy_import(second.pk)
    AlloyImport.objects.filter(pk=first.pk).update(status=JobStatus.DONE)  # the first one finished
    done = importing.run_alloy_import(second.pk)  # its message, delivered again
    assert (done.status, done.error) == (JobStatus.DONE, "")
    assert done.counts["created"] == 2 and Alloy.objects.count() == 2


def test_of_two_claimed_together_exactly_one_goes_on(experimenter, sent, django_capture_on_commit_callbacks):
    first, second = queued("a.csv", experimenter), queued("b.csv", experimenter)
    a, b = jobs.claim(AlloyImport, first.pk), jobs.claim(AlloyImport, second.pk)
    AlloyImport.objects.filter(pk__in=[a.pk, b.pk]).update(started_at=a.started_at)  # the same instant
    b.started_at = a.started_at
    with pytest.raises(jobs.JobDeferred):
        importing._defer_behind_earlier_import(b)  # the higher id waits
    importing._defer_behind_earlier_import(a)  # the lower one goes on (nothing raised)


def test_a_running_import_whose_worker_died_is_not_waited_for(experimenter, settings, sent):
    settings.GLASSLOOP_JOB_STALE_SECONDS = 60
    first, second = queued("a.csv", experimenter), queued("b.csv", experimenter)
    jobs.claim(AlloyImport, first.pk)
    stale = jobs.timezone.now() - jobs.timezone.timedelta(seconds=61)
    AlloyImport.objects.filter(pk=first.pk).update(heartbeat_at=stale, started_at=stale)
    done = importing.run_alloy_import(second.pk)
    assert done.status == JobStatus.DONE and done.counts["created"] == 2


def test_the_wait_does_not_count_against_its_time_limit(experimenter, settings, sent, monkeypatch,
                                                         django_capture_on_commit_callbacks):
    """A (fake) 10 minutes behind a long import, then its own work: within the 300 s limit."""
    settings.GLASSLOOP_IMPORT_MAX_SECONDS = 300
    clock = [1000.0]
    monkeypatch.setattr(jobs.Deadline, "clock", staticmethod(lambda: clock[0]))
    first, second = queued("a.csv", experimenter), queued("b.csv", experimenter)
    jobs.claim(AlloyImport, first.pk)
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(120):  # sent again every few seconds for ten minutes
            importing.run_alloy_import(second.pk)
            clock[0] += 5
    assert AlloyImport.objects.get(pk=second.pk).status == JobStatus.QUEUED
    AlloyImport.objects.filter(pk=first.pk).update(status=JobStatus.DONE)
    done = importing.run_alloy_import(second.pk)
    assert (done.status, done.error) == (JobStatus.DONE, "")
    assert done.attempts == 1  # the waits were not attempts


def test_a_cancel_while_it_was_deferred_or_during_the_attempt_cancels_it(experimenter, sent,
                                                                          django_capture_on_commit_callbacks):
    first, second = queued("a.csv", experimenter), queued("b.csv", experimenter)
    jobs.claim(AlloyImport, first.pk)
    with django_capture_on_commit_callbacks(execute=True):
        importing.run_alloy_import(second.pk)
    cancelled, text = jobs.cancel(AlloyImport.objects.get(pk=second.pk))  # queued again: cancelled at once
    assert cancelled.status == JobStatus.CANCELLED and text == "Cancelled."
    assert importing.run_alloy_import(second.pk).status == JobStatus.CANCELLED  # its late message runs nothing

    third = queued("c.csv", experimenter)
    claimed = jobs.claim(AlloyImport, third.pk)
    jobs.cancel(claimed)  # asked to stop while this attempt ran
    assert jobs.defer(claimed, "waiting", 5.0)
    assert AlloyImport.objects.get(pk=third.pk).status == JobStatus.CANCELLED
    assert AlloyImport.objects.get(pk=third.pk).message == "cancelled while it waited"
