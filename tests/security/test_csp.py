"""Content-Security-Policy: with GLASSLOOP_CSP=on (docker/.env.example) every response carries
the site's policy; off by default."""

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


@pytest.mark.parametrize("path", ["/api/docs/", "/admin/", "/admin/lab/alloy/"])
def test_swagger_ui_and_the_admin_allow_inline_styles_only(csp_on, admin_client, path):
    """Their markup is not ours: style attributes are allowed there, inline scripts still are not."""
    response = admin_client.get(path)
    assert response.status_code == 200
    policy = directives(response["Content-Security-Policy"])
    assert policy["style-src"] == ["'self'", "'unsafe-inline'"]
    assert policy["script-src"] == ["'self'"]


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
        if path.relative_to(root / "templates").parts[0] == "admin":
            continue  # under /admin/, where inline styles are allowed
        text = path.read_text()
        found += [f"{path.relative_to(root)}: {m}" for m in ("style=", "<style") if m in text]
    for path in sorted((root / "static" / "js").glob("*.js")):
        text = path.read_text()
        found += [f"{path.relative_to(root)}: {m}" for m in ("style=", "setAttribute(\"style\"", "setAttribute('style'", "cssText")
                  if m in text]
    assert found == []
