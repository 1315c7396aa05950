"""Two imports of the same table at the same moment (issue 16: the second failed with a raw
IntegrityError). They serialise: the second waits for the first (back in the queue, or on the
lock), then merges into its alloys.

The advisory lock and the unique-index race are only real on PostgreSQL, so this runs there:
DATABASE_URL=postgres://postgres@127.0.0.1:5432/glassloop_a2 pytest tests/lab/test_import_concurrency.py
"""

import threading
import time

import pytest
from django.core.files.base import ContentFile
from django.db import connection

from lab import importing
from lab.models import Alloy, AlloyImport, PropertyValue

TABLE = (
    "composition,Tg_K,Tx_K,Tl_K,doi\n"
    "Cu50Zr50,670,720,1200,10.1000/race\n"
    "Cu46Zr46Al8,701,780,1170,\n"
    "Pd40Ni40P20,575,670,990,10.1000/race\n"
)


def _run_both(jobs, monkeypatch):
    # Widen the window: each import pauses after reading what is on record, before its writes.
    real = importing.bulk_create_with_history

    def slow_bulk_create(*args, **kwargs):
        time.sleep(0.5)
        return real(*args, **kwargs)

    monkeypatch.setattr(importing, "bulk_create_with_history", slow_bulk_create)
    barrier = threading.Barrier(len(jobs))

    def run(job):
        try:
            barrier.wait()
            importing.run_alloy_import(job.pk)
        finally:
            connection.close()  # each thread had its own connection

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for job in jobs:
        job.refresh_from_db()


@pytest.mark.django_db(transaction=True)
def test_overlapping_imports_of_one_table_serialise(make_user, monkeypatch, settings, tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip("the race needs PostgreSQL (set DATABASE_URL=postgres://...); SQLite lets one writer in at a time")
    settings.MEDIA_ROOT = tmp_path
    user = make_user("erin", "viewer", "experimenter")
    jobs = [
        AlloyImport.objects.create(upload=ContentFile(TABLE.encode(), name=f"t{i}.csv"), original_name=f"t{i}.csv", created_by=user)
        for i in (1, 2)
    ]
    _run_both(jobs, monkeypatch)
    # The one claimed second found the first running and went back to the queue (lab.importing
    # _defer_behind_earlier_import), or, claimed before the other was running, waited for its lock;
    # a deferred one runs when its message comes again.
    for job in jobs:
        if job.status == "queued":
            assert job.message.startswith("waiting for import ")
            importing.run_alloy_import(job.pk)
            job.refresh_from_db()

    assert [(j.status, j.error) for j in jobs] == [("done", ""), ("done", "")]
    # One of them created the three alloys; the other found them and added nothing.
    assert sorted(j.counts["created"] for j in jobs) == [0, 3]
    assert sorted(j.counts["merged"] for j in jobs) == [0, 3]
    assert Alloy.objects.count() == 3 and PropertyValue.objects.count() == 3


@pytest.mark.django_db(transaction=True)
def test_a_clash_with_another_writer_is_run_again_then_merged(make_user, monkeypatch, settings, tmp_path):
    """An alloy created by someone else (not an import) after the import read the table: the
    import's attempt is rolled back and run again against it, nothing lost."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL")
    settings.MEDIA_ROOT = tmp_path
    user = make_user("erin", "viewer", "experimenter")
    job = AlloyImport.objects.create(upload=ContentFile(TABLE.encode(), name="t.csv"), original_name="t.csv", created_by=user)
    real = importing.bulk_create_with_history
    sneaked = []

    def sneak_in_first(objs, model, **kwargs):
        if model is Alloy and not sneaked:  # another connection creates one of the alloys now
            def other_writer():
                try:
                    Alloy.objects.create(composition_key="Cu50Zr50", formula="Cu50Zr50", fractions={"Cu": 0.5, "Zr": 0.5},
                                         base_element="Cu", n_elements=2)
                finally:
                    connection.close()

            t = threading.Thread(target=other_writer)
            t.start()
            t.join(10)
            sneaked.append(True)
        return real(objs, model, **kwargs)

    monkeypatch.setattr(importing, "bulk_create_with_history", sneak_in_first)
    importing.run_alloy_import(job.pk)
    job.refresh_from_db()
    assert (job.status, job.error) == ("done", "")
    assert job.counts["created"] == 2 and job.counts["merged"] == 1  # Cu50Zr50 existed by the second attempt
    assert Alloy.objects.count() == 3 and PropertyValue.objects.count() == 3
    assert job.rows.get(composition="Cu50Zr50").outcome == "merged"


@pytest.mark.django_db(transaction=True)
def test_an_import_waiting_for_another_says_so_and_can_be_stopped():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL")
    from django.db import connections, transaction

    from core.jobs import JobCancelled

    held, release = threading.Event(), threading.Event()

    def other_import():  # holds the import lock as a running import does
        try:
            with transaction.atomic(), connections["default"].cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [importing.IMPORT_LOCK_KEY])
                held.set()
                release.wait(30)
        finally:
            connection.close()

    holder = threading.Thread(target=other_import)
    holder.start()
    try:
        assert held.wait(10)
        said = []

        def progress(fraction, message):
            said.append(message)
            raise JobCancelled()  # as ctx.check_cancel does once a person pressed Cancel

        with pytest.raises(JobCancelled):
            importing.import_alloys(TABLE.encode(), filename="t.csv", progress=progress)
        assert said == ["waiting for another import to finish"]
        assert not Alloy.objects.exists()
    finally:
        release.set()
        holder.join(30)
