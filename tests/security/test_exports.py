"""Formula injection: every exported cell whose text starts with = + - @ tab or CR is
neutralised with a leading ' (OWASP), XLSX cells are text never formulas, numbers stay numbers."""

import csv
import io

import pytest
from openpyxl import load_workbook

from lab.models import PropertyValue, Reference
from lab.services import get_or_create_alloy

pytestmark = pytest.mark.django_db

NASTY = ["=HYPERLINK(\"http://x\",\"y\")", "+1+1", "-2+3", "@SUM(A1)", "\tTAB", "\rCR"]


def test_neutralise_cell_rules():
    from core.exports import neutralise_cell

    for text in NASTY:
        assert neutralise_cell(text) == "'" + text
    # numbers, and text that is only a number, are left alone
    assert neutralise_cell(-12.5) == -12.5
    assert neutralise_cell(-3) == -3
    assert neutralise_cell("-12.5") == "-12.5"
    assert neutralise_cell("+1e3") == "+1e3"
    assert neutralise_cell(None) is None
    assert neutralise_cell("Zr57Cu28Al10Ni5") == "Zr57Cu28Al10Ni5"
    assert neutralise_cell("") == ""


@pytest.fixture
def nasty_alloys():
    ref = Reference.objects.create(label="=cmd|' /C calc'!A0")
    alloys = []
    for i, name in enumerate(NASTY):
        alloy, _ = get_or_create_alloy(f"Zr{50 + i}Cu{40 - i}Al10", name=name)
        PropertyValue.objects.create(alloy=alloy, origin=PropertyValue.Origin.LITERATURE, reference=ref,
                                     tg_k=680 + i, tx_k=760, tl_k=1100, source_label="@evil")
        alloys.append(alloy)
    # an alloy without values gets its own row, written by the view
    get_or_create_alloy("Cu50Hf50", name="=1+2")
    return alloys


def test_csv_export_neutralises_formulae(viewer_client, nasty_alloys):
    response = viewer_client.get("/lab/alloys/export.csv")
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    names = {r["name"] for r in rows}
    assert names == {"'" + t for t in NASTY} | {"'=1+2"}
    for row in rows:
        for value in row.values():
            assert not value.startswith(("=", "+", "@", "\t", "\r")), row
            assert not (value.startswith("-") and not value.lstrip("-").replace(".", "").isdigit()), row


def test_xlsx_export_writes_text_never_formulae_and_keeps_numbers(viewer_client, nasty_alloys):
    response = viewer_client.get("/lab/alloys/export.xlsx")
    assert response.status_code == 200
    sheet = load_workbook(io.BytesIO(response.content)).worksheets[0]
    header = [c.value for c in sheet[1]]
    name_col, tg_col = header.index("name"), header.index("Tg_K")
    names = set()
    for row in sheet.iter_rows(min_row=2):
        for cell in row:
            assert cell.data_type != "f", (cell.coordinate, cell.value)
        names.add(row[name_col].value)
        tg = row[tg_col].value
        assert tg in (None, "") or isinstance(tg, (int, float)), tg
    assert names == {"'" + t for t in NASTY} | {"'=1+2"}


def test_admin_exports_use_the_same_rule(nasty_alloys):
    from lab.resources import AlloyResource, PropertyValueResource

    alloy_rows = AlloyResource().export().dict
    assert {r["name"] for r in alloy_rows} == {"'" + t for t in NASTY} | {"'=1+2"}
    for row in PropertyValueResource().export().dict:
        assert row["name"].startswith("'")
        assert isinstance(row["Tg_K"], (int, float)) or row["Tg_K"].lstrip("-").replace(".", "").isdigit()


def test_run_batch_export_neutralises_formulae(tmp_path):
    from mining import services
    from mining.management.commands.run_batch import export_records
    from mining.models import ExtractedRecord, ExtractionBatch

    source = services.create_source(text="The Zr57Cu28Al10Ni5 alloy shows Tg = 683 K.")
    batch = ExtractionBatch.objects.create(name="b", extractor=ExtractionBatch.RULES)
    ExtractedRecord.objects.create(batch=batch, source=source, composition_raw="=HYPERLINK(\"http://x\")", tg_k=683)
    path = tmp_path / "got.csv"
    assert export_records(batch, path) == 1
    row = next(csv.DictReader(path.open(encoding="utf-8")))
    assert row["composition"] == "'=HYPERLINK(\"http://x\")"
    assert row["Tg_K"] == "683"


def test_the_admin_export_page_neutralises_formulae(admin_client, nasty_alloys):
    """The admin's alloy Export (kept when its Import went to the lab's page) writes no formula."""
    fields = ["id", "formula", "composition_key", "name", "base_element", "n_elements", "created_at"]
    response = admin_client.post("/admin/lab/alloy/export/", {"format": "0", "resource": "0",
                                                               **{f"alloyresource_{f}": "on" for f in fields}})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert {r["name"] for r in rows} == {"'" + t for t in NASTY} | {"'=1+2"}
