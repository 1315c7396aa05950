"""GFA class and Dmax as property values with provenance; lab castings as censored Dmax
evidence; the alloy summary (lab outweighs literature, conflicts flagged); import, mining
approval, training rows, pages, API and export."""

import csv
import io

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from lab import services
from lab.importing import import_alloys
from lab.models import Alloy, PropertyValue, Reference
from mining import services as mining_services
from mining.models import ExtractedRecord
from tests.lab.patterns_fixtures import synthetic_xrd_pattern
from training import selectors as training_selectors
from training.snapshots import rows_from_csv

pytestmark = pytest.mark.django_db


def xrd_upload(kind):
    return SimpleUploadedFile(f"{kind}.xy", synthetic_xrd_pattern(kind), content_type="text/plain")


def cast(user, composition, label, diameter_mm, kind):
    return services.log_experiment(user=user, composition=composition, label=label, diameter_mm=diameter_mm,
                                   xrd_file=xrd_upload(kind))


def literature(alloy, **kw):
    value = PropertyValue(alloy=alloy, origin="literature", **kw)
    value.full_clean()
    value.save()
    return value


def fresh(alloy):
    return Alloy.objects.get(pk=alloy.pk)


# ------------------------------------------------------------------ model validation


def test_a_value_may_carry_only_gfa_data():
    alloy, _ = services.get_or_create_alloy("Zr41.2Ti13.8Cu12.5Ni10Be22.5")
    value = literature(alloy, gfa_class="BMG", dmax_mm=50, source_label="Peker & Johnson 1993")
    assert (value.gfa_class, value.dmax_mm, value.dmax_kind, value.tg_k) == ("bmg", 50, "point", None)
    alloy = fresh(alloy)
    assert (alloy.gfa_class, alloy.dmax_mm, alloy.dmax_is_bound, alloy.gfa_conflict) == ("bmg", 50, False, False)
    assert alloy.dmax_display == "Dmax 50 mm"


@pytest.mark.parametrize(
    "fields, field, message",
    [
        ({"gfa_class": "glassy"}, "gfa_class", "unknown GFA class 'glassy'"),
        ({"gfa_class": "bmg", "dmax_mm": 0}, "dmax_mm", "must be above 0 mm"),
        ({"gfa_class": "bmg", "dmax_mm": 250}, "dmax_mm", "above 200 mm"),
        ({"dmax_mm": -1}, "dmax_mm", "must be above 0 mm"),
        ({"gfa_class": "crystal", "dmax_mm": 2}, "dmax_mm", "a crystalline alloy has no Dmax"),
    ],
)
def test_model_validation_refuses_with_the_rules_reason(fields, field, message):
    alloy, _ = services.get_or_create_alloy("Cu50Zr50")
    value = PropertyValue(alloy=alloy, origin="literature", **fields)
    with pytest.raises(ValidationError) as exc:
        value.full_clean()
    assert message in " ".join(exc.value.message_dict[field])


# ------------------------------------------------------------------ lab castings: censored Dmax


def test_an_amorphous_rod_is_a_lower_bound_in_the_summary_page_and_training_rows(experimenter, viewer_client):
    sample = cast(experimenter, "Cu46Zr46Al8", "S-12", 3.0, "amorphous")
    alloy = fresh(sample.alloy)
    assert (alloy.gfa_class, alloy.dmax_mm, alloy.dmax_is_bound) == ("bmg", 3.0, True)
    assert alloy.dmax_display == "Dmax ≥ 3 mm"
    assert not PropertyValue.objects.filter(alloy=alloy).exists()  # never a fake point value

    page = viewer_client.get(alloy.get_absolute_url()).content.decode()
    assert "Dmax ≥ 3 mm (rod S-12, amorphous)" in page

    rows = [r for r in training_selectors.training_rows() if r["origin"] == "xrd"]
    assert len(rows) == 1
    row = rows[0]
    assert (row["gfa_class"], row["dmax_kind"], float(row["dmax_mm"]), row["label"]) == ("bmg", "at_least", 3.0, "1")
    assert set(training_selectors.SNAPSHOT_COLUMNS) <= set(row)


def test_a_crystalline_rod_only_says_below(experimenter, viewer_client):
    sample = cast(experimenter, "Cu60Zr40", "S-13", 2.0, "crystalline")
    alloy = fresh(sample.alloy)
    assert (alloy.gfa_class, alloy.dmax_mm) == ("", None)  # it may still form a thinner glass
    assert "Dmax &lt; 2 mm (rod S-13, crystalline)" in viewer_client.get(alloy.get_absolute_url()).content.decode()
    (row,) = [r for r in training_selectors.training_rows() if r["origin"] == "xrd"]
    assert (row["gfa_class"], row["dmax_kind"], float(row["dmax_mm"]), row["label"]) == ("", "below", 2.0, "0")


def test_the_latest_xrd_and_an_override_decide(experimenter):
    sample = cast(experimenter, "Cu46Zr46Al8", "S-14", 4.0, "amorphous")
    xrd = sample.xrd_measurements.get()
    services.override_xrd_verdict(xrd, user=experimenter, verdict="crystalline", reason="sharp peak seen by eye")
    alloy = fresh(sample.alloy)
    assert (alloy.gfa_class, alloy.dmax_mm) == ("", None)
    services.override_xrd_verdict(xrd, user=experimenter, verdict="", reason="back to the analysis")
    assert fresh(alloy).dmax_mm == 4.0


def test_lab_castings_outweigh_the_literature(experimenter):
    sample = cast(experimenter, "Cu46Zr46Al8", "S-15", 3.0, "amorphous")
    literature(sample.alloy, gfa_class="crystal", source_label="Some 1990 paper")
    alloy = fresh(sample.alloy)
    assert alloy.gfa_class == "bmg" and alloy.dmax_mm == 3.0 and alloy.dmax_is_bound
    assert alloy.gfa_conflict and alloy.has_conflict
    assert "rod S-15" in alloy.gfa_conflict_reason and "Some 1990 paper" in alloy.gfa_conflict_reason
    assert "lab's casting is kept" in alloy.gfa_conflict_reason


def test_a_reported_dmax_beats_a_thinner_rod_and_the_best_is_a_point():
    alloy, _ = services.get_or_create_alloy("Pd40Ni40P20")
    literature(alloy, gfa_class="bmg", dmax_mm=10, source_label="A")
    literature(alloy, gfa_class="bmg", dmax_mm=25, source_label="B")
    alloy = fresh(alloy)
    assert (alloy.dmax_mm, alloy.dmax_is_bound, alloy.gfa_conflict) == (25, False, False)


# ------------------------------------------------------------------ conflicting literature


def test_conflicting_literature_classes_are_flagged_with_the_reason(viewer_client):
    alloy, _ = services.get_or_create_alloy("Cu64Zr36")
    literature(alloy, gfa_class="bmg", dmax_mm=2, source_label="Paper A")
    literature(alloy, gfa_class="ribbon", source_label="Paper B")
    alloy = fresh(alloy)
    assert alloy.gfa_conflict and alloy.has_conflict
    assert "Paper A" in alloy.gfa_conflict_reason and "Paper B" in alloy.gfa_conflict_reason
    assert alloy.gfa_class == "bmg"  # the glass was made
    page = viewer_client.get(alloy.get_absolute_url()).content.decode()
    assert "GFA conflict" in page and "Paper B" in page


def test_agreeing_literature_is_no_conflict():
    alloy, _ = services.get_or_create_alloy("Cu50Zr50")
    literature(alloy, gfa_class="ribbon", source_label="A")
    literature(alloy, gfa_class="ribbon", source_label="B")
    alloy = fresh(alloy)
    assert (alloy.gfa_class, alloy.gfa_conflict, alloy.has_conflict) == ("ribbon", False, False)


# ------------------------------------------------------------------ import


def table(*lines):
    return ("composition,Tg_K,Tx_K,Tl_K,gfa_class,dmax_mm,source\n" + "\n".join(lines) + "\n").encode()


def test_import_reads_gfa_columns_and_refuses_row_by_row():
    data = table(
        "Zr65Al7.5Ni10Cu17.5,,,,BMG,16,Inoue 1991",
        "Cu60Zr40,,,,Crystal,0,LB",  # the source's code: no Dmax
        "Cu50Zr50,,,,Ribbon,0.15,LB",  # likewise
        "Cu46Zr46Al8,,,,glassy,,X",
        "Cu47Zr47Al6,,,,BMG,0,X",
        "Cu48Zr48Al4,,,,BMG,250,X",
        "Cu49Zr49Al2,,,,Crystal,2,X",
        "Cu45Zr45Al10,,,,BMG,abc,X",
    )
    report = import_alloys(data, filename="gfa.csv")
    by_line = {r["line"]: r for r in report.rows}
    assert [by_line[n]["outcome"] for n in (2, 3, 4)] == ["created"] * 3
    assert "unknown GFA class 'glassy'" in by_line[5]["reason"]
    assert "must be above 0 mm" in by_line[6]["reason"]
    assert "above 200 mm" in by_line[7]["reason"]
    assert "a crystalline alloy has no Dmax" in by_line[8]["reason"]
    assert "not a number" in by_line[9]["reason"]
    assert all(by_line[n]["outcome"] == "refused" for n in range(5, 10))
    values = {v.alloy.formula: v for v in PropertyValue.objects.select_related("alloy")}
    assert (values["Zr65Cu17.5Ni10Al7.5"].gfa_class, values["Zr65Cu17.5Ni10Al7.5"].dmax_mm) == ("bmg", 16)
    assert (values["Cu60Zr40"].gfa_class, values["Cu60Zr40"].dmax_mm) == ("crystal", None)
    assert (values["Cu50Zr50"].gfa_class, values["Cu50Zr50"].dmax_mm) == ("ribbon", None)
    assert Alloy.objects.get(formula="Zr65Cu17.5Ni10Al7.5").dmax_mm == 16

    again = import_alloys(data, filename="gfa.csv")
    assert again.counts["created"] == 0 and PropertyValue.objects.count() == 3


def test_import_of_a_different_class_is_a_conflict():
    import_alloys(table("Cu64Zr36,,,,Ribbon,,A"), filename="a.csv")
    report = import_alloys(table("Cu64Zr36,,,,BMG,2,B"), filename="b.csv")
    assert report.rows[0]["outcome"] == "conflict" and "differs from an existing value" in report.rows[0]["reason"]
    alloy = Alloy.objects.get()
    assert alloy.gfa_conflict and alloy.has_conflict and alloy.gfa_class == "bmg"


# ------------------------------------------------------------------ mining approval


TEXT = "The Zr57Cu28Al10Ni5 alloy shows Tg = 683 K and Tx = 763 K. Its liquidus temperature is 1118 K.\n"


@pytest.fixture
def record(db):
    source = mining_services.create_source(text=TEXT, doi="10.1000/gfa.1", title="GFA", authors="Doe", year=2001)
    batch = mining_services.create_batch(name="gfa", sources=[source], extractor="rules", enqueue=False)
    mining_services.run_batch(batch.pk)
    return batch.records.get(composition_raw="Zr57Cu28Al10Ni5")


def test_approval_carries_gfa_class_and_dmax(record, reviewer):
    ExtractedRecord.objects.filter(pk=record.pk).update(gfa_class="bmg", dmax_mm=5.0)
    mining_services.approve_record(record.pk, reviewer)
    value = PropertyValue.objects.get()
    assert (value.gfa_class, value.dmax_mm, value.dmax_kind, value.tg_k) == ("bmg", 5.0, "point", 683)
    alloy = fresh(value.alloy)
    assert (alloy.gfa_class, alloy.dmax_mm, alloy.dmax_is_bound) == ("bmg", 5.0, False)


def test_approval_of_a_gfa_only_record_and_refusal_of_a_dmax_on_a_crystal(record, reviewer):
    ExtractedRecord.objects.filter(pk=record.pk).update(tg_k=None, tx_k=None, tl_k=None, gfa_class="crystal", dmax_mm=3.0)
    with pytest.raises(mining_services.MiningError, match="a crystalline alloy has no Dmax"):
        mining_services.approve_record(record.pk, reviewer)
    ExtractedRecord.objects.filter(pk=record.pk).update(dmax_mm=None)
    mining_services.approve_record(record.pk, reviewer)
    value = PropertyValue.objects.get()
    assert (value.gfa_class, value.dmax_mm, value.tg_k) == ("crystal", None, None)


# ------------------------------------------------------------------ training rows from a CSV


def test_rows_from_csv_accepts_the_gfa_columns(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("composition,Tg_K,Tx_K,Tl_K,gfa_class,dmax_mm\nCu50Zr50,,,,Ribbon,0.15\nPd40Ni40P20,580,670,990,BMG,25\n"
                    "Cu60Zr40,,,,Crystal,0\n")
    rows = {r["composition"]: r for r in rows_from_csv(path)}
    assert (rows["Cu50Zr50"]["gfa_class"], rows["Cu50Zr50"]["dmax_mm"], rows["Cu50Zr50"]["dmax_kind"]) == ("ribbon", "", "")
    assert (rows["Pd40Ni40P20"]["gfa_class"], rows["Pd40Ni40P20"]["dmax_mm"], rows["Pd40Ni40P20"]["dmax_kind"]) == ("bmg", "25", "point")
    assert rows["Cu60Zr40"]["gfa_class"] == "crystal"
    old = tmp_path / "old.csv"
    old.write_text("composition,Tg_K,Tx_K,Tl_K\nPd40Ni40P20,580,670,990\n")
    (row,) = rows_from_csv(old)
    assert (row["gfa_class"], row["dmax_mm"]) == ("", "")


def test_training_rows_carry_the_values_gfa():
    alloy, _ = services.get_or_create_alloy("Pd40Ni40P20")
    literature(alloy, gfa_class="bmg", dmax_mm=25, source_label="A")
    literature(alloy, tg_k=580, tx_k=670, source_label="B")
    rows = training_selectors.training_rows()
    assert sorted((r["gfa_class"], r["dmax_mm"], r["dmax_kind"], r["Tg_K"]) for r in rows) == [
        ("", "", "", "580.0"), ("bmg", "25.0", "point", ""),
    ]


# ------------------------------------------------------------------ list filters, API, export


@pytest.fixture
def three_alloys(experimenter):
    a, _ = services.get_or_create_alloy("Pd40Ni40P20")
    literature(a, gfa_class="bmg", dmax_mm=25, source_label="A")
    b, _ = services.get_or_create_alloy("Cu60Zr40")
    literature(b, gfa_class="crystal", source_label="B")
    c, _ = services.get_or_create_alloy("Cu50Zr50")  # nothing known
    return a, b, c


def test_alloy_list_filters_by_gfa_class_and_has_dmax(viewer_client, three_alloys):
    def formulas(**params):
        page = viewer_client.get(_alloy_list_url(), params)
        return [a.formula for a in page.context["alloys"]]

    assert formulas(gfa_class="bmg") == ["Ni40Pd40P20"]
    assert formulas(gfa_class="crystal") == ["Cu60Zr40"]
    assert formulas(gfa_class="unknown") == ["Cu50Zr50"]
    assert formulas(has_dmax="yes") == ["Ni40Pd40P20"]
    assert sorted(formulas(has_dmax="no")) == ["Cu50Zr50", "Cu60Zr40"]


def _alloy_list_url():
    from django.urls import reverse

    return reverse("lab:alloy_list")


def test_api_exposes_and_filters_gfa(viewer, three_alloys):
    api = APIClient()
    api.force_authenticate(viewer)
    body = api.get("/api/alloys/", {"gfa_class": "bmg"}).json()
    assert [r["formula"] for r in body["results"]] == ["Ni40Pd40P20"]
    row = body["results"][0]
    assert (row["gfa_class"], row["dmax_mm"], row["dmax_is_bound"], row["gfa_conflict"]) == ("bmg", 25, False, False)
    assert api.get("/api/alloys/", {"has_dmax": "false"}).json()["count"] == 2
    detail = api.get(f"/api/alloys/{three_alloys[0].pk}/").json()
    assert detail["property_values"][0]["gfa_class"] == "bmg" and detail["castings"] == []
    values = api.get("/api/property-values/", {"gfa_class": "crystal"}).json()
    assert [v["formula"] for v in values["results"]] == ["Cu60Zr40"]


def test_export_has_gfa_columns(viewer_client, three_alloys):
    from django.urls import reverse

    response = viewer_client.get(reverse("lab:alloy_export", args=["csv"]))
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    by_formula = {r["formula"]: r for r in rows}
    assert by_formula["Ni40Pd40P20"]["gfa_class"] == "bmg" and float(by_formula["Ni40Pd40P20"]["dmax_mm"]) == 25
    assert by_formula["Cu60Zr40"]["gfa_class"] == "crystal" and by_formula["Cu60Zr40"]["dmax_mm"] == ""


def test_the_corpus_reference_text_is_in_the_provenance():
    ref = Reference.objects.create(doi="10.1039/d2dd00026a", authors="R. Forrest; A. L. Greer", year=2022, journal="Digital Discovery")
    alloy, _ = services.get_or_create_alloy("Cu50Zr50")
    value = literature(alloy, gfa_class="ribbon", reference=ref, source_label="Forrest & Greer 2022, cerebral GFA table, row 7")
    assert value.provenance == "R. Forrest; A. L. Greer (2022) Digital Discovery, Forrest & Greer 2022, cerebral GFA table, row 7"
