"""Table bombs (issue 16): an XLSX of a few hundred KB that expands to millions of rows took the
site down, parsed inside the upload request. The upload form now only checks what is cheap (type,
size, a workbook's zip directory); the worker reads the rows and stops at the first limit passed,
with a message naming it. The bombs are built here, small enough for CI (a low limit instead of
2 million rows); ``bench/xlsx_bomb.py`` also builds the full-size one for the measurement in the report.
"""

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from django.urls import reverse

from bench.xlsx_bomb import xlsx_bomb
from lab import tables
from lab.importing import run_alloy_import
from lab.models import Alloy, AlloyImport


def _bomb(rows, **kwargs):
    buffer = io.BytesIO()
    xlsx_bomb(buffer, rows, **kwargs)
    return buffer.getvalue()


@pytest.fixture
def media(tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.mark.django_db
@override_settings(GLASSLOOP_TABLE_MAX_ROWS=500)
def test_row_bomb_is_queued_by_the_form_and_refused_by_the_worker(experimenter_client, monkeypatch, media):
    data = _bomb(5_000)  # ten times the limit
    read = []
    real_read_xlsx = tables._read_xlsx
    monkeypatch.setattr(tables, "_read_xlsx", lambda *a: read.append(a) or real_read_xlsx(*a))

    # The request reads no row: the upload is accepted and queued.
    response = experimenter_client.post(reverse("lab:import_list"), {"table": SimpleUploadedFile("bomb.xlsx", data)})
    job = AlloyImport.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("lab:import_detail", args=[job.pk])
    assert job.status == "queued" and not read

    # The worker opens it, counts its rows in the sheet's XML and refuses it before parsing a
    # single row into cells, with the limit's name.
    rows_built = []
    real_checked = tables._checked
    monkeypatch.setattr(tables, "_checked", lambda row: rows_built.append(row) or real_checked(row))
    run_alloy_import(job.pk)
    job.refresh_from_db()
    assert job.status == "failed" and read
    assert job.error == "bomb.xlsx has more than 500 rows (GLASSLOOP_TABLE_MAX_ROWS); split it into smaller tables."
    assert rows_built == []
    assert not Alloy.objects.exists() and not job.rows.exists()
    page = experimenter_client.get(response["Location"]).content.decode()
    assert "more than 500 rows (GLASSLOOP_TABLE_MAX_ROWS)" in page


@pytest.mark.django_db
def test_shared_strings_bomb_is_refused_by_the_worker_before_openpyxl_reads_them(experimenter_client, monkeypatch, media):
    data = _bomb(2, unused_strings=20_000)  # 12 cells, 20,005 strings
    response = experimenter_client.post(reverse("lab:import_list"), {"table": SimpleUploadedFile("strings.xlsx", data)})
    assert response.status_code == 302
    from openpyxl.reader import excel

    monkeypatch.setattr(excel, "read_string_table", lambda src: pytest.fail("openpyxl must not read the strings"))
    job = AlloyImport.objects.get()
    run_alloy_import(job.pk)
    job.refresh_from_db()
    assert job.status == "failed"
    assert job.error.startswith("strings.xlsx holds more than 1,024 shared strings for 12 cells")


def test_workbooks_written_by_openpyxl_pass_the_strings_check(tmp_path):
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["composition", "Tg_K", "Tx_K", "Tl_K", "source"])
    for i in range(3000):
        sheet.append([f"Cu{40 + i % 20}Zr{60 - i % 20}", 670, 720, 1200, f"paper {i}"])  # 3,000 distinct strings
    workbook.save(tmp_path / "t.xlsx")
    assert len(tables.read_table(tmp_path / "t.xlsx")) == 3000


@override_settings(GLASSLOOP_TABLE_MAX_ROWS=100)
def test_sheet_count_reads_row_numbers_and_cells():
    def sheet(body):
        return io.BytesIO(b"<worksheet><sheetData>" + body + b"</sheetData></worksheet>")

    tables._check_sheet_size(sheet(b'<row r="1"><c r="A1"/></row>' + b"<x:row><x:c><x:v>1</x:v></x:c></x:row>" * 100), "ok.xlsx")
    with pytest.raises(tables.ImportFileError, match=r"gap\.xlsx has more than 100 rows \(GLASSLOOP_TABLE_MAX_ROWS\)"):
        tables._check_sheet_size(sheet(b'<row r="1"/><row r="5000"><c/></row>'), "gap.xlsx")  # openpyxl fills the gap
    with pytest.raises(tables.ImportFileError, match=r"wide\.xlsx has more than 6,400 cells"):
        tables._check_sheet_size(sheet(b"<row>" + b"<c><v>1</v></c>" * 7000 + b"</row>"), "wide.xlsx")


def test_sheet_count_across_chunks(monkeypatch, settings):
    settings.GLASSLOOP_TABLE_MAX_ROWS = 1000
    monkeypatch.setattr(tables, "_SCAN_CHUNK", 7)  # every tag cut somewhere
    body = b"".join(b'<row r="%d" spans="1:4"><c t="s"><v>4</v></c></row>' % n for n in range(1, 1002))
    tables._check_sheet_size(io.BytesIO(body), "ok.xlsx")  # 1 header + 1,000 rows
    with pytest.raises(tables.ImportFileError, match="more than 1,000 rows"):
        tables._check_sheet_size(io.BytesIO(body + b'<row r="1002"/>'), "big.xlsx")


@pytest.mark.django_db
@override_settings(GLASSLOOP_XLSX_MAX_UNCOMPRESSED_BYTES=1_000_000)
def test_expanding_workbook_is_refused_by_the_form_from_its_zip_directory(experimenter_client, monkeypatch, media):
    data = _bomb(20_000)  # ~1.6 MB of XML in ~10 KB
    assert len(data) < 50_000
    monkeypatch.setattr(tables, "_read_xlsx", lambda *a: pytest.fail("the request must not parse the workbook"))
    response = experimenter_client.post(reverse("lab:import_list"), {"table": SimpleUploadedFile("bomb.xlsx", data)})
    assert response.status_code == 200
    page = response.content.decode()
    assert "bomb.xlsx decompresses to" in page and "at most 1,000,000 are read (GLASSLOOP_XLSX_MAX_UNCOMPRESSED_BYTES)" in page
    assert not AlloyImport.objects.exists()


@pytest.mark.django_db
def test_form_checks_a_csv_header_and_a_workbook_cheaply(experimenter_client, media):
    def post(name, content):
        return experimenter_client.post(reverse("lab:import_list"), {"table": SimpleUploadedFile(name, content)}).content.decode()

    assert "lacks the column(s) Tx_K, Tl_K" in post("t.csv", b"composition;Tg_K\nCu50Zr50;670\n")
    assert "is not a zip archive" in post("t.xlsx", b"composition,Tg_K,Tx_K,Tl_K\n")
    assert "is empty" in post("t.csv", b"  \n")
    assert not AlloyImport.objects.exists()
    # A header the form accepts; a bad row further on is the worker's (refused in the report).
    experimenter_client.post(reverse("lab:import_list"), {"table": SimpleUploadedFile("ok.csv", b"composition,Tg_K,Tx_K,Tl_K\nQq1,1,2,3\n")})
    assert AlloyImport.objects.get().status == "queued"


@pytest.mark.django_db
def test_wide_table_keeps_only_the_imported_columns(monkeypatch):
    """A CSV of 5,000 columns: the rows hold only the columns the import uses (memory stays that
    of a narrow table), and the import ignores the others, as the upload page says."""
    from lab import importing

    header = "composition,Tg_K,Tx_K,Tl_K," + ",".join(f"extra{i}" for i in range(5000))
    body = "\n".join(f"Cu{50 + i}Zr{50 - i},{670 + i},{720 + i},{1200 + i}," + ",".join(["x"] * 5000) for i in range(3))
    seen = []
    real_checked = tables._checked
    monkeypatch.setattr(tables, "_checked", lambda row: seen.append(len(row)) or real_checked(row))
    report = importing.import_alloys(f"{header}\n{body}\n".encode(), filename="wide.csv")
    assert report.counts["created"] == 3
    assert seen == [4, 4, 4]
