"""XLSX bombs and huge tables: a workbook whose parts decompress beyond
GLASSLOOP_XLSX_MAX_UNCOMPRESSED_BYTES, or a table with more than GLASSLOOP_TABLE_MAX_ROWS rows,
is refused before it is parsed (the upload form and the worker use the same reader)."""

import io
import zipfile

import pytest
from openpyxl import Workbook

from lab.tables import ImportFileError, read_table


def xlsx(rows):
    book = Workbook()
    sheet = book.active
    sheet.append(["composition", "Tg_K", "Tx_K", "Tl_K"])
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def bomb(padding_bytes):
    """A valid workbook with one part (a comment-only XML) padded to ``padding_bytes``."""
    data = io.BytesIO(xlsx([["Cu50Zr50", 700, 780, 1200]]))
    out = io.BytesIO()
    with zipfile.ZipFile(data) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            dst.writestr(item, src.read(item.filename))
        dst.writestr("xl/padding.xml", b"<!--" + b" " * padding_bytes + b"-->")
    return out.getvalue()


def test_an_xlsx_bomb_is_refused_naming_the_limit(settings):
    settings.GLASSLOOP_XLSX_MAX_UNCOMPRESSED_BYTES = 1_000_000
    data = bomb(5_000_000)
    assert len(data) < 50_000
    with pytest.raises(ImportFileError, match=r"decompresses to 5,0\d\d,\d\d\d bytes.*1,000,000.*GLASSLOOP_XLSX_MAX_UNCOMPRESSED_BYTES"):
        read_table(data, filename="bomb.xlsx")


def test_a_normal_workbook_still_reads(settings):
    settings.GLASSLOOP_XLSX_MAX_UNCOMPRESSED_BYTES = 1_000_000
    assert len(read_table(xlsx([["Cu50Zr50", 700, 780, 1200]]), filename="ok.xlsx")) == 1


@pytest.mark.parametrize("kind", ["xlsx", "csv"])
def test_too_many_rows_are_refused(settings, kind):
    settings.GLASSLOOP_TABLE_MAX_ROWS = 50
    rows = [[f"Cu{50 + i % 10}Zr{50 - i % 10}", 700, 780, 1200] for i in range(51)]
    if kind == "xlsx":
        data = xlsx(rows)
    else:
        data = ("composition,Tg_K,Tx_K,Tl_K\n" + "".join(",".join(map(str, r)) + "\n" for r in rows)).encode()
    with pytest.raises(ImportFileError, match=r"more than 50 rows.*GLASSLOOP_TABLE_MAX_ROWS"):
        read_table(data, filename=f"big.{kind}")
    settings.GLASSLOOP_TABLE_MAX_ROWS = 51
    assert len(read_table(data, filename=f"big.{kind}")) == 51


@pytest.mark.django_db
def test_the_upload_form_shows_the_refusal(experimenter_client, settings):
    from django.core.files.uploadedfile import SimpleUploadedFile

    settings.GLASSLOOP_XLSX_MAX_UNCOMPRESSED_BYTES = 1_000_000
    response = experimenter_client.post("/lab/imports/", {"table": SimpleUploadedFile("bomb.xlsx", bomb(3_000_000))})
    assert response.status_code == 200
    assert "GLASSLOOP_XLSX_MAX_UNCOMPRESSED_BYTES" in response.content.decode()
