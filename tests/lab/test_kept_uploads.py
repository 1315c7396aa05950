"""Uploads survive a failed form (issue 18): the files are kept server-side (MEDIA_ROOT/pending,
a signed token on the form), shown as "pattern.xy — kept", and used when the form is sent again
without a new upload."""

import os
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from lab import services
from lab.models import DSCMeasurement, Sample, XRDMeasurement
from tests.lab.patterns_fixtures import synthetic_dsc_curve, synthetic_xrd_pattern

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def kept_dir(settings, tmp_path):
    settings.GLASSLOOP_KEPT_UPLOADS_DIR = str(tmp_path / "kept")
    return tmp_path / "kept"


def token(html, name):
    match = re.search(rf'name="{name}" value="([^"]+)"', html)
    return match.group(1) if match else None


def files_under(root):
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs)


def test_a_failed_experiment_form_keeps_both_files_and_uses_them_on_resubmission(experimenter_client, media_root, kept_dir):
    url = reverse("lab:log_experiment")
    data = {"composition": "Cu46Zr46Al8", "label": "K-1", "method": "arc_suction", "diameter_mm": "2",
            "tg": "705", "tx": "650", "tl": "1160", "temperature_unit": "K", "heating_rate_k_min": "20", "dsc_curve_unit": "K"}
    files = {"xrd_file": SimpleUploadedFile("pattern.xy", synthetic_xrd_pattern("amorphous")),
             "dsc_curve": SimpleUploadedFile("scan.txt", synthetic_dsc_curve(705, 780, 1160))}
    response = experimenter_client.post(url, {**data, **files})  # Tx < Tg: refused
    html = response.content.decode()
    assert response.status_code == 200 and Sample.objects.count() == 0
    assert "pattern.xy — kept" in html and "scan.txt — kept" in html
    xrd_token, dsc_token = token(html, "kept_xrd_file"), token(html, "kept_dsc_curve")
    assert xrd_token and dsc_token
    assert len(files_under(kept_dir)) == 2 and not os.path.exists(media_root)  # kept outside the lab's files
    # fixed, sent again without re-uploading
    response = experimenter_client.post(url, {**data, "tx": "780", "kept_xrd_file": xrd_token, "kept_dsc_curve": dsc_token})
    assert response.status_code == 302, response.content.decode()[:2000]
    sample = Sample.objects.get()
    xrd, dsc = sample.xrd_measurements.get(), sample.dsc_measurements.get()
    assert xrd.pattern.name.endswith("pattern.xy") and dsc.curve.name.endswith("scan.txt")
    assert xrd.pattern.read() == synthetic_xrd_pattern("amorphous")
    assert files_under(kept_dir) == []  # cleaned up once saved


def test_a_failed_add_xrd_form_keeps_its_file(experimenter_client, experimenter):
    sample = services.log_experiment(user=experimenter, composition="Cu46Zr46Al8", label="K-2")
    url = reverse("lab:add_xrd", args=[sample.pk])
    response = experimenter_client.post(url, {"wavelength_a": "9", "xrd_file": SimpleUploadedFile("pattern.xy", synthetic_xrd_pattern("amorphous"))})
    html = response.content.decode()
    assert response.status_code == 200 and "pattern.xy — kept" in html
    response = experimenter_client.post(url, {"wavelength_a": "1.5406", "kept_xrd_file": token(html, "kept_xrd_file")})
    assert response.status_code == 302 and XRDMeasurement.objects.count() == 1


def test_a_failed_add_dsc_form_keeps_its_curve(experimenter_client, experimenter):
    sample = services.log_experiment(user=experimenter, composition="Cu46Zr46Al8", label="K-3")
    url = reverse("lab:add_dsc", args=[sample.pk])
    # Tx below Tg is refused (a blank Tx would be taken from the trace's proposal)
    data = {"tg": "705", "tx": "690", "temperature_unit": "K", "heating_rate_k_min": "20", "dsc_curve_unit": "K"}
    response = experimenter_client.post(url, {**data, "dsc_curve": SimpleUploadedFile("scan.txt", synthetic_dsc_curve(705, 780, 1160))})
    html = response.content.decode()
    assert response.status_code == 200 and "scan.txt — kept" in html
    response = experimenter_client.post(url, {**data, "tx": "780", "tl": "1160", "kept_dsc_curve": token(html, "kept_dsc_curve")})
    assert response.status_code == 302 and DSCMeasurement.objects.get().curve.name.endswith("scan.txt")


def test_a_token_is_bound_to_its_user_and_cannot_be_forged(client, make_user, experimenter):
    sample = services.log_experiment(user=experimenter, composition="Cu46Zr46Al8", label="K-4")
    url = reverse("lab:add_xrd", args=[sample.pk])
    client.force_login(experimenter)
    html = client.post(url, {"wavelength_a": "9", "xrd_file": SimpleUploadedFile("pattern.xy", synthetic_xrd_pattern("amorphous"))}).content.decode()
    kept = token(html, "kept_xrd_file")
    other = make_user("otto", "experimenter")
    client.force_login(other)
    response = client.post(url, {"wavelength_a": "1.5406", "kept_xrd_file": kept})
    assert response.status_code == 200 and "Choose an XRD pattern file." in response.content.decode()
    response = client.post(url, {"wavelength_a": "1.5406", "kept_xrd_file": kept[:-3] + "abc"})
    assert response.status_code == 200 and XRDMeasurement.objects.count() == 0
