"""The lab's corrections in the REST API (issue 18): the web pages' services, the same roles,
JSON errors with the reason, history readable at .../history/."""

import pytest
from django.urls import reverse

from lab import services
from lab.models import Alloy, PropertyValue, Reference
from tests.api.conftest import token_client
from training.selectors import training_rows

pytestmark = pytest.mark.django_db


@pytest.fixture
def dscs(experimenter):
    good = services.log_experiment(user=experimenter, composition="Cu46Zr46Al8", label="S-1",
                                   dsc={"tg_k": 705.0, "tx_k": 780.0, "tl_k": 1160.0})
    bad = services.log_experiment(user=experimenter, composition="Cu46Zr46Al8", label="S-2",
                                  dsc={"tg_k": 978.0, "tx_k": 1053.0, "tl_k": 1433.0})
    return good.dsc_measurements.get(), bad.dsc_measurements.get()


def test_correct_a_dsc_through_the_api(experimenter_api, dscs):
    _, bad = dscs
    url = reverse("dsc-measurement-correct", args=[bad.pk])
    response = experimenter_api.post(url, {"tg_k": 706, "tx_k": 781, "tl_k": 1161, "reason": "typed in °C", "version": 1},
                                     format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["tg_k"] == 706.0 and body["version"] == 2
    assert Alloy.objects.get().tg_mean_k == pytest.approx(705.5)
    assert sorted(float(r["Tg_K"]) for r in training_rows() if r["Tg_K"]) == [705.0, 706.0]
    history = experimenter_api.get(reverse("dsc-measurement-history", args=[bad.pk])).json()
    assert history[0]["reason"] == "typed in °C" and history[0]["by"] == "erin"
    assert history[0]["changes"][0] == {"field": "tg_k", "label": "Tg", "before": 978.0, "after": 706.0, "unit": "K"}
    assert "Tg 978.0 → 706.0 K" in history[0]["line"]


def test_patch_with_reason_and_version_and_celsius(experimenter_api, dscs):
    _, bad = dscs
    url = reverse("dsc-measurement-detail", args=[bad.pk])
    response = experimenter_api.patch(url, {"tg_k": 432.85, "tx_k": 507.85, "tl_k": 887.85, "temperature_unit": "C",
                                            "reason": "typed in °C", "version": 1}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["tg_k"] == pytest.approx(706.0)


def test_api_errors_carry_the_reason(experimenter_api, dscs):
    _, bad = dscs
    url = reverse("dsc-measurement-correct", args=[bad.pk])
    empty = experimenter_api.post(url, {"tg_k": 706, "reason": " "}, format="json")
    assert empty.status_code == 400 and "a reason is required" in empty.json()["error"]
    broken = experimenter_api.post(url, {"tg_k": 1100, "reason": "x"}, format="json")
    assert broken.status_code == 400 and "Tg" in broken.json()["error"]
    ok = experimenter_api.post(url, {"tg_k": 706, "tx_k": 781, "tl_k": 1161, "reason": "typo", "version": 1}, format="json")
    assert ok.status_code == 200
    stale = experimenter_api.post(url, {"tg_k": 707, "reason": "mine", "version": 1}, format="json")
    assert stale.status_code == 409 and "was changed by erin at " in stale.json()["error"]
    retract = experimenter_api.post(reverse("dsc-measurement-retract", args=[bad.pk]), {"reason": "bad pan"}, format="json")
    assert retract.status_code == 200 and retract.json()["retracted_at"]
    again = experimenter_api.post(url, {"tg_k": 708, "reason": "x"}, format="json")
    assert again.status_code == 400 and "cannot be edited" in again.json()["error"]
    assert Alloy.objects.get().tg_mean_k == pytest.approx(705.0)


def test_the_units_guard_in_the_api(experimenter_api, dscs):
    _, bad = dscs
    url = reverse("dsc-measurement-correct", args=[bad.pk])
    # 705 typed with °C: 978.15 K, while the alloy's other value is 705 K
    refused = experimenter_api.post(url, {"tg_k": 705, "tx_k": 780, "tl_k": 1160, "temperature_unit": "C", "reason": "x"},
                                    format="json")
    assert refused.status_code == 400 and "Did you mean K?" in refused.json()["error"]
    assert "You typed Tg = 705 °C" in refused.json()["error"]
    confirmed = experimenter_api.post(url, {"tg_k": 705, "tx_k": 780, "tl_k": 1160, "temperature_unit": "C", "reason": "x",
                                            "confirm_units": True}, format="json")
    assert confirmed.status_code == 200


def test_samples_xrd_and_values_through_the_api(experimenter_api, dscs):
    good, bad = dscs
    sample = experimenter_api.post(reverse("sample-correct", args=[good.sample_id]), {"diameter_mm": 2, "reason": "measured"},
                                   format="json")
    assert sample.status_code == 200 and sample.json()["diameter_mm"] == 2.0
    ref = Reference.objects.create(label="paper")
    value = PropertyValue.objects.create(alloy=Alloy.objects.get(), origin="literature", reference=ref, tg_k=700, tx_k=770)
    patched = experimenter_api.post(reverse("property-value-correct", args=[value.pk]), {"tg_k": 702, "reason": "table 2"},
                                    format="json")
    assert patched.status_code == 200, patched.json()
    assert patched.json()["tg_k"] == 702.0
    resolve = experimenter_api.post(reverse("property-value-resolve", args=[bad.property_value.pk]),
                                    {"how": "retract", "reason": "°C typed as K"}, format="json")
    assert resolve.status_code == 200 and resolve.json()["retracted_at"]
    gone = experimenter_api.post(reverse("sample-retract", args=[bad.sample_id]), {"reason": "x"}, format="json")
    assert gone.status_code == 200 and gone.json()["retracted_at"]
    xrd_history = experimenter_api.get(reverse("sample-history", args=[bad.sample_id])).json()
    assert [h["action"] for h in xrd_history] == ["retract"]
    history = experimenter_api.get(reverse("sample-history", args=[good.sample_id])).json()
    assert history[0]["changes"][0]["field"] == "diameter_mm"


def test_viewers_read_history_but_cannot_correct(viewer_api, make_user, dscs):
    _, bad = dscs
    assert viewer_api.get(reverse("dsc-measurement-history", args=[bad.pk])).status_code == 200
    for name, method in (("dsc-measurement-correct", "post"), ("dsc-measurement-retract", "post"),
                         ("dsc-measurement-detail", "patch"), ("sample-retract", "post"), ("sample-correct", "post"),
                         ("xrd-measurement-retract", "post"), ("property-value-resolve", "post"),
                         ("property-value-correct", "post")):
        pk = bad.sample_id if name.startswith("sample") else bad.property_value.pk if name.startswith("property") else bad.pk
        response = getattr(viewer_api, method)(reverse(name, args=[pk]), {"reason": "x", "tg_k": 706}, format="json")
        assert response.status_code == 403, (name, response.status_code)
        assert "experimenter" in response.json()["error"]
    nobody = token_client(make_user("noone"))
    assert nobody.get(reverse("dsc-measurement-history", args=[bad.pk])).status_code == 403
    bad.refresh_from_db()
    assert bad.tg_k == 978.0
