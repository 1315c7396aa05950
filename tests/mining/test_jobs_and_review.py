"""PDF reading and bulk approval as jobs (issue 16); flags recomputed when a related record is
rejected or edited, and the record editor in K or °C (issue 18)."""

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from core import jobs
from lab.models import PropertyValue
from mining import services
from mining.models import BulkApproval, ExtractedRecord, LiteratureSource, PdfReading
from tests.celery_broker import use_broker
from tests.security.test_pdf_limits import make_pdf, text_page

pytestmark = pytest.mark.django_db

# Two Zr57Cu28Al10Ni5 rows that conflict (Tg 683 vs 640 K) and a clean Cu50Zr50 row.
ROWS = ("composition,Tg_K,Tx_K,Tl_K,snippet\n"
        "Zr57Cu28Al10Ni5,683,763,1118,Zr57Cu28Al10Ni5: Tg 683 K Tx 763 K Tl 1118 K\n"
        "Zr57Cu28Al10Ni5,640,763,1118,Zr57Cu28Al10Ni5: Tg 640 K Tx 763 K Tl 1118 K\n"
        "Cu50Zr50,675,720,1200,Cu50Zr50: Tg 675 K Tx 720 K Tl 1200 K\n")


@pytest.fixture
def conflicting(tmp_path):
    path = tmp_path / "rows.csv"
    path.write_text(ROWS)
    summary = services.import_extracted(path, batch_name="conflicts")
    a, b = ExtractedRecord.objects.filter(composition_raw="Zr57Cu28Al10Ni5").order_by("id")
    return summary["batch_id"], a, b


# ---------------------------------------------------------------- flags follow the records they name


def test_rejecting_a_record_clears_the_conflict_flag_pointing_at_it(conflicting, reviewer):
    _, a, b = conflicting
    assert "conflict" in b.flag_names and f"record {a.pk}" in b.flags[0]["reason"]
    services.reject_record(a.pk, reviewer, "misread: 683 is another alloy's Tg")
    b.refresh_from_db()
    assert b.flags == [] and b.flag_count == 0 and b.flag_index == ""
    # It is now clean and complete: bulk approval takes it.
    assert services.bulk_approve_clean(b.batch_id, reviewer)["approved"] == 2


def test_a_record_rejected_by_mistake_goes_back_to_review_and_its_flags_return(conflicting, reviewer, reviewer_client, viewer):
    from tests.api.conftest import token_client

    _, a, b = conflicting
    services.reject_record(a.pk, reviewer, "wrong alloy")
    page = reviewer_client.get(reverse("mining:record_detail", args=[a.pk])).content.decode()
    assert 'id="reopen-btn"' in page
    response = reviewer_client.post(reverse("mining:record_reopen", args=[a.pk]), follow=True)
    assert f"Record {a.pk} is back in the review queue." in response.content.decode()
    a.refresh_from_db()
    b.refresh_from_db()
    assert (a.status, a.reviewer, a.reject_reason) == ("pending", None, "")
    assert "conflict" in a.flag_names and "conflict" in b.flag_names and f"record {a.pk}" in b.flags[0]["reason"]
    with pytest.raises(services.MiningError, match="is pending review; only a rejected record goes back"):
        services.reopen_record(a.pk, reviewer)
    # The API: the same action, the same role.
    services.reject_record(a.pk, reviewer, "wrong alloy")
    assert token_client(viewer).post(f"/api/extracted-records/{a.pk}/reopen/").status_code == 403
    reopened = token_client(reviewer).post(f"/api/extracted-records/{a.pk}/reopen/")
    assert reopened.status_code == 200 and reopened.json()["status"] == "pending"
    again = token_client(reviewer).post(f"/api/extracted-records/{a.pk}/reopen/")
    assert again.status_code == 400 and "only a rejected record" in again.json()["error"]


def test_editing_a_record_recomputes_the_flags_of_the_records_of_its_alloy(conflicting, reviewer):
    _, a, b = conflicting
    services.update_record(a.pk, reviewer, {"tg_k": 641.0})  # now agrees with b within 10 K
    b.refresh_from_db()
    assert b.flag_names == ["duplicate"] and f"record {a.pk}" in b.flags[0]["reason"]
    services.update_record(a.pk, reviewer, {"composition_raw": "Cu46Zr46Al8"})  # another alloy now
    b.refresh_from_db()
    assert b.flags == []


def test_approving_a_record_points_the_flags_at_the_alloy_value(conflicting, reviewer):
    _, a, b = conflicting
    assert "conflict" in a.flag_names  # a person approves it after looking
    value_before = PropertyValue.objects.count()
    services.approve_record(a.pk, reviewer)
    b.refresh_from_db()
    assert PropertyValue.objects.count() == value_before + 1
    assert "conflict" in b.flag_names and "alloy Zr57Cu28Al10Ni5 value" in b.flags[0]["reason"]
    assert f"record {a.pk}" not in b.flags[0]["reason"]


# ---------------------------------------------------------------- bulk approval as a job


def test_bulk_approval_is_a_job_with_a_summary_and_one_at_a_time(conflicting, reviewer):
    batch_id, a, b = conflicting
    job, created = services.request_bulk_approval(batch_id, user=reviewer)
    again, created_again = services.request_bulk_approval(batch_id, user=reviewer)
    assert created and not created_again and again.pk == job.pk and job.status == "queued"
    assert ExtractedRecord.objects.filter(status="approved").count() == 0  # nothing in the request
    done = services.run_bulk_approval(job.pk)
    assert done.status == "done" and (done.approved, done.alloys_created, done.skipped) == (1, 1, 2)
    assert done.skipped_reasons == {"flagged: conflict": 2}
    assert done.message == "Approved 1 clean records (1 new alloys); 2 left for review: 2 flagged: conflict."
    assert services.run_bulk_approval(job.pk).approved == 1  # delivered again: runs nothing
    later, created = services.request_bulk_approval(batch_id, user=reviewer)
    assert created and services.run_bulk_approval(later.pk).approved == 0
    assert PropertyValue.objects.count() == 1


def test_a_rerun_after_a_crash_approves_nothing_twice(tmp_path, reviewer, monkeypatch):
    path = tmp_path / "rows.csv"
    lines = ["composition,Tg_K,Tx_K,Tl_K,snippet"]
    for i in range(5):
        comp = f"Cu{50 - i}Zr{50 + i}"
        lines.append(f"{comp},{670 + i},{720 + i},{1200 + i},{comp}: Tg {670 + i} K Tx {720 + i} K Tl {1200 + i} K")
    path.write_text("\n".join(lines) + "\n")
    batch_id = services.import_extracted(path, batch_name="crash")["batch_id"]
    monkeypatch.setattr(services, "BULK_CHUNK", 2)
    calls = {"n": 0}
    real = services._approve_chunk

    def dies_after_two_chunks(*args):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("worker killed")
        return real(*args)

    monkeypatch.setattr(services, "_approve_chunk", dies_after_two_chunks)
    job, _ = services.request_bulk_approval(batch_id, user=reviewer)
    failed = services.run_bulk_approval(job.pk)
    assert failed.status == "failed" and "worker killed" in failed.error and failed.approved == 4  # two chunks kept
    monkeypatch.setattr(services, "_approve_chunk", real)
    retried, _ = jobs.retry(failed)
    done = services.run_bulk_approval(retried.pk)
    assert done.status == "done" and done.approved == 5 and done.alloys_created == 5
    assert PropertyValue.objects.count() == 5 and ExtractedRecord.objects.filter(status="approved").count() == 5


def test_bulk_approval_refuses_a_batch_still_running(reviewer):
    source = services.create_source(text="The Cu50Zr50 glass has Tg = 675 K.")
    batch = services.create_batch(name="live", sources=[source], extractor="rules", enqueue=False)
    with pytest.raises(services.MiningError, match="is queued; approve its records once it is done"):
        services.request_bulk_approval(batch.pk, user=reviewer)


def test_bulk_approval_through_the_page_and_the_api(reviewer_client, reviewer, conflicting, django_capture_on_commit_callbacks):
    from tests.api.conftest import token_client

    batch_id, _, _ = conflicting
    with django_capture_on_commit_callbacks(execute=False):  # queued, not run: the page shows its progress
        reviewer_client.post(reverse("mining:batch_bulk_approve", args=[batch_id]))
    job = BulkApproval.objects.get()
    page = reviewer_client.get(reverse("mining:batch_detail", args=[batch_id])).content.decode()
    assert f'data-job-url="/api/jobs/bulk-approvals/{job.pk}/"' in page and "Approve all clean records (" not in page
    api = token_client(reviewer)
    with django_capture_on_commit_callbacks(execute=False):
        response = api.post(f"/api/extraction-batches/{batch_id}/approve-clean/")
    assert response.status_code == 200 and response.json()["bulk_approval"]["id"] == job.pk  # the one under way
    assert response.json()["outcome"] == "An approval of this batch is already under way."
    status = api.get(f"/api/jobs/bulk-approvals/{job.pk}/").json()
    assert status["status"] == "queued" and status["can_cancel"]


# ---------------------------------------------------------------- PDF reading on the worker


def test_pdf_reading_reports_pages_and_a_batch_waits_for_it(reviewer_client, django_capture_on_commit_callbacks):
    data = make_pdf([text_page("The Zr57Cu28Al10Ni5 alloy shows Tg = 683 K."), text_page("Tx = 763 K.")])
    with django_capture_on_commit_callbacks(execute=False) as sent:
        response = reviewer_client.post(reverse("mining:source_create"), {"file": SimpleUploadedFile("p.pdf", data)}, follow=True)
    source = LiteratureSource.objects.get()
    assert len(sent) == 1 and "its PDF is being read" in response.content.decode()
    page = response.content.decode()
    assert "reading the PDF…" in page and f'data-job-url="/api/jobs/pdf-readings/{source.pdf_reading.pk}/"' in page
    form = reviewer_client.post(reverse("mining:batch_create"), {"name": "early", "sources": [source.pk], "extractor": "rules"})
    assert form.status_code == 200 and "not ready" in form.content.decode() and "reading the PDF" in form.content.decode()
    with use_broker(eager=True):
        sent[0]()  # the message reaches the worker
    reading = PdfReading.objects.get()
    assert reading.status == "done" and reading.pages_total == reading.pages_read == 2
    page = reviewer_client.get(source.get_absolute_url()).content.decode()
    assert "2 pages read" in page and "data-job-url" not in page
    choices = reviewer_client.get(reverse("mining:batch_create")).content.decode()
    assert 'type="checkbox"' in choices and "#%d p.pdf" % source.pk in choices and "not ready" not in choices


def test_a_pdf_too_long_is_refused_on_the_worker_naming_the_limit(settings):
    settings.GLASSLOOP_PDF_MAX_PAGES = 1
    source = services.create_source(data=make_pdf([text_page("a"), text_page("b")]), filename="long.pdf")
    reading = services.read_pdf(source.pdf_reading.pk)
    source.refresh_from_db()
    assert reading.status == "failed" and not reading.can_cancel and reading.can_retry
    assert source.text_status_display == ("refused: The PDF has 2 pages; at most 1 are read (GLASSLOOP_PDF_MAX_PAGES). "
                                          "Add the pages with the data, or paste their text.")
    settings.GLASSLOOP_PDF_MAX_PAGES = 5  # raised: Retry reads it
    retried, _ = jobs.retry(reading)
    assert services.read_pdf(retried.pk).status == "done"
    source.refresh_from_db()
    assert source.text_status == "ready" and source.text.startswith("a")


# ---------------------------------------------------------------- the record editor in K or °C


def test_the_editor_takes_celsius_and_echoes_it_in_errors(reviewer_client, conflicting):
    _, _, b = conflicting
    url = reverse("mining:record_detail", args=[b.pk])
    page = reviewer_client.get(url).content.decode()
    assert 'name="temperature_unit"' in page and "mining-record.js" in page and "<script>" not in page
    fields = {"composition_raw": "Zr57Cu28Al10Ni5", "composition_formula": "", "temperature_unit": "C",
              "tg_k": "366.85", "tx_k": "489.85", "tl_k": "844.85", "dmax_mm": "", "heating_rate_k_min": ""}
    response = reviewer_client.post(url, {**fields, "action": "save"})
    b.refresh_from_db()
    assert response.status_code == 302 and (round(b.tg_k, 2), round(b.tx_k, 2), round(b.tl_k, 2)) == (640.0, 763.0, 1118.0)
    # Tx below Tg, typed in °C: refused, saved and flagged, and the page keeps what was typed, in °C.
    bad = {**fields, "tg_k": "500", "tx_k": "450", "action": "approve"}
    response = reviewer_client.post(url, bad)
    body = response.content.decode()
    assert response.status_code == 200 and "Cannot approve" in body and "You typed Tg 500 °C, Tx 450 °C, Tl 844.85 °C" in body
    assert 'value="500"' in body and re.search(r'value="C"[^>]* checked', body) and not re.search(r'value="K"[^>]* checked', body)
    b.refresh_from_db()
    assert b.status == "pending" and round(b.tg_k, 2) == 773.15 and "order" in b.flag_names
    below = reviewer_client.post(url, {**fields, "tg_k": "-300", "action": "save"})
    assert below.status_code == 200 and "-300 °C is below absolute zero." in below.content.decode()
