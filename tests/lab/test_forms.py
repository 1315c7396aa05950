"""Forms of the lab pages on their own: conversion and field errors."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from lab.forms import AlloySearchForm, DSCForm, LogExperimentForm, VerdictOverrideForm, XRDForm
from lab.models import Alloy, Sample
from tests.lab.patterns_fixtures import synthetic_dsc_curve, synthetic_xrd_pattern

pytestmark = pytest.mark.django_db


def log_form(files=None, **data):
    base = {"composition": "Cu46Zr46Al8", "label": "S-1", "method": "arc_suction", "temperature_unit": "K"}
    base.update(data)
    return LogExperimentForm(base, files or {})


def test_minimal_experiment_is_valid_and_parsed():
    form = log_form()
    assert form.is_valid(), form.errors
    assert form.cleaned_data["composition"].formula == "Cu46Zr46Al8"
    assert form.cleaned_data["xrd"] is None and form.cleaned_data["dsc"] is None


def test_composition_error_is_the_parsers_message():
    form = log_form(composition="A10.20Cu99.8")
    assert not form.is_valid()
    assert "Al" in form.errors["composition"][0]


def test_celsius_to_kelvin_and_defaults():
    form = log_form(tg="400", tx="450", tl="800", temperature_unit="C")
    assert form.is_valid(), form.errors
    dsc = form.cleaned_data["dsc"]
    assert dsc["tg_k"] == pytest.approx(673.15)
    assert dsc["tx_k"] == pytest.approx(723.15)
    assert dsc["tl_k"] == pytest.approx(1073.15)
    assert dsc["heating_rate_k_min"] == 20.0
    assert dsc["curve_unit"] == "K"


def test_celsius_entered_as_kelvin_is_out_of_range():
    form = log_form(tg="150", tx="180")
    assert not form.is_valid()
    assert "outside the plausible range" in form.errors["tg"][0]


def test_tg_must_be_below_tx():
    form = log_form(tg="700", tx="690")
    assert not form.is_valid()
    assert "Tg < Tx < Tl" in form.non_field_errors()[0]


def test_heating_rate_limits():
    form = log_form(tg="600", tx="690", heating_rate_k_min="-5")
    assert not form.is_valid()
    assert form.errors["heating_rate_k_min"]


def test_label_must_be_unique(experimenter):
    alloy = Alloy.objects.create(composition_key="Cu50Hf50", formula="Cu50Hf50", fractions={"Cu": 0.5, "Hf": 0.5}, base_element="Cu", n_elements=2)
    Sample.objects.create(alloy=alloy, label="S-1")
    form = log_form()
    assert not form.is_valid()
    assert "already exists" in form.errors["label"][0]


def test_xrd_upload_is_checked_by_the_form_and_left_to_the_worker():
    upload = SimpleUploadedFile("p.xy", synthetic_xrd_pattern("amorphous"))
    form = log_form(files={"xrd_file": upload}, wavelength_a="")
    assert form.is_valid(), form.errors
    prepared = form.cleaned_data["xrd"]
    assert not hasattr(prepared, "analysis")  # analysed on the worker (lab.XRDAnalysis), not here
    assert prepared.content.read() == synthetic_xrd_pattern("amorphous")
    assert form.cleaned_data["wavelength_a"] == 1.5406


def test_xrd_form_requires_a_file_and_refuses_one_column():
    assert "xrd_file" in XRDForm({}, {}).errors
    bad = SimpleUploadedFile("p.xy", b"".join(f"{i}\n".encode() for i in range(100)))
    form = XRDForm({}, {"xrd_file": bad})
    assert not form.is_valid() and form.errors["xrd_file"][0].startswith("p.xy:")


def test_dsc_form_requires_tg_and_tx():
    form = DSCForm({"tl": "900"}, {})
    assert not form.is_valid()
    assert form.errors["tg"] and form.errors["tx"]
    assert "tg" in DSCForm({}, {}).errors


def test_dsc_form_accepts_a_curve():
    curve = SimpleUploadedFile("c.txt", synthetic_dsc_curve(650, 720, 1000))
    form = DSCForm({"tg": "650", "tx": "720", "tl": "1000", "dsc_curve_unit": "K"}, {"dsc_curve": curve})
    assert form.is_valid(), form.errors
    assert form.cleaned_data["dsc"]["curve_file"] is curve


def test_override_form_needs_a_reason():
    assert "reason" in VerdictOverrideForm({"verdict": "crystalline", "reason": "  "}).errors
    assert VerdictOverrideForm({"verdict": "", "reason": "computed is right"}).is_valid()


def test_search_form_normalises_elements():
    form = AlloySearchForm({"elements": "zr,CU  al", "base_element": "zr", "tg_min": "600"})
    assert form.is_valid(), form.errors
    filters = form.filters()
    assert filters.elements == ("Zr", "Cu", "Al")
    assert filters.base_element == "Zr"
    assert filters.tg_min == 600


def test_search_form_refuses_unknown_symbols_and_keeps_the_rest():
    form = AlloySearchForm({"elements": "Zr Xx", "tg_max": "700"})
    assert not form.is_valid()
    assert "Xx" in form.errors["elements"][0]
    filters = form.filters()
    assert filters.elements == () and filters.tg_max == 700
