"""Authentication (token, session) and the role rules; no route changes data for an anonymous caller."""

import re

import pytest
from django.urls import URLPattern, URLResolver, reverse
from rest_framework.authtoken.models import Token

import core.api_urls
from lab.models import Alloy, Sample

pytestmark = pytest.mark.django_db

ALLOYS = "/api/alloys/"
UNSAFE = ("post", "put", "patch", "delete")


def test_token_is_obtained_with_username_and_password(api, make_user):
    user = make_user("tom", "viewer", password="pw-glassloop-1")
    response = api.post("/api/auth/token/", {"username": "tom", "password": "pw-glassloop-1"}, format="json")
    assert response.status_code == 200
    assert response.json()["token"] == Token.objects.get(user=user).key

    api.credentials(HTTP_AUTHORIZATION=f"Token {response.json()['token']}")
    assert api.get(ALLOYS).status_code == 200


def test_wrong_password_gets_no_token(api, make_user):
    make_user("tom", "viewer", password="pw-glassloop-1")
    response = api.post("/api/auth/token/", {"username": "tom", "password": "nope"}, format="json")
    assert response.status_code == 400
    assert "credentials" in response.json()["error"]
    assert not Token.objects.exists()


def test_bad_token_is_refused_with_401(api):
    api.credentials(HTTP_AUTHORIZATION="Token 0123456789abcdef")
    response = api.get(ALLOYS)
    assert response.status_code == 401
    assert response.json()["error"] == "Invalid token."


def test_session_login_reads_the_api(client, viewer):
    client.force_login(viewer)
    response = client.get(ALLOYS)
    assert response.status_code == 200
    assert response.json()["count"] == 0


def test_session_writes_need_the_csrf_token(experimenter):
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(experimenter)
    response = browser.post(ALLOYS, {"composition": "Cu50Hf50"}, content_type="application/json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["error"]
    assert not Alloy.objects.exists()


def test_anonymous_reads_are_refused(api):
    response = api.get(ALLOYS)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    body = response.json()
    assert set(body) == {"error", "detail"} and "token" in body["error"].lower()


def test_a_user_without_the_viewer_role_reads_nothing(make_user):
    from tests.api.conftest import token_client

    nobody = token_client(make_user("noone"))
    response = nobody.get(ALLOYS)
    assert response.status_code == 403
    assert response.json()["error"] == "This needs the viewer role."


def test_viewer_reads_but_cannot_write(viewer_api):
    assert viewer_api.get(ALLOYS).status_code == 200
    response = viewer_api.post(ALLOYS, {"composition": "Cu50Hf50"})
    assert response.status_code == 403
    assert response.json()["error"] == "This needs the experimenter role."
    response = viewer_api.post("/api/samples/", {"composition": "Cu50Hf50", "label": "S-1"})
    assert response.status_code == 403
    assert not Alloy.objects.exists() and not Sample.objects.exists()


def test_experimenter_writes(experimenter_api, experimenter):
    response = experimenter_api.post(ALLOYS, {"composition": "Hf50Cu50", "name": "binary"})
    assert response.status_code == 201, response.content
    alloy = Alloy.objects.get()
    assert response.json()["id"] == alloy.pk and alloy.created_by == experimenter
    response = experimenter_api.post("/api/samples/", {"alloy": alloy.pk, "label": "S-1"})
    assert response.status_code == 201, response.content
    assert Sample.objects.get().operator == experimenter


def test_superuser_holds_every_role(django_user_model):
    from tests.api.conftest import token_client

    boss = token_client(django_user_model.objects.create_superuser("boss", password="pw-glassloop-1"))
    assert boss.post(ALLOYS, {"composition": "Cu50Hf50"}).status_code == 201


def test_property_values_are_not_created_through_the_api(experimenter_api):
    """Values come from imports, DSC measurements and approved mining records (with provenance);
    the API corrects, retracts and resolves them but does not create one from nothing."""
    response = experimenter_api.post("/api/property-values/", {"alloy": 1})
    assert response.status_code == 405


# ---------------------------------------------------------------- every route, anonymously


def _api_patterns(patterns, prefix="/api/"):
    """(url regex text, pattern) for every URL under /api/, nested includes flattened."""
    for p in patterns:
        if isinstance(p, URLResolver):
            yield from _api_patterns(p.url_patterns, prefix + str(p.pattern))
        elif isinstance(p, URLPattern):
            yield prefix + str(p.pattern), p


def concrete_url(regex):
    """A URL matching a route's regex: numeric ids, ``json`` for formats."""
    url = regex.replace("^", "").replace("$", "").replace("\\.", ".").replace("/?", "/")
    url = re.sub(r"\(\?P<format>[^)]*\)", "json", url)
    url = re.sub(r"\(\?P<\w+>[^)]*\)", "1", url)
    url = re.sub(r"<(?:\w+:)?\w+>", "1", url)
    return url


def every_api_route():
    routes = []
    for text, pattern in _api_patterns(core.api_urls.urlpatterns):
        if pattern.name in ("api-token", "api-not-found"):  # logging in; unknown URLs
            continue
        routes.append((pattern.name, concrete_url(text)))
    return routes


def test_every_router_route_is_covered():
    names = {name for name, _ in every_api_route()}
    router_names = {p.name for p in core.api_urls.router.urls}
    assert router_names <= names
    # Each lab resource, the parse and predict endpoints, the docs are there.
    for expected in ("alloy-list", "alloy-detail", "sample-list", "xrd-measurement-list", "xrd-measurement-override-verdict",
                     "dsc-measurement-list", "property-value-list", "api-compositions-parse", "api-predict", "api-schema"):
        assert expected in names, expected


@pytest.mark.parametrize("name,url", every_api_route())
def test_anonymous_caller_changes_nothing(api, name, url, experimenter):
    from tests.api.conftest import make_alloys

    make_alloys(2, user=experimenter)  # so detail URLs (id 1) may exist
    before = (Alloy.objects.count(), Sample.objects.count())
    for method in UNSAFE:
        response = getattr(api, method)(url, {"composition": "Cu50Hf50", "label": "X"}, format="json")
        assert response.status_code in (401, 403, 405), (method, url, response.status_code)
        if name not in ("api-schema", "api-docs", "api-redoc"):  # public read-only pages
            assert response.status_code == 401, (method, url, response.status_code)
    assert (Alloy.objects.count(), Sample.objects.count()) == before


def test_unknown_api_urls_answer_json(viewer_api):
    response = viewer_api.get("/api/nothing-here/")
    assert response.status_code == 404
    assert response.json()["error"] == "No API endpoint at /api/nothing-here/."
    response = viewer_api.post("/api/predict/", {"compositions": ["Cu50Hf50"]})
    assert response.status_code == 404
    assert "Did you mean /api/predict?" in response.json()["error"]


def test_api_root_lists_the_resources(viewer_api):
    body = viewer_api.get("/api/").json()
    assert {"alloys", "samples", "xrd-measurements", "dsc-measurements", "property-values"} <= set(body)
    assert reverse("alloy-list") == ALLOYS
