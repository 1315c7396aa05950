"""Each domain rule is applied the same way by every app that needs it (ml.rules, core.doi).

One test per rule, each through the apps' real entry points (model, form, API, import, mining
review and approval, ML data preparation), asserting outcomes and the message people see.
"""

import io

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from core.doi import validate_doi
from lab import services as lab_services
from lab.filters import ElementsField
from lab.forms import AlloySearchForm, DSCForm
from lab.importing import import_alloys
from lab.models import PropertyValue, Reference, Sample, validate_transition_temperatures
from lab.patterns import normalise_temperature_unit
from ml import rules
from ml.composition import parse_composition
from ml.dataprep import prepare
from mining import services as mining_services
from mining import validation
from mining.extractors import RawRecord, _unit
from mining.forms import QueueFilterForm, SourceForm
from mining.llm import LLMRecord
from mining.models import ExtractedRecord

pytestmark = pytest.mark.django_db

# A Mg-based glass: no °C floor for its family, so only the Tg/Tx/Tl rule decides.
MG = "Mg65Cu25Y10"
CONTROL = {"composition": "Zr57Cu28Al10Ni5", "Tg_K": 683, "Tx_K": 763, "Tl_K": 1118}


def api_client(user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


def mined(composition, tg, tx, tl, batch_name="rules test"):
    """A record through the mining import (parse, validate, flag) as a reviewer would see it."""
    csv = f"composition,tg,tx,tl\n{composition},{'' if tg is None else tg},{'' if tx is None else tx},{'' if tl is None else tl}\n"
    mining_services.import_extracted(io.StringIO(csv), batch_name=batch_name)
    return ExtractedRecord.objects.get(batch__name=batch_name)


# ---------------------------------------------------------------------------- temperatures


@pytest.mark.parametrize(
    "tg, tx, tl, plausible",
    [
        (200, 450, 900, True),  # the lower limit is plausible (lab refused it before)
        (600, 700, 2500, True),  # so is the upper one
        (600, 850, 1100, True),  # ΔTx = 250 K, the widest allowed
        (199.5, 450, 900, False),
        (600, 700, 2500.5, False),
        (600, 851, 1100, False),  # ΔTx = 251 K (lab accepted it before; mining and ml did not)
        (700, 690, 1100, False),  # Tg above Tx
    ],
)
def test_one_temperature_rule_for_lab_mining_and_ml(tg, tx, tl, plausible, experimenter, reviewer):
    expected_messages = [p.message for p in rules.temperature_problems(tg, tx, tl)]
    assert (not expected_messages) == plausible
    outcomes, shown = {}, {}

    # Mining first (no other value of the alloy yet, so a plausible record is clean).
    record = mined(MG, tg, tx, tl)
    blocking = [f for f in record.flags if f["flag"] in validation.BLOCKING_FLAGS]
    outcomes["mining review"] = record.flags == []
    shown["mining review"] = " ".join(f["reason"] for f in blocking)
    try:
        mining_services.approve_record(record.pk, reviewer)
        outcomes["mining approval"] = True
    except mining_services.MiningError as exc:
        outcomes["mining approval"], shown["mining approval"] = False, str(exc)

    # Lab: the model's rule, the web form, the API, a literature import.
    try:
        validate_transition_temperatures(tg, tx, tl)
        PropertyValue(origin="literature", tg_k=tg, tx_k=tx, tl_k=tl).clean()
        outcomes["lab model"] = True
    except Exception as exc:  # ValidationError
        outcomes["lab model"], shown["lab model"] = False, " ".join(exc.messages)
    form = DSCForm({"tg": tg, "tx": tx, "tl": tl, "temperature_unit": "K"})
    outcomes["lab form"] = form.is_valid()
    shown["lab form"] = " ".join(m for errors in form.errors.values() for m in errors)
    alloy, _ = lab_services.get_or_create_alloy(MG)
    sample = Sample.objects.create(alloy=alloy, label="rules-1", operator=experimenter)
    response = api_client(experimenter).post(
        "/api/dsc-measurements/", {"sample": sample.pk, "tg_k": tg, "tx_k": tx, "tl_k": tl}, format="json"
    )
    outcomes["lab API"] = response.status_code == 201
    if response.status_code == 400:
        shown["lab API"] = " ".join(m for errors in response.json()["detail"].values() for m in errors)
    (row,) = import_alloys([{"composition": MG, "Tg_K": tg, "Tx_K": tx, "Tl_K": tl}]).rows
    outcomes["lab import"] = row["outcome"] != "refused"
    shown["lab import"] = row["reason"] if row["outcome"] == "refused" else ""

    # ML: the rows a model is fitted on.
    prepared = prepare([{"composition": MG, "Tg_K": tg, "Tx_K": tx, "Tl_K": tl}, CONTROL])
    outcomes["ml.dataprep"] = parse_composition(MG).key in prepared.keys
    shown["ml.dataprep"] = " ".join(d["reason"] for d in prepared.report["dropped"])

    assert outcomes == dict.fromkeys(outcomes, plausible)
    if not plausible:  # and every app says why in the same words
        for where, text in shown.items():
            for message in expected_messages:
                assert message in text, f"{where}: {text!r} lacks {message!r}"


# ---------------------------------------------------------------------------- comparison


@pytest.mark.parametrize(
    "existing, new, expected",
    [
        ((683, 763, 1118), (688, 770, None), rules.AGREE),  # every shared temperature within 10 K
        ((683, 763, 1118), (700, 763, None), rules.DIFFER),  # Tg 17 K apart
        ((683, None, None), (None, None, 1118), rules.DISJOINT),  # nothing in common
    ],
)
def test_one_comparison_for_lab_import_lab_services_and_mining(existing, new, expected):
    assert rules.compare_temperatures(existing, new) == expected
    composition = "Zr57Cu28Al10Ni5"
    alloy, _ = lab_services.get_or_create_alloy(composition)
    old = PropertyValue.objects.create(alloy=alloy, origin="literature", **dict(zip(rules.TEMPERATURE_FIELDS, existing)))
    new_fields = dict(zip(rules.TEMPERATURE_FIELDS, new))

    # Mining review (before the import adds the row as a value of the alloy).
    flags = {f["flag"] for f in mined("Cu28Zr57Al10Ni5", *new).flags}
    assert flags == {rules.AGREE: {"duplicate"}, rules.DIFFER: {"conflict"}, rules.DISJOINT: set()}[expected]

    # Lab services: the conflict flag of a new value.
    assert lab_services.values_conflict(old, PropertyValue(alloy=alloy, **new_fields)) == (expected == rules.DIFFER)

    # Lab import: merged or conflict; both sides flagged only when they differ.
    row = {"composition": composition, **{title: t for title, t in zip(("Tg_K", "Tx_K", "Tl_K"), new)}}
    (entry,) = import_alloys([row]).rows
    assert entry["outcome"] == ("conflict" if expected == rules.DIFFER else "merged")
    old.refresh_from_db()
    added = PropertyValue.objects.filter(alloy=alloy).exclude(pk=old.pk)
    assert old.conflict == (expected == rules.DIFFER)
    assert all(v.conflict == (expected == rules.DIFFER) for v in added)
    assert added.exists() == (expected != rules.AGREE)  # an agreeing row that adds nothing is not stored


# ---------------------------------------------------------------------------- element lists


def test_one_element_list_rule_for_the_api_lab_design_and_mining(viewer):
    from design.forms import CampaignForm

    zr, _ = lab_services.get_or_create_alloy("Zr57Cu28Al10Ni5")
    lab_services.get_or_create_alloy(MG)
    lab_services.get_or_create_alloy("Fe80B20")
    text = "zr,CU"

    assert ElementsField(required=False).clean(text) == ("Zr", "Cu")
    api = api_client(viewer).get("/api/alloys/", {"elements": text})
    assert api.status_code == 200 and [a["formula"] for a in api.json()["results"]] == [zr.formula]

    lab_form = AlloySearchForm({"elements": text})
    assert lab_form.is_valid(), lab_form.errors
    assert lab_form.cleaned_data["elements"] == ("Zr", "Cu")
    from lab import selectors

    assert [a.formula for a in selectors.alloy_list(lab_form.filters())] == [zr.formula]

    design_form = CampaignForm({"name": "c", "allowed_text": text, "forbidden_text": "be", "base_element": "zr"})
    design_form.is_valid()
    assert design_form.cleaned_data["allowed_text"] == ["Zr", "Cu"]
    assert design_form.cleaned_data["forbidden_text"] == ["Be"] and design_form.cleaned_data["base_element"] == "Zr"

    queue_form = QueueFilterForm({"element": "cu", "status": "pending"})
    assert queue_form.is_valid(), queue_form.errors
    assert queue_form.cleaned_data["element"] == "Cu"

    # A token that is no symbol: refused everywhere, with the same message.
    message = "'Xx' is not an element symbol."
    api = api_client(viewer).get("/api/alloys/", {"elements": "zr,Xx"})
    assert api.status_code == 400 and api.json()["detail"]["elements"] == [message]
    assert AlloySearchForm({"elements": "zr,Xx"}).errors["elements"] == [message]
    assert CampaignForm({"name": "c", "allowed_text": "zr Xx"}).errors["allowed_text"] == [message]
    assert QueueFilterForm({"element": "Xx"}).errors["element"] == [message]


# ---------------------------------------------------------------------------- DOIs


def test_one_doi_rule_for_lab_import_references_and_mining():
    forms = ["https://doi.org/10.1000/ABC", "doi:10.1000/abc", " http://dx.doi.org/10.1000/Abc ", "10.1000/ABC"]
    rows = [{"composition": c, "Tg_K": "", "Tx_K": "", "Tl_K": "", "doi": d}
            for c, d in zip(("Zr57Cu28Al10Ni5", MG, "Fe80B20", "Pd40Ni40P20"), forms)]
    report = import_alloys(rows)
    assert [r["outcome"] for r in report.rows] == ["created"] * 4
    assert list(Reference.objects.values_list("doi", flat=True)) == ["10.1000/abc"]  # one reference for all four

    sources = {mining_services.get_or_create_source_for_doi(d)[0].pk for d in forms}
    assert len(sources) == 1
    for d in forms:
        form = SourceForm({"doi": d, "text": "some text"})
        assert form.is_valid(), form.errors
        assert form.cleaned_data["doi"] == "10.1000/abc"
    ref = Reference(doi=forms[0])
    ref.clean()
    assert ref.doi == "10.1000/abc"

    # Not a DOI (registrant of 2 digits): refused by each, with the same message.
    bad = "10.12/abc"
    with pytest.raises(ValueError) as err:
        validate_doi(bad)
    message = str(err.value)
    (row,) = import_alloys([{"composition": "Cu50Zr50", "Tg_K": "", "Tx_K": "", "Tl_K": "", "doi": bad}]).rows
    assert row["outcome"] == "refused" and row["reason"] == message
    assert SourceForm({"doi": bad}).errors["doi"] == [message]
    with pytest.raises(Exception) as err:
        Reference(doi=bad).clean()
    assert err.value.message_dict["doi"] == [message]
    with pytest.raises(Exception, match="is not a DOI"):
        mining_services.create_source(doi=bad, text="some text")


# ---------------------------------------------------------------------------- units


@pytest.mark.parametrize("unit", ["C", "°C", "° C", "℃", "degC", "celsius"])
def test_one_unit_rule_for_lab_forms_dsc_files_extractors_and_review(unit):
    assert normalise_temperature_unit(unit) == "C"  # a lab DSC curve file
    assert _unit(unit) == "C"  # the rules extractor
    llm = LLMRecord(composition="Zr57Cu28Al10Ni5", tg=400, unit=unit)
    assert llm.unit == "C"
    record = ExtractedRecord(composition_raw="Zr57Cu28Al10Ni5", tg_k=673.15, original_values={"tg": {"value": 400, "unit": unit}})
    assert validation._given_in_celsius(record, "tg_k")  # converted on extraction: not suspected again

    # 400 °C is 673.15 K wherever it is entered.
    form = DSCForm({"tg": 400, "tx": 450, "temperature_unit": "C"})
    assert form.is_valid(), form.errors
    assert form.cleaned_data["dsc"]["tg_k"] == 673.15
    assert RawRecord("Zr57Cu28Al10Ni5", values={"tg": (400, _unit(unit))}).kelvin("tg") == 673.15
    assert llm.to_raw().kelvin("tg") == 673.15
    assert rules.to_kelvin(400, unit) == 673.15


def test_kelvin_spellings_and_unknown_units_agree():
    for unit in ("K", "k", "kelvin"):
        assert normalise_temperature_unit(unit) == _unit(unit) == LLMRecord(composition="Cu50Zr50", unit=unit).unit == "K"
    with pytest.raises(ValueError, match="Unknown temperature unit 'F'"):
        normalise_temperature_unit("F")
    with pytest.raises(ValueError):
        LLMRecord(composition="Cu50Zr50", unit="F")


# ---------------------------------------------------------------------------- tables


def test_one_periodic_table_and_one_fractions_matrix():
    from design import generation, plots
    from ml import descriptors, elements
    from ml.composition import ELEMENTS

    assert [elements._Z[s] for s in ("H", "Zr", "Og")] == [1, 40, 118]
    assert list(elements._Z) == list(ELEMENTS)
    assert rules.parse_element_list("og, h") == ("Og", "H")

    comps = [parse_composition("Zr50Cu50"), {"Cu": 46, "Zr": 46, "Al": 8}]
    for matrix in (generation.fractions_matrix, descriptors.fractions_matrix):
        X = matrix(comps, ["Al", "Cu", "Zr"])
        assert X.round(6).tolist() == [[0.0, 0.5, 0.5], [0.08, 0.46, 0.46]]
        with pytest.raises(ValueError, match=r"Fe \(row 0\)"):  # the copies raised KeyError: 'Fe'
            matrix([{"Fe": 1.0}], ["Cu"])
    assert plots.fractions_matrix is descriptors.fractions_matrix


def test_one_rounding_rule_for_temperatures():
    """623.15 K reads 623.2 everywhere (f-string formatting alone gives 623.1)."""
    from django.template import Context, Template

    from ml.rules import display_k

    assert f"{623.15:.1f}" == "623.1"  # why the rule exists
    assert display_k(623.15) == "623.2"
    assert display_k(623.14) == "623.1"
    assert display_k(700) == "700.0"
    assert display_k(None) is None and display_k(float("nan")) is None
    out = Template("{{ a|kelvin }} K · {{ b|kelvin }} · {{ a|floatformat:1 }}").render(Context({"a": 623.15, "b": None}))
    assert out == "623.2 K · — · 623.2"
