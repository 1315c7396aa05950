"""Redis stopped while the site runs: pages still render, and starting long work says the queue
is unavailable and loses nothing.

A private redis-server (see conftest) is the broker; the site is pytest-django's live server
on 127.0.0.1 driven over real HTTP with ``requests``.
"""

import re

import pytest
from django.db import transaction
import requests

from lab.models import AlloyImport

pytestmark = pytest.mark.django_db(transaction=True)

TABLE = b"composition,Tg_K,Tx_K,Tl_K,source\nZr57Cu28Al10Ni5,683,763,1143,fault test\n"


def logged_in_session(base_url, username, password="pw-glassloop-1"):
    session = requests.Session()
    session.get(f"{base_url}/accounts/login/", timeout=10).raise_for_status()
    response = session.post(
        f"{base_url}/accounts/login/",
        data={"username": username, "password": password, "csrfmiddlewaretoken": session.cookies["csrftoken"]},
        timeout=10,
    )
    response.raise_for_status()
    assert "sessionid" in session.cookies, "login failed"
    return session


def post_import(session, base_url, name):
    session.get(f"{base_url}/lab/imports/", timeout=10).raise_for_status()
    return session.post(
        f"{base_url}/lab/imports/",
        data={"csrfmiddlewaretoken": session.cookies["csrftoken"]},
        files={"table": (name, TABLE, "text/csv")},
        timeout=30,
    )


def test_broker_down_pages_render_and_import_is_kept_as_queued(live_server, make_user, celery_on_private_redis):
    redis_server = celery_on_private_redis
    make_user("erin", "viewer", "experimenter")
    base = live_server.url
    assert "127.0.0.1" in base
    session = logged_in_session(base, "erin")

    # Broker up: the import is queued and its message sits in Redis for a worker.
    response = post_import(session, base, "while-up.csv")
    assert response.status_code == 200
    up = AlloyImport.objects.get(original_name="while-up.csv")
    assert up.status == AlloyImport.Status.QUEUED
    assert up.error == ""
    assert redis_server.llen("celery") == 1

    redis_server.stop()

    # Broker down: reading pages does not need it.
    for path in ("/lab/alloys/", "/lab/samples/", "/lab/imports/"):
        assert session.get(f"{base}{path}", timeout=10).status_code == 200, path

    # Starting long work says the queue is unavailable; the upload is kept, queued, with the reason.
    response = post_import(session, base, "while-down.csv")
    assert response.status_code == 200
    assert re.search(r"task queue is unavailable", response.text, re.IGNORECASE)
    assert response.url.rstrip("/").split("/")[-1].isdigit(), response.url  # landed on the import's page
    down = AlloyImport.objects.get(original_name="while-down.csv")
    assert down.status == AlloyImport.Status.QUEUED
    assert down.error.startswith("The task queue is unavailable")
    assert down.upload.read() == TABLE
    # The earlier import is untouched.
    up.refresh_from_db()
    assert (up.status, up.error) == (AlloyImport.Status.QUEUED, "")

    # Its page says so too, and offers to queue it again.
    page = session.get(f"{base}/lab/imports/{down.pk}/", timeout=10)
    assert page.status_code == 200
    assert "unavailable" in page.text


def test_broker_down_mining_batch_is_kept_queued_with_the_reason(live_server, make_user, celery_on_private_redis):
    from mining import services as mining_services
    from mining.models import ExtractionBatch

    redis_server = celery_on_private_redis
    reviewer = make_user("rhys", "viewer", "reviewer")
    source = mining_services.create_source(
        text="Cu47Zr45Al8 has Tg = 700 K and Tx = 775 K.", title="Fault paper", year=2021, user=reviewer
    )
    base = live_server.url
    session = logged_in_session(base, "rhys")

    def start_batch(name):
        session.get(f"{base}/mining/batches/new/", timeout=10).raise_for_status()
        return session.post(
            f"{base}/mining/batches/new/",
            data={"csrfmiddlewaretoken": session.cookies["csrftoken"], "name": name, "sources": [source.pk],
                  "extractor": "rules"},
            timeout=30,
        )

    response = start_batch("while up")
    assert response.status_code == 200
    up = ExtractionBatch.objects.get(name="while up")
    assert (up.status, up.error) == (ExtractionBatch.Status.QUEUED, "")
    assert redis_server.llen("celery") == 1

    redis_server.stop()
    assert session.get(f"{base}/mining/batches/", timeout=10).status_code == 200
    response = start_batch("while down")
    assert response.status_code == 200
    assert "The task queue is unavailable" in response.text
    down = ExtractionBatch.objects.get(name="while down")
    assert down.status == ExtractionBatch.Status.QUEUED
    assert down.error.startswith("The task queue is unavailable")
    assert list(down.sources.values_list("pk", flat=True)) == [source.pk]


def test_broker_down_design_generation_is_kept_queued_with_the_reason(live_server, make_user, celery_on_private_redis):
    from design import services as design_services
    from django.utils import timezone

    from design.models import GenerationRound
    from training.models import ModelVersion

    redis_server = celery_on_private_redis
    approver = make_user("ada", "viewer", "approver")
    # Generation only needs an active version to be queued; the worker (not running here) would load it.
    ModelVersion.objects.create(
        artefact_dir="not-trained-here", snapshot_hash="0" * 64, snapshot_taken_at=timezone.now(),
        status=ModelVersion.Status.ACTIVE,
    )
    campaign = design_services.create_campaign(owner=approver, name="Fault campaign", targets={"tg_k": {"min": 650}})
    base = live_server.url
    session = logged_in_session(base, "ada")

    def generate():
        session.get(f"{base}/design/{campaign.pk}/", timeout=10)
        return session.post(f"{base}/design/{campaign.pk}/generate/",
                            data={"csrfmiddlewaretoken": session.cookies["csrftoken"]}, timeout=30)

    response = generate()
    assert response.status_code == 200
    first = GenerationRound.objects.get(campaign=campaign, number=1)
    assert (first.status, first.error) == (GenerationRound.Status.QUEUED, "")
    assert redis_server.llen("celery") == 1
    GenerationRound.objects.filter(pk=first.pk).update(status=GenerationRound.Status.DONE)  # as if a worker ran it

    redis_server.stop()
    assert session.get(f"{base}/design/", timeout=10).status_code == 200
    response = generate()
    assert response.status_code == 200
    assert "task queue is unavailable" in response.text
    second = GenerationRound.objects.get(campaign=campaign, number=2)
    assert second.status == GenerationRound.Status.QUEUED
    assert second.error.startswith("The task queue is unavailable")


def test_a_restarted_broker_takes_the_next_job(make_user, celery_on_private_redis):
    """The pooled connection dies with the old Redis process; the next job must still be sent
    (the client reconnects), not reported as "queue unavailable" although the broker is back."""
    from django.core.files.base import ContentFile

    from lab.importing import enqueue_import

    redis_server = celery_on_private_redis
    user = make_user("erin", "viewer", "experimenter")

    def queued_import(name):
        job = AlloyImport(original_name=name, created_by=user)
        job.upload.save(name, ContentFile(TABLE), save=False)
        job.save()
        with transaction.atomic():
            enqueue_import(job)
        job.refresh_from_db()
        return job

    assert queued_import("before.csv").error == "" and redis_server.llen("celery") == 1
    redis_server.stop()
    redis_server.start()  # a fresh, empty Redis on the same port
    after = queued_import("after.csv")
    assert after.status == AlloyImport.Status.QUEUED and after.error == ""
    assert redis_server.llen("celery") == 1
