"""Mining pages through the test client: roles, review actions, batch page and status."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from lab.models import PropertyValue
from mining import services
from mining.models import ExtractedRecord, ExtractionBatch, LiteratureSource

TEXT = ("The Zr57Cu28Al10Ni5 alloy shows Tg = 683 K and Tx = 763 K. Its liquidus temperature is 1118 K.\n\n"
        "Alloy Tg Tx Tl\nPd41Ni41P18 700 690 915\nTI40Cu60 700 750 1200\n")


@pytest.fixture
def batch(db):
    source = services.create_source(text=TEXT, doi="10.1000/view.1", title="View paper")
    batch = services.create_batch(name="vb", sources=[source], extractor="rules", enqueue=False)
    services.run_batch(batch.pk)
    return batch


def test_anonymous_is_sent_to_login(client, db):
    response = client.get(reverse("mining:review_queue"))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_viewer_reads_but_cannot_act(viewer_client, batch):
    record = batch.records.get(composition_raw="Zr57Cu28Al10Ni5")
    assert viewer_client.get(reverse("mining:review_queue")).status_code == 200
    assert viewer_client.get(reverse("mining:record_detail", args=[record.pk])).status_code == 200
    assert viewer_client.get(reverse("mining:batch_detail", args=[batch.pk])).status_code == 200
    assert viewer_client.post(reverse("mining:record_approve", args=[record.pk])).status_code == 403
    assert viewer_client.post(reverse("mining:record_detail", args=[record.pk]), {"action": "approve", "composition_raw": "x"}).status_code == 403
    assert viewer_client.post(reverse("mining:batch_bulk_approve", args=[batch.pk])).status_code == 403
    assert viewer_client.get(reverse("mining:source_create")).status_code == 403
    assert ExtractedRecord.objects.filter(status="pending").count() == 3


def test_queue_lists_flagged_first_with_highlighted_snippet_and_filters(reviewer_client, batch):
    response = reviewer_client.get(reverse("mining:review_queue"))
    body = response.content.decode()
    ids = [r.pk for r in response.context["page"]]
    flagged = [r.pk for r in batch.records.order_by("id") if r.flags]
    assert ids[: len(flagged)] == flagged or set(ids[: len(flagged)]) == set(flagged)
    assert "<mark>683</mark>" in body and "<mark>Zr57Cu28Al10Ni5</mark>" in body
    assert "did you mean" in body  # the parser's reason is shown
    only_order = reviewer_client.get(reverse("mining:review_queue"), {"flag": "order"}).context["page"]
    assert [r.composition_raw for r in only_order] == ["Pd41Ni41P18"]
    by_element = reviewer_client.get(reverse("mining:review_queue"), {"element": "Pd"}).context["page"]
    assert [r.composition_raw for r in by_element] == ["Pd41Ni41P18"]
    clean = reviewer_client.get(reverse("mining:review_queue"), {"flag": "none", "batch": batch.pk}).context["page"]
    assert [r.composition_raw for r in clean] == ["Zr57Cu28Al10Ni5"]


def test_approve_from_queue_then_second_approve_is_refused(reviewer_client, batch, reviewer):
    record = batch.records.get(composition_raw="Zr57Cu28Al10Ni5")
    url = reverse("mining:record_approve", args=[record.pk])
    response = reviewer_client.post(url, {"next": reverse("mining:review_queue")}, follow=True)
    assert "approved" in response.content.decode()
    record.refresh_from_db()
    assert record.status == "approved" and record.reviewer == reviewer and record.property_value.reference.doi == "10.1000/view.1"
    response = reviewer_client.post(url, follow=True)
    assert "already approved by rhys" in response.content.decode()
    assert PropertyValue.objects.count() == 1


def test_edit_then_approve_and_unparseable_refused(reviewer_client, batch):
    record = batch.records.get(composition_raw="TI40Cu60")
    url = reverse("mining:record_detail", args=[record.pk])
    form = {"composition_raw": "TI40Cu60", "composition_formula": "", "tg_k": 700, "tx_k": 750, "tl_k": 1200}
    response = reviewer_client.post(url, dict(form, action="approve"), follow=True)
    assert "Cannot approve" in response.content.decode()
    assert ExtractedRecord.objects.get(pk=record.pk).status == "pending"
    response = reviewer_client.post(url, dict(form, composition_raw="Ti40Cu60", action="approve"))
    assert response.status_code == 302
    record.refresh_from_db()
    assert record.status == "approved" and record.alloy.formula == "Cu60Ti40"


def test_save_edits_revalidates(reviewer_client, batch):
    record = batch.records.get(composition_raw="Pd41Ni41P18")
    assert "order" in record.flag_names
    url = reverse("mining:record_detail", args=[record.pk])
    reviewer_client.post(url, {"composition_raw": "Pd41Ni41P18", "composition_formula": record.composition_formula,
                               "tg_k": 585, "tx_k": 690, "tl_k": 915, "action": "save"})
    record.refresh_from_db()
    # The order problem is gone; the corrected Tg (585 K) is not what the snippet says (700).
    assert record.status == "pending" and record.flag_names == ["ungrounded"] and record.tg_k == 585


def test_reject_requires_reason(reviewer_client, batch):
    record = batch.records.get(composition_raw="Pd41Ni41P18")
    url = reverse("mining:record_reject", args=[record.pk])
    reviewer_client.post(url, {"reason": ""})
    assert ExtractedRecord.objects.get(pk=record.pk).status == "pending"
    reviewer_client.post(url, {"reason": "Tg above Tx: misread table"})
    record.refresh_from_db()
    assert record.status == "rejected" and record.reject_reason == "Tg above Tx: misread table"


def test_bulk_approve_clean_and_batch_status(reviewer_client, batch, django_capture_on_commit_callbacks):
    from tests.celery_broker import use_broker

    with use_broker(eager=True), django_capture_on_commit_callbacks(execute=True):
        response = reviewer_client.post(reverse("mining:batch_bulk_approve", args=[batch.pk]), follow=True)
    assert "Approving the clean records in the background" in response.content.decode()
    page = reviewer_client.get(reverse("mining:batch_detail", args=[batch.pk])).content.decode()
    assert 'id="bulk-approval" data-status="done"' in page
    assert "Approved 1 clean records (1 new alloys); 2 left for review: 1 composition not parsed;" in page
    status = reviewer_client.get(reverse("mining:batch_status", args=[batch.pk])).json()
    assert status["status"] == "done" and status["sources_done"] == status["sources_total"] == 1
    assert status["counts"]["status"] == {"pending": 2, "approved": 1, "rejected": 0}
    assert status["counts"]["flags"] == {"unparseable": 1, "order": 1}
    page = reviewer_client.get(reverse("mining:batch_detail", args=[batch.pk])).content.decode()
    assert "status.json" in page and 'data-finished="1"' in page  # finished: the script does not poll


def test_add_source_and_start_batch_via_forms(reviewer_client, db, django_capture_on_commit_callbacks, settings):
    from tests.celery_broker import use_broker

    with use_broker(eager=True):
        response = reviewer_client.post(reverse("mining:source_create"), {
            "doi": "doi:10.1000/FORM.1", "file": SimpleUploadedFile("p.txt", TEXT.encode()), "title": "Form paper"})
        source = LiteratureSource.objects.get()
        assert response.status_code == 302 and source.doi == "10.1000/form.1"
        again = reviewer_client.post(reverse("mining:source_create"), {"file": SimpleUploadedFile("q.txt", TEXT.encode())}, follow=True)
        assert "already stored as source" in again.content.decode()
        with django_capture_on_commit_callbacks(execute=True):
            response = reviewer_client.post(reverse("mining:batch_create"), {"name": "from form", "sources": [source.pk], "extractor": "rules"})
        batch = ExtractionBatch.objects.get(name="from form")
        assert response.status_code == 302 and batch.status == "done" and batch.records.count() == 3
        page = reviewer_client.get(reverse("mining:batch_detail", args=[batch.pk])).content.decode()
        assert "Approve all clean records (1)" in page


@pytest.mark.django_db(transaction=True)
def test_queue_unavailable_message(client, reviewer):
    # Real commits, so the on_commit enqueue runs inside the request as in production.
    from tests.celery_broker import dead_broker_url, use_broker

    client.force_login(reviewer)
    source = services.create_source(text=TEXT)
    with use_broker(dead_broker_url()):
        response = client.post(reverse("mining:batch_create"), {"name": "nq", "sources": [source.pk], "extractor": "rules"}, follow=True)
        body = response.content.decode()
        assert "The task queue is unavailable" in body
        batch = ExtractionBatch.objects.get(name="nq")
        assert batch.status == "queued"
        response = client.post(reverse("mining:batch_rerun", args=[batch.pk]), follow=True)
        assert "The task queue is unavailable" in response.content.decode()


def test_every_page_renders(reviewer_client, batch):
    record = batch.records.first()
    source = batch.sources.get()
    for url in (reverse("mining:source_list"), reverse("mining:source_create"), reverse("mining:source_detail", args=[source.pk]),
                reverse("mining:batch_list"), reverse("mining:batch_create"), reverse("mining:batch_detail", args=[batch.pk]),
                reverse("mining:review_queue"), reverse("mining:record_detail", args=[record.pk])):
        assert reviewer_client.get(url).status_code == 200, url


def test_queue_shows_why_a_record_is_not_bulk_approvable_derived_values_and_the_source_around_the_snippet(reviewer_client, db):
    text = ("Introduction about glasses. " * 5 + "The Zr57Cu28Al10Ni5 alloy has Tg = 680 K and ΔTx = 85 K; Tl = 1118 K. "
            + "Later we discuss more things. " * 5)
    source = services.create_source(text=text, doi="10.1000/view.2")
    batch = services.create_batch(name="vd", sources=[source], extractor="rules", enqueue=False)
    snippet = "The Zr57Cu28Al10Ni5 alloy has Tg = 680 K and ΔTx = 85 K; Tl = 1118 K."
    derived = ExtractedRecord.objects.create(
        batch=batch, source=source, fingerprint="a", composition_raw="Zr57Cu28Al10Ni5", tg_k=680, tx_k=765, tl_k=1118,
        derived={"tx": "Tx = Tg + ΔTx = 680 K + 85 K"}, snippet=snippet,
    )
    ExtractedRecord.objects.create(batch=batch, source=source, fingerprint="b", composition_raw="Cu50Hf50", tg_k=680,
                                   snippet="Cu50Hf50 was also cast.")
    services.validate_batch(batch.pk)
    body = reviewer_client.get(reverse("mining:review_queue"), {"batch": batch.pk}).content.decode()
    assert 'title="Tx = Tg + ΔTx = 680 K + 85 K">derived</small>' in body
    assert "Approved by “approve clean”." in body  # the derived record is complete and grounded
    assert "Not approved by “approve clean”: no Tx, Tl (incomplete); flagged: ungrounded." in body
    assert '<details class="source-context">' in body and "Introduction about glasses." in body
    detail = reviewer_client.get(reverse("mining:record_detail", args=[derived.pk])).content.decode()
    assert "Later we discuss more things." in detail and "worked out by the extractor" in detail
    assert "<mark>85</mark>" in detail  # the derivation's parts are marked in the snippet
