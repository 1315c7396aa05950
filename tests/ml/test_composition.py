"""The composition parser: every rule of the metallurgical convention, refusals, identity."""

import copy
import csv
import math
import pickle
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ml.composition import ELEMENTS, Composition, CompositionError, parse_composition, parse_many
from ml.datasets import literature_dataset_path

DATASET = literature_dataset_path()


def at_pct(text):
    return parse_composition(text).atomic_percent()


def refusal(text):
    with pytest.raises(CompositionError) as info:
        parse_composition(text)
    return info.value


# --- accepted forms ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Zr42Ti14Cu12Ni10Be22", {"Zr": 42, "Ti": 14, "Cu": 12, "Ni": 10, "Be": 22}),
        ("Cu0.5Hf0.5", {"Cu": 50, "Hf": 50}),
        ("(Cu50Zr40Al10)98Si2", {"Cu": 49, "Zr": 39.2, "Al": 9.8, "Si": 2}),
        ("[(Fe0.6Co0.4)0.70B0.25Si0.05]96Nb4", {"Fe": 40.32, "Co": 26.88, "B": 24, "Si": 4.8, "Nb": 4}),
        ("La60Al16(Cu5/6Ag1/6)12(Ni1/2Co1/2)12", {"La": 60, "Al": 16, "Cu": 10, "Ag": 2, "Ni": 6, "Co": 6}),
        ("(Ti45Cu37.8Zr10Ni7.2)100Sn0", {"Ti": 45, "Cu": 37.8, "Zr": 10, "Ni": 7.2}),
        ("Fe24Co26Ni25(P0.4C0.1B0.2Si0.3)25", {"Fe": 24, "Co": 26, "Ni": 25, "P": 10, "C": 2.5, "B": 5, "Si": 7.5}),
        ("(P0.45,C0.2,B0.2,Si0.15)20Fe80", {"Fe": 80, "P": 9, "C": 4, "B": 4, "Si": 3}),
        ("Cu39.95Zr50Al10.05", {"Cu": 39.95, "Zr": 50, "Al": 10.05}),
        ("Cu.5Zr.5", {"Cu": 50, "Zr": 50}),
        ("Fe100", {"Fe": 100}),
        ("Fe", {"Fe": 100}),
        ("(Cu50Hf50)", {"Cu": 50, "Hf": 50}),
        # a level within 1 % of 100 or of 1 is normalised by its own sum
        ("Zr57Cu28Al10Ni4", {"Zr": 57.58, "Cu": 28.28, "Al": 10.1, "Ni": 4.04}),
        ("Cu0.5Zr0.495", {"Cu": 50.25, "Zr": 49.75}),
        # the same element twice is summed
        ("(Cu50Hf50)90Cu10", {"Cu": 55, "Hf": 45}),
    ],
)
def test_accepted_formulas_give_exact_atomic_percent(text, expected):
    assert at_pct(text) == {el: float(v) for el, v in expected.items()}


def test_element_with_amount_zero_is_dropped():
    comp = parse_composition("(Ti45Cu37.8Zr10Ni7.2)100Sn0")
    assert "Sn" not in comp
    assert comp.elements == ("Ti", "Cu", "Zr", "Ni")
    assert parse_composition("Cu50Hf50Al0") == parse_composition("Cu50Hf50")


@pytest.mark.parametrize(
    "text",
    [
        "Zr 42 Ti 14 Cu 12 Ni 10 Be 22",
        "  Zr42Ti14Cu12Ni10Be22\n",
        "Zr42Ti14Cu12Ni10Be22 at.%",
        "Zr42Ti14Cu12Ni10Be22at%",
        "Zr42Ti14Cu12Ni10Be22 (at.%)",
        "Zr42 Ti14 Cu12 Ni10 Be22 AT.%",
    ],
)
def test_whitespace_and_atomic_percent_suffix_are_tolerated(text):
    assert parse_composition(text).formula == "Zr42Be22Ti14Cu12Ni10"


def test_ratios_and_fractions_inside_groups():
    comp = parse_composition("La60Al16(Cu5/6Ag1/6)12(Ni1/2Co1/2)12")
    assert math.isclose(sum(comp.values()), 1.0, abs_tol=1e-12)
    assert comp["Cu"] == 0.1 and comp["Ag"] == 0.02


# --- refusals ------------------------------------------------------------------------------


def test_refusals_are_value_errors():
    assert issubclass(CompositionError, ValueError)


def test_level_sum_far_from_100_is_refused_with_the_sum_and_a_suggestion():
    err = refusal("(Ti42Zr23Be20Cu12Ni3)950Y5")
    assert "955" in str(err)
    assert "'(Ti42Zr23Be20Cu12Ni3)95Y5'" in str(err)
    # the suggestion itself parses
    assert at_pct("(Ti42Zr23Be20Cu12Ni3)95Y5")["Y"] == 5


def test_fraction_multiplier_with_at_percent_partner_is_refused():
    err = refusal("(Cu50Zr40Al10)0.99Si1")
    assert "1.99" in str(err)
    assert "99Si1" in str(err)
    assert "'(Cu50Zr40Al10)99Si1'" in str(err)


def test_group_sum_is_checked_and_named():
    err = refusal("(Cu50Zr40Al7)98Si2")
    message = str(err)
    assert "97" in message and "'(Cu50Zr40Al7)'" in message and "position 1" in message


def test_nested_group_sum_refused_with_suggestion():
    err = refusal("[(Fe0.8Co0.2)0.70Mo5B25]94Dy6")
    assert "30.7" in str(err)
    assert "[(Fe0.8Co0.2)70Mo5B25]94Dy6" in str(err)


@pytest.mark.parametrize("text, total", [("Cu50Zr60", "110"), ("Fe50", "50"), ("Fe40Ni36B15.5Si3Nb2.5", "97")])
def test_sums_outside_one_percent_are_refused(text, total):
    err = refusal(text)
    assert f"add up to {total};" in str(err)


@pytest.mark.parametrize(
    "text, token, position, suggestion",
    [
        ("TI2", "TI", 1, "Ti"),
        ("Fe70B24Y4TI2", "TI", 10, "Ti"),
        ("A10.20Cu0.80", "A", 1, "Al"),
        ("(Zr0.60A10.20Co0.15Cu0.05)95Ag5", "A", 8, "Al"),
        ("AI50Cu50", "AI", 1, "Al"),
        ("CU50ZR50", "ZR", 5, "Zr"),
    ],
)
def test_unknown_symbols_are_refused_with_a_suggestion(text, token, position, suggestion):
    err = refusal(text)
    assert f"unknown element symbol {token!r} at position {position}" in str(err)
    assert f"did you mean {suggestion!r}" in str(err)
    assert err.position == position and err.token == token


def test_unknown_symbol_without_a_suggestion():
    err = refusal("Cu50Xx50")
    assert "unknown element symbol 'Xx' at position 5" in str(err)
    assert "did you mean" not in str(err)


def test_lowercase_symbols_are_refused_with_the_capitalised_suggestion():
    err = refusal("cu50zr50")
    assert "'cu'" in str(err) and "position 1" in str(err) and "'Cu'" in str(err)


def test_unspecified_split_is_refused():
    err = refusal("(Cu,Ni)21Zr79")
    assert "unspecified split" in str(err) and "'(Cu,Ni)'" in str(err) and "position 1" in str(err)
    assert "unspecified split" in str(refusal("(Cu,Ni)21"))
    assert "unspecified split" in str(refusal("La60Al16(Cu,Ni)24"))
    assert "unspecified split" in str(refusal("(CuZr)50Ni50"))
    assert "unspecified split" in str(refusal("(Cu50,Ni)50Zr50"))


def test_element_without_amount_in_an_amount_bearing_formula_is_refused():
    err = refusal("B15.5PNb2.5")
    assert "'P' at position 6 has no amount" in str(err)
    err = refusal("Fe50CO50")  # a capital O for Co
    assert "'C' at position 5 has no amount" in str(err) and "did you mean 'Co'" in str(err)
    assert "group '(Cu50Hf50)' at position 1 has no amount" in str(refusal("(Cu50Hf50)Ni50"))
    assert "'Zr' at position 6 has no amount" in str(refusal("Cu50,Zr"))


def test_formula_without_any_amount_is_refused():
    err = refusal("CuZr")
    assert "amounts unspecified" in str(err) and "'CuZr'" in str(err)


@pytest.mark.parametrize("text, token, position", [("B02", "02", 2), ("Cu50Zr050", "050", 7), ("Cu50Zr00.5", "00.5", 7)])
def test_zero_padded_numbers_are_refused(text, token, position):
    err = refusal(text)
    assert f"zero-padded number {token!r} at position {position}" in str(err)


def test_zero_alone_and_leading_zero_decimals_are_fine():
    assert at_pct("Cu0.5Hf0.5Al0") == {"Cu": 50.0, "Hf": 50.0}
    assert at_pct("Cu39.95Zr50Al10.05")["Al"] == 10.05


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("Ag2?", "unexpected character '?' at position 4"),
        ("Zr47Cu44Al7Ag2?", "unexpected character '?' at position 15"),
        ("Cu-50Zr50", "unexpected character '-' at position 3"),
        ("Cu50Hf50;", "unexpected character ';' at position 9"),
        ("(Cu50Hf50", "unclosed '(' at position 1"),
        ("[(Cu50Hf50)98Si2", "unclosed '[' at position 1"),
        ("Cu50Hf50)", "unmatched ')' at position 9"),
        ("(Cu50Hf50]", "']' at position 10 does not match '(' at position 1"),
        ("()Cu", "empty group '()' at position 1"),
        ("Cu50,,Zr50", "stray ',' at position 6"),
        (",Cu50Hf50", "stray ',' at position 1"),
        ("Cu50Hf50,", "stray ',' at position 9"),
        ("50Cu50Zr", "number '50' at position 1 does not follow an element or a group"),
        ("Cu50 50Zr", "number '50' at position 6"),
        ("Cu50.Zr50", "malformed number '50.' at position 3"),
        ("Cu50.1.2Zr49.9", "malformed number '50.1.' at position 3"),
        ("Cu1/0Zr1/2", "ratio '1/0' at position 3 divides by zero"),
        ("Cu1/Zr1/2", "incomplete ratio '1/' at position 3"),
        ("Cu50Hf50 wt%", "weight percent"),
        ("Fe99.999B0.001", "B at position 9"),
        ("Cu0Zr0", "add up to 0;"),
        ("Cu" + "9" * 400 + "Zr1", "is too long (400 characters)"),
        ("Cu1/0." + "0" * 30 + "1Zr1/2", "is too long"),
    ],
)
def test_malformed_text_is_refused_saying_where(text, fragment):
    assert fragment in str(refusal(text))


@pytest.mark.parametrize("text", ["", "   ", "\t\n", "at.%", None])
def test_empty_input_is_refused(text):
    assert "empty composition" in str(refusal(text))


def test_non_text_and_overlong_and_deeply_nested_input_are_refused():
    assert "must be text" in str(refusal(42))
    assert "too long" in str(refusal("Cu50Hf50" * 500))
    assert "nested too deeply" in str(refusal("(" * 40 + "Cu" + ")" * 40))


# --- canonical formula, key, identity --------------------------------------------------------


def test_canonical_formula_and_key():
    comp = parse_composition("Zr42Ti14Cu12Ni10Be22")
    assert comp.formula == "Zr42Be22Ti14Cu12Ni10"
    assert comp.key == "Be22Cu12Ni10Ti14Zr42"
    assert str(comp) == comp.formula
    assert comp.elements == ("Zr", "Be", "Ti", "Cu", "Ni")
    assert comp.base_element == "Zr"
    assert repr(comp) == "Composition('Zr42Be22Ti14Cu12Ni10')"


def test_ties_are_alphabetical():
    comp = parse_composition("Hf50Cu50")
    assert comp.formula == "Cu50Hf50" and comp.base_element == "Cu"
    assert parse_composition("Mg30Cu30Ca40").formula == "Ca40Cu30Mg30"


def test_permuted_and_rescaled_writings_are_the_same_alloy():
    a, b = parse_composition("Ca40Cu30Mg30"), parse_composition("Ca40Mg30Cu30")
    assert a == b and hash(a) == hash(b) and a.key == b.key == "Ca40Cu30Mg30"
    assert len({a, b}) == 1
    c, d = parse_composition("Cu0.5Hf0.5"), parse_composition("Cu50Hf50")
    assert c == d and c.key == d.key and dict(c) == dict(d)
    assert parse_composition("(Cu50Zr40Al10)98Si2") == parse_composition("Si2Al9.8Zr39.2Cu49")
    assert parse_composition("Cu50Hf50") != parse_composition("Cu50Zr49Al1")


def test_rounded_percentages_always_add_up_to_100():
    comp = parse_composition("Cu1/3Zr1/3Ni1/3")
    assert comp.atomic_percent() == {"Cu": 33.34, "Ni": 33.33, "Zr": 33.33}
    assert comp.formula == "Cu33.34Ni33.33Zr33.33"
    assert parse_composition("Zr1/3Ni1/3Cu1/3") == comp
    assert parse_composition(comp.formula) == comp


def test_formula_uses_at_most_two_decimals():
    comp = parse_composition("Cu0.123456Zr0.876544")
    assert comp.formula == "Zr87.65Cu12.35"


def test_mapping_behaviour():
    comp = parse_composition("(Cu50Zr40Al10)98Si2")
    assert list(comp) == ["Cu", "Zr", "Al", "Si"] and len(comp) == 4
    assert comp["Cu"] == 0.49 and comp.get("Fe") is None and "Si" in comp and "Fe" not in comp
    assert math.isclose(sum(comp.values()), 1.0, abs_tol=1e-12)
    assert comp == {"Cu": 0.49, "Zr": 0.392, "Al": 0.098, "Si": 0.02}
    assert comp.units() == {"Cu": 4900, "Zr": 3920, "Al": 980, "Si": 200}
    assert comp != "Cu49Zr39.2Al9.8Si2"  # text is not a composition


def test_composition_is_immutable():
    comp = parse_composition("Cu50Hf50")
    with pytest.raises(TypeError):
        comp["Cu"] = 0.6
    with pytest.raises(AttributeError):
        comp.formula = "Cu60Zr40"
    with pytest.raises(AttributeError):
        comp.key = "x"
    with pytest.raises(AttributeError):
        del comp.elements
    with pytest.raises(AttributeError):
        comp.anything = 1
    fractions = dict(comp)
    fractions["Cu"] = 1.0
    assert comp["Cu"] == 0.5
    percent = comp.atomic_percent()
    percent["Cu"] = 99
    assert comp.atomic_percent()["Cu"] == 50.0
    assert comp.formula == "Cu50Hf50"


def test_pickle_and_copy_keep_identity():
    comp = parse_composition("[(Fe0.6Co0.4)0.70B0.25Si0.05]96Nb4")
    again = pickle.loads(pickle.dumps(comp))
    assert again == comp and again.formula == comp.formula and dict(again) == dict(comp)
    assert copy.deepcopy(comp) is comp


# --- from_fractions and the constructor --------------------------------------------------------


def test_from_fractions_normalises_and_drops_zeros():
    comp = Composition.from_fractions({"Cu": 2, "Hf": 2, "Al": 0})
    assert comp == parse_composition("Cu50Hf50") and "Al" not in comp
    assert Composition.from_fractions({"Cu": 46, "Zr": 46, "Al": 8}).formula == "Cu46Zr46Al8"
    # traces below 0.005 at.% vanish rather than show as 0
    assert Composition.from_fractions({"Fe": 1, "B": 1e-7}).formula == "Fe100"


@pytest.mark.parametrize(
    "mapping, fragment",
    [
        ({"Cu": -0.1, "Zr": 1.1}, "negative"),
        ({"Cu": 0.5, "Xx": 0.5}, "unknown element symbol 'Xx'"),
        ({"cu": 0.5, "Zr": 0.5}, "did you mean 'Cu'"),
        ({}, "empty composition"),
        ({"Cu": 0, "Zr": 0}, "empty composition"),
        ({"Cu": float("nan"), "Zr": 1}, "finite"),
        ({"Cu": float("inf"), "Zr": 1}, "finite"),
        ({"Cu": "half", "Zr": 1}, "must be a number"),
        ({"Cu": True, "Zr": 1}, "must be a number"),
        ("Cu50Hf50", "expected a mapping"),
    ],
)
def test_from_fractions_refusals(mapping, fragment):
    with pytest.raises(CompositionError) as info:
        Composition.from_fractions(mapping)
    assert fragment in str(info.value)


def test_constructor_accepts_text_mapping_or_composition():
    comp = Composition("Cu50Hf50")
    assert comp == Composition({"Cu": 1, "Hf": 1}) and Composition(comp) is comp
    assert parse_composition(comp) is comp


def test_parse_many_keeps_refusals_in_place():
    results = parse_many(["Cu50Hf50", "TI2", "Fe"])
    assert results[0] == parse_composition("Cu50Hf50")
    assert isinstance(results[1], CompositionError) and "Ti" in str(results[1])
    assert results[2].formula == "Fe100"


# --- properties ---------------------------------------------------------------------------------


def test_round_trip_over_random_compositions():
    rng = random.Random(20240517)
    common = ["Zr", "Cu", "Ni", "Al", "Ti", "Be", "Fe", "Co", "B", "Si", "P", "Pd", "La", "Mg", "Y", "Nb"]
    for _ in range(400):
        elements = rng.sample(common if rng.random() < 0.7 else list(ELEMENTS), rng.randint(1, 8))
        amounts = {el: rng.choice([rng.random(), rng.randint(1, 60), round(rng.uniform(0.01, 50), 2)]) for el in elements}
        comp = Composition.from_fractions(amounts)
        assert math.isclose(sum(comp.values()), 1.0, abs_tol=1e-9)
        assert sum(comp.units().values()) == 10_000
        again = parse_composition(comp.formula)
        assert again == comp and again.formula == comp.formula and dict(again) == dict(comp)
        # the same alloy written as fractions, in reverse order, with spaces
        pct = comp.atomic_percent()
        as_fractions = "".join(el + f"{pct[el] / 100:.6f}".rstrip("0").rstrip(".") for el in reversed(comp.elements))
        assert parse_composition(as_fractions) == comp, as_fractions
        spaced = " ".join(f"{el} {value:g}" for el, value in sorted(pct.items()))
        assert parse_composition(spaced).key == comp.key
        # a group scaled by its multiplier is the same alloy as its expansion
        if len(comp) >= 3:
            outside = comp.elements[-1]
            inner = {el: comp.units()[el] for el in comp.elements[:-1]}
            inner_total = sum(inner.values())
            group = "(" + "".join(f"{el}{u}/{inner_total}" for el, u in inner.items()) + ")"
            text = f"{group}{inner_total / 100:g}{outside}{pct[outside]:g}"
            assert parse_composition(text) == comp, text


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="CuZrAlNiTIOo0123456789./,()[] ?%at-", max_size=30))
def test_arbitrary_text_parses_or_raises_composition_error(text):
    try:
        comp = parse_composition(text)
    except CompositionError as exc:
        assert str(exc)
    else:
        assert parse_composition(comp.formula) == comp


def test_every_literature_row_parses_or_is_refused_cleanly():
    if not DATASET.exists():
        pytest.skip(f"literature data set not found at {DATASET} (set GLASSLOOP_DATASET)")
    with DATASET.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert rows
    parsed = refused = 0
    for row in rows:
        try:
            comp = parse_composition(row["composition"])
        except CompositionError as exc:
            assert str(exc)
            refused += 1
        else:
            assert parse_composition(comp.formula) == comp
            parsed += 1
    assert parsed + refused == len(rows) and parsed > 0
