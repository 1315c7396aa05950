"""The import service: outcomes, idempotence, all-or-nothing, dry run, XLSX."""

import pytest
from django.db import connection
from openpyxl import Workbook

from core.doi import normalise_doi
from lab.importing import ImportFileError, import_alloys
from lab.models import Alloy, PropertyValue, Reference
from lab.services import get_or_create_alloy
from ml.datasets import literature_dataset_path

pytestmark = pytest.mark.django_db

FIXTURE = """composition,Tg_K,Tx_K,Tl_K,source,doi,extra
Zr42Ti14Cu12Ni10Be22,630,680,1000,Paper A,https://doi.org/10.1000/ABC,ignored
Cu46Zr46Al8,700,750,1100,,,
Be22Cu12Ni10Ti14Zr42,634,684,1004,,,
Cu46Al8Zr46,740,790,1150,Paper B,,
TI50Cu50,600,650,1000,,,
Pd41Ni41P18,700,650,1000,,,
La56Al24Ni20,486,552,,,,
"""


def write(tmp_path, text, name="table.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def outcomes(report):
    return [(r["line"], r["outcome"]) for r in report.rows]


def test_outcomes_and_reasons(tmp_path):
    report = import_alloys(write(tmp_path, FIXTURE), source_label="table.csv")
    assert report.counts == {"rows": 7, "created": 3, "merged": 1, "conflicts": 1, "refused": 2}
    assert outcomes(report) == [(2, "created"), (3, "created"), (4, "merged"), (5, "conflict"), (6, "refused"), (7, "refused"), (8, "created")]
    by_line = {r["line"]: r for r in report.rows}
    assert "Ti" in by_line[6]["reason"]  # the parser suggests the symbol
    assert "Tx" in by_line[7]["reason"] and "Tg < Tx < Tl" in by_line[7]["reason"]
    assert "10 K" in by_line[5]["reason"]

    vit = Alloy.objects.get(composition_key="Be22Cu12Ni10Ti14Zr42")
    assert by_line[2]["alloy_id"] == by_line[4]["alloy_id"] == vit.pk
    assert vit.property_values.count() == 1  # the second Zr glass A row agreed within 10 K
    value = vit.property_values.get()
    assert value.reference.doi == "10.1000/abc" and value.reference.label == "Paper A"

    cuzr = Alloy.objects.get(composition_key="Al8Cu46Zr46")
    values = list(cuzr.property_values.order_by("tg_k"))
    assert [v.tg_k for v in values] == [700, 740]
    assert all(v.conflict for v in values)  # both sides of the conflict are flagged
    assert values[0].source_label == "table.csv" and values[1].reference.label == "Paper B"
    assert Alloy.objects.count() == 3 and PropertyValue.objects.count() == 4


def test_second_import_creates_nothing(tmp_path):
    path = write(tmp_path, FIXTURE)
    import_alloys(path)
    counts = (Alloy.objects.count(), PropertyValue.objects.count(), Reference.objects.count())
    again = import_alloys(path)
    assert again.counts["created"] == 0 and again.counts["conflicts"] == 0
    assert again.counts["merged"] == 5 and again.counts["refused"] == 2
    assert (Alloy.objects.count(), PropertyValue.objects.count(), Reference.objects.count()) == counts


def test_existing_alloy_from_the_lab_is_merged_or_conflicting(tmp_path):
    alloy, _ = get_or_create_alloy("Cu50Hf50")
    PropertyValue.objects.create(alloy=alloy, origin="literature", tg_k=670, tx_k=720, tl_k=1200)
    report = import_alloys(write(tmp_path, "Composition,TG_K,tx_k,Tl_K\nHf50Cu50,675,715,1195\nCu0.5Hf0.5,690,740,\n"))
    assert outcomes(report) == [(2, "merged"), (3, "conflict")]
    assert report.rows[0]["alloy_id"] == alloy.pk
    assert alloy.property_values.filter(conflict=True).count() == 2


def test_missing_column_aborts_with_a_clear_message(tmp_path):
    with pytest.raises(ImportFileError, match="lacks the column.*Tl_K"):
        import_alloys(write(tmp_path, "composition,Tg_K,Tx_K\nCu50Hf50,670,720\n"))
    with pytest.raises(ImportFileError, match="no such file"):
        import_alloys(tmp_path / "nope.csv")
    with pytest.raises(ImportFileError, match="empty"):
        import_alloys(write(tmp_path, ""))
    with pytest.raises(ImportFileError, match="XLSX"):
        import_alloys(write(tmp_path, "PK\x03\x04 not really a workbook", name="broken.xlsx"))
    assert Alloy.objects.count() == 0


def test_bad_numbers_and_dois_are_refused(tmp_path):
    report = import_alloys(write(tmp_path, "composition,Tg_K,Tx_K,Tl_K,doi\nCu50Hf50,abc,720,1200,\nCu60Zr40,100,720,1200,\nCu63Zr37,700,750,1200,not-a-doi\n"))
    reasons = [r["reason"] for r in report.rows]
    assert report.counts["refused"] == 3
    assert "not a number" in reasons[0]
    assert "outside the plausible range" in reasons[1]
    assert "'not-a-doi' is not a DOI" in reasons[2]


def test_dry_run_commits_nothing(tmp_path):
    report = import_alloys(write(tmp_path, FIXTURE), dry_run=True)
    assert report.counts["created"] == 3 and report.dry_run
    assert all(r["alloy_id"] is None for r in report.rows if r["outcome"] == "created")
    assert Alloy.objects.count() == 0 and PropertyValue.objects.count() == 0 and Reference.objects.count() == 0


def _install_failing_trigger():
    """A real database error on inserting a value with Tg = 666 K (not a mock)."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(
                "CREATE TRIGGER glassloop_test_fail BEFORE INSERT ON lab_propertyvalue "
                "WHEN NEW.tg_k = 666 BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
            )
        elif connection.vendor == "postgresql":
            cursor.execute(
                "CREATE FUNCTION glassloop_test_fail() RETURNS trigger AS $$ BEGIN "
                "IF NEW.tg_k = 666 THEN RAISE EXCEPTION 'injected failure'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql"
            )
            cursor.execute(
                "CREATE TRIGGER glassloop_test_fail BEFORE INSERT ON lab_propertyvalue "
                "FOR EACH ROW EXECUTE FUNCTION glassloop_test_fail()"
            )
        else:
            pytest.skip(f"no trigger recipe for {connection.vendor}")


def test_unexpected_error_mid_file_commits_nothing(tmp_path):
    existing, _ = get_or_create_alloy("Cu50Hf50")
    old = PropertyValue.objects.create(alloy=existing, origin="literature", tg_k=670, tx_k=720, tl_k=1200)
    _install_failing_trigger()
    table = "composition,Tg_K,Tx_K,Tl_K,source\nCu63Zr37,700,750,1200,Paper C\nCu50Hf50,700,760,1250,\nPd41Ni41P18,666,700,900,\nLa56Al24Ni20,486,552,,\n"
    with pytest.raises(Exception, match="injected failure"):
        import_alloys(write(tmp_path, table))
    assert list(Alloy.objects.values_list("pk", flat=True)) == [existing.pk]
    assert list(PropertyValue.objects.values_list("pk", flat=True)) == [old.pk]
    old.refresh_from_db()
    assert old.conflict is False  # the conflict flag of the existing value was rolled back too
    assert not Reference.objects.exists()


def test_xlsx_import(tmp_path):
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["Composition", "Tg_K", "Tx_K", "Tl_K", "DOI"])
    sheet.append(["Cu45Zr43Al7Y5", 668, 770, 1120, "doi:10.1000/XYZ"])
    sheet.append([None, None, None, None, None])  # empty rows are skipped
    sheet.append(["Xx50Cu50", 600, 650, 900, None])
    path = tmp_path / "table.xlsx"
    workbook.save(path)
    report = import_alloys(path)
    assert outcomes(report) == [(2, "created"), (4, "refused")]
    value = PropertyValue.objects.get()
    assert (value.tg_k, value.tx_k, value.tl_k) == (668, 770, 1120)
    assert value.reference.doi == "10.1000/xyz"


def test_rows_without_temperatures_record_the_alloy_and_its_source():
    rows = [{"composition": "Ce68Al10Cu22", "Tg_K": "", "Tx_K": "", "Tl_K": "", "doi": "10.1000/ce", "name": "Ce glass"}]
    first = import_alloys(rows)
    assert first.counts["created"] == 1
    alloy = Alloy.objects.get()
    assert alloy.name == "Ce glass"
    assert alloy.property_values.get().reference.doi == "10.1000/ce"
    assert import_alloys(rows).counts == {"rows": 1, "created": 0, "merged": 1, "conflicts": 0, "refused": 0}
    assert PropertyValue.objects.count() == 1


def test_doi_normalisation():
    assert normalise_doi(" https://doi.org/10.1063/1.110520 ") == "10.1063/1.110520"
    assert normalise_doi("http://dx.doi.org/10.1103/PhysRevLett.92.245504") == "10.1103/physrevlett.92.245504"
    assert normalise_doi("") == ""


def test_shared_data_set_imports_twice_without_duplicates():
    path = literature_dataset_path()
    if not path.is_file():
        pytest.skip(f"data set not found at {path} (set GLASSLOOP_DATASET)")
    first = import_alloys(path)
    assert first.counts["rows"] > 1000 and first.counts["refused"] > 0 and first.counts["created"] > 0
    assert first.counts["rows"] == sum(first.counts[k] for k in ("created", "merged", "conflicts", "refused"))
    again = import_alloys(path)
    assert again.counts["created"] == 0 and again.counts["conflicts"] == 0
