"""/api/alloys/: filters (elements, property ranges, base element), pagination, ordering,
creation through the parser, and a query count that does not grow with the rows."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from lab import services
from lab.models import Alloy, PropertyValue
from ml.composition import CompositionError, parse_composition
from tests.api.conftest import make_alloys

pytestmark = pytest.mark.django_db

ALLOYS = "/api/alloys/"


def literature(alloy, tg, tx, tl):
    return PropertyValue.objects.create(alloy=alloy, origin="literature", source_label="test", tg_k=tg, tx_k=tx, tl_k=tl)


@pytest.fixture
def family(experimenter):
    """Four alloys of three bases with known mean Tg/Tx/Tl."""
    made = {}
    for text, (tg, tx, tl) in {
        "Zr50Cu40Al10": (700, 770, 1150),
        "Cu50Zr45Al5": (690, 740, 1180),
        "Cu60Zr30Ti10": (720, 760, 1160),
        "Mg65Cu25Y10": (420, 470, 730),
    }.items():
        alloy, _ = services.get_or_create_alloy(text, user=experimenter)
        literature(alloy, tg, tx, tl)
        made[text] = alloy
    services.get_or_create_alloy("Pd45Ni35P20", user=experimenter)  # no property values
    return made


def formulas(response):
    assert response.status_code == 200, response.content
    return sorted(row["formula"] for row in response.json()["results"])


def test_list_shows_composition_and_mean_properties(viewer_api, family):
    rows = {row["formula"]: row for row in viewer_api.get(ALLOYS).json()["results"]}
    zr = rows["Zr50Cu40Al10"]
    assert zr["elements"] == ["Zr", "Cu", "Al"] and zr["base_element"] == "Zr" and zr["n_elements"] == 3
    assert zr["atomic_percent"] == {"Zr": 50.0, "Cu": 40.0, "Al": 10.0}
    assert zr["composition_key"] == parse_composition("Zr50Cu40Al10").key
    assert zr["tg_mean_k"] == 700 and zr["tx_mean_k"] == 770 and zr["tl_mean_k"] == 1150
    assert zr["trg"] == pytest.approx(700 / 1150) and zr["gamma"] == pytest.approx(770 / 1850) and zr["dtx_k"] == 70
    assert zr["n_values"] == 1 and zr["n_samples"] == 0 and zr["has_conflict"] is False
    assert rows["Pd45Ni35P20"]["tg_mean_k"] is None and rows["Pd45Ni35P20"]["trg"] is None


def test_filter_by_elements_needs_all_of_them(viewer_api, family):
    assert formulas(viewer_api.get(ALLOYS, {"elements": "Zr,Cu"})) == ["Cu50Zr45Al5", "Cu60Zr30Ti10", "Zr50Cu40Al10"]
    assert formulas(viewer_api.get(ALLOYS, {"elements": "Zr,Cu,Al"})) == ["Cu50Zr45Al5", "Zr50Cu40Al10"]
    assert formulas(viewer_api.get(ALLOYS, {"elements": "cu, y"})) == ["Mg65Cu25Y10"]  # symbols case-insensitive
    assert formulas(viewer_api.get(ALLOYS, {"elements": "Cu,Be"})) == []


def test_unknown_element_is_a_json_error(viewer_api, family):
    response = viewer_api.get(ALLOYS, {"elements": "Zr,Xx"})
    assert response.status_code == 400
    body = response.json()
    assert body["detail"] == {"elements": ["'Xx' is not an element symbol."]}
    assert body["error"] == "elements: 'Xx' is not an element symbol."


def test_filter_by_property_ranges(viewer_api, family):
    assert formulas(viewer_api.get(ALLOYS, {"tg_min": 695})) == ["Cu60Zr30Ti10", "Zr50Cu40Al10"]
    assert formulas(viewer_api.get(ALLOYS, {"tg_min": 600, "tg_max": 705})) == ["Cu50Zr45Al5", "Zr50Cu40Al10"]
    assert formulas(viewer_api.get(ALLOYS, {"tx_min": 765})) == ["Zr50Cu40Al10"]
    assert formulas(viewer_api.get(ALLOYS, {"tl_max": 1000})) == ["Mg65Cu25Y10"]
    assert formulas(viewer_api.get(ALLOYS, {"trg_min": 0.6})) == ["Cu60Zr30Ti10", "Zr50Cu40Al10"]
    assert formulas(viewer_api.get(ALLOYS, {"gamma_min": 0.415})) == ["Zr50Cu40Al10"]
    response = viewer_api.get(ALLOYS, {"tg_min": "hot"})
    assert response.status_code == 400 and "tg_min" in response.json()["detail"]


def test_range_is_over_the_mean_of_all_sources(viewer_api, family):
    literature(family["Mg65Cu25Y10"], 500, 560, 760)  # mean Tg now 460 K
    assert formulas(viewer_api.get(ALLOYS, {"tg_min": 455, "tg_max": 465})) == ["Mg65Cu25Y10"]


def test_filter_by_base_element_and_text(viewer_api, family):
    assert formulas(viewer_api.get(ALLOYS, {"base_element": "Cu"})) == ["Cu50Zr45Al5", "Cu60Zr30Ti10"]
    assert formulas(viewer_api.get(ALLOYS, {"base_element": "Cu", "elements": "Ti"})) == ["Cu60Zr30Ti10"]
    assert formulas(viewer_api.get(ALLOYS, {"q": "Mg65"})) == ["Mg65Cu25Y10"]


def test_ordering_puts_unknown_values_last(viewer_api, family):
    rows = viewer_api.get(ALLOYS, {"ordering": "-tg_mean_k"}).json()["results"]
    assert [r["formula"] for r in rows] == ["Cu60Zr30Ti10", "Zr50Cu40Al10", "Cu50Zr45Al5", "Mg65Cu25Y10", "Pd45Ni35P20"]
    rows = viewer_api.get(ALLOYS, {"ordering": "tg_mean_k"}).json()["results"]
    assert [r["formula"] for r in rows] == ["Mg65Cu25Y10", "Cu50Zr45Al5", "Zr50Cu40Al10", "Cu60Zr30Ti10", "Pd45Ni35P20"]
    rows = viewer_api.get(ALLOYS, {"ordering": "base_element,-trg"}).json()["results"]
    assert [r["base_element"] for r in rows] == ["Cu", "Cu", "Mg", "Pd", "Zr"]
    assert rows[0]["formula"] == "Cu60Zr30Ti10"  # higher Trg first within Cu
    # An unknown ordering is ignored: the default (by formula) applies.
    rows = viewer_api.get(ALLOYS, {"ordering": "password"}).json()["results"]
    assert [r["formula"] for r in rows] == sorted(r["formula"] for r in rows)


def test_pagination(viewer_api, experimenter):
    make_alloys(60, user=experimenter)
    first = viewer_api.get(ALLOYS).json()
    assert first["count"] == 60 and len(first["results"]) == 50 and first["previous"] is None
    second = viewer_api.get(first["next"]).json()
    assert len(second["results"]) == 10 and second["next"] is None
    assert not {r["id"] for r in first["results"]} & {r["id"] for r in second["results"]}
    assert len(viewer_api.get(ALLOYS, {"page_size": 7}).json()["results"]) == 7
    assert len(viewer_api.get(ALLOYS, {"page_size": 100000}).json()["results"]) == 60  # capped at 500
    response = viewer_api.get(ALLOYS, {"page": 9})
    assert response.status_code == 404 and response.json()["error"] == "Invalid page."


def test_pages_of_an_ordering_never_overlap(viewer_api, experimenter):
    alloys = make_alloys(12, user=experimenter)
    for alloy in alloys:  # ties everywhere: every alloy gets the same mean Tg
        PropertyValue.objects.filter(alloy=alloy).update(tg_k=700)
    seen = []
    for page in (1, 2, 3):
        seen += [r["id"] for r in viewer_api.get(ALLOYS, {"ordering": "tg_mean_k", "page_size": 5, "page": page}).json()["results"]]
    assert sorted(seen) == sorted(a.pk for a in alloys)


def test_detail_has_values_with_provenance_and_samples(viewer_api, experimenter):
    alloy = make_alloys(1, user=experimenter)[0]
    body = viewer_api.get(f"{ALLOYS}{alloy.pk}/").json()
    # Two values, one in an unresolved conflict: both listed, one counted in the means.
    assert body["formula"] == alloy.formula and body["n_values"] == 1 and body["has_conflict"] is True
    assert len(body["property_values"]) == 2
    assert [v["provenance"] for v in body["property_values"]] == ["api test source"] * 2
    assert body["property_values"][0]["reference"]["label"] == "api test source"
    assert [s["label"] for s in body["samples"]] == ["P-0"]
    assert viewer_api.get(f"{ALLOYS}999999/").json() == {"error": "No Alloy matches the given query.", "detail": "No Alloy matches the given query."}


def test_create_goes_through_the_parser(experimenter_api):
    response = experimenter_api.post(ALLOYS, {"composition": "(Cu50Hf50)92Al8", "name": "CuHfAl"})
    assert response.status_code == 201
    assert response.json()["formula"] == parse_composition("(Cu50Hf50)92Al8").formula
    # The same alloy written differently is found, not duplicated.
    again = experimenter_api.post(ALLOYS, {"composition": "Al8Hf46Cu46"})
    assert again.status_code == 200 and again.json()["id"] == response.json()["id"]
    assert Alloy.objects.count() == 1


@pytest.mark.parametrize("text", ["Zr41.2Ti13.8Cu12.5Ni10Be2.25", "Cu50Xx50", "TI50Cu50"])
def test_refused_composition_keeps_the_parsers_message(experimenter_api, text):
    with pytest.raises(CompositionError) as parser_error:
        parse_composition(text)
    response = experimenter_api.post(ALLOYS, {"composition": text})
    assert response.status_code == 400
    body = response.json()
    assert body["detail"] == {"composition": [str(parser_error.value)]}
    assert str(parser_error.value) in body["error"]
    assert not Alloy.objects.exists()


def count_queries(client, url):
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    return len(ctx.captured_queries), response.json()


@pytest.mark.parametrize(
    "url",
    [ALLOYS, ALLOYS + "?elements=Zr,Cu&tg_min=600&ordering=-trg", "/api/samples/", "/api/property-values/?ordering=-tg_k"],
)
def test_query_count_does_not_grow_with_rows(viewer_api, experimenter, url):
    make_alloys(5, user=experimenter)
    few, body = count_queries(viewer_api, url)
    assert len(body["results"]) >= 5
    make_alloys(25, user=experimenter, start=5)
    many, body = count_queries(viewer_api, url)
    assert len(body["results"]) >= 30
    assert many == few, f"{url}: {few} queries for 5 rows, {many} for 30"


def test_filter_by_has_conflicts_as_the_list_page(viewer_api, family):
    """?has_conflicts=true|false as the alloy list page's "Conflicts" filter (Alloy.has_conflict)."""
    mg = family["Mg65Cu25Y10"]
    PropertyValue.objects.create(alloy=mg, origin="literature", source_label="other", tg_k=480, tx_k=530, tl_k=750,
                                 conflict=True)
    mg.refresh_from_db()
    assert mg.has_conflict
    assert formulas(viewer_api.get(ALLOYS, {"has_conflicts": "true"})) == ["Mg65Cu25Y10"]
    assert "Mg65Cu25Y10" not in formulas(viewer_api.get(ALLOYS, {"has_conflicts": "false"}))
    assert len(formulas(viewer_api.get(ALLOYS, {"has_conflicts": "false"}))) == 4
    assert len(formulas(viewer_api.get(ALLOYS))) == 5
