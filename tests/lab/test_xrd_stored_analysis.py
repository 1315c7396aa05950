"""XRD analysis stored once at upload (issue 16): the plot is drawn from what was stored, a GET
never reads or analyses the pattern; the plot's title and the verdict follow a person's
override; the FWHM is also given in degrees 2θ at the pattern's wavelength (issue 18)."""

import math
import xml.etree.ElementTree as ET
from unittest import mock

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from lab import services
from lab.models import XRDMeasurement
from lab.patterns import MO_KALPHA_A, q_to_two_theta
from tests.lab.patterns_fixtures import synthetic_xrd_pattern

pytestmark = pytest.mark.django_db
SVG_NS = "{http://www.w3.org/2000/svg}"


def texts(svg):
    return " ".join("".join(el.itertext()) for el in ET.fromstring(svg).iter(f"{SVG_NS}text"))


@pytest.fixture
def sample(experimenter):
    return services.log_experiment(user=experimenter, composition="Zr55Cu30Al10Ni5", label="X-1")


def upload(sample, user, kind="amorphous", wavelength_a=1.5406):
    data = synthetic_xrd_pattern(kind, wavelength_a=wavelength_a)
    return services.record_xrd(sample, user=user, uploaded_file=SimpleUploadedFile("p.xy", data), wavelength_a=wavelength_a)


def test_plot_data_is_stored_at_upload(sample, experimenter):
    xrd = upload(sample, experimenter)
    xrd.refresh_from_db()
    plot = xrd.plot
    assert plot["q"] and len(plot["q"]) == len(plot["intensity"]) <= 2400
    assert plot["fwhm_inv_a"] == pytest.approx(xrd.fwhm_inv_a) and plot["peak_q"] == pytest.approx(xrd.peak_q_inv_a)
    assert len(plot["background"]) == len(plot["background_q"]) > 0


def test_a_get_of_the_plot_never_analyses_the_pattern(viewer_client, sample, experimenter):
    xrd = upload(sample, experimenter)
    with mock.patch("lab.patterns.analyse_xrd_file") as analyse_file, mock.patch("lab.patterns.analyse_xrd") as analyse, \
            mock.patch("lab.patterns.read_two_column") as read:
        response = viewer_client.get(reverse("lab:xrd_plot", args=[xrd.pk]))
    assert response.status_code == 200 and response["Content-Type"] == "image/svg+xml"
    assert not analyse_file.called and not analyse.called and not read.called
    assert "amorphous" in texts(response.content)


def test_a_measurement_recorded_before_plots_were_stored_is_analysed_once(viewer_client, sample, experimenter):
    xrd = upload(sample, experimenter)
    XRDMeasurement.objects.filter(pk=xrd.pk).update(plot={})
    assert viewer_client.get(reverse("lab:xrd_plot", args=[xrd.pk])).status_code == 200
    xrd.refresh_from_db()
    assert xrd.plot["q"]
    with mock.patch("lab.patterns.analyse_xrd_file") as analyse_file:
        assert viewer_client.get(reverse("lab:xrd_plot", args=[xrd.pk])).status_code == 200
    assert not analyse_file.called


def test_plot_title_and_verdicts_follow_an_override(experimenter_client, sample, experimenter):
    xrd = upload(sample, experimenter)
    assert xrd.computed_verdict == "amorphous"
    before = texts(experimenter_client.get(reverse("lab:xrd_plot", args=[xrd.pk])).content)  # rendered and cached
    assert "X-1 · Zr55Cu30Al10Ni5 — amorphous" in before
    response = experimenter_client.post(reverse("lab:xrd_detail", args=[xrd.pk]),
                                        {"verdict": "crystalline", "reason": "TEM shows nanocrystals"})
    assert response.status_code == 302
    svg = experimenter_client.get(reverse("lab:xrd_plot", args=[xrd.pk])).content
    title = texts(svg)
    assert "X-1 · Zr55Cu30Al10Ni5 — crystalline" in title and "— amorphous" not in title
    xrd.refresh_from_db()
    # the plot's URL changes with the verdict, so a cached plot with the old title is not shown
    page = experimenter_client.get(reverse("lab:sample_detail", args=[sample.pk])).content.decode()
    assert f"{reverse('lab:xrd_plot', args=[xrd.pk])}?v={xrd.version}-crystalline" in page
    api = experimenter_client.get(f"/api/xrd-measurements/{xrd.pk}/").json()
    assert api["verdict"] == "crystalline" and api["computed_verdict"] == "amorphous"


def expected_fwhm_deg(xrd):
    a = xrd.analysis
    lo, hi = q_to_two_theta([a["half_max_left_q"], a["half_max_right_q"]], xrd.wavelength_a)
    return float(hi - lo)


def test_fwhm_in_degrees_two_theta_at_cu_kalpha(viewer_client, sample, experimenter):
    xrd = upload(sample, experimenter)
    xrd.refresh_from_db()
    deg = xrd.fwhm_two_theta_deg
    assert deg == pytest.approx(expected_fwhm_deg(xrd))
    # a halo of ~0.4 Å⁻¹ at q ≈ 2.7 Å⁻¹ is several degrees wide with Cu Kα
    assert 3.0 < deg < 12.0
    assert xrd.wavelength_source == "Cu Kα"
    page = viewer_client.get(reverse("lab:xrd_detail", args=[xrd.pk])).content.decode()
    assert f"{deg:.2f}° 2θ" in page and "1.5406 Å, Cu Kα" in page
    sample_page = viewer_client.get(reverse("lab:sample_detail", args=[sample.pk])).content.decode()
    assert "FWHM (° 2θ)" in sample_page and f"{deg:.2f}" in sample_page
    body = viewer_client.get(f"/api/xrd-measurements/{xrd.pk}/").json()
    assert body["fwhm_two_theta_deg"] == pytest.approx(deg) and body["fwhm_wavelength"] == "1.5406 Å (Cu Kα)"
    assert f"{deg:.2f}° 2θ" in texts(viewer_client.get(reverse("lab:xrd_plot", args=[xrd.pk])).content)


def test_fwhm_in_degrees_uses_the_recorded_wavelength(viewer_client, sample, experimenter):
    cu = upload(sample, experimenter)
    mo = upload(sample, experimenter, wavelength_a=MO_KALPHA_A)
    mo.refresh_from_db()
    cu.refresh_from_db()
    assert mo.wavelength_source == "as recorded"
    assert mo.fwhm_two_theta_deg == pytest.approx(expected_fwhm_deg(mo))
    # the same width in q is narrower in 2θ at the shorter wavelength
    assert mo.fwhm_two_theta_deg < cu.fwhm_two_theta_deg
    page = viewer_client.get(reverse("lab:xrd_detail", args=[mo.pk])).content.decode()
    assert "0.7107 Å, as recorded" in page
    assert math.isfinite(mo.fwhm_two_theta_deg)


def test_an_upload_through_the_page_is_analysed_once(experimenter_client, sample):
    """The form's analysis is the one stored: the service does not read and analyse it again."""
    import lab.dsc_analysis
    import lab.patterns
    from tests.lab.patterns_fixtures import synthetic_dsc_curve

    with mock.patch("lab.patterns.analyse_xrd_file", wraps=lab.patterns.analyse_xrd_file) as analyse:
        response = experimenter_client.post(reverse("lab:add_xrd", args=[sample.pk]), {
            "xrd_file": SimpleUploadedFile("p.xy", synthetic_xrd_pattern("amorphous")), "wavelength_a": "1.5406"})
    assert response.status_code == 302 and analyse.call_count == 1
    assert XRDMeasurement.objects.get().plot["q"]
    with mock.patch("lab.dsc_analysis.analyse_dsc", wraps=lab.dsc_analysis.analyse_dsc) as analyse:
        response = experimenter_client.post(reverse("lab:add_dsc", args=[sample.pk]), {
            "tg": "650", "tx": "725", "temperature_unit": "K", "heating_rate_k_min": "20", "dsc_curve_unit": "K",
            "dsc_curve": SimpleUploadedFile("c.txt", synthetic_dsc_curve(650, 725, 1050, shape="sharp"))})
    assert response.status_code == 302 and analyse.call_count == 1
    with mock.patch("lab.patterns.analyse_xrd_file", wraps=lab.patterns.analyse_xrd_file) as analyse:
        response = experimenter_client.post(reverse("lab:log_experiment"), {
            "composition": "Zr55Cu30Al10Ni5", "label": "X-2", "method": "arc_suction", "wavelength_a": "1.5406",
            "xrd_file": SimpleUploadedFile("p.xy", synthetic_xrd_pattern("amorphous")), "temperature_unit": "K"})
    assert response.status_code == 302, response.content.decode()[-2000:]
    assert analyse.call_count == 1
