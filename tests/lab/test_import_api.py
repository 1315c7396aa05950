"""Table imports in the REST API (lab.api_imports): list, detail, upload, report rows with the
page's filters, the page's role. The module is registered through GLASSLOOP_API_MODULES; this
test mounts it itself so it runs whether or not the setting names it yet."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import include, path
from rest_framework.routers import DefaultRouter

import config.urls
from lab import api_imports
from lab.importing import run_alloy_import
from lab.models import AlloyImport
from tests.lab.test_import_report import table

_router = DefaultRouter()
api_imports.register(_router)
urlpatterns = [path("api/", include(_router.urls)), *config.urls.urlpatterns]
pytestmark = [pytest.mark.urls(__name__), pytest.mark.django_db]


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def _upload(client, content=None, name="t.csv", **data):
    return client.post("/api/imports/", {"table": SimpleUploadedFile(name, content or table()), **data})


def test_upload_queues_then_rows_filter_like_the_page(experimenter_client):
    response = _upload(experimenter_client)
    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["status"] == "queued" and body["original_name"] == "t.csv" and not body["dry_run"]
    assert body["progress_url"].endswith(f"/api/jobs/imports/{body['id']}/")
    run_alloy_import(body["id"])

    detail = experimenter_client.get(f"/api/imports/{body['id']}/").json()
    assert detail["status"] == "done"
    assert detail["outcomes"] == {"created": 200, "merged": 10, "conflict": 5, "refused": 20}
    rows = experimenter_client.get(detail["rows_url"]).json()
    assert rows["count"] == 235 and len(rows["results"]) == 50  # core.api.Pagination
    assert [r["line"] for r in rows["results"][:3]] == [2, 3, 4]  # file order
    first = rows["results"][0]
    assert first["outcome"] == "created" and first["alloy"] and first["tg_k"] == 623.15
    refused = experimenter_client.get(detail["rows_url"], {"outcome": "refused", "page_size": 100}).json()
    assert refused["count"] == 20 and {r["outcome"] for r in refused["results"]} == {"refused"}
    assert all(r["alloy"] is None for r in refused["results"])
    found = experimenter_client.get(detail["rows_url"], {"q": "cu20zr1", "outcome": "merged"}).json()
    assert [r["line"] for r in found["results"]] == list(range(202, 211))
    bad = experimenter_client.get(detail["rows_url"], {"outcome": "nonsense"})
    assert bad.status_code == 400 and "created, merged, conflict, refused" in bad.json()["detail"]

    listing = experimenter_client.get("/api/imports/", {"status": "done"}).json()
    assert [i["id"] for i in listing["results"]] == [body["id"]]
    assert experimenter_client.get("/api/imports/", {"status": "queued"}).json()["count"] == 0


def test_upload_is_refused_with_the_forms_reason(experimenter_client):
    response = _upload(experimenter_client, b"composition,Tg_K\nCu50Zr50,700\n")
    assert response.status_code == 400
    assert "lacks the column(s) Tx_K, Tl_K" in response.json()["detail"]
    response = _upload(experimenter_client, name="t.pdf")
    assert response.status_code == 400 and response.json()["detail"] == "Upload a .csv or .xlsx file."
    assert not AlloyImport.objects.exists()


def test_dry_run_upload(experimenter_client):
    body = _upload(experimenter_client, dry_run="true").json()
    assert body["dry_run"] is True
    run_alloy_import(body["id"])
    rows = experimenter_client.get(body["rows_url"], {"page_size": 500}).json()
    assert rows["count"] == 235 and all(r["alloy"] is None for r in rows["results"])


def test_imports_need_the_experimenter_role(viewer_client, experimenter):
    client = Client()  # anonymous (the client fixture is the logged-in viewer here)
    job = AlloyImport.objects.create(original_name="t.csv", created_by=experimenter)
    for url in ("/api/imports/", f"/api/imports/{job.pk}/", f"/api/imports/{job.pk}/rows/"):
        assert client.get(url).status_code == 401, url
        response = viewer_client.get(url)
        assert response.status_code == 403 and response.json()["detail"] == "This needs the experimenter role.", url
    assert _upload(viewer_client).status_code == 403
    assert not AlloyImport.objects.exclude(pk=job.pk).exists()
