"""Throttling of password guesses: the login page, the admin login and the API token endpoint.

Two guards, both counting in the default cache (settings.CACHES: Redis in production, so the
web workers share the counts):

- **Failed logins** (:class:`LoginThrottleMiddleware` + the ``user_login_failed`` signal):
  after ``GLASSLOOP_LOGIN_MAX_FAILURES`` failed logins for one username from one client
  address, or ``GLASSLOOP_LOGIN_MAX_FAILURES_PER_ADDRESS`` for any usernames from one address,
  within ``GLASSLOOP_LOGIN_LOCKOUT_MINUTES``, further attempts from there are refused (429,
  "Too many failed login attempts; try again in N minutes.") until the window ends, right
  password or not. A successful login clears its username's count. Counting per address (not
  per username alone) means nobody can lock someone else out from elsewhere.
- **The token endpoint** (:class:`ObtainAuthTokenView`): DRF's ScopedRateThrottle
  (:class:`CacheSafeScopedRateThrottle`), scope ``auth_token``, at ``GLASSLOOP_TOKEN_RATE``
  requests per client address, whatever they answer.

When the cache is down both guards let requests through (with a logged warning) rather than
refusing everyone or answering 500; Django still checks every password. The client address is REMOTE_ADDR, or behind ``GLASSLOOP_NUM_PROXIES`` trusted proxies the
address that many entries from the right of X-Forwarded-For (as DRF's NUM_PROXIES).
"""

import hashlib
import json
import logging
import math
import time

from django.conf import settings
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.core.cache import cache
from django.dispatch import receiver
from django.http import HttpResponse, JsonResponse
from django.template import engines
from django.urls import NoReverseMatch, reverse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.exceptions import Throttled
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle

from core.api import token_expires_at, token_for

logger = logging.getLogger(__name__)
PREFIX = "glassloop:login-failures"

PAGE = """{% extends "base.html" %}
{% block title %}Too many attempts{% endblock %}
{% block content %}
<h1>Too many failed login attempts</h1>
<div class="card" id="too-many-attempts"><p>{{ message }}</p></div>
{% endblock %}
"""


def client_address(request):
    meta = request.META
    proxies = settings.GLASSLOOP_NUM_PROXIES
    forwarded = meta.get("HTTP_X_FORWARDED_FOR", "")
    if proxies and forwarded:
        addresses = [a.strip() for a in forwarded.split(",") if a.strip()]
        if addresses:
            return addresses[-min(proxies, len(addresses))]
    return meta.get("REMOTE_ADDR", "") or "unknown"


def _keys(address, username):
    """The cache keys counting an address's failures, and one username's from that address
    (hashed: a username or an address may hold anything)."""
    digest = hashlib.sha256(f"{address}\n{str(username or '').strip().lower()}".encode()).hexdigest()[:32]
    address_digest = hashlib.sha256(str(address).encode()).hexdigest()[:32]
    return f"{PREFIX}:addr:{address_digest}", f"{PREFIX}:user:{digest}"


def _window_seconds():
    return settings.GLASSLOOP_LOGIN_LOCKOUT_MINUTES * 60


def _count(key):
    return cache.get(key, 0)


def _bump(key):
    window = _window_seconds()
    if cache.add(key, 1, window):
        cache.set(f"{key}:until", time.time() + window, window)
        return
    try:
        cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, window)
        cache.set(f"{key}:until", time.time() + window, window)


def refusal(address, username):
    """None while attempts are allowed, else the message (and the seconds until they are)."""
    address_key, user_key = _keys(address, username)
    over = [key for key, limit in ((user_key, settings.GLASSLOOP_LOGIN_MAX_FAILURES),
                                   (address_key, settings.GLASSLOOP_LOGIN_MAX_FAILURES_PER_ADDRESS))
            if _count(key) >= limit]
    if not over:
        return None
    until = max(cache.get(f"{key}:until", time.time() + _window_seconds()) for key in over)
    wait = max(1, math.ceil(until - time.time()))
    minutes = math.ceil(wait / 60)
    return f"Too many failed login attempts; try again in {minutes} minute{'s' if minutes != 1 else ''}.", wait


@receiver(user_login_failed, dispatch_uid="glassloop-count-login-failures")
def count_failure(sender, credentials, request=None, **kwargs):
    if request is None:  # authenticate() called by code (tests' client.login, commands): no address
        return
    address_key, user_key = _keys(client_address(request), credentials.get("username", ""))
    try:
        _bump(address_key)
        _bump(user_key)
    except Exception:  # the cache is down: count nothing rather than fail the login page
        logger.warning("Login failure not counted: the cache is unavailable.", exc_info=True)


@receiver(user_logged_in, dispatch_uid="glassloop-clear-login-failures")
def clear_failures(sender, request=None, user=None, **kwargs):
    if request is None or user is None:
        return
    try:
        cache.delete(_keys(client_address(request), user.get_username())[1])
    except Exception:
        logger.warning("Login failures not cleared: the cache is unavailable.", exc_info=True)


def _username(request):
    if request.content_type == "application/json":
        try:
            data = json.loads(request.body or b"{}")
        except ValueError:
            return ""
        return str(data.get("username", "")) if isinstance(data, dict) else ""
    return request.POST.get("username", "")


class LoginThrottleMiddleware:
    """Refuses a login POST (site, admin, API token) from an address over its failure limit."""

    URL_NAMES = ("login", "admin:login", "api-token")

    def __init__(self, get_response):
        self.get_response = get_response
        self._paths = None

    def paths(self):
        if self._paths is None:
            paths = set()
            for name in self.URL_NAMES:
                try:
                    paths.add(reverse(name))
                except NoReverseMatch:
                    pass
            self._paths = paths
        return self._paths

    def __call__(self, request):
        if request.method == "POST" and request.path_info in self.paths():
            try:
                refused = refusal(client_address(request), _username(request))
            except Exception:  # the cache is down: let the login through (Django checks the password)
                logger.warning("Login throttle skipped: the cache is unavailable.", exc_info=True)
                refused = None
            if refused:
                return self.refuse(request, *refused)
        return self.get_response(request)

    def refuse(self, request, message, wait):
        if request.path_info.startswith("/api/"):
            response = JsonResponse({"error": message, "detail": message}, status=429)
        else:
            html = engines["django"].from_string(PAGE).render({"message": message}, request)
            response = HttpResponse(html, status=429)
        response["Retry-After"] = str(wait)
        return response


class CacheSafeScopedRateThrottle(ScopedRateThrottle):
    """DRF's ScopedRateThrottle, except that a cache that is down lets the request through
    (logged) instead of failing it with a 500."""

    def allow_request(self, request, view):
        try:
            return super().allow_request(request, view)
        except Exception:  # redis down, timed out, refusing: no count rather than no service
            logger.warning("API throttle %r skipped: the cache is unavailable.", self.scope, exc_info=True)
            return True


class TokenResponseSerializer(serializers.Serializer):
    token = serializers.CharField(help_text='Send it as "Authorization: Token <key>".')
    expires_at = serializers.DateTimeField(
        allow_null=True, help_text="When the token stops working (GLASSLOOP_TOKEN_TTL_HOURS); null: never."
    )


class ObtainAuthTokenView(ObtainAuthToken):
    """POST username + password -> {"token": ..., "expires_at": ...}, throttled (scope ``auth_token``).

    The same key while it is valid; an expired one is replaced by a new key (core.api.token_for).
    """

    throttle_classes = [CacheSafeScopedRateThrottle]
    throttle_scope = "auth_token"

    @extend_schema(responses={200: TokenResponseSerializer}, summary="Obtain an API token")
    def post(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        token = token_for(serializer.validated_data["user"])
        return Response({"token": token.key, "expires_at": token_expires_at(token)})

    def throttled(self, request, wait):
        minutes = max(1, math.ceil((wait or 60) / 60))
        exc = Throttled(detail=f"Too many attempts; try again in {minutes} minute{'s' if minutes != 1 else ''}.")
        exc.wait = math.ceil(wait) if wait else None
        raise exc


obtain_auth_token = ObtainAuthTokenView.as_view()
