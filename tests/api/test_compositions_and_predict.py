"""POST /api/compositions/parse and POST /api/predict."""

import pytest

from ml.composition import CompositionError, parse_composition

pytestmark = pytest.mark.django_db

PARSE = "/api/compositions/parse"
PREDICT = "/api/predict"


def parser_message(text):
    with pytest.raises(CompositionError) as error:
        parse_composition(text)
    return str(error.value)


def test_parse_one(viewer_api):
    response = viewer_api.post(PARSE, {"composition": "(Cu50Hf50)92Al8"})
    assert response.status_code == 200
    comp = parse_composition("(Cu50Hf50)92Al8")
    assert response.json() == {
        "input": "(Cu50Hf50)92Al8",
        "formula": comp.formula,
        "key": comp.key,
        "atomic_percent": {"Cu": 46.0, "Hf": 46.0, "Al": 8.0},
        "elements": ["Cu", "Hf", "Al"],
        "base_element": "Cu",
        "n_elements": 3,
    }


@pytest.mark.parametrize("text", ["Zr41.2Ti13.8Cu12.5Ni10Be2.25", "(Cu,Ni)21Zr79", "Cu50Hf50 wt.%", ""])
def test_parse_one_bad_is_a_400_with_the_parsers_message(viewer_api, text):
    response = viewer_api.post(PARSE, {"composition": text})
    assert response.status_code == 400
    message = parser_message(text)
    assert response.json() == {"error": f"composition: {message}", "detail": {"composition": [message]}}


def test_parse_a_list_gives_per_item_results(viewer_api):
    texts = ["Cu50Hf50", "Hf50Cu50", "A150Cu50", "Mg65Cu25Y10"]
    response = viewer_api.post(PARSE, {"compositions": texts})
    assert response.status_code == 200
    body = response.json()
    assert body["n_ok"] == 3 and body["n_errors"] == 1
    results = body["results"]
    assert [r["input"] for r in results] == texts
    assert results[0]["ok"] and results[0]["key"] == results[1]["key"]
    assert results[2] == {"input": "A150Cu50", "ok": False, "error": parser_message("A150Cu50"),
                          "position": results[2]["position"]}  # fmt: skip
    assert results[3]["base_element"] == "Mg" and results[3]["n_elements"] == 3


def test_parse_needs_one_of_the_two_shapes(viewer_api):
    for body in ({}, {"composition": "Cu50Hf50", "compositions": ["Cu50Hf50"]}):
        response = viewer_api.post(PARSE, body)
        assert response.status_code == 400
        assert '"composition"' in response.json()["error"]
    response = viewer_api.post(PARSE, {"compositions": "Cu50Hf50"})  # a string, not a list
    assert response.status_code == 400 and "compositions" in response.json()["detail"]


def test_parse_list_is_bounded(viewer_api):
    response = viewer_api.post(PARSE, {"compositions": ["Cu50Hf50"] * 1001})
    assert response.status_code == 400 and "1000" in response.json()["error"]


def test_parse_and_predict_need_a_viewer(api):
    assert api.post(PARSE, {"composition": "Cu50Hf50"}).status_code == 401
    assert api.post(PREDICT, {"compositions": ["Cu50Hf50"]}).status_code == 401


def test_predict_without_an_active_model_is_a_503_that_says_so(viewer_api):
    response = viewer_api.post(PREDICT, {"compositions": ["Cu50Hf50"]})
    assert response.status_code == 503
    assert response.json() == {"error": "no trained model is active yet", "detail": "no trained model is active yet"}


def test_predict_checks_its_input_first(viewer_api):
    response = viewer_api.post(PREDICT, {"compositions": []})
    assert response.status_code == 400 and "compositions" in response.json()["detail"]


def test_predict_with_an_active_version_whose_files_are_missing_is_a_503(viewer_api, tmp_path, settings):
    from training.models import ModelVersion
    from django.utils import timezone

    settings.MODEL_ARTEFACT_ROOT = tmp_path
    ModelVersion.objects.create(
        artefact_dir="gone", snapshot_hash="0" * 64, snapshot_taken_at=timezone.now(), status="active"
    )
    response = viewer_api.post(PREDICT, {"compositions": ["Cu50Hf50"]})
    assert response.status_code == 503
    assert "missing" in response.json()["error"] or "cannot be loaded" in response.json()["error"]
