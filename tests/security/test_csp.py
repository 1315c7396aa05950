"""Content-Security-Policy: with GLASSLOOP_CSP=on (docker/.env.example) every response carries
the site's policy; off by default."""

import re

import pytest

from tests.deploy.test_check_deploy import example_env

pytestmark = pytest.mark.django_db


@pytest.fixture
def csp_on(settings):
    settings.GLASSLOOP_CSP = "on"


def test_the_container_example_turns_it_on():
    assert example_env()["GLASSLOOP_CSP"] == "on"


@pytest.mark.parametrize("path", ["/accounts/login/", "/lab/samples/", "/api/alloys/", "/api/docs/"])
def test_pages_and_the_api_send_the_policy(csp_on, viewer_client, path):
    response = viewer_client.get(path)
    assert response.status_code == 200
    policy = response["Content-Security-Policy"]
    for directive in ("default-src 'self'", "object-src 'none'", "base-uri 'self'", "frame-ancestors 'none'",
                      "form-action 'self'"):
        assert directive in policy
    assert "unsafe-eval" not in policy


def test_refusals_carry_it_too(csp_on, viewer_client):
    assert "default-src 'self'" in viewer_client.get("/lab/samples/?q=%00")["Content-Security-Policy"]


def test_a_policy_of_ones_own_and_off(settings, viewer_client):
    settings.GLASSLOOP_CSP = "default-src 'none'"
    assert viewer_client.get("/lab/samples/")["Content-Security-Policy"] == "default-src 'none'"
    settings.GLASSLOOP_CSP = "off"
    assert "Content-Security-Policy" not in viewer_client.get("/lab/samples/")


def directives(policy):
    return {name: sources.split() for name, sources in (d.strip().split(" ", 1) for d in policy.split(";"))}


def test_a_lab_page_allows_nothing_inline(csp_on, viewer_client):
    """No inline script and no inline style on the site's own pages (issue 16)."""
    policy = viewer_client.get("/lab/samples/")["Content-Security-Policy"]
    assert "unsafe-inline" not in policy
    assert directives(policy)["style-src"] == ["'self'"] and directives(policy)["script-src"] == ["'self'"]


def test_swagger_ui_allows_inline_styles_only(csp_on, admin_client):
    """Its markup is not ours: style attributes are allowed there, inline scripts still are not."""
    response = admin_client.get("/api/docs/")
    assert response.status_code == 200
    policy = directives(response["Content-Security-Policy"])
    assert policy["style-src"] == ["'self'", "'unsafe-inline'"]
    assert policy["script-src"] == ["'self'"]


@pytest.mark.parametrize("path", ["/admin/", "/admin/lab/alloy/", "/admin/lab/alloy/export/"])
def test_the_admin_runs_under_the_site_policy(csp_on, admin_client, path):
    """The admin allows nothing inline either: its packages' few style attributes are cut by our
    templates (tests/browser/test_admin_csp.py crawls its pages in Chromium)."""
    response = admin_client.get(path)
    assert response.status_code == 200
    policy = directives(response["Content-Security-Policy"])
    assert policy["style-src"] == ["'self'"] and policy["script-src"] == ["'self'"]


def test_the_packages_style_attributes_are_cut_from_the_admin_pages(csp_on, admin_client, admin_user):
    """django-import-export's export page and django-simple-history's history page come without
    their style attributes (and the export page without its inline onchange)."""
    from lab import services

    alloy, _ = services.get_or_create_alloy("Cu50Zr50", user=admin_user)
    for path in ("/admin/lab/alloy/export/", f"/admin/lab/alloy/{alloy.pk}/history/"):
        page = admin_client.get(path).content.decode()
        assert "style=" not in page and " onchange=" not in page, path
        assert "/static/css/admin-csp.css" in page, path


def test_a_plot_opened_on_its_own_keeps_its_styles(csp_on):
    """matplotlib's SVG styles itself inline; opened as a document (a link to map.svg) the strict
    policy would paint it black. Only the image type gets inline styles, not its path's pages."""
    from core.middleware import INLINE_STYLES_POLICY, SITE_POLICY, content_security_policy

    assert content_security_policy("/design/3/map.svg", "image/svg+xml") == INLINE_STYLES_POLICY
    assert content_security_policy("/design/3/", "text/html; charset=utf-8") == SITE_POLICY
    assert content_security_policy("/lab/admin-notes/", "text/html") == SITE_POLICY  # "/admin/" is a prefix, not a word


def test_no_template_or_script_writes_an_inline_style():
    """What the strict style-src refuses: a style attribute or a <style> element in a template, or
    markup with one built by a script (el.style.x = … is the allowed way)."""
    from pathlib import Path

    from django.conf import settings

    root = Path(settings.BASE_DIR)
    found = []
    for path in sorted((root / "templates").rglob("*.html")):
        # a package's attribute named in a filter that cuts it from the page is not one written
        text = re.sub(r"\|cut:'[^']*'", "", path.read_text())
        found += [f"{path.relative_to(root)}: {m}" for m in ("style=", "<style") if m in text]
    for path in sorted((root / "static" / "js").glob("*.js")):
        text = path.read_text()
        found += [f"{path.relative_to(root)}: {m}" for m in ("style=", "setAttribute(\"style\"", "setAttribute('style'", "cssText")
                  if m in text]
    assert found == []
