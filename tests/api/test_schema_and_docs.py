"""The OpenAPI 3 schema at /api/schema/ and the Swagger UI at /api/docs/ (local assets only),
for viewers only unless GLASSLOOP_API_DOCS_PUBLIC is on."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from django.contrib.staticfiles import finders

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def schema(viewer_api):
    response = viewer_api.get("/api/schema/")
    assert response.status_code == 200
    return yaml.safe_load(response.content)


def test_schema_is_openapi_3_with_the_lab_paths(schema):
    assert schema["openapi"].startswith("3.")
    assert schema["info"]["title"] == "GlassLoop API"
    paths = schema["paths"]
    for path in ("/api/alloys/", "/api/alloys/{id}/", "/api/samples/", "/api/xrd-measurements/",
                 "/api/xrd-measurements/{id}/override-verdict/", "/api/dsc-measurements/", "/api/property-values/",
                 "/api/compositions/parse", "/api/predict", "/api/auth/token/"):  # fmt: skip
        assert path in paths, path
    params = {p["name"] for p in paths["/api/alloys/"]["get"]["parameters"]}
    assert {"elements", "base_element", "tg_min", "tg_max", "tx_min", "trg_min", "ordering", "page", "page_size"} <= params
    upload = paths["/api/xrd-measurements/"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in upload
    schemes = schema["components"]["securitySchemes"]
    assert {"tokenAuth", "cookieAuth"} <= set(schemes)


def test_schema_as_json(viewer_api):
    response = viewer_api.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    assert json.loads(response.content)["openapi"].startswith("3.")


def test_schema_validates_without_warnings(tmp_path):
    """``manage.py spectacular --validate --fail-on-warn`` passes (the schema is checked against OpenAPI 3)."""
    out = tmp_path / "schema.yaml"
    result = subprocess.run(
        [sys.executable, "manage.py", "spectacular", "--validate", "--fail-on-warn", "--file", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Warning" not in result.stderr
    assert yaml.safe_load(out.read_text())["openapi"].startswith("3.")


def test_docs_page_uses_local_assets_only(viewer_client):
    response = viewer_client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    # Its start-up script is a request of its own (no inline script, for the CSP).
    script = viewer_client.get("/api/docs/?script=").content.decode()
    assert 'src="/api/docs/?script="' in html and "SwaggerUIBundle" in script and '"/api/schema/"' in script
    assert not re.findall(r"https?://", html + script), "the docs page must not load anything from the internet"
    assets = [a for a in re.findall(r'(?:src|href)="([^"]+)"', html) if a != "/api/docs/?script="]
    assert any(a.endswith("swagger-ui-bundle.js") for a in assets) and any(a.endswith("swagger-ui.css") for a in assets)
    for asset in assets:
        assert asset.startswith("/static/"), asset
        assert finders.find(asset.removeprefix("/static/")), f"{asset} is not a static file of the project"


# ---------------------------------------------------------------- behind login unless public


def test_anonymous_callers_get_neither_schema_nor_docs(api, client):
    for params in ({}, {"format": "json"}):
        response = api.get("/api/schema/", params)
        assert response.status_code == 401
        assert response["WWW-Authenticate"] == "Token"
        assert "openapi" not in response.content.decode()
        assert "API token" in response.json()["error"]
    response = client.get("/api/docs/")  # a browser: to the login page, and back after it
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/api/docs/"


def test_a_bad_token_gets_neither(api):
    api.credentials(HTTP_AUTHORIZATION="Token 0123456789abcdef")
    assert api.get("/api/schema/").status_code == 401
    assert api.get("/api/docs/").status_code == 401


def test_a_user_without_a_role_gets_neither(client, make_user):
    from tests.api.conftest import token_client

    nobody = make_user("noone")
    response = token_client(nobody).get("/api/schema/")
    assert response.status_code == 403 and response.json()["error"] == "This needs the viewer role."
    client.force_login(nobody)
    assert client.get("/api/schema/").status_code == 403
    response = client.get("/api/docs/")
    assert response.status_code == 403 and "To get a role" in response.content.decode()  # the site's 403 page


def test_a_session_or_a_token_reads_both(viewer_client, viewer_api):
    assert viewer_client.get("/api/schema/").status_code == 200  # what the Swagger UI page fetches
    assert viewer_api.get("/api/schema/").status_code == 200
    assert viewer_api.get("/api/docs/").status_code == 200


def test_the_public_switch_opens_both(api, client, settings):
    settings.GLASSLOOP_API_DOCS_PUBLIC = True
    response = api.get("/api/schema/")
    assert response.status_code == 200 and yaml.safe_load(response.content)["openapi"].startswith("3.")
    response = client.get("/api/docs/")
    assert response.status_code == 200 and "SwaggerUIBundle" in client.get("/api/docs/?script=").content.decode()
    assert api.post("/api/schema/").status_code == 405  # still read-only
    settings.GLASSLOOP_API_DOCS_PUBLIC = False
    assert api.get("/api/schema/").status_code == 401


def test_the_switch_is_off_by_default():
    from django.conf import settings

    assert settings.GLASSLOOP_API_DOCS_PUBLIC is False
