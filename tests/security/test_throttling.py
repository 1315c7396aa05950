"""Password guessing: 30 wrong passwords in a row on the login page, the admin login or the
token endpoint get refused with "too many attempts, try again in N minutes"."""

import pytest
from django.core.cache import cache
from django.core.cache.backends.base import BaseCache
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db
PASSWORD = "pw-glassloop-1"


@pytest.fixture(autouse=True)
def fresh_cache():
    cache.clear()
    yield
    cache.clear()


def wrong_logins(client, url, n, username="vera", **extra):
    return [client.post(url, {"username": username, "password": f"wrong-{i}"}, **extra).status_code for i in range(n)]


def test_thirty_wrong_passwords_on_the_login_page_are_refused(client, viewer, settings):
    codes = wrong_logins(client, "/accounts/login/", 30)
    limit = settings.GLASSLOOP_LOGIN_MAX_FAILURES
    assert codes[:limit] == [200] * limit  # the form says the password is wrong
    assert set(codes[limit:]) == {429}
    response = client.post("/accounts/login/", {"username": "vera", "password": PASSWORD})
    assert response.status_code == 429  # locked out, even with the right password
    text = response.content.decode()
    assert "Too many failed login attempts; try again in 15 minutes." in text
    assert response["Retry-After"].isdigit() and 800 < int(response["Retry-After"]) <= 900
    # another address may still log in as that user: nobody can lock someone else out
    other = client.post("/accounts/login/", {"username": "vera", "password": PASSWORD}, REMOTE_ADDR="10.0.0.9")
    assert other.status_code == 302


def test_the_lockout_ends_with_the_window(client, viewer, settings):
    settings.GLASSLOOP_LOGIN_MAX_FAILURES = 3
    wrong_logins(client, "/accounts/login/", 3)
    assert client.post("/accounts/login/", {"username": "vera", "password": PASSWORD}).status_code == 429
    cache.clear()  # the window (GLASSLOOP_LOGIN_LOCKOUT_MINUTES) has passed
    assert client.post("/accounts/login/", {"username": "vera", "password": PASSWORD}).status_code == 302


def test_a_success_clears_the_count(client, viewer, settings):
    settings.GLASSLOOP_LOGIN_MAX_FAILURES = 3
    wrong_logins(client, "/accounts/login/", 2)
    assert client.post("/accounts/login/", {"username": "vera", "password": PASSWORD}).status_code == 302
    client.logout()
    wrong_logins(client, "/accounts/login/", 2)
    assert client.post("/accounts/login/", {"username": "vera", "password": PASSWORD}).status_code == 302


def test_spraying_many_usernames_from_one_address_is_refused(client, settings):
    settings.GLASSLOOP_LOGIN_MAX_FAILURES_PER_ADDRESS = 20
    codes = [wrong_logins(client, "/accounts/login/", 1, username=f"user{i}")[0] for i in range(30)]
    assert codes[:20] == [200] * 20 and set(codes[20:]) == {429}


def test_the_admin_login_is_throttled_too(client, make_user):
    admin = make_user("root")
    admin.is_staff = admin.is_superuser = True
    admin.save()
    codes = wrong_logins(client, "/admin/login/?next=/admin/", 30, username="root")
    assert codes[-1] == 429


def test_thirty_wrong_passwords_at_the_token_endpoint_are_refused(viewer):
    api = APIClient()
    codes = [api.post("/api/auth/token/", {"username": "vera", "password": f"wrong-{i}"}, format="json").status_code
             for i in range(30)]
    assert codes[0] == 400 and codes[-1] == 429
    response = api.post("/api/auth/token/", {"username": "vera", "password": PASSWORD}, format="json")
    assert response.status_code == 429
    assert "try again in" in response.json()["error"] and "minute" in response.json()["error"]


def test_the_token_endpoint_has_a_drf_rate(viewer, settings, monkeypatch):
    from rest_framework.settings import api_settings
    from rest_framework.throttling import ScopedRateThrottle

    from core.throttling import ObtainAuthTokenView

    assert api_settings.DEFAULT_THROTTLE_RATES["auth_token"] == settings.GLASSLOOP_TOKEN_RATE
    assert len(ObtainAuthTokenView.throttle_classes) == 1 and issubclass(ObtainAuthTokenView.throttle_classes[0], ScopedRateThrottle)
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"auth_token": "3/minute"})
    api = APIClient()
    codes = [api.post("/api/auth/token/", {"username": "vera", "password": PASSWORD}, format="json").status_code
             for _ in range(4)]
    assert codes == [200, 200, 200, 429]  # successes count too: a cap on requests, not only failures
    assert int(api.post("/api/auth/token/", {"username": "vera", "password": PASSWORD}, format="json")["Retry-After"]) > 0


def test_the_client_address_behind_proxies(rf, settings):
    from core.throttling import client_address

    request = rf.post("/accounts/login/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.7")
    settings.GLASSLOOP_NUM_PROXIES = 0
    assert client_address(request) == "10.0.0.1"  # X-Forwarded-For is not trusted by default
    settings.GLASSLOOP_NUM_PROXIES = 1
    assert client_address(request) == "203.0.113.7"


def test_a_cache_that_is_down_lets_logins_through(client, viewer, monkeypatch):
    import core.throttling

    class Down:
        def __getattr__(self, name):
            def fail(*args, **kwargs):
                raise ConnectionError("cache down")
            return fail

    monkeypatch.setattr(core.throttling, "cache", Down())
    assert wrong_logins(client, "/accounts/login/", 2) == [200, 200]
    assert client.post("/accounts/login/", {"username": "vera", "password": PASSWORD}).status_code == 302


class DownCache(BaseCache):
    """A cache backend whose server is down: every operation raises, as django-redis / Django's
    RedisCache do when Redis is unreachable."""

    def __init__(self, location, params):
        super().__init__(params)

    def _down(self, *args, **kwargs):
        raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    add = get = set = touch = delete = incr = get_many = set_many = delete_many = clear = has_key = _down


DOWN = {"default": {"BACKEND": f"{__name__}.DownCache"}}


def test_the_token_endpoint_works_while_the_cache_is_down(viewer, caplog):
    """The DRF throttle (and the failed-login guard) let the request through, logged: never a 500."""
    from django.core.cache import cache as proxy
    from django.test import override_settings

    api = APIClient()
    with override_settings(CACHES=DOWN), caplog.at_level("WARNING", logger="core.throttling"):
        with pytest.raises(ConnectionError):
            proxy.get("x")  # the backend really is down
        response = api.post("/api/auth/token/", {"username": "vera", "password": PASSWORD}, format="json")
        assert response.status_code == 200, response.content
        assert response.json()["token"]
        assert "API throttle 'auth_token' skipped: the cache is unavailable." in caplog.text
        assert "Login throttle skipped: the cache is unavailable." in caplog.text
        wrong = [api.post("/api/auth/token/", {"username": "vera", "password": f"no-{i}"}, format="json").status_code
                 for i in range(3)]
        assert wrong == [400, 400, 400]  # wrong passwords: refused as usual, not counted, no 500


def test_the_throttle_class_lets_a_request_through_when_the_cache_raises(rf, monkeypatch, caplog):
    from core.throttling import CacheSafeScopedRateThrottle, ObtainAuthTokenView

    class Down:
        def __getattr__(self, name):
            def fail(*args, **kwargs):
                raise TimeoutError("redis timed out")
            return fail

    monkeypatch.setattr(CacheSafeScopedRateThrottle, "cache", Down())
    throttle = CacheSafeScopedRateThrottle()
    request = rf.post("/api/auth/token/")
    with caplog.at_level("WARNING", logger="core.throttling"):
        assert throttle.allow_request(request, ObtainAuthTokenView()) is True
    assert "cache is unavailable" in caplog.text
