"""The mining part of the loop through the API: sources, batches, review (mining.api).

The same services, forms and roles as the mining pages: a reviewer adds sources, runs batches
and reviews records; a viewer reads; a refusal comes back as JSON with the page's message.
"""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from lab.models import PropertyValue
from mining import services
from mining.forms import BatchForm, RecordEditForm, RejectForm, SourceForm
from mining.models import ExtractedRecord, ExtractionBatch, LiteratureSource
from mining.serializers import BatchCreateSerializer, RecordEditSerializer, RejectSerializer, SourceCreateSerializer
from tests.celery_broker import use_broker

from .conftest import token_client

pytestmark = pytest.mark.django_db

SOURCES = "/api/literature-sources/"
BATCHES = "/api/extraction-batches/"
RECORDS = "/api/extracted-records/"

# Four records for the rules extractor: one clean and complete (Zr57…), one in °C without Tl
# (Cu47…), one with Tx < Tg (Pd…: flagged "order"), one the parser refuses (TI40Cu60).
TEXT = (
    "The Zr57Cu28Al10Ni5 alloy shows Tg = 683 K and Tx = 763 K. Its liquidus temperature is 1118 K.\n\n"
    "The Cu47Zr45Al8 glass has Tg = 432 °C and Tx = 505 °C.\n\n"
    "Alloy Tg Tx Tl\nPd41Ni41P18 700 690 915\nTI40Cu60 700 750 1200\n"
)


@pytest.fixture
def reviewer_api(reviewer):
    return token_client(reviewer)


@pytest.fixture
def batch(db):
    source = services.create_source(text=TEXT, doi="10.1000/api.1", title="API paper")
    batch = services.create_batch(name="api batch", sources=[source], extractor="rules", enqueue=False)
    services.run_batch(batch.pk)
    return batch


def record_of(batch, composition):
    return batch.records.get(composition_raw=composition)


def snapshot(record):
    record.refresh_from_db()
    fields = ("composition_raw", "composition_edited", "tg_k", "tx_k", "tl_k", "dmax_mm", "heating_rate_k_min",
              "status", "flags", "reviewer_id", "property_value_id")  # fmt: skip
    return {name: getattr(record, name) for name in fields} | {"history": record.history.count()}


# ---------------------------------------------------------------- the loop, end to end


def test_a_reviewer_drives_a_batch_end_to_end(reviewer_api, reviewer, django_capture_on_commit_callbacks):
    # A source from a text file (multipart, as the source page's form).
    response = reviewer_api.post(
        SOURCES, {"doi": "doi:10.1000/API.E2E", "title": "End to end", "file": SimpleUploadedFile("paper.txt", TEXT.encode())},
        format="multipart",
    )  # fmt: skip
    assert response.status_code == 201, response.content
    source = response.json()
    assert source["doi"] == "10.1000/api.e2e" and source["original_name"] == "paper.txt" and source["has_file"]
    assert source["text"] == TEXT and source["text_chars"] == len(TEXT) and source["created_by"] == "rhys"
    again = reviewer_api.post(SOURCES, {"file": SimpleUploadedFile("copy.txt", TEXT.encode())}, format="multipart")
    assert again.status_code == 409 and again.json()["source"] == source["id"]
    assert "already stored as source" in again.json()["error"] and LiteratureSource.objects.count() == 1

    # A batch over it: created, queued once committed, run (eagerly here) by the worker's task.
    with use_broker(eager=True), django_capture_on_commit_callbacks(execute=True):
        response = reviewer_api.post(BATCHES, {"name": "e2e", "sources": [source["id"]], "extractor": "rules"})
    assert response.status_code == 201, response.content
    created = response.json()
    batch_id = created["batch"]["id"]
    assert created["progress_url"] == created["batch"]["job"]["status_url"]  # at the top, as runs and rounds
    progress = created["batch"]["job"]["status_url"]
    assert progress.endswith(f"/api/jobs/extraction-batches/{batch_id}/")
    assert created["job"]["kind"] == "extraction-batches" and created["outcome"] == "Batch e2e queued."
    assert created["batch"]["job"]["cancel_url"].endswith(f"/api/jobs/extraction-batches/{batch_id}/cancel/")
    job = reviewer_api.get(progress).json()
    assert job["status"] == "done" and job["finished"] and job["progress"] == 1.0
    batch = reviewer_api.get(f"{BATCHES}{batch_id}/").json()
    assert batch["status"] == "done" and batch["sources_done"] == batch["sources_total"] == 1
    assert batch["records_found"] == 4 and batch["n_pending"] == 4 and batch["counts"]["clean"] == 2  # unflagged

    # The queue: every record with its snippet and flags, flagged first.
    listed = reviewer_api.get(RECORDS, {"batch": batch_id}).json()
    assert listed["count"] == 4
    by_composition = {r["composition_raw"]: r for r in listed["results"]}
    assert [r["flag_count"] for r in listed["results"]] == sorted((r["flag_count"] for r in listed["results"]), reverse=True)
    assert "order" in by_composition["Pd41Ni41P18"]["flag_names"]
    zr = by_composition["Zr57Cu28Al10Ni5"]
    assert zr["flags"] == [] and zr["bulk_blockers"] == [] and "Tg = 683 K" in zr["snippet"]
    assert zr["source_context"]["passage"] in TEXT and zr["source"] == source["id"]
    cu = by_composition["Cu47Zr45Al8"]
    assert cu["tg_k"] == pytest.approx(705.15) and cu["original_values"]["tg"] == {"value": 432.0, "unit": "C"}
    assert cu["tl_k"] is None and "no Tl (incomplete)" in cu["bulk_blockers"]

    # Edit one: Tl given in °C is stored in K; the rest keeps its values; re-validated, not approved.
    response = reviewer_api.patch(f"{RECORDS}{cu['id']}/", {"tl_k": 850, "temperature_unit": "C"})
    assert response.status_code == 200, response.content
    edited = response.json()
    assert edited["tl_k"] == pytest.approx(1123.15) and edited["tg_k"] == pytest.approx(705.15)
    assert edited["status"] == "pending" and edited["composition_raw"] == "Cu47Zr45Al8"
    assert "ungrounded" in edited["flag_names"]  # 1123 K is not in the snippet
    assert edited["history"][0]["user"] == "rhys"

    # Approve it (one by one, a flagged record may be approved by a person).
    response = reviewer_api.post(f"{RECORDS}{cu['id']}/approve/")
    assert response.status_code == 200, response.content
    approved = response.json()
    assert approved["status"] == "approved" and approved["reviewer"] == "rhys" and approved["alloy"]
    value = PropertyValue.objects.get(pk=approved["property_value"])
    assert value.origin == "literature" and value.tl_k == pytest.approx(1123.15) and value.tg_k == pytest.approx(705.15)

    # Reject one, with a reason (without one it is refused).
    ti = by_composition["TI40Cu60"]
    refused = reviewer_api.post(f"{RECORDS}{ti['id']}/reject/", {"reason": " "})
    assert refused.status_code == 400 and refused.json()["detail"] == {"reason": ["Say why the record is rejected."]}
    response = reviewer_api.post(f"{RECORDS}{ti['id']}/reject/", {"reason": "not an alloy of this paper"})
    assert response.status_code == 200
    assert response.json()["status"] == "rejected" and response.json()["reject_reason"] == "not an alloy of this paper"

    # Bulk approve, a job (202 and its progress URL; run eagerly here): only the complete,
    # unflagged record; Pd (order) stays for a person.
    with use_broker(eager=True), django_capture_on_commit_callbacks(execute=True):
        response = reviewer_api.post(f"{BATCHES}{batch_id}/approve-clean/")
    assert response.status_code == 202, response.content
    queued = response.json()["bulk_approval"]
    assert queued["job"]["status_url"].endswith(f"/api/jobs/bulk-approvals/{queued['id']}/")
    job = reviewer_api.get(queued["job"]["status_url"]).json()
    assert job["status"] == "done" and job["kind"] == "bulk-approvals"
    assert job["message"] == "Approved 1 clean records (1 new alloys); 1 left for review: 1 flagged: order."
    result = reviewer_api.get(f"{BATCHES}{batch_id}/").json()
    approval = result["last_bulk_approval"]
    assert (approval["approved"], approval["alloys_created"], approval["skipped"]) == (1, 1, 1)
    assert approval["skipped_reasons"] == {"flagged: order": 1}
    assert result["counts"]["status"] == {"pending": 1, "approved": 2, "rejected": 1}
    assert ExtractedRecord.objects.get(pk=zr["id"]).status == "approved"
    assert ExtractedRecord.objects.get(composition_raw="Pd41Ni41P18").status == "pending"
    assert PropertyValue.objects.filter(origin="literature").count() == 2


def test_rerun_of_one_source_keeps_reviewed_records(reviewer_api, batch, reviewer, django_capture_on_commit_callbacks):
    zr = record_of(batch, "Zr57Cu28Al10Ni5")
    services.approve_record(zr.pk, reviewer)
    source = batch.sources.get()
    with use_broker(eager=True), django_capture_on_commit_callbacks(execute=True):
        response = reviewer_api.post(f"{BATCHES}{batch.pk}/rerun/", {"sources": [source.pk]})
    assert response.status_code == 200, response.content
    assert response.json()["outcome"] == "Batch api batch queued again."
    batch.refresh_from_db()
    assert batch.status == "done" and batch.only_source_ids == [source.pk] and batch.attempts == 2
    assert batch.records.count() == 4 and ExtractedRecord.objects.get(pk=zr.pk).status == "approved"
    imported = services.import_extracted(
        SimpleUploadedFile("t.csv", b"composition,Tg_K,Tx_K,Tl_K\nCu50Zr50,700,760,1200\n"), batch_name="imported"
    )  # fmt: skip
    refused = reviewer_api.post(f"{BATCHES}{imported['batch_id']}/rerun/")
    assert refused.status_code == 400 and "importing its file again" in refused.json()["error"]


def test_batch_and_source_refusals_use_the_pages_messages(reviewer_api, batch):
    source = batch.sources.get()
    response = reviewer_api.post(BATCHES, {"name": "api batch", "sources": [source.pk]})
    assert response.status_code == 400 and response.json()["detail"] == {"name": ["A batch with this name exists."]}
    response = reviewer_api.post(BATCHES, {"name": "new", "sources": [987654]})
    assert response.status_code == 400 and "987654" in response.json()["detail"]["sources"][0]
    response = reviewer_api.post(BATCHES, {"name": "new", "sources": [source.pk], "extractor": "llm:gpt"})
    assert response.status_code == 400 and "extractor" in response.json()["detail"]
    response = reviewer_api.post(SOURCES, {"title": "nothing else"})
    assert response.status_code == 400
    assert response.json()["detail"] == {"non_field_errors": [
        "Give at least one of: a DOI (the paper's metadata and citation), a .txt or .pdf file (its text, for extraction), "
        "or the pasted text."]}
    response = reviewer_api.post(SOURCES, {"doi": "not a doi", "text": "The Cu50Zr50 glass has Tg = 700 K."})
    assert response.status_code == 400 and list(response.json()["detail"]) == ["doi"]
    response = reviewer_api.post(SOURCES, {"doi": "10.1000/api.1"})
    assert response.status_code == 409 and response.json()["source"] == source.pk
    response = reviewer_api.post(SOURCES, {"text": "The Cu50Zr50 glass has Tg = 700 K.", "year": 1850})
    assert response.status_code == 400 and "year" in response.json()["detail"]
    assert ExtractionBatch.objects.count() == 1 and LiteratureSource.objects.count() == 1
    response = reviewer_api.post(SOURCES, {"text": "The Cu50Zr50 glass has Tg = 700 K.", "year": 2001, "title": "Pasted"})
    assert response.status_code == 201 and response.json()["year"] == 2001 and response.json()["doi"] is None


# ---------------------------------------------------------------- roles


def test_a_viewer_reads_but_every_write_is_refused(viewer_api, api, make_user, batch):
    record = record_of(batch, "Zr57Cu28Al10Ni5")
    source = batch.sources.get()
    for url in (SOURCES, f"{SOURCES}{source.pk}/", BATCHES, f"{BATCHES}{batch.pk}/", RECORDS, f"{RECORDS}{record.pk}/"):
        assert viewer_api.get(url).status_code == 200, url
    before = snapshot(record)
    writes = [
        ("post", SOURCES, {"text": "The Cu50Zr50 glass has Tg = 700 K."}),
        ("post", BATCHES, {"name": "viewer's", "sources": [source.pk], "extractor": "rules"}),
        ("post", f"{BATCHES}{batch.pk}/rerun/", {}),
        ("post", f"{BATCHES}{batch.pk}/approve-clean/", {}),
        ("patch", f"{RECORDS}{record.pk}/", {"tg_k": 690}),
        ("post", f"{RECORDS}{record.pk}/approve/", {}),
        ("post", f"{RECORDS}{record.pk}/reject/", {"reason": "no"}),
    ]
    experimenter_api = token_client(make_user("eve", "experimenter"))  # another role is not the reviewer's
    for method, url, data in writes:
        for client in (viewer_api, experimenter_api):
            response = getattr(client, method)(url, data)
            assert response.status_code == 403, (method, url, response.status_code)
            assert response.json()["error"] == "This needs the reviewer role."
        assert getattr(api, method)(url, data).status_code == 401, url
    assert snapshot(record) == before
    assert LiteratureSource.objects.count() == 1 and ExtractionBatch.objects.count() == 1
    assert not PropertyValue.objects.exists()


def test_a_second_review_is_a_conflict(reviewer_api, make_user, batch):
    record = record_of(batch, "Zr57Cu28Al10Ni5")
    assert reviewer_api.post(f"{RECORDS}{record.pk}/approve/").status_code == 200
    other = token_client(make_user("rita", "reviewer"))
    for method, url, data in (("post", f"{RECORDS}{record.pk}/approve/", {}), ("post", f"{RECORDS}{record.pk}/reject/", {"reason": "x"}),
                              ("patch", f"{RECORDS}{record.pk}/", {"tg_k": 690})):
        response = getattr(other, method)(url, data)
        assert response.status_code == 409, (url, response.content)
        assert "was already approved by rhys" in response.json()["error"]
    assert PropertyValue.objects.count() == 1
    assert reviewer_api.post(f"{RECORDS}987654/approve/").status_code == 404


# ---------------------------------------------------------------- edits: the page's validation


@pytest.mark.parametrize(
    "data,field,message",
    [
        ({"dmax_mm": -1}, "dmax_mm", "Ensure this value is greater than or equal to 0."),
        ({"heating_rate_k_min": -5}, "heating_rate_k_min", "Ensure this value is greater than or equal to 0."),
        ({"composition_raw": ""}, "composition_raw", "This field is required."),
        ({"tg_k": "warm"}, "tg_k", "Enter a number."),
        ({"composition_raw": "Zr" * 200}, "composition_raw", "Ensure this value has at most 255 characters (it has 400)."),
        ({"tg_k": 400, "temperature_unit": "F"}, "temperature_unit", '"F" is not a valid choice.'),
    ],
)
def test_a_refused_edit_says_why_and_changes_nothing(reviewer_api, batch, data, field, message):
    record = record_of(batch, "Zr57Cu28Al10Ni5")
    before = snapshot(record)
    response = reviewer_api.patch(f"{RECORDS}{record.pk}/", {**data, "tl_k": 1120})
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["detail"] == {field: [message]} and body["error"] == f"{field}: {message}"
    assert snapshot(record) == before


def test_tg_above_tx_is_saved_flagged_and_then_approval_is_refused(reviewer_api, batch):
    """As on the record page: out-of-order values are saved and flagged; approving refuses them."""
    record = record_of(batch, "Zr57Cu28Al10Ni5")
    response = reviewer_api.patch(f"{RECORDS}{record.pk}/", {"tg_k": 800, "tx_k": 700})
    assert response.status_code == 200
    assert (response.json()["tg_k"], response.json()["tx_k"]) == (800, 700) and "order" in response.json()["flag_names"]
    before = snapshot(record)
    response = reviewer_api.post(f"{RECORDS}{record.pk}/approve/")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error.startswith("Cannot approve:") and "Tg" in error and "Tx" in error
    assert snapshot(record) == before and before["status"] == "pending"
    assert not PropertyValue.objects.exists()


def test_editing_the_parsed_composition_is_a_correction(reviewer_api, batch):
    record = record_of(batch, "TI40Cu60")
    assert "unparseable" in record.flag_names
    response = reviewer_api.patch(f"{RECORDS}{record.pk}/", {"composition_formula": "Ti40Cu60"})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["composition_raw"] == "TI40Cu60" and body["composition_edited"] == "Ti40Cu60"
    assert body["composition_formula"] == "Cu60Ti40" and "unparseable" not in body["flag_names"]


def test_the_api_checks_input_with_the_pages_forms():
    """Every field a page's form takes is in the API's request (and so in the schema)."""
    pairs = [(SourceCreateSerializer, SourceForm), (BatchCreateSerializer, BatchForm), (RecordEditSerializer, RecordEditForm),
             (RejectSerializer, RejectForm)]  # fmt: skip
    for serializer, form in pairs:
        assert set(form.base_fields) <= set(serializer().fields), serializer
        assert serializer.form_class in (form, None)


# ---------------------------------------------------------------- lists: pagination and filters


def ids(response):
    assert response.status_code == 200, response.content
    return [r["id"] for r in response.json()["results"]]


def test_record_pages_and_filters(viewer_api, batch, reviewer):
    other = services.create_batch(
        name="other", sources=[services.create_source(text="The Cu50Zr50 glass has Tg = 700 K, Tx = 760 K and Tl = 1200 K.")],
        extractor="rules", enqueue=False,
    )  # fmt: skip
    services.run_batch(other.pk)
    everything = ExtractedRecord.objects.count()
    assert everything == 5

    first = viewer_api.get(RECORDS, {"page_size": 2}).json()
    second = viewer_api.get(RECORDS, {"page_size": 2, "page": 2}).json()
    third = viewer_api.get(RECORDS, {"page_size": 2, "page": 3}).json()
    assert first["count"] == everything and first["next"] and first["previous"] is None and third["next"] is None
    seen = [r["id"] for page in (first, second, third) for r in page["results"]]
    assert sorted(seen) == sorted(ExtractedRecord.objects.values_list("id", flat=True))  # no overlap, none missed

    zr, pd = record_of(batch, "Zr57Cu28Al10Ni5"), record_of(batch, "Pd41Ni41P18")
    cu = record_of(batch, "Cu47Zr45Al8")
    assert sorted(ids(viewer_api.get(RECORDS, {"batch": other.pk}))) == list(other.records.values_list("id", flat=True))
    assert ids(viewer_api.get(RECORDS, {"flag": "order"})) == [pd.pk]
    assert set(ids(viewer_api.get(RECORDS, {"flag": "none", "batch": batch.pk}))) == {zr.pk, cu.pk}  # unflagged
    assert set(ids(viewer_api.get(RECORDS, {"elements": "zr, al"}))) == {zr.pk, cu.pk}
    assert ids(viewer_api.get(RECORDS, {"elements": "Pd"})) == [pd.pk]
    assert ids(viewer_api.get(RECORDS, {"q": "pd41"})) == [pd.pk]
    assert ids(viewer_api.get(RECORDS, {"source": other.sources.get().pk})) == list(other.records.values_list("id", flat=True))
    ungrounded = ExtractedRecord.objects.filter(flag_index__contains="|ungrounded|")
    assert set(ids(viewer_api.get(RECORDS, {"flag": "ungrounded"}))) == set(ungrounded.values_list("id", flat=True))
    services.approve_record(zr.pk, reviewer)
    assert ids(viewer_api.get(RECORDS, {"status": "approved"})) == [zr.pk]
    assert zr.pk not in ids(viewer_api.get(RECORDS, {"status": "pending", "page_size": 100}))
    ordered = ids(viewer_api.get(RECORDS, {"ordering": "-tg_k", "batch": batch.pk}))
    by_tg = list(batch.records.order_by("-tg_k", "id").values_list("id", flat=True))
    assert ordered == by_tg

    for params, field in (({"elements": "Xx"}, "elements"), ({"flag": "bogus"}, "flag"), ({"status": "maybe"}, "status")):
        response = viewer_api.get(RECORDS, params)
        assert response.status_code == 400 and field in response.json()["detail"], params


def test_batch_and_source_lists(viewer_api, batch):
    services.create_source(text="Cu50Zr50: Tg = 700 K.", title="Second paper")
    body = viewer_api.get(SOURCES, {"page_size": 1}).json()
    assert body["count"] == 2 and len(body["results"]) == 1 and "text" not in body["results"][0]
    assert [s["title"] for s in viewer_api.get(SOURCES, {"q": "api pap"}).json()["results"]] == ["API paper"]
    assert [s["title"] for s in viewer_api.get(SOURCES, {"has_doi": "true"}).json()["results"]] == ["API paper"]
    source = viewer_api.get(SOURCES, {"q": "api pap"}).json()["results"][0]
    assert source["n_records"] == 4 and source["records_url"].endswith(f"{RECORDS}?source={source['id']}")
    listed = viewer_api.get(BATCHES, {"status": "done"}).json()
    assert [b["name"] for b in listed["results"]] == ["api batch"]
    row = listed["results"][0]
    assert (row["n_records"], row["n_pending"], row["n_approved"]) == (4, 4, 0)
    assert row["records_url"].endswith(f"{RECORDS}?batch={batch.pk}") and row["job"]["retry_url"].endswith("/retry/")
    assert viewer_api.get(BATCHES, {"status": "queued"}).json()["count"] == 0
    detail = viewer_api.get(f"{BATCHES}{batch.pk}/").json()
    assert detail["counts"]["flags"]["order"] == 1 and detail["sources"][0]["id"] == source["id"]


def test_the_mining_routes_are_in_the_schema(viewer_api):
    import yaml

    paths = yaml.safe_load(viewer_api.get("/api/schema/").content)["paths"]
    for path in ("/api/literature-sources/", "/api/literature-sources/{id}/", "/api/extraction-batches/",
                 "/api/extraction-batches/{id}/", "/api/extraction-batches/{id}/rerun/",
                 "/api/extraction-batches/{id}/approve-clean/", "/api/extracted-records/", "/api/extracted-records/{id}/",
                 "/api/extracted-records/{id}/approve/", "/api/extracted-records/{id}/reject/"):  # fmt: skip
        assert path in paths, path
    assert "multipart/form-data" in paths["/api/literature-sources/"]["post"]["requestBody"]["content"]
    assert {"patch", "get"} <= set(paths["/api/extracted-records/{id}/"]) and "put" not in paths["/api/extracted-records/{id}/"]
    params = {p["name"] for p in paths["/api/extracted-records/"]["get"]["parameters"]}
    assert {"batch", "status", "flag", "elements", "q", "source", "page", "page_size", "ordering"} <= params


def test_a_list_page_costs_the_same_queries_whatever_its_length(viewer_api, batch):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    second = services.create_source(text="The Cu50Zr50 glass has Tg = 700 K.", title="Second paper")
    services.run_batch(services.create_batch(name="second", sources=[second], extractor="rules", enqueue=False).pk)
    for url in (RECORDS, BATCHES, SOURCES):
        counts = []
        for size in (1, 4):
            with CaptureQueriesContext(connection) as queries:
                assert viewer_api.get(url, {"page_size": size}).status_code == 200
            counts.append(len(queries))
        assert counts[0] == counts[1], (url, counts)


def test_pdf_sources_and_refused_files(reviewer_api, settings, django_capture_on_commit_callbacks):
    from tests.mining.test_services import tiny_pdf

    pdf = tiny_pdf("Zr57Cu28Al10Ni5 shows Tg = 683 K and Tx = 763 K.")
    # A PDF is stored at once (202) and read on the worker: the answer links the reading's job.
    with use_broker(eager=True), django_capture_on_commit_callbacks(execute=True):
        response = reviewer_api.post(SOURCES, {"file": SimpleUploadedFile("paper.pdf", pdf)}, format="multipart")
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["text"] == "" and body["text_status"] == "reading" and body["original_name"] == "paper.pdf"
    assert body["reading"]["status_url"].endswith(f"/api/jobs/pdf-readings/{body['reading']['id']}/")
    job = reviewer_api.get(body["reading"]["status_url"]).json()
    assert job["status"] == "done" and job["message"].startswith("1 page read")
    read = reviewer_api.get(body["url"]).json()
    assert read["text_status"] == "ready" and read["text_status_display"] == "1 page read" and "Zr57Cu28Al10Ni5" in read["text"]
    # A damaged PDF is refused by the worker; the source says why (the batch API refuses it).
    with use_broker(eager=True), django_capture_on_commit_callbacks(execute=True):
        garbage = reviewer_api.post(SOURCES, {"file": SimpleUploadedFile("x.pdf", b"%PDF-1.4 garbage")}, format="multipart")
    assert garbage.status_code == 202
    refused = reviewer_api.get(garbage.json()["url"]).json()
    assert refused["text_status"] == "refused" and "The PDF could not be read" in refused["text_status_display"]
    batch = reviewer_api.post(BATCHES, {"name": "refused", "sources": [refused["id"]], "extractor": "rules"})
    assert batch.status_code == 400 and "not ready" in batch.json()["detail"]["sources"][0]
    named = reviewer_api.post(SOURCES, {"file": SimpleUploadedFile("y.pdf", b"GIF89a")}, format="multipart")
    assert named.status_code == 400 and "is named .pdf but is not a PDF" in named.json()["error"]
    empty = reviewer_api.post(SOURCES, {"file": SimpleUploadedFile("x.txt", b"")}, format="multipart")
    assert empty.status_code == 400 and "file" in empty.json()["detail"]  # the form's "The submitted file is empty."
    settings.GLASSLOOP_MAX_UPLOAD_BYTES = 100
    big = reviewer_api.post(SOURCES, {"file": SimpleUploadedFile("big.txt", b"Cu50Zr50 Tg = 700 K. " * 20)}, format="multipart")
    assert big.status_code == 400
    assert big.json()["detail"]["file"] == ["The file is 420 bytes; at most 100 are accepted (GLASSLOOP_MAX_UPLOAD_BYTES)."]
    assert LiteratureSource.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_a_batch_the_queue_cannot_take_stays_queued_and_says_why(reviewer_api):
    # Real commits, so the on-commit enqueue runs inside the request as in production.
    from tests.celery_broker import dead_broker_url

    source = services.create_source(text=TEXT)
    with use_broker(dead_broker_url()):
        response = reviewer_api.post(BATCHES, {"name": "nq", "sources": [source.pk], "extractor": "rules"})
        assert response.status_code == 201, response.content
        body = response.json()
        assert body["batch"]["status"] == "queued" and body["job"]["can_retry"]
        assert body["outcome"].startswith("Batch nq is saved and stays queued. The task queue is unavailable")
        again = reviewer_api.post(body["batch"]["rerun_url"])
        assert again.status_code == 200 and "The task queue is unavailable" in again.json()["outcome"]
    assert ExtractionBatch.objects.get().status == "queued"


@pytest.mark.parametrize("body", ["[]", "null", '"text"', "17", '{"tg_k": {"a": 1}, "sources": [{"x": 1}], "reason": {"a": 1}, '
                                  '"temperature_unit": ["K"], "name": ["n"], "composition_raw": [1], "dmax_mm": "1e999"}'])
def test_odd_bodies_are_refused_never_a_server_error(reviewer_api, batch, body):
    record = record_of(batch, "Zr57Cu28Al10Ni5")
    before = snapshot(record)
    for method, url in (("post", SOURCES), ("post", BATCHES), ("post", f"{BATCHES}{batch.pk}/rerun/"),
                        ("patch", f"{RECORDS}{record.pk}/"), ("post", f"{RECORDS}{record.pk}/reject/")):  # fmt: skip
        response = getattr(reviewer_api, method)(url, body, content_type="application/json")
        assert response.status_code == 400, (method, url, response.status_code, response.content)
        assert response.json()["error"]
    assert snapshot(record) == before and ExtractionBatch.objects.count() == 1
