"""The casting recipe on the candidate page, its printable view and the API: the numbers are
ml.recipe's, a bad ingot mass or purity is refused with the recipe's own message."""

import re

import pytest
from django.urls import reverse

from ml.recipe import RecipeError, casting_recipe

from .test_approval import make_candidate

FORMULA = "Zr55Cu25Al12Ni8"


@pytest.fixture
def c(campaign_factory):
    return make_candidate(campaign_factory(), FORMULA)


def _rows(html):
    table = html[html.index('id="recipe-table"'):]
    table = table[: table.index("</table>")]
    out = {}
    for el, cells in re.findall(r'<tr data-element="(\w+)">(.*?)</tr>', table, re.S):
        out[el] = [v.strip() for v in re.findall(r'<td class="num[^"]*">([^<]*)</td>', cells)]
    return out


def test_default_recipe_is_ten_grams_and_matches_ml_recipe(approver_client, c):
    page = approver_client.get(c.get_absolute_url()).content.decode()
    expected = casting_recipe(FORMULA, 10)
    rows = _rows(page)
    assert list(rows) == [line.element for line in expected.lines]
    for line in expected.lines:
        at, wt, mass, purity, grams = rows[line.element]
        assert (at, wt, mass, grams) == (f"{line.at_percent:.2f}", f"{line.wt_percent:.2f}", f"{line.atomic_weight:.3f}",
                                         f"{line.grams:.4f}")
    # By hand for Zr: 55 × 91.224 / (55·91.224 + 25·63.546 + 12·26.982 + 8·58.693) of 10 g.
    total = 55 * 91.224 + 25 * 63.546 + 12 * 26.982 + 8 * 58.693
    assert rows["Zr"][4] == f"{10 * 55 * 91.224 / total:.4f}"
    assert f"{expected.total_g:.4f}" in page


def test_chosen_mass_and_purity(approver_client, c):
    page = approver_client.get(c.get_absolute_url() + "?ingot_g=25&purity=Zr+0.998,+Cu+0.9999").content.decode()
    expected = casting_recipe(FORMULA, 25, {"Zr": 0.998, "Cu": 0.9999})
    rows = _rows(page)
    for line in expected.lines:
        assert rows[line.element][4] == f"{line.grams:.4f}"
    assert rows["Zr"][3] == "0.998" and rows["Al"][3] == "1"
    printable = approver_client.get(reverse("design:candidate_recipe", args=[c.pk]) + "?ingot_g=25&purity=0.9995")
    assert printable.status_code == 200
    html = printable.content.decode()
    assert "css/design-print.css" in html and "@media print" in open("static/css/design-print.css").read()
    assert _rows(html)["Zr"][4] == f"{casting_recipe(FORMULA, 25, 0.9995).lines[0].grams:.4f}"


@pytest.mark.parametrize("ingot", ["0", "-3", "abc", "5000"])
def test_bad_ingot_mass_is_refused_with_the_recipes_message(approver_client, c, ingot):
    with pytest.raises(RecipeError) as exc:
        casting_recipe(FORMULA, ingot)
    message = str(exc.value)
    page = approver_client.get(c.get_absolute_url(), {"ingot_g": ingot}).content.decode()
    assert 'id="recipe-table"' not in page
    error = re.search(r'id="ingot-error">(.*?)</span>', page, re.S).group(1)
    assert error == message.replace("'", "&#x27;")
    api = approver_client.get(f"/api/design-candidates/{c.pk}/recipe/", {"ingot_g": ingot})
    assert api.status_code == 400 and api.json()["detail"]["ingot_g"] == [message]
    printable = approver_client.get(reverse("design:candidate_recipe", args=[c.pk]), {"ingot_g": ingot})
    assert printable.status_code == 400 and message.replace("'", "&#x27;") in printable.content.decode()


def test_bad_purity_is_refused(approver_client, c):
    api = approver_client.get(f"/api/design-candidates/{c.pk}/recipe/", {"purity": "0.3"})
    assert api.status_code == 400
    assert api.json()["detail"]["purity"] == ["purity of Zr 0.3 must be a mass fraction between 0.5 and 1 (e.g. 0.9995)"]
    api = approver_client.get(f"/api/design-candidates/{c.pk}/recipe/", {"purity": "Fe 0.99"})
    assert "not in the alloy" in api.json()["detail"]["purity"][0]


def test_api_recipe(viewer_client, c):
    body = viewer_client.get(f"/api/design-candidates/{c.pk}/recipe/", {"ingot_g": "12.5"}).json()
    expected = casting_recipe(FORMULA, 12.5).as_dict()
    assert body["ingot_g"] == 12.5 and body["formula"] == expected["formula"]
    assert body["lines"] == [
        {k: pytest.approx(v) if isinstance(v, float) else v for k, v in line.items()} for line in expected["lines"]
    ]
    assert body["total_g"] == pytest.approx(expected["total_g"])
    assert {"element", "at_percent", "wt_percent", "atomic_weight", "purity", "grams"} <= set(body["lines"][0])
