"""Web import (roles, upload, queue, a real Celery worker), export, admin pages."""

import contextlib
import csv
import io
import time

import pytest
from django.contrib import admin
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from openpyxl import load_workbook

from config.celery import app as celery_app
from lab.importing import import_alloys
from lab.models import Alloy, AlloyImport, DSCMeasurement, PropertyValue, Reference, Sample, XRDMeasurement
from tests.celery_broker import use_broker

TABLE = b"composition,Tg_K,Tx_K,Tl_K,doi\nCu50Hf50,670,720,1200,10.1000/a\nHf50Cu50,700,760,1250,\nCu50Hf50Qq,1,2,3,\n"


def upload(name="t.csv", content=TABLE):
    return SimpleUploadedFile(name, content, content_type="text/csv")


@pytest.fixture
def media(tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def broker():
    """Point the Celery app at a broker URL for one test, then back."""
    with contextlib.ExitStack() as stack:
        yield lambda url: stack.enter_context(use_broker(url))


@pytest.mark.django_db
def test_viewer_cannot_import(viewer_client):
    assert viewer_client.get(reverse("lab:import_list")).status_code == 403
    assert viewer_client.post(reverse("lab:import_list"), {"table": upload()}).status_code == 403
    assert not AlloyImport.objects.exists()


@pytest.mark.django_db
def test_anonymous_is_sent_to_login(client):
    for url in (reverse("lab:import_list"), reverse("lab:alloy_export", args=["csv"])):
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


@pytest.mark.django_db
def test_unreadable_upload_is_a_form_error(experimenter_client, media):
    response = experimenter_client.post(reverse("lab:import_list"), {"table": upload(content=b"formula,Tg\nCu50Hf50,700\n")})
    assert response.status_code == 200
    assert "lacks the column" in response.content.decode()
    response = experimenter_client.post(reverse("lab:import_list"), {"table": upload(name="t.pdf")})
    assert "Upload a .csv or .xlsx file." in response.content.decode()
    assert not AlloyImport.objects.exists()


@pytest.mark.django_db
def test_queue_unavailable_keeps_the_import(experimenter_client, media, broker, django_capture_on_commit_callbacks):
    broker("redis://127.0.0.1:1/0")  # nothing listens on port 1
    with django_capture_on_commit_callbacks(execute=True):
        response = experimenter_client.post(reverse("lab:import_list"), {"table": upload(), "dry_run": "on"})
    job = AlloyImport.objects.get()
    assert response["Location"] == reverse("lab:import_detail", args=[job.pk])
    assert job.status == AlloyImport.Status.QUEUED and job.dry_run
    assert job.error.startswith("The task queue is unavailable")
    assert job.upload.read() == TABLE
    page = experimenter_client.get(response["Location"]).content.decode()
    assert "The task queue is unavailable" in page and "Retry" in page
    status = experimenter_client.get(reverse("lab:import_status", args=[job.pk])).json()
    assert status["status"] == "queued" and not status["finished"]


@pytest.mark.django_db
def test_detail_lists_refused_rows_first(experimenter_client, experimenter, media):
    from lab.importing import run_alloy_import

    job = AlloyImport.objects.create(upload=upload(), original_name="t.csv", created_by=experimenter)
    run_alloy_import(job.pk)
    job.refresh_from_db()
    assert job.status == "done" and job.finished_at is not None
    assert job.counts == {"rows": 3, "created": 1, "merged": 0, "conflicts": 1, "refused": 1}
    page = experimenter_client.get(reverse("lab:import_detail", args=[job.pk])).content.decode()
    assert page.index("Cu50Hf50Qq") < page.index(">conflict</span>")
    # Idempotent: a finished import is not run again.
    run_alloy_import(job.pk)
    assert PropertyValue.objects.count() == 2


@pytest.mark.django_db
def test_failed_import_records_the_error(experimenter, media):
    from lab.importing import run_alloy_import

    job = AlloyImport.objects.create(upload=upload(content=b"a,b\n1,2\n"), original_name="t.csv", created_by=experimenter)
    run_alloy_import(job.pk)
    job.refresh_from_db()
    assert job.status == "failed" and "lacks the column" in job.error and job.finished_at


@pytest.mark.django_db(transaction=True)
def test_web_import_runs_in_a_real_celery_worker(experimenter_client, media, broker, settings, tmp_path):
    from celery.contrib.testing.worker import start_worker

    url = settings.CELERY_BROKER_URL
    if not url.startswith("redis://"):
        url = f"sqla+sqlite:///{tmp_path / 'broker.sqlite3'}"  # never the person's own var/ broker
    broker(url)
    with start_worker(celery_app, perform_ping_check=False, shutdown_timeout=30):
        response = experimenter_client.post(reverse("lab:import_list"), {"table": upload()})
        assert response.status_code == 302
        job = AlloyImport.objects.get()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            status = experimenter_client.get(reverse("lab:import_status", args=[job.pk])).json()
            if status["finished"]:
                break
            time.sleep(0.3)
    assert status["status"] == "done", status
    assert status["counts"]["created"] == 1 and status["counts"]["refused"] == 1
    assert Alloy.objects.filter(composition_key="Cu50Hf50").exists()


@pytest.mark.django_db
def test_export_csv_and_xlsx(viewer_client, tmp_path):
    (tmp_path / "t.csv").write_bytes(TABLE)
    import_alloys(tmp_path / "t.csv")
    Alloy.objects.create(composition_key="Pd41Ni41P18", formula="Pd41Ni41P18", fractions={"Pd": 0.4, "Ni": 0.4, "P": 0.2}, base_element="Ni", n_elements=3)

    response = viewer_client.get(reverse("lab:alloy_export", args=["csv"]))
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert {"formula", "composition_key", "name", "base_element", "Tg_K", "Tx_K", "Tl_K", "Trg", "gamma", "dTx_K",
            "origin", "source", "doi", "conflict"} <= set(rows[0])
    values = [r for r in rows if r["formula"] == "Hf50Cu50" or r["composition_key"] == "Cu50Hf50"]
    assert len(values) == 2
    first = next(r for r in values if r["doi"])
    assert first["doi"] == "10.1000/a" and float(first["Tg_K"]) == 670 and first["conflict"] == "yes"
    assert float(first["Trg"]) == pytest.approx(670 / 1200, abs=1e-4)
    assert float(first["gamma"]) == pytest.approx(720 / (670 + 1200), abs=1e-4)
    assert float(first["dTx_K"]) == 50 and first["origin"] == "literature"
    assert any(r["formula"] == "Pd41Ni41P18" and r["Tg_K"] == "" for r in rows)  # alloy without values

    response = viewer_client.get(reverse("lab:alloy_export", args=["xlsx"]))
    assert response.status_code == 200
    sheet = load_workbook(io.BytesIO(response.content)).active
    table = list(sheet.values)
    header = list(table[0])
    assert header[:3] == ["formula", "composition_key", "name"]
    assert len(table) == 1 + len(rows)
    assert viewer_client.get(reverse("lab:alloy_export", args=["pdf"])).status_code == 404


@pytest.mark.django_db
def test_admin_changelists_load(admin_client):
    for model in (Alloy, Reference, Sample, XRDMeasurement, DSCMeasurement, PropertyValue, AlloyImport):
        assert model in admin.site._registry
        url = reverse(f"admin:lab_{model._meta.model_name}_changelist")
        assert admin_client.get(url).status_code == 200, url
    assert admin_client.get(reverse("admin:lab_alloy_export")).status_code == 200
    assert admin_client.get(reverse("admin:lab_propertyvalue_export")).status_code == 200


@pytest.mark.django_db
def test_the_admin_alloy_list_offers_the_import_page_and_export(admin_client):
    """Issue 16: a table is parsed on the worker, so the admin's Import is the lab's import page."""
    page = admin_client.get(reverse("admin:lab_alloy_changelist")).content.decode()
    assert f'href="{reverse("lab:import_list")}" class="import_link"' in page
    assert f'href="{reverse("admin:lab_alloy_export")}' in page
    assert 'action="/admin/lab/alloy/import' not in page and "process_import" not in page


@pytest.mark.django_db
def test_the_old_admin_import_address_reads_no_file(admin_client, monkeypatch):
    """GET or POST (a bookmarked form), it redirects to the lab's import page; nothing is parsed."""
    from lab import importing, tables

    def no_parse(*args, **kwargs):
        raise AssertionError("a table was parsed in the request")

    monkeypatch.setattr(tables, "read_table", no_parse)
    monkeypatch.setattr(importing, "read_table", no_parse)
    url = reverse("admin:lab_alloy_import")
    assert url == "/admin/lab/alloy/import/"
    for response in (admin_client.get(url), admin_client.post(url, {"resource": "0", "format": "0", "import_file": upload()})):
        assert response.status_code == 302 and response["Location"] == reverse("lab:import_list")
    assert not Alloy.objects.exists() and not AlloyImport.objects.exists()
    assert admin_client.post(reverse("admin:lab_alloy_changelist") + "process_import/", {}).status_code in (302, 404)
    assert not Alloy.objects.exists()


@pytest.mark.django_db
def test_the_old_admin_import_address_is_for_staff_only(client):
    response = client.get(reverse("admin:lab_alloy_import"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("admin:login"))
