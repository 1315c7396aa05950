"""Casting recipe: at.% to grams, checked against a hand calculation."""

import pytest

from ml.recipe import RecipeError, casting_recipe


def test_cu50zr50_by_hand():
    # M(Cu) = 63.546, M(Zr) = 91.224 g/mol: w(Cu) = 63.546 / (63.546 + 91.224) = 0.41058
    r = casting_recipe("Cu50Zr50", ingot_g=10)
    grams = {line.element: line.grams for line in r.lines}
    assert grams["Cu"] == pytest.approx(4.1058, abs=1e-3)
    assert grams["Zr"] == pytest.approx(5.8942, abs=1e-3)
    assert r.total_g == pytest.approx(10.0)
    assert {line.element: line.wt_percent for line in r.lines}["Cu"] == pytest.approx(41.058, abs=1e-2)


def test_vitreloy1_by_hand():
    # Zr41.2 Ti13.8 Cu12.5 Ni10 Be22.5 (at.%): Σ xM = 0.412·91.224 + 0.138·47.867 + 0.125·63.546
    # + 0.10·58.6934 + 0.225·9.012182 = 60.0303 g/mol; Be: 0.225·9.012182 / 60.0303 = 3.378 wt%
    r = casting_recipe("Zr41.2Ti13.8Cu12.5Ni10Be22.5", ingot_g=20)
    by = {line.element: line for line in r.lines}
    assert by["Be"].wt_percent == pytest.approx(3.378, abs=0.002)
    assert by["Zr"].grams == pytest.approx(20 * 0.412 * 91.224 / 60.0303, abs=1e-3)
    assert [line.element for line in r.lines][0] == "Zr"  # largest fraction first


def test_purity_adds_the_impurity_on_top():
    pure = casting_recipe("Cu50Zr50", ingot_g=10)
    impure = casting_recipe("Cu50Zr50", ingot_g=10, purity={"Zr": 0.99})
    zr = {line.element: line.grams for line in impure.lines}["Zr"]
    assert zr == pytest.approx(5.8942 / 0.99, abs=1e-3)
    assert impure.total_g > pure.total_g


@pytest.mark.parametrize("kwargs, message", [
    ({"ingot_g": 0}, "above 0 g"), ({"ingot_g": 5000}, "at most"), ({"ingot_g": "ten"}, "not a number"),
    ({"purity": 1.2}, "purity of"), ({"purity": {"Cu": 0.3}}, "purity of Cu"),
])
def test_refusals_say_why(kwargs, message):
    with pytest.raises(RecipeError, match=message):
        casting_recipe("Cu50Zr50", **kwargs)
