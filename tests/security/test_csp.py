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
