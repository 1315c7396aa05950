"""Sources, batches, import and review through the services (SQLite or PostgreSQL)."""

import io
import json

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command

from core.doi import validate_doi
from lab.models import Alloy, PropertyValue
from mining import services
from mining.models import ExtractedRecord, ExtractionBatch, LiteratureSource

TEXT = ("Introduction. The Zr57Cu28Al10Ni5 alloy shows Tg = 683 K and Tx = 763 K. Its liquidus temperature is 1118 K.\n\n"
        "The Pd41Ni41P18 glass has a Tx of 389 °C and Tg of 312 °C.\n")


def tiny_pdf(text):
    """A real one-page PDF with the text (matplotlib's PDF backend), as bytes."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.backends.backend_pdf import PdfPages
    from matplotlib.figure import Figure

    buf = io.BytesIO()
    with PdfPages(buf) as pdf:
        fig = Figure(figsize=(8, 2))
        fig.text(0.02, 0.5, text, fontsize=10)
        pdf.savefig(fig)
    return buf.getvalue()


def test_validate_doi():
    assert validate_doi(" https://doi.org/10.1016/J.ACTAMAT.2005.01.001 ") == "10.1016/j.actamat.2005.01.001"
    assert validate_doi("doi:10.1038/nature02123") == "10.1038/nature02123"
    assert validate_doi("") == ""
    with pytest.raises(ValidationError, match="'not a doi' is not a DOI"):
        validate_doi("not a doi")


@pytest.mark.django_db
def test_pdf_upload_text_is_extracted_and_checksum_refuses_the_same_file():
    data = tiny_pdf("Zr57Cu28Al10Ni5 shows Tg = 683 K and Tx = 763 K.")
    source = services.create_source(doi="https://doi.org/10.1000/ABC.1", upload=SimpleUploadedFile("paper.pdf", data), title="T")
    # The request only stores the file: the text is read on the worker (a PdfReading job).
    assert source.text == "" and source.text_status == "reading" and source.pdf_reading.status == "queued"
    with pytest.raises(services.MiningError, match="not ready.*reading the PDF"):
        services.create_batch(name="too early", sources=[source], extractor="rules", enqueue=False)
    reading = services.read_pdf(source.pdf_reading.pk)
    source.refresh_from_db()
    assert reading.status == "done" and reading.pages_total == reading.pages_read == 1
    assert source.text_status == "ready" and source.text_status_display == "1 page read"
    assert "Zr57Cu28Al10Ni5" in source.text and "683" in source.text
    assert services.read_pdf(reading.pk).status == "done"  # idempotent: a second delivery runs nothing
    assert source.doi == "10.1000/abc.1" and len(source.sha256) == 64 and source.file.name.endswith(".pdf")
    assert source.reference.doi == "10.1000/abc.1"
    with pytest.raises(services.SourceExists, match=f"source #{source.pk}"):
        services.create_source(upload=SimpleUploadedFile("copy.pdf", data))
    with pytest.raises(services.SourceExists, match="DOI 10.1000/abc.1"):
        services.create_source(doi="10.1000/ABC.1", text="other")
    batch = services.create_batch(name="pdf", sources=[source], extractor="rules", enqueue=False)
    services.run_batch(batch.pk)
    rec = batch.records.get()
    assert (rec.tg_k, rec.tx_k) == (683, 763) and rec.snippet_in_source


@pytest.mark.django_db
def test_bad_files_are_refused_clearly(settings):
    with pytest.raises(services.MiningError, match="named .pdf but is not a PDF"):
        services.create_source(upload=SimpleUploadedFile("x.pdf", b"<html>not a paper</html>"))
    with pytest.raises(services.MiningError, match="empty"):
        services.create_source(upload=SimpleUploadedFile("x.txt", b""))
    settings.GLASSLOOP_MAX_UPLOAD_BYTES = 100
    with pytest.raises(services.MiningError, match=r"at most 100 are accepted \(GLASSLOOP_MAX_UPLOAD_BYTES\)"):
        services.create_source(upload=SimpleUploadedFile("big.pdf", b"%PDF-1.4 " + b" " * 200))
    assert LiteratureSource.objects.count() == 0
    # A damaged PDF passes the cheap checks; the worker refuses it, and the source says why.
    settings.GLASSLOOP_MAX_UPLOAD_BYTES = 20_000_000
    source = services.create_source(upload=SimpleUploadedFile("x.pdf", b"%PDF-1.4 garbage"))
    reading = services.read_pdf(source.pdf_reading.pk)
    source.refresh_from_db()
    assert reading.status == "failed" and "PDF could not be read" in reading.error
    assert source.text_status == "refused" and source.text_status_display.startswith("refused: The PDF could not be read")
    with pytest.raises(services.MiningError, match=f"source #{source.pk}.*refused"):
        services.create_batch(name="refused", sources=[source], extractor="rules", enqueue=False)


@pytest.mark.django_db
def test_add_sources_command_from_folder_and_csv(tmp_path):
    folder = tmp_path / "papers"
    folder.mkdir()
    (folder / "a.txt").write_text("doi: 10.1234/abcd.5\n" + TEXT)
    (folder / "b.pdf").write_bytes(tiny_pdf("Cu50Hf50 has Tg = 675 K."))
    (folder / "notes.csv").write_text("ignored")
    out = io.StringIO()
    call_command("add_sources", str(folder), "--json", stdout=out)
    report = json.loads(out.getvalue())
    assert len(report["created"]) == 2 and LiteratureSource.objects.filter(doi="10.1234/abcd.5").exists()
    meta = tmp_path / "meta.csv"
    meta.write_text("doi,title,year,file\n10.9999/x.1,A title,2020,\n,,,papers/a.txt\n")
    out = io.StringIO()
    call_command("add_sources", str(meta), "--json", stdout=out)
    report = json.loads(out.getvalue())
    assert [c["doi"] for c in report["created"]] == ["10.9999/x.1"]
    assert "already stored" in report["skipped"][0]["reason"]


@pytest.mark.django_db
def test_rules_batch_run_and_rerun_never_duplicates():
    source = services.create_source(text=TEXT, title="Paper")
    batch = services.create_batch(name="b1", sources=[source], extractor="rules", enqueue=False)
    services.run_batch(batch.pk)
    batch.refresh_from_db()
    assert batch.status == "done" and batch.sources_done == 1 and batch.records_found == 2
    pd = batch.records.get(composition_raw="Pd41Ni41P18")
    assert (pd.tg_k, pd.tx_k) == (585.15, 662.15)
    zr = batch.records.get(composition_raw="Zr57Cu28Al10Ni5")
    services.approve_record(zr.pk, None)
    services.rerun_batch(batch.pk)
    services.run_batch(batch.pk)
    services.rerun_batch(batch.pk, source_ids=[source.pk])  # a single source re-run as well
    services.run_batch(batch.pk)
    assert batch.records.count() == 2
    assert batch.records.get(composition_raw="Zr57Cu28Al10Ni5").pk == zr.pk  # reviewed record kept
    assert ExtractedRecord.history.filter(id=zr.pk).count() >= 2


@pytest.mark.django_db
def test_crash_in_one_source_is_recorded_and_the_others_continue():
    good, bad, empty = (services.create_source(text=TEXT), services.create_source(text="BOOM Hf50Cu50 Tg = 700 K."),
                        services.create_source(doi="10.5555/empty.1"))

    class Exploding(services.RulesExtractor):
        def extract(self, text, usage):
            if "BOOM" in text:
                raise RuntimeError("parser exploded")
            return super().extract(text, usage)

    batch = services.create_batch(name="crash", sources=[good, bad, empty], extractor="rules", enqueue=False)
    services.run_batch(batch.pk, extractor=Exploding())
    batch.refresh_from_db()
    assert batch.status == "done" and batch.sources_done == 3
    assert batch.source_errors[str(bad.pk)] == "RuntimeError: parser exploded"
    assert "no text" in batch.source_errors[str(empty.pk)]
    assert batch.records.filter(source=good).count() == 2


@pytest.mark.django_db
def test_cancel_is_checked_between_sources():
    sources = [services.create_source(text=TEXT.replace("683", str(680 + i))) for i in range(3)]
    batch = services.create_batch(name="c", sources=sources, extractor="rules", enqueue=False)

    class CancelAfterFirst(services.RulesExtractor):
        def extract(self, text, usage):
            services.cancel_batch(batch.pk)
            return super().extract(text, usage)

    services.run_batch(batch.pk, extractor=CancelAfterFirst())
    batch.refresh_from_db()
    assert batch.status == "cancelled" and batch.sources_done == 1
    queued = services.create_batch(name="q", sources=sources, extractor="rules", enqueue=False)
    assert services.cancel_batch(queued.pk).status == "cancelled"
    with pytest.raises(services.MiningError, match="already cancelled"):
        services.cancel_batch(queued.pk)


@pytest.mark.django_db
def test_import_extracted_command_json_and_reimport(tmp_path):
    path = tmp_path / "rows.csv"
    path.write_text(
        "composition,Tg_K,Tx_K,Tl_K,doi,extra\n"
        "Zr57Cu28Al10Ni5,683,763,1118,10.1000/x.1,zzz\n"
        "Cu28Zr57Al10Ni5,685,765,1120,,\n"
        "TI40Cu60,700,750,1200,,\n"
        "Pd41Ni41P18,700,690,915,,\n"
        "Mg65Cu25Y10,4x4,474,,,\n"
        "Cu46Zr46Al8,715,780,1154,,\n"
    )
    out = io.StringIO()
    call_command("import_extracted", str(path), "--batch", "imp", "--json", stdout=out)
    summary = json.loads(out.getvalue())
    assert summary["rows"] == 6 and summary["status"]["pending"] == 6 and summary["clean"] == 1
    assert summary["flags"] == {"unparseable": 2, "order": 1, "duplicate": 2}
    batch = ExtractionBatch.objects.get(name="imp")
    assert batch.extractor == "import" and batch.sources.get().doi == "10.1000/x.1"
    clean = batch.records.get(flag_count=0)
    services.approve_record(clean.pk, None)
    out = io.StringIO()
    call_command("import_extracted", str(path), "--batch", "imp", "--json", stdout=out)
    again = json.loads(out.getvalue())
    assert again["created"] == 5 and again["kept_reviewed"] == 1 and batch.records.count() == 6


@pytest.mark.django_db
def test_import_refuses_a_csv_without_composition(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("alloyname,Tg\nx,1\n")
    with pytest.raises(services.MiningError, match="composition"):
        services.import_extracted(path, batch_name="bad")


@pytest.fixture
def pending_record(db):
    source = services.create_source(text=TEXT, doi="10.1000/prov.1", title="Prov", authors="Doe", year=2001)
    batch = services.create_batch(name="rev", sources=[source], extractor="rules", enqueue=False)
    services.run_batch(batch.pk)
    return batch.records.get(composition_raw="Zr57Cu28Al10Ni5")


@pytest.mark.django_db
def test_approval_stores_value_with_provenance(pending_record, reviewer):
    rec = services.approve_record(pending_record.pk, reviewer)
    value = PropertyValue.objects.get()
    assert (value.origin, value.tg_k, value.tx_k, value.tl_k) == ("literature", 683, 763, 1118)
    assert value.reference.doi == "10.1000/prov.1" and value.source_label == f"batch rev record {rec.pk}"
    assert value.alloy.formula == "Zr57Cu28Al10Ni5" and value.created_by == reviewer
    prov = value.extracted_record  # reverse relation: source, batch, snippet, reviewer, time
    assert prov.source.doi == "10.1000/prov.1" and prov.batch.name == "rev" and prov.reviewer == reviewer and prov.reviewed_at
    assert "Tg = 683 K" in prov.snippet
    assert rec.history.first().history_user == reviewer
    with pytest.raises(services.ReviewConflict, match="already approved by rhys"):
        services.approve_record(rec.pk, reviewer)


@pytest.mark.django_db
def test_edit_then_approve_and_unparseable_cannot_be_approved(pending_record, reviewer):
    with pytest.raises(services.MiningError, match="unknown element"):
        services.approve_record(pending_record.pk, reviewer, edits={"composition_raw": "Zr57Cu28A110Ni5"})
    rec = ExtractedRecord.objects.get(pk=pending_record.pk)
    assert rec.status == "pending" and rec.composition_raw == "Zr57Cu28Al10Ni5" and Alloy.objects.count() == 0
    rec = services.update_record(rec.pk, reviewer, {"composition_raw": "Zr57Cu28A110Ni5"})
    assert "unparseable" in rec.flag_names and rec.composition_formula == ""
    rec = services.approve_record(rec.pk, reviewer, edits={"composition_formula": "Zr57Cu28Al10Ni5", "tg_k": 684})
    assert rec.status == "approved" and rec.composition_raw == "Zr57Cu28A110Ni5"
    assert rec.composition_edited == "Zr57Cu28Al10Ni5" and rec.property_value.tg_k == 684
    assert rec.alloy.composition_key == "Al10Cu28Ni5Zr57"


@pytest.mark.django_db
def test_order_violation_blocks_approval_until_edited(pending_record, reviewer):
    services.update_record(pending_record.pk, reviewer, {"tg_k": 800})
    with pytest.raises(services.MiningError, match="Cannot approve"):
        services.approve_record(pending_record.pk, reviewer)
    assert services.approve_record(pending_record.pk, reviewer, edits={"tg_k": 683}).status == "approved"


@pytest.mark.django_db
def test_reject_needs_a_reason(pending_record, reviewer):
    with pytest.raises(services.MiningError, match="why"):
        services.reject_record(pending_record.pk, reviewer, "  ")
    rec = services.reject_record(pending_record.pk, reviewer, "cited from another paper")
    assert rec.status == "rejected" and rec.reject_reason == "cited from another paper"
    with pytest.raises(services.ReviewConflict, match="already rejected"):
        services.approve_record(rec.pk, reviewer)


@pytest.mark.django_db
def test_bulk_approve_only_clean(tmp_path, reviewer):
    path = tmp_path / "rows.csv"
    path.write_text("composition,Tg_K,Tx_K,Tl_K\nZr57Cu28Al10Ni5,683,763,1118\nCu46Zr46Al8,715,780,1154\n"
                    "Pd41Ni41P18,700,690,915\nA1Cu50,1,2,3\n")
    summary = services.import_extracted(path, batch_name="bulk")
    result = services.bulk_approve_clean(summary["batch_id"], reviewer)
    assert result == {"approved": 2, "alloys_created": 2, "skipped": 2, "skipped_reasons": {
        "composition not parsed": 1, "flagged: order": 1, "flagged: range, unparseable": 1}}
    assert PropertyValue.objects.count() == 2
    assert services.bulk_approve_clean(summary["batch_id"], reviewer)["approved"] == 0


@pytest.mark.django_db
def test_queue_unavailable_keeps_the_batch_queued(django_capture_on_commit_callbacks, settings):
    from tests.celery_broker import dead_broker_url, use_broker

    with use_broker(dead_broker_url()):
        source = services.create_source(text=TEXT)
        with django_capture_on_commit_callbacks(execute=True):
            batch = services.create_batch(name="nq", sources=[source], extractor="rules")
    batch.refresh_from_db()
    assert batch.status == "queued" and batch.error.startswith("The task queue is unavailable")


@pytest.mark.django_db
def test_llm_batch_without_an_endpoint_fails_clearly():
    source = services.create_source(text=TEXT)
    batch = services.create_batch(name="nollm", sources=[source], extractor="llm:some-model", enqueue=False)
    services.run_batch(batch.pk)
    batch.refresh_from_db()
    assert batch.status == "failed" and "No LLM endpoint" in batch.error


@pytest.mark.django_db
def test_bulk_approve_skips_incomplete_ungrounded_and_duplicate_records(tmp_path, reviewer):
    path = tmp_path / "rows.csv"
    path.write_text(
        "composition,Tg_K,Tx_K,Tl_K,snippet\n"
        "Zr57Cu28Al10Ni5,683,763,1118,Zr57Cu28Al10Ni5: Tg 683 K Tx 763 K Tl 1118 K\n"  # complete, grounded
        "Cu46Zr46Al8,715,780,,Cu46Zr46Al8: Tg 715 K Tx 780 K\n"  # no Tl: incomplete
        "Cu50Hf50,675,720,1250,Cu50Hf50 was cast as rods\n"  # none of its numbers in the snippet
        "Pd40Ni40P20,575,671,,Pd40Ni40P20 Tg 575 Tx 671\n"
        "Ni40Pd40P20,576,672,,Ni40Pd40P20 Tg 576 Tx 672\n"  # duplicates of each other (and incomplete)
    )
    summary = services.import_extracted(path, batch_name="bulk2")
    assert summary["flags"] == {"ungrounded": 1, "duplicate": 2}
    result = services.bulk_approve_clean(summary["batch_id"], reviewer)
    assert {k: result[k] for k in ("approved", "alloys_created", "skipped")} == {"approved": 1, "alloys_created": 1, "skipped": 4}
    assert result["skipped_reasons"]["flagged: ungrounded"] == 1 and result["skipped_reasons"]["no Tl (incomplete)"] == 3
    assert list(PropertyValue.objects.values_list("alloy__formula", flat=True)) == ["Zr57Cu28Al10Ni5"]
    # The incomplete but clean one is still approvable by a person.
    one = ExtractedRecord.objects.get(composition_raw="Cu46Zr46Al8")
    assert one.flags == [] and services.approve_record(one.pk, reviewer).status == "approved"


@pytest.mark.django_db
def test_a_derived_value_keeps_its_formula_in_the_provenance(reviewer):
    source = services.create_source(text="Zr57Cu28Al10Ni5 has Tg = 680 K and ΔTx = 85 K; Tl = 1118 K.")
    batch = services.create_batch(name="der", sources=[source], extractor="rules", enqueue=False)
    rec = ExtractedRecord.objects.create(
        batch=batch, source=source, fingerprint="x", composition_raw="Zr57Cu28Al10Ni5", tg_k=680, tx_k=765, tl_k=1118,
        derived={"tx": "Tx = Tg + ΔTx = 680 K + 85 K"}, snippet=source.text,
    )
    services.validate_batch(batch.pk)
    rec.refresh_from_db()
    assert rec.flags == []  # 765 is not in the text, but its parts are
    services.approve_record(rec.pk, reviewer)
    assert "Tx derived: Tx = Tg + ΔTx = 680 K + 85 K" in PropertyValue.objects.get().note
