"""add_sources and run_batch from the command line (the loop's mining step)."""

import csv
import io
import json

import pytest
from django.core.management import CommandError, call_command

from mining.models import ExtractionBatch, LiteratureSource

TEXT = "The Zr57Cu28Al10Ni5 alloy shows Tg = 683 K and Tx = 763 K. Its liquidus temperature is 1118 K.\n"


def run(*args):
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_add_sources_nothing_added_exits_non_zero_with_a_summary(tmp_path):
    (tmp_path / "a.txt").write_text(TEXT)
    run("add_sources", str(tmp_path))
    out = io.StringIO()
    with pytest.raises(CommandError, match="No source was added"):
        call_command("add_sources", str(tmp_path), "--json", stdout=out)
    report = json.loads(out.getvalue())
    assert report["created"] == [] and "already stored" in report["skipped"][0]["reason"]
    assert report["summary"].startswith("0 sources added, 1 skipped")
    empty = tmp_path / "empty"
    empty.mkdir()
    out = io.StringIO()
    with pytest.raises(CommandError, match="No source was added"):
        call_command("add_sources", str(empty), stdout=out)
    assert "0 sources added, 0 skipped, 0 other files ignored." in out.getvalue()


@pytest.mark.django_db
def test_add_sources_reads_pdf_and_txt_only_unless_asked(tmp_path):
    (tmp_path / "README.md").write_text("# Papers for the Zr batch\nZr50Cu50 Tg = 700 K\n")
    (tmp_path / "paper.txt").write_text(TEXT)
    report = json.loads(run("add_sources", str(tmp_path), "--json"))
    assert [c["item"].rsplit("/", 1)[-1] for c in report["created"]] == ["paper.txt"]
    assert report["ignored"] == ["README.md"] and LiteratureSource.objects.count() == 1
    report = json.loads(run("add_sources", str(tmp_path), "--json", "--ext", "md"))
    assert [c["item"].rsplit("/", 1)[-1] for c in report["created"]] == ["README.md"]


@pytest.mark.django_db
def test_add_sources_refuses_a_file_over_the_upload_limit_without_reading_it(tmp_path, settings):
    settings.GLASSLOOP_MAX_UPLOAD_BYTES = 1000
    (tmp_path / "big.txt").write_text(TEXT * 50)
    (tmp_path / "small.txt").write_text(TEXT)
    report = json.loads(run("add_sources", str(tmp_path), "--json"))
    assert len(report["created"]) == 1 and "the limit is" in report["skipped"][0]["reason"]
    assert report["skipped"][0]["item"].endswith("big.txt")


@pytest.mark.django_db
def test_run_batch_waits_and_exports_every_record(tmp_path):
    from mining import services

    services.create_source(text=TEXT, doi="10.1000/zr.1")
    services.create_source(text="The Pd41Ni41P18 glass has a Tx of 389 °C and Tg of 312 °C.", doi="10.1000/pd.1")
    services.create_source(text="Cu50Hf50 has Tg = 675 K.", doi="10.2000/other.1")
    got = tmp_path / "got.csv"
    summary = json.loads(run("run_batch", "cli", "--extractor", "rules", "--doi-prefix", "10.1000/", "--wait",
                             "--export", str(got), "--json"))
    assert summary["status"] == "done" and summary["sources"] == 2 and summary["exported"] == 2
    rows = list(csv.DictReader(got.open()))
    assert list(rows[0]) == ["doi", "composition", "Tg_K", "Tx_K", "Tl_K", "dmax_mm", "status", "flags"]
    by = {r["composition"]: r for r in rows}
    assert by["Zr57Cu28Al10Ni5"] == {"doi": "10.1000/zr.1", "composition": "Zr57Cu28Al10Ni5", "Tg_K": "683", "Tx_K": "763",
                                     "Tl_K": "1118", "dmax_mm": "", "status": "pending", "flags": ""}
    assert (by["Pd41Ni41P18"]["Tg_K"], by["Pd41Ni41P18"]["Tl_K"]) == ("585.15", "")
    assert ExtractionBatch.objects.get(name="cli").sources.count() == 2


@pytest.mark.django_db
def test_run_batch_errors_clearly(tmp_path):
    with pytest.raises(CommandError, match="No source with text"):
        run("run_batch", "none", "--wait")
    from mining import services

    services.create_source(text=TEXT, doi="10.1000/zr.1")
    with pytest.raises(CommandError, match="DOI starting '10.9/'"):
        run("run_batch", "none", "--doi-prefix", "10.9/", "--wait")
    with pytest.raises(CommandError, match="No LLM model is configured"):
        run("run_batch", "l", "--extractor", "llm", "--wait")
    with pytest.raises(CommandError, match="LLM is not configured"):
        run("run_batch", "l", "--extractor", "llm", "--model", "m", "--wait")
    with pytest.raises(CommandError, match="--export needs --wait"):
        run("run_batch", "x", "--export", str(tmp_path / "x.csv"))
    assert not ExtractionBatch.objects.exists()


@pytest.mark.django_db
def test_run_batch_with_the_fake_llm(tmp_path, fake_llm):
    from mining import services

    services.create_source(text=TEXT, doi="10.1000/zr.1")  # the fake LLM answers {"records": []}
    got = tmp_path / "got.csv"
    out = run("run_batch", "llm1", "--extractor", "llm", "--wait", "--export", str(got))
    assert "Batch llm1: done, 1 sources (0 failed), 0 records, written to" in out
    assert ExtractionBatch.objects.get(name="llm1").extractor == "llm:fake-model" and len(fake_llm.requests) >= 1
    assert got.read_text().splitlines() == ["doi,composition,Tg_K,Tx_K,Tl_K,dmax_mm,status,flags"]
