"""Every validation flag, on unsaved records (no database needed except where noted)."""

import pytest

from lab.models import PropertyValue
from lab.services import get_or_create_alloy
from mining import selectors, validation
from mining.models import ExtractedRecord


def rec(composition, tg=None, tx=None, tl=None, pk=None, **kw):
    """An unsaved record; its snippet states its values unless one is given (grounding)."""
    if "snippet" not in kw:
        stated = [f"{label} = {v:g} K" for label, v in (("Tg", tg), ("Tx", tx), ("Tl", tl)) if v is not None]
        kw["snippet"] = f"{composition}: " + ", ".join(stated) + "."
    r = ExtractedRecord(composition_raw=composition, tg_k=tg, tx_k=tx, tl_k=tl, **kw)
    r.pk = pk
    return r


def flags(r):
    return {f["flag"]: f["reason"] for f in r.flags}


def test_clean_record_has_no_flag():
    (r,) = validation.validate_records([rec("Zr57Cu28Al10Ni5", 683, 763, 1118, pk=1)])
    assert r.flags == [] and r.flag_count == 0 and r.flag_index == ""
    assert r.composition_key == "Al10Cu28Ni5Zr57" and r.elements_index == "|Al|Cu|Ni|Zr|"


def test_unparseable_carries_the_parser_message():
    (r,) = validation.validate_records([rec("La61Al15(Cu,Ni)24", 420, 470, 740, pk=1)])
    assert "unspecified split" in flags(r)["unparseable"]
    (r,) = validation.validate_records([rec("TI40Cu60", 700, 750, 1200, pk=1)])
    assert "did you mean 'Ti'" in flags(r)["unparseable"]


def test_non_number_value_is_unparseable():
    r = rec("Zr57Cu28Al10Ni5", None, 763, 1118, pk=1, original_values={"tg": {"value": "68x", "error": "Tg '68x' is not a number"}})
    validation.validate_records([r])
    assert flags(r)["unparseable"] == "Tg '68x' is not a number"


def test_order():
    (r,) = validation.validate_records([rec("Zr57Cu28Al10Ni5", 770, 763, 1118, pk=1)])
    assert flags(r)["order"].startswith("Tg (770 K) is not below Tx (763 K)")
    (r,) = validation.validate_records([rec("Zr57Cu28Al10Ni5", 683, 1200, 1118, pk=1)])
    assert "Tx (1200 K) is not below Tl (1118 K)" in flags(r)["order"]


def test_range_and_implausible_delta_tx():
    (r,) = validation.validate_records([rec("Zr57Cu28Al10Ni5", 683, 763, 2600, pk=1)])
    assert "Tl = 2600 K is outside" in flags(r)["range"]
    (r,) = validation.validate_records([rec("Zr57Cu28Al10Ni5", 600, 900, 1118, pk=1)])
    assert "ΔTx" in flags(r)["range"]


def test_units_celsius_suspected_for_a_high_temperature_family():
    (r,) = validation.validate_records([rec("Zr47Cu46Al4Ga3", 425, 488, 905, pk=1)])
    assert "°C" in flags(r)["units"] and "698.15" in flags(r)["units"]
    # The same values are normal for a Ca-based glass.
    (r,) = validation.validate_records([rec("Ca64Mg16Zn20", 375, 410, 650, pk=1)])
    assert "units" not in flags(r)
    # Values the source gave in °C were converted already and are not suspected again.
    (r,) = validation.validate_records([rec("Zr47Cu46Al4Ga3", 425, 488, 905, pk=1, original_values={"tg": {"value": 151.85, "unit": "C"}})])
    assert "units" not in flags(r)


def test_duplicate_and_conflict_between_records():
    a, b, c = rec("Ca42Cu33Mg25", 404, 440, 690, pk=1), rec("Ca42Mg25Cu33", 406, 442, 695, pk=2), rec("Cu33Ca42Mg25", 435, 440, 690, pk=3)
    validation.validate_records([a, b, c])
    assert "record 2" in flags(a)["duplicate"] and "record 3" in flags(a)["conflict"]
    assert "Tg 435 vs 404 K" in flags(c)["conflict"]


def test_a_record_sharing_no_temperature_is_neither_duplicate_nor_conflict():
    # Regression: all() over no shared temperature was True, so a record with only Tg was
    # flagged "duplicate (no common value)" against a value with only Tl.
    only_tg, only_tl = rec("Zr57Cu28Al10Ni5", 683, pk=1), rec("Cu28Zr57Al10Ni5", tl=1118, pk=2)
    validation.validate_records([only_tg, only_tl])
    assert only_tg.flags == [] and only_tl.flags == []
    # One shared temperature is enough to compare: Tg 683 vs 700 K is a conflict.
    tg_tl, tg_far = rec("Zr57Cu28Al10Ni5", 683, tl=1118, pk=3), rec("Zr57Cu28Al10Ni5", 700, pk=4)
    validation.validate_records([tg_tl, tg_far])
    assert set(flags(tg_far)) == {"conflict"} and "Tg 700 vs 683 K" in flags(tg_far)["conflict"]


@pytest.mark.django_db
def test_an_alloy_value_sharing_no_temperature_is_not_a_duplicate():
    alloy, _ = get_or_create_alloy("Zr57Cu28Al10Ni5")
    PropertyValue.objects.create(alloy=alloy, origin="literature", tl_k=1118)
    r = rec("Cu28Zr57Al10Ni5", 683, 763, pk=10)
    validation.validate_records([r], others=lambda keys: selectors.comparison_values(keys))
    assert r.flags == []


def test_identical_rows_are_duplicates_of_each_other():
    a, b = rec("Pd41Ni41P18", 585, 662, 915), rec("Pd41Ni41P18", 585, 662, 915)
    validation.validate_records([a, b])
    assert "duplicate" in flags(a) and "duplicate" in flags(b)


@pytest.mark.django_db
def test_duplicate_and_conflict_with_an_existing_alloy_value():
    alloy, _ = get_or_create_alloy("Zr57Cu28Al10Ni5")
    PropertyValue.objects.create(alloy=alloy, origin="literature", tg_k=683, tx_k=763, tl_k=1118)
    same = rec("Cu28Zr57Al10Ni5", 685, 760, 1120, pk=10)
    off = rec("Zr57Cu28Al10Ni5", 700, 763, 1118, pk=11)
    validation.validate_records([same], others=lambda keys: selectors.comparison_values(keys))
    validation.validate_records([off], others=lambda keys: selectors.comparison_values(keys))
    assert "alloy Zr57Cu28Al10Ni5" in flags(same)["duplicate"] and "conflict" not in flags(same)
    assert "Tg 700 vs 683 K" in flags(off)["conflict"]


def test_outlier_with_a_predictor_hook():
    def predictor(compositions):
        n = len(compositions)
        return {"tg_k": ([680.0] * n, [15.0] * n)}

    near, far = rec("Zr57Cu28Al10Ni5", 690, 763, 1118, pk=1), rec("Zr65Al7.5Ni10Cu17.5", 800, 850, 1200, pk=2)
    validation.validate_records([near, far], predictor=predictor)
    assert "outlier" not in flags(near)
    assert "8.0σ from the model's 680 ± 15 K" in flags(far)["outlier"]


@pytest.mark.django_db
def test_no_active_model_no_outlier_check():
    assert validation.get_active_predictor() is None


def test_snippet_flag():
    r = rec("Zr57Cu28Al10Ni5", 683, 763, 1118, pk=1, snippet_in_source=False)
    validation.validate_records([r])
    assert set(flags(r)) == {"snippet"}
