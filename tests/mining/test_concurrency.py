"""Two reviewers approving the same record at the same moment: one wins, the other is told.

Row locks (SELECT ... FOR UPDATE) are only real on PostgreSQL, so this runs there:
DATABASE_URL=postgres://postgres@127.0.0.1:5432/glassloop_h7 pytest tests/mining/test_concurrency.py
"""

import threading
import time

import pytest
from django.db import connection

from lab import services as lab_services
from lab.models import PropertyValue
from mining import services


@pytest.mark.django_db(transaction=True)
def test_concurrent_approval_cannot_double_approve(make_user, monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("row locks are only exercised on PostgreSQL (set DATABASE_URL=postgres://...); SQLite locks the whole file")
    alice, bob = make_user("alice", "reviewer"), make_user("bob", "reviewer")
    source = services.create_source(text="The Zr57Cu28Al10Ni5 alloy shows Tg = 683 K and Tx = 763 K.")
    batch = services.create_batch(name="race", sources=[source], extractor="rules", enqueue=False)
    services.run_batch(batch.pk)
    record = batch.records.get()

    # Widen the window: whoever holds the lock pauses inside the transaction.
    real = lab_services.get_or_create_alloy

    def slow_get_or_create(*args, **kwargs):
        time.sleep(0.5)
        return real(*args, **kwargs)

    monkeypatch.setattr(services, "get_or_create_alloy", slow_get_or_create)
    barrier = threading.Barrier(2)
    outcomes = {}

    def act(user):
        try:
            barrier.wait()
            services.approve_record(record.pk, user)
            outcomes[user.username] = "approved"
        except services.ReviewConflict as exc:
            outcomes[user.username] = str(exc)
        finally:
            connection.close()  # each thread had its own connection

    threads = [threading.Thread(target=act, args=(u,)) for u in (alice, bob)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(outcomes) == ["alice", "bob"]
    winners = [u for u, o in outcomes.items() if o == "approved"]
    assert len(winners) == 1
    loser = "bob" if winners == ["alice"] else "alice"
    assert f"already approved by {winners[0]}" in outcomes[loser]
    assert PropertyValue.objects.count() == 1
    record.refresh_from_db()
    assert record.reviewer.username == winners[0]
