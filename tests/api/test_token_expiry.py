"""API tokens expire GLASSLOOP_TOKEN_TTL_HOURS after they were issued (0: never); the token
endpoint reports ``expires_at`` and replaces an expired token with a new key.

Time is moved by editing ``Token.created``."""

from datetime import UTC, timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db
PASSWORD = "pw-glassloop-1"
ALLOYS = "/api/alloys/"


@pytest.fixture(autouse=True)
def fresh_cache():
    cache.clear()  # the token endpoint's throttle counts
    yield
    cache.clear()


def obtain(username="vera"):
    return APIClient().post("/api/auth/token/", {"username": username, "password": PASSWORD}, format="json")


def age(token, hours):
    Token.objects.filter(pk=token.pk).update(created=timezone.now() - timedelta(hours=hours))


def with_token(key):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def test_the_token_endpoint_reports_when_the_token_expires(viewer, settings):
    settings.GLASSLOOP_TOKEN_TTL_HOURS = 24
    response = obtain()
    assert response.status_code == 200
    body = response.json()
    token = Token.objects.get(user=viewer)
    assert body["token"] == token.key
    assert parse_datetime(body["expires_at"]) == token.created + timedelta(hours=24)
    # Asked again while it is valid: the same key, the same expiry.
    assert obtain().json() == body


def test_a_token_works_until_its_ttl_and_is_refused_after(viewer, settings):
    settings.GLASSLOOP_TOKEN_TTL_HOURS = 24
    key = obtain().json()["token"]
    token = Token.objects.get(key=key)
    age(token, 23.9)
    assert with_token(key).get(ALLOYS).status_code == 200
    age(token, 24.1)
    response = with_token(key).get(ALLOYS)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    token.refresh_from_db()
    expires = (token.created + timedelta(hours=24)).astimezone(UTC)
    message = response.json()["error"]
    assert message == f"Token expired on {expires:%Y-%m-%d %H:%M} UTC; POST /api/auth/token/ for a new one."
    assert response.json()["detail"] == message
    # writes are refused the same way
    assert with_token(key).post(ALLOYS, {"composition": "Cu50Zr50"}).status_code == 401


def test_an_expired_token_is_replaced_by_a_new_key(viewer, settings):
    settings.GLASSLOOP_TOKEN_TTL_HOURS = 24
    old = obtain().json()["token"]
    age(Token.objects.get(key=old), 25)
    response = obtain()
    assert response.status_code == 200
    new = response.json()["token"]
    assert new != old
    assert not Token.objects.filter(key=old).exists() and Token.objects.get(user=viewer).key == new
    expires = parse_datetime(response.json()["expires_at"])
    assert timedelta(hours=23.9) < expires - timezone.now() <= timedelta(hours=24)
    assert with_token(new).get(ALLOYS).status_code == 200
    assert with_token(old).get(ALLOYS).json()["error"] == "Invalid token."


def test_a_wrong_password_does_not_rotate_the_token(viewer, settings):
    settings.GLASSLOOP_TOKEN_TTL_HOURS = 24
    old = obtain().json()["token"]
    age(Token.objects.get(key=old), 25)
    response = APIClient().post("/api/auth/token/", {"username": "vera", "password": "wrong"}, format="json")
    assert response.status_code == 400
    assert Token.objects.get(user=viewer).key == old


def test_a_ttl_of_zero_means_tokens_never_expire(viewer, settings):
    settings.GLASSLOOP_TOKEN_TTL_HOURS = 0
    body = obtain().json()
    assert body["expires_at"] is None
    age(Token.objects.get(key=body["token"]), 24 * 3650)
    assert with_token(body["token"]).get(ALLOYS).status_code == 200
    assert obtain().json()["token"] == body["token"]


def test_the_default_ttl_is_thirty_days(viewer):
    from django.conf import settings

    assert settings.GLASSLOOP_TOKEN_TTL_HOURS == 24 * 30
    key = obtain().json()["token"]
    age(Token.objects.get(key=key), 24 * 29)
    assert with_token(key).get(ALLOYS).status_code == 200
    age(Token.objects.get(key=key), 24 * 31)
    assert with_token(key).get(ALLOYS).status_code == 401


def test_a_session_is_not_affected_by_an_expired_token(client, viewer, settings):
    settings.GLASSLOOP_TOKEN_TTL_HOURS = 1
    Token.objects.create(user=viewer)
    age(Token.objects.get(user=viewer), 2)
    client.force_login(viewer)
    assert client.get(ALLOYS).status_code == 200


def test_the_schema_documents_expires_at(viewer_api):
    import yaml

    schema = yaml.safe_load(viewer_api.get("/api/schema/").content)
    response = schema["paths"]["/api/auth/token/"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
    component = schema["components"]["schemas"][response["$ref"].rsplit("/", 1)[-1]]
    assert {"token", "expires_at"} <= set(component["properties"])
    assert "tokenAuth" in schema["components"]["securitySchemes"]
