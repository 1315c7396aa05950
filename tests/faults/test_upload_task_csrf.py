"""Faults that need no broker: uploads over the size limit, a task that raises, CSRF."""

import os

import pytest
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from lab import tasks
from lab.models import Alloy, AlloyImport, DSCMeasurement, PropertyValue, Sample, XRDMeasurement
from tests.lab.patterns_fixtures import synthetic_dsc_curve, synthetic_xrd_pattern

pytestmark = pytest.mark.django_db

LIMIT_BYTES = 4000


def stored_files(root):
    return [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs]


def counts():
    return [m.objects.count() for m in (Alloy, Sample, XRDMeasurement, DSCMeasurement, PropertyValue, AlloyImport)]


def experiment_form(**extra):
    data = {
        "composition": "Cu46Zr46Al8",
        "label": "BIG-1",
        "method": "arc_suction",
        "wavelength_a": "1.5406",
        "temperature_unit": "K",
        "heating_rate_k_min": "20",
        "dsc_curve_unit": "K",
    }
    data.update(extra)
    return data


# ------------------------------------------------------------------ (b) upload over the limit


def test_xrd_upload_over_the_limit_is_refused_and_nothing_saved(experimenter_client, settings):
    settings.GLASSLOOP_MAX_UPLOAD_BYTES = LIMIT_BYTES
    pattern = synthetic_xrd_pattern("amorphous")
    assert len(pattern) > LIMIT_BYTES
    response = experimenter_client.post(
        reverse("lab:log_experiment"),
        experiment_form(xrd_file=SimpleUploadedFile("huge.xy", pattern), tg="700", tx="760", tl="1150"),
    )
    assert response.status_code == 200  # the form again, with the reason
    assert "limit" in " ".join(response.context["form"].errors.get("xrd_file", []))
    assert "limit" in response.content.decode()
    assert counts() == [0, 0, 0, 0, 0, 0]
    assert stored_files(settings.MEDIA_ROOT) == []


def test_dsc_curve_over_the_limit_on_an_existing_sample_is_refused(experimenter_client, experimenter, settings):
    from lab import services

    sample = services.log_experiment(user=experimenter, composition="Cu50Hf50", label="S-1")
    settings.GLASSLOOP_MAX_UPLOAD_BYTES = LIMIT_BYTES
    curve = synthetic_dsc_curve(700, 760, 1150)
    assert len(curve) > LIMIT_BYTES
    response = experimenter_client.post(
        reverse("lab:add_dsc", args=[sample.pk]),
        {"tg": "700", "tx": "760", "tl": "1150", "temperature_unit": "K", "heating_rate_k_min": "20",
         "dsc_curve_unit": "K", "dsc_curve": SimpleUploadedFile("huge.txt", curve)},
    )
    assert response.status_code == 200
    assert "limit" in " ".join(response.context["form"].errors.get("dsc_curve", []))
    assert DSCMeasurement.objects.count() == 0 and PropertyValue.objects.count() == 0
    assert stored_files(settings.MEDIA_ROOT) == []


def test_import_table_over_the_limit_is_refused(experimenter_client, settings):
    settings.GLASSLOOP_MAX_UPLOAD_BYTES = LIMIT_BYTES
    table = b"composition,Tg_K,Tx_K,Tl_K\n" + b"Cu50Hf50,700,760,1150\n" * 400
    assert len(table) > LIMIT_BYTES
    response = experimenter_client.post(reverse("lab:import_list"), {"table": SimpleUploadedFile("big.csv", table)})
    assert response.status_code == 200
    assert "limit" in " ".join(response.context["form"].errors.get("table", []))
    assert AlloyImport.objects.count() == 0
    assert stored_files(settings.MEDIA_ROOT) == []


# ------------------------------------------------------------------ (c) a task that raises


def queued_import(user, name, content):
    return AlloyImport.objects.create(upload=ContentFile(content, name=name), original_name=name, created_by=user)


def test_import_of_a_corrupted_workbook_fails_with_its_error_shown(experimenter_client, experimenter):
    # Starts like a zip (what .xlsx is) and then is garbage: the reader refuses it in the worker.
    job = queued_import(experimenter, "corrupt.xlsx", b"PK\x03\x04" + os.urandom(2000))
    status = tasks.run_alloy_import.apply(args=[job.pk]).get()
    job.refresh_from_db()
    assert status == job.status == AlloyImport.Status.FAILED
    assert job.error
    assert job.finished_at is not None
    assert Alloy.objects.count() == 0
    response = experimenter_client.get(reverse("lab:import_detail", args=[job.pk]))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Failed" in page
    assert job.error[:40] in page.replace("&#x27;", "'").replace("&quot;", '"')
    status_json = experimenter_client.get(reverse("lab:import_status", args=[job.pk])).json()
    assert status_json["status"] == "failed" and status_json["finished"] and status_json["error"] == job.error


def test_import_whose_file_vanished_fails_with_its_error_shown(experimenter_client, experimenter):
    job = queued_import(experimenter, "gone.csv", b"composition,Tg_K,Tx_K,Tl_K\nCu50Hf50,700,760,1150\n")
    job.upload.storage.delete(job.upload.name)  # the worker finds no file: an unexpected error
    tasks.run_alloy_import.apply(args=[job.pk])
    job.refresh_from_db()
    assert job.status == AlloyImport.Status.FAILED
    assert "nothing was imported" in job.error
    assert Alloy.objects.count() == 0
    response = experimenter_client.get(reverse("lab:import_detail", args=[job.pk]))
    assert response.status_code == 200
    assert "nothing was imported" in response.content.decode()


# ------------------------------------------------------------------ (d) CSRF


@pytest.fixture
def csrf_client(experimenter):
    client = Client(enforce_csrf_checks=True)
    client.force_login(experimenter)
    return client


@pytest.mark.parametrize("url_name", ["lab:log_experiment", "lab:import_list"])
def test_form_post_without_csrf_token_is_forbidden(csrf_client, url_name):
    response = csrf_client.post(
        reverse(url_name),
        experiment_form(tg="700", tx="760", tl="1150", table=SimpleUploadedFile("t.csv", b"composition,Tg_K,Tx_K,Tl_K\n")),
    )
    assert response.status_code == 403
    assert counts() == [0, 0, 0, 0, 0, 0]


@pytest.mark.parametrize(
    "path",
    ["/mining/records/1/approve/", "/mining/batches/new/", "/design/candidates/1/approve/", "/design/new/", "/ml/retrain/",
     "/api/compositions/parse"],
)
def test_other_app_posts_without_csrf_token_are_forbidden(django_user_model, path):
    from django.urls import resolve

    resolve(path)  # a renamed URL fails here instead of passing as "forbidden"
    client = Client(enforce_csrf_checks=True)
    client.force_login(django_user_model.objects.create_superuser("root", password="pw-glassloop-1", email=""))
    response = client.post(path, {"composition": "Cu50Hf50", "name": "x"})
    assert response.status_code == 403, f"{path}: {response.status_code}"


def test_form_post_with_the_csrf_token_is_accepted(csrf_client):
    form_page = csrf_client.get(reverse("lab:log_experiment"))
    token = form_page.cookies["csrftoken"].value
    response = csrf_client.post(
        reverse("lab:log_experiment"), experiment_form(tg="700", tx="760", tl="1150", csrfmiddlewaretoken=token)
    )
    assert response.status_code == 302
    assert Sample.objects.filter(label="BIG-1").exists()


def test_login_form_enforces_csrf(experimenter):
    client = Client(enforce_csrf_checks=True)
    response = client.post(reverse("login"), {"username": "erin", "password": "pw-glassloop-1"})
    assert response.status_code == 403
    assert "_auth_user_id" not in client.session


def test_training_that_raises_marks_its_run_failed_with_the_error_shown(viewer_client, settings, tmp_path):
    from training import services as ml_services
    from training import tasks as ml_tasks
    from training.models import ModelVersion, TrainingRun

    settings.MODEL_ARTEFACT_ROOT = tmp_path / "models"
    # Three alloys: the pipeline refuses to fit fewer than ten, so the task raises inside.
    for text, tg in (("Cu50Hf50", 700), ("Cu46Zr46Al8", 705), ("Zr65Cu17.5Ni10Al7.5", 652)):
        alloy, _ = services_get_or_create(text)
        PropertyValue.objects.create(alloy=alloy, origin="literature", tg_k=tg, tx_k=tg + 60, tl_k=tg + 450)
    run = ml_services.request_retrain(trigger=TrainingRun.Trigger.MANUAL, enqueue=False).run
    assert run.status == TrainingRun.Status.QUEUED
    status = ml_tasks.train_model_version.apply(args=[run.pk]).get()
    run.refresh_from_db()
    assert status == run.status == TrainingRun.Status.FAILED
    assert "need at least 10" in run.error
    assert run.finished_at is not None
    assert not ModelVersion.objects.exists()  # nothing half-made is left active
    response = viewer_client.get(reverse("ml:run_detail", args=[run.pk]))
    assert response.status_code == 200
    assert "need at least 10" in response.content.decode()


def services_get_or_create(text):
    from lab.services import get_or_create_alloy

    return get_or_create_alloy(text)
