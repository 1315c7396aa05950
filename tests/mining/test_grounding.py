"""Grounding: every stored value must be stated by the record's snippet(s) (mining.validation)."""

import pytest

from mining import validation
from mining.models import ExtractedRecord


def rec(snippet, tg=None, tx=None, tl=None, **kw):
    return ExtractedRecord(composition_raw="Zr57Cu28Al10Ni5", snippet=snippet, tg_k=tg, tx_k=tx, tl_k=tl, **kw)


def ungrounded(r):
    return " ".join(validation.grounding_problems(r))


def test_values_stated_in_kelvin_are_grounded():
    assert ungrounded(rec("Zr57Cu28Al10Ni5 shows Tg = 683 K, Tx = 763 K and Tl = 1118 K.", 683, 763, 1118)) == ""


def test_a_snippet_with_none_of_the_numbers_is_ungrounded():
    r = rec("The Zr57Cu28Al10Ni5 alloy was cast into copper moulds.", 683, 763, 1118)
    problems = ungrounded(r)
    assert "Tg = 683 K (410 °C) is not found" in problems and "Tx = 763" in problems and "Tl = 1118" in problems
    validation.validate_records([r])
    assert "ungrounded" in r.flag_names


def test_celsius_written_values_round_within_the_tolerance():
    # 683 K is 409.85 °C, which a paper prints as 410 (or 409.9); 409 is too far.
    assert ungrounded(rec("Tg of 410 °C", 683)) == ""
    assert ungrounded(rec("Tg of 409.9 °C", 683)) == ""
    assert "Tg = 683" in ungrounded(rec("Tg of 409 °C", 683))
    # As written first: the source wrote 312 °C, stored 585.15 K.
    assert ungrounded(rec("Tg of 312 °C", 585.15, original_values={"tg": {"value": 312, "unit": "C"}})) == ""
    # Rounded kelvin: 683.2 K stored, 683 written.
    assert ungrounded(rec("Tg = 683 K", 683.2)) == ""
    assert "Tg" in ungrounded(rec("Tg = 683 K", 684))


def test_composition_subscripts_years_and_dois_are_not_values():
    # Dmax 5 mm is not stated by "Ni5"; Tg 57 is not "Zr57" (nor a spaced "Zr 57 Cu 28").
    assert "Dmax = 5 mm" in ungrounded(rec("Zr57Cu28Al10Ni5 is a bulk glass.", dmax_mm=5))
    assert "Dmax" in ungrounded(rec("Zr 57 Cu 28 Al 10 Ni 5 is a bulk glass.", dmax_mm=28))
    assert ungrounded(rec("Zr57Cu28Al10Ni5 rods of 5 mm were glassy.", dmax_mm=5)) == ""
    # A year is not a liquidus, unless a unit says it is a temperature.
    assert "Tl" in ungrounded(rec("As Inoue (2005) and Wang et al., 2004 showed", tl=2005))
    assert ungrounded(rec("Tl = 2005 K", tl=2005)) == ""
    assert "Tg" in ungrounded(rec("doi:10.1016/j.actamat.2005.01.683", 683))
    # Thallium and potassium are element symbols, but "Tl 1950 K" is a liquidus.
    assert ungrounded(rec("Tl 1950 K", tl=1950)) == ""


def test_more_snippets_count():
    r = rec("Zr57Cu28Al10Ni5 shows Tg = 683 K.", 683, 763, more_snippets=["Table 2: Tx 763 K"])
    assert ungrounded(r) == ""


def test_no_snippet_at_all_is_ungrounded_but_no_values_is_nothing_to_ground():
    assert "no snippet" in ungrounded(rec("", 683))
    assert ungrounded(rec("", None)) == ""


def test_a_derived_value_is_grounded_by_its_parts():
    formula = {"tx": "Tx = Tg + ΔTx = 680 K + 85 K"}
    ok = rec("Tg = 680 K and a supercooled liquid region ΔTx of 85 K", 680, 765, derived=formula)
    assert ungrounded(ok) == ""  # 765 is nowhere in the text, and need not be
    part_missing = rec("Tg = 680 K and a wide supercooled liquid region", 680, 765, derived=formula)
    assert "Tx = 765 K is derived (Tx = Tg + ΔTx = 680 K + 85 K); 85 K not found" in ungrounded(part_missing)
    # Not derived: the sum itself must be stated.
    assert "Tx = 765" in ungrounded(rec("Tg = 680 K and ΔTx of 85 K", 680, 765))
    assert validation.formula_parts("Tx = Tg + ΔTx = 407 °C + 85 K") == [(407.0, "C"), (85.0, "K")]


@pytest.mark.parametrize("snippet,grounded", [
    ("Zr57Cu28Al10Ni5 683 763 1118", True),  # a table row
    ("Zr57Cu28Al10Ni5,683.0,763,1118", True),  # an imported CSV row as written
    ("Zr57Cu28Al10Ni5 683 763", False),
])
def test_table_rows(snippet, grounded):
    assert (ungrounded(rec(snippet, 683, 763, 1118)) == "") is grounded


def test_bulk_blockers_say_why():
    complete = rec("Tg = 683 K, Tx = 763 K, Tl = 1118 K", 683, 763, 1118)
    validation.validate_records([complete])
    assert complete.flags == [] and validation.bulk_blockers(complete) == []
    only_tg = rec("Tg = 683 K", 683)
    validation.validate_records([only_tg])
    assert only_tg.flags == [] and validation.bulk_blockers(only_tg) == ["no Tx, Tl (incomplete)"]
    bad = ExtractedRecord(composition_raw="TI40Cu60", snippet="TI40Cu60 Tg 700 K", tg_k=700, tx_k=763, tl_k=1118)
    validation.validate_records([bad])
    assert validation.bulk_blockers(bad) == ["composition not parsed", "flagged: ungrounded, unparseable"]
