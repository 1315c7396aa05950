"""DSC trace proposals (issue 18): analysed once when the curve is stored, shown beside the
recorded values, accepted (one or all) as a correction whose reason names the method, the
method in the value's provenance; a flat trace has nothing to accept. Page and API."""

from unittest import mock

import numpy as np
import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from lab import services
from lab.models import Alloy, Correction, DSCMeasurement, PropertyValue
from tests.lab.patterns_fixtures import synthetic_dsc_curve

pytestmark = pytest.mark.django_db

TG, TX, TL = 650.0, 725.0, 1050.0
COMPOSITION = "Cu46Zr46Al8"


def curve_file(**kw):
    kw.setdefault("shape", "sharp")
    kw.setdefault("noise", 0.002)
    return SimpleUploadedFile("trace.txt", synthetic_dsc_curve(TG, TX, TL, **kw))


def flat_file():
    rng = np.random.default_rng(3)
    t = np.arange(500.0, 1200.0, 0.5)
    flow = -0.05 + 0.0001 * (t - 500) + rng.normal(0, 0.003, len(t))
    return SimpleUploadedFile("flat.txt", "\n".join(f"{a:.2f}\t{b:.5f}" for a, b in zip(t, flow)).encode())


@pytest.fixture
def sample(experimenter):
    return services.log_experiment(user=experimenter, composition=COMPOSITION, label="D-1")


@pytest.fixture
def dsc(sample, experimenter):
    """Typed a few kelvin off the trace (Tg 655, Tx 722, Tl 1045), header states 10 K/min."""
    return services.record_dsc(sample, user=experimenter, tg_k=655.0, tx_k=722.0, tl_k=1045.0,
                               curve_file=curve_file(heating_rate_k_min=10))


def rows(dsc):
    return {r["key"]: r for r in DSCMeasurement.objects.get(pk=dsc.pk).proposals}


def test_the_trace_is_analysed_once_when_stored(dsc):
    dsc.refresh_from_db()
    stored = dsc.trace_analysis
    for key, true in (("tg_k", TG), ("tx_k", TX), ("tl_k", TL)):
        assert abs(stored[key]["value_k"] - true) <= 3.0, key
        assert stored[key]["method"].startswith("tangent")
    assert stored["heating_rate_k_min"] == 10.0
    assert dsc.value_methods == {"tg_k": "typed", "tx_k": "typed", "tl_k": "typed"}
    r = rows(dsc)
    assert r["tg_k"]["acceptable"] and r["tg_k"]["short_method"] == "tangent onset" and r["tg_k"]["recorded"] == 655.0
    assert r["melting_onset_k"]["value"] is not None and not r["melting_onset_k"]["acceptable"]  # nothing to put it in
    assert r["heating_rate_k_min"]["value"] == 10.0 and r["heating_rate_k_min"]["acceptable"]


def test_the_plot_uses_the_stored_proposals_and_analyses_nothing(viewer_client, dsc):
    with mock.patch("lab.dsc_analysis.analyse_dsc") as analyse:
        response = viewer_client.get(reverse("lab:dsc_plot", args=[dsc.pk]))
    assert response.status_code == 200 and not analyse.called
    svg = response.content.decode()
    assert 'id="tg-proposal"' in svg and 'id="tl-proposal"' in svg and 'id="tg-marker"' in svg


def test_sample_page_shows_proposals_beside_recorded_values(experimenter_client, viewer, dsc):
    page = experimenter_client.get(reverse("lab:sample_detail", args=[dsc.sample_id])).content.decode()
    proposed = rows(dsc)["tg_k"]["value"]
    assert f"dsc-{dsc.pk}-proposals" in page and "655.0 K" in page and f"{proposed:.1f} K" in page
    assert "tangent onset" in page and "Accept all proposals" in page
    assert reverse("lab:accept_dsc_proposals", args=[dsc.pk]) in page
    viewer_client = Client()
    viewer_client.force_login(viewer)
    viewer_page = viewer_client.get(reverse("lab:sample_detail", args=[dsc.sample_id])).content.decode()
    assert f"dsc-{dsc.pk}-proposals" in viewer_page and reverse("lab:accept_dsc_proposals", args=[dsc.pk]) not in viewer_page


def test_accepting_one_proposal_on_the_page(experimenter_client, dsc):
    proposed = rows(dsc)["tg_k"]["value"]
    before = Alloy.objects.get().tg_mean_k
    assert before == 655.0
    response = experimenter_client.post(reverse("lab:accept_dsc_proposals", args=[dsc.pk]),
                                        {"field": "tg_k", "version": dsc.version})
    assert response.status_code == 302 and response["Location"] == reverse("lab:sample_detail", args=[dsc.sample_id])
    dsc.refresh_from_db()
    assert dsc.tg_k == pytest.approx(proposed) and dsc.tx_k == 722.0 and dsc.version == 2
    assert dsc.value_methods["tg_k"] == "accepted the trace's proposal (tangent onset)" and dsc.value_methods["tx_k"] == "typed"
    # history: before → after with the automatic reason
    correction = Correction.objects.get(record_type="dsc", record_id=dsc.pk)
    assert correction.reason == "accepted the trace's proposal (tangent onset)"
    assert correction.changes[0]["field"] == "tg_k" and correction.changes[0]["before"] == 655.0
    assert f"Tg 655.0 → {proposed:.1f} K" in correction.line
    # the value's provenance names the method; the alloy's summary follows
    value = PropertyValue.objects.get(dsc=dsc)
    assert value.tg_k == pytest.approx(proposed)
    assert value.provenance == "DSC of sample D-1 (Tg: accepted the trace's proposal (tangent onset); Tx, Tl typed)"
    assert Alloy.objects.get().tg_mean_k == pytest.approx(proposed)
    page = experimenter_client.get(reverse("lab:sample_detail", args=[dsc.sample_id])).content.decode()
    assert "accepted the trace&#x27;s proposal (tangent onset)" in page


def test_accepting_all_proposals(experimenter_client, dsc):
    r = rows(dsc)
    response = experimenter_client.post(reverse("lab:accept_dsc_proposals", args=[dsc.pk]), {"version": dsc.version})
    assert response.status_code == 302
    dsc.refresh_from_db()
    assert (dsc.tg_k, dsc.tx_k, dsc.tl_k) == pytest.approx((r["tg_k"]["value"], r["tx_k"]["value"], r["tl_k"]["value"]))
    assert dsc.heating_rate_k_min == 10.0
    assert dsc.value_methods == {"tg_k": "accepted the trace's proposal (tangent onset)",
                                 "tx_k": "accepted the trace's proposal (tangent onset)",
                                 "tl_k": "accepted the trace's proposal (tangent end)",
                                 "heating_rate_k_min": "accepted the trace's proposal (stated in the file's header)"}
    correction = Correction.objects.get(record_type="dsc", record_id=dsc.pk)
    assert {c["field"] for c in correction.changes} == {"tg_k", "tx_k", "tl_k", "heating_rate_k_min"}
    assert "Tg, Tx: accepted the trace's proposal (tangent onset)" in correction.reason
    assert not DSCMeasurement.objects.get(pk=dsc.pk).has_acceptable_proposals
    with pytest.raises(ValidationError, match="Nothing to accept"):
        services.accept_dsc_proposals(dsc=dsc, user=None)
    # a typed override after accepting says typed again
    services.correct_dsc(dsc=dsc, user=None, reason="re-read the trace", tg_k=652.0)
    dsc.refresh_from_db()
    assert dsc.method_of("tg_k") == "typed" and dsc.method_of("tx_k").startswith("accepted")


def test_a_viewer_cannot_accept(viewer_client, dsc):
    response = viewer_client.post(reverse("lab:accept_dsc_proposals", args=[dsc.pk]), {"field": "tg_k"})
    assert response.status_code == 403
    assert DSCMeasurement.objects.get(pk=dsc.pk).tg_k == 655.0


def test_a_stale_version_is_refused_on_the_page(experimenter_client, dsc):
    services.correct_dsc(dsc=dsc, user=None, reason="other person", tx_k=723.0)
    response = experimenter_client.post(reverse("lab:accept_dsc_proposals", args=[dsc.pk]), {"field": "tg_k", "version": 1},
                                        follow=True)
    assert "after you loaded it" in response.content.decode()
    assert DSCMeasurement.objects.get(pk=dsc.pk).tg_k == 655.0


def test_a_flat_trace_says_not_found_and_has_nothing_to_accept(experimenter_client, sample, experimenter):
    dsc = services.record_dsc(sample, user=experimenter, tg_k=655.0, tx_k=722.0, curve_file=flat_file())
    r = rows(dsc)
    for key in ("tg_k", "tx_k", "melting_onset_k", "tl_k"):
        assert r[key]["value"] is None and "flat" in r[key]["reason"] and not r[key]["acceptable"]
    page = experimenter_client.get(reverse("lab:sample_detail", args=[sample.pk])).content.decode()
    assert "not found" in page and "flat within its noise" in page
    assert 'value="all" disabled' in page
    response = experimenter_client.post(reverse("lab:accept_dsc_proposals", args=[dsc.pk]), {}, follow=True)
    assert "gives no proposal" in response.content.decode()
    with pytest.raises(ValidationError, match="flat") as info:
        services.accept_dsc_proposals(dsc=dsc, user=experimenter, fields=["tg_k"])
    assert info.value.code == "nothing_to_accept"
    assert DSCMeasurement.objects.get(pk=dsc.pk).version == 1


def test_tg_and_tx_left_blank_are_taken_from_the_trace(sample, experimenter):
    dsc = services.record_dsc(sample, user=experimenter, tg_k=None, tx_k=None, curve_file=curve_file())
    assert abs(dsc.tg_k - TG) <= 3.0 and abs(dsc.tx_k - TX) <= 3.0 and dsc.tl_k is None
    assert dsc.method_of("tg_k") == "left blank: the trace's proposal (tangent onset)"
    assert PropertyValue.objects.get(dsc=dsc).tg_k == dsc.tg_k
    assert rows(dsc)["tl_k"]["acceptable"]  # Tl stays blank until accepted or typed


def test_blank_tg_with_a_flat_trace_is_refused_with_the_reason(sample, experimenter):
    with pytest.raises(ValidationError) as info:
        services.record_dsc(sample, user=experimenter, tg_k=None, tx_k=None, curve_file=flat_file())
    assert "left blank and the trace gives none" in str(info.value) and "flat" in str(info.value)
    assert not DSCMeasurement.objects.exists()


def test_blank_tg_without_a_curve_is_still_refused(sample, experimenter):
    with pytest.raises(ValidationError, match="needs at least Tg and Tx"):
        services.record_dsc(sample, user=experimenter, tg_k=None, tx_k=700.0)


def test_add_dsc_page_takes_blank_values_from_the_trace(experimenter_client, sample):
    response = experimenter_client.post(reverse("lab:add_dsc", args=[sample.pk]), {
        "tg": "", "tx": "", "tl": "", "temperature_unit": "K", "heating_rate_k_min": "20",
        "dsc_curve": curve_file(), "dsc_curve_unit": "K",
    })
    assert response.status_code == 302, response.content.decode()[:3000]
    dsc = DSCMeasurement.objects.get()
    assert abs(dsc.tg_k - TG) <= 3.0 and dsc.method_of("tx_k").startswith("left blank")


def test_the_plot_follows_an_accepted_proposal(experimenter_client, dsc):
    """The plot is cached by the record's version: after accepting, it draws the new Tg."""
    import re

    def tg_label():
        svg = experimenter_client.get(reverse("lab:dsc_plot", args=[dsc.pk])).content.decode()
        return re.search(r"Tg = (\d+) K", svg).group(1)

    assert tg_label() == "655"
    services.accept_dsc_proposals(dsc=dsc, user=None, fields=["tg_k"])
    assert tg_label() == f"{rows(dsc)['tg_k']['recorded']:.0f}" != "655"


def test_measurements_stored_before_analyses_are_analysed_by_the_command(dsc, sample, experimenter):
    from io import StringIO

    from django.core.files.uploadedfile import SimpleUploadedFile as Upload
    from django.core.management import call_command

    from lab.models import XRDMeasurement
    from tests.lab.patterns_fixtures import synthetic_xrd_pattern

    xrd = services.record_xrd(sample, user=experimenter, uploaded_file=Upload("p.xy", synthetic_xrd_pattern("amorphous")))
    DSCMeasurement.objects.filter(pk=dsc.pk).update(trace_analysis={})
    XRDMeasurement.objects.filter(pk=xrd.pk).update(plot={})
    assert rows(dsc) == {}
    out = StringIO()
    call_command("analyse_stored_measurements", stdout=out)
    assert "Analysed 1 XRD pattern(s) and 1 DSC curve(s); 0 could not be read." in out.getvalue()
    assert rows(dsc)["tg_k"]["value"] is not None and XRDMeasurement.objects.get(pk=xrd.pk).plot["q"]
    stored = DSCMeasurement.objects.get(pk=dsc.pk)
    assert (stored.tg_k, stored.version) == (655.0, 1)  # recorded values untouched
    out = StringIO()
    call_command("analyse_stored_measurements", stdout=out)
    assert "Analysed 0 XRD pattern(s) and 0 DSC curve(s)" in out.getvalue()


def test_an_admin_edit_of_an_accepted_value_says_typed(dsc, experimenter):
    services.accept_dsc_proposals(dsc=dsc, user=experimenter, fields=["tg_k"])
    stored = DSCMeasurement.objects.get(pk=dsc.pk)
    stored.tg_k = 651.0
    services.record_admin_edit(obj=stored, user=experimenter, reason="admin fix", fields=["tg_k"])
    assert DSCMeasurement.objects.get(pk=dsc.pk).method_of("tg_k") == "typed"


def test_history_lines_show_temperatures_by_the_one_rounding_rule(dsc):
    """623.15 K reads 623.2 K in the history as on every page (ml.rules.display_k), not 623.1."""
    correction = services.correct_dsc(dsc=dsc, user=None, reason="re-read", tg_k=623.15)
    assert "Tg 655.0 → 623.2 K" in correction.line
