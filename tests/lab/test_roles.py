"""Who may see and do what on the lab pages."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from lab import services
from lab.models import Sample, XRDMeasurement
from tests.lab.patterns_fixtures import synthetic_dsc_curve, synthetic_xrd_pattern

pytestmark = pytest.mark.django_db



@pytest.fixture
def records(experimenter):
    sample = services.log_experiment(
        user=experimenter,
        composition="Cu46Zr46Al8",
        label="CZA-1",
        xrd_file=SimpleUploadedFile("p.xy", synthetic_xrd_pattern("amorphous")),
        dsc={"tg_k": 701, "tx_k": 773, "tl_k": 1163, "curve_file": SimpleUploadedFile("c.txt", synthetic_dsc_curve(701, 773, 1163))},
    )
    return sample, sample.xrd_measurements.get(), sample.dsc_measurements.get()


def read_urls(records):
    sample, xrd, dsc = records
    return [
        reverse("lab:alloy_list"),
        reverse("lab:alloy_detail", args=[sample.alloy_id]),
        reverse("lab:sample_list"),
        reverse("lab:sample_detail", args=[sample.pk]),
        reverse("lab:xrd_detail", args=[xrd.pk]),
        reverse("lab:xrd_plot", args=[xrd.pk]),
        reverse("lab:dsc_plot", args=[dsc.pk]),
    ]


def write_urls(records):
    sample, _, _ = records
    return [reverse("lab:log_experiment"), reverse("lab:add_xrd", args=[sample.pk]), reverse("lab:add_dsc", args=[sample.pk])]


def test_anonymous_is_sent_to_login_everywhere(client, records):
    for url in read_urls(records) + write_urls(records):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("login")), url
    _, xrd, _ = records
    response = client.post(reverse("lab:xrd_detail", args=[xrd.pk]), {"verdict": "crystalline", "reason": "x"})
    assert response.status_code == 302 and reverse("login") in response["Location"]


def test_viewer_reads_everything(viewer_client, records):
    for url in read_urls(records):
        assert viewer_client.get(url).status_code == 200, url


def test_viewer_cannot_log_or_add_measurements(viewer_client, records):
    for url in write_urls(records):
        assert viewer_client.get(url).status_code == 403, url
    response = viewer_client.post(
        reverse("lab:log_experiment"), {"composition": "Pd41Ni41P18", "label": "P-1", "method": "arc_suction"}
    )
    assert response.status_code == 403
    assert Sample.objects.count() == 1


def test_viewer_cannot_override_a_verdict(viewer_client, records):
    _, xrd, _ = records
    response = viewer_client.post(reverse("lab:xrd_detail", args=[xrd.pk]), {"verdict": "crystalline", "reason": "I think so"})
    assert response.status_code == 403
    assert XRDMeasurement.objects.get().verdict == "amorphous"


def test_viewer_sees_no_experimenter_actions(viewer_client, records):
    sample, xrd, _ = records
    html = viewer_client.get(reverse("lab:sample_detail", args=[sample.pk])).content.decode()
    assert reverse("lab:add_xrd", args=[sample.pk]) not in html
    assert "Override the verdict" not in html
    assert reverse("lab:log_experiment") not in viewer_client.get(reverse("lab:alloy_list")).content.decode()


def test_experimenter_can_log_and_sees_the_actions(experimenter_client, records):
    sample, _, _ = records
    for url in write_urls(records):
        assert experimenter_client.get(url).status_code == 200, url
    response = experimenter_client.post(
        reverse("lab:log_experiment"), {"composition": "Pd41Ni41P18", "label": "P-1", "method": "arc_suction"}
    )
    assert response.status_code == 302
    html = experimenter_client.get(reverse("lab:sample_detail", args=[sample.pk])).content.decode()
    assert reverse("lab:add_xrd", args=[sample.pk]) in html and reverse("lab:add_dsc", args=[sample.pk]) in html
    assert "Override the verdict" in html


@pytest.mark.parametrize("fixture", ["reviewer_client", "approver_client"])
def test_other_roles_read_but_do_not_log(request, fixture, records):
    client = request.getfixturevalue(fixture)
    assert client.get(reverse("lab:alloy_list")).status_code == 200
    assert client.get(reverse("lab:log_experiment")).status_code == 403


def test_a_user_without_any_role_is_refused(client, make_user, records):
    client.force_login(make_user("nobody"))
    assert client.get(reverse("lab:alloy_list")).status_code == 403
    assert client.get(reverse("lab:log_experiment")).status_code == 403


def test_superuser_holds_every_role(client, django_user_model, records):
    client.force_login(django_user_model.objects.create_superuser("root", password="pw-glassloop-1"))
    assert client.get(reverse("lab:log_experiment")).status_code == 200
    assert client.get(reverse("lab:alloy_list")).status_code == 200
