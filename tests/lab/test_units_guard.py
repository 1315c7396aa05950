"""The units guard (issue 18): a °C entry that reads like K for the alloy (or a K entry ~273 K
below close alloys, or below its family's lowest Tg) is refused with "did you mean ...?",
echoing what was typed in the unit typed, and can be confirmed with a box shown after the refusal."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from lab import services
from lab.forms import DSCForm, LogExperimentForm
from lab.models import Alloy, DSCMeasurement

pytestmark = pytest.mark.django_db

COMPOSITION = "Cu46Zr46Al8"


@pytest.fixture
def sample(experimenter):
    s = services.log_experiment(user=experimenter, composition=COMPOSITION, label="S-1",
                                dsc={"tg_k": 705.0, "tx_k": 780.0, "tl_k": 1160.0})
    services.log_experiment(user=experimenter, composition=COMPOSITION, label="S-2")
    return s


def test_kelvin_typed_with_celsius_ticked_is_refused_then_confirmed(experimenter_client, sample):
    other = sample.alloy.samples.get(label="S-2")
    url = reverse("lab:add_dsc", args=[other.pk])
    data = {"tg": "705", "tx": "781", "tl": "1161", "temperature_unit": "C", "heating_rate_k_min": "20"}
    first = experimenter_client.get(url).content.decode()
    assert 'name="confirm_units"' not in first  # the box appears only after a refusal
    response = experimenter_client.post(url, data)
    html = response.content.decode()
    assert response.status_code == 200
    assert "You typed Tg = 705 °C (978.1 K), Tx = 781 °C (1054.2 K), Tl = 1161 °C (1434.2 K)" in html
    assert "Did you mean K?" in html and 'name="confirm_units"' in html
    assert DSCMeasurement.objects.count() == 1
    assert experimenter_client.post(url, {**data, "temperature_unit": "K"}).status_code == 302  # fixed: saved
    assert DSCMeasurement.objects.count() == 2
    # or confirmed as typed
    response = experimenter_client.post(url, {**data, "confirm_units": "on"})
    assert response.status_code == 302 and DSCMeasurement.objects.count() == 3
    assert DSCMeasurement.objects.order_by("-pk").first().tg_k == pytest.approx(978.15)


def test_celsius_typed_as_kelvin_is_refused_against_close_alloys():
    # no values of this alloy yet; a close Cu–Zr–Al alloy has Tg ≈ 700 K
    other, _ = services.get_or_create_alloy("Cu50Zr43Al7")
    services.log_experiment(user=None, composition="Cu50Zr43Al7", label="C-1", dsc={"tg_k": 700.0, "tx_k": 770.0})
    form = LogExperimentForm({"composition": COMPOSITION, "label": "N-1", "method": "arc_suction",
                              "tg": "430", "tx": "505", "temperature_unit": "K"})
    assert not form.is_valid()
    message = " ".join(form.non_field_errors())
    assert "You typed Tg = 430 K, Tx = 505 K" in message and "Did you mean °C?" in message
    assert "close Cu–Zr–Al alloys have Tg ≈ 700.0 K, Tx ≈ 770.0 K, about 273 K above this entry" in message
    assert form.units_suspected
    confirmed = LogExperimentForm({"composition": COMPOSITION, "label": "N-1", "method": "arc_suction",
                                   "tg": "430", "tx": "505", "temperature_unit": "K", "confirm_units": "on"})
    assert confirmed.is_valid(), confirmed.errors


def test_kelvin_below_the_family_is_refused_by_ml_rules():
    alloy, _ = services.get_or_create_alloy("Fe70B20Si10")
    form = DSCForm({"tg": "520", "tx": "560", "temperature_unit": "K"}, alloy=alloy)
    assert not form.is_valid()
    assert "below any Fe-based glass" in " ".join(form.non_field_errors()) and "Did you mean °C?" in " ".join(form.non_field_errors())


def test_plausible_entries_pass(sample):
    form = DSCForm({"tg": "432", "tx": "507", "temperature_unit": "C"}, alloy=sample.alloy)  # 705 K: agrees
    assert form.is_valid(), form.errors
    form = DSCForm({"tg": "706", "tx": "781", "temperature_unit": "K"}, alloy=sample.alloy)
    assert form.is_valid(), form.errors


def test_the_correction_service_guards_too(experimenter, sample):
    dsc = sample.dsc_measurements.get()
    services.record_dsc(sample.alloy.samples.get(label="S-2"), user=experimenter, tg_k=706.0, tx_k=781.0)
    with pytest.raises(ValidationError, match="Did you mean K"):
        services.correct_dsc(dsc=dsc, user=experimenter, reason="x", tg_k=978.15, tx_k=1053.15, tl_k=None,
                             units_confirmed=False, typed_unit="C")
    services.correct_dsc(dsc=dsc, user=experimenter, reason="x", tg_k=978.15, tx_k=1053.15, tl_k=None,
                         units_confirmed=True, typed_unit="C")
    assert Alloy.objects.get(pk=sample.alloy_id).corrections.count() == 1


def test_the_correction_page_shows_the_confirm_box_after_the_refusal(experimenter_client, sample, experimenter):
    services.record_dsc(sample.alloy.samples.get(label="S-2"), user=experimenter, tg_k=706.0, tx_k=781.0)
    dsc = sample.dsc_measurements.get()
    url = reverse("lab:correct_dsc", args=[dsc.pk])
    data = {"tg": "705", "tx": "780", "tl": "1160", "temperature_unit": "C", "heating_rate_k_min": "20", "reason": "x",
            "version": "1"}
    html = experimenter_client.post(url, data).content.decode()
    assert "Did you mean K?" in html and 'name="confirm_units"' in html and "You typed Tg = 705 °C" in html
    assert experimenter_client.post(url, {**data, "confirm_units": "on"}).status_code == 302
