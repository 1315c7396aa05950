"""The REST API's URLs (under /api/): one router for every app, the schema and docs.

    auth/token/              POST username + password -> {"token": ...}; then send
                             "Authorization: Token <key>"
    schema/                  OpenAPI 3 (YAML; ?format=json for JSON)
    docs/                    Swagger UI, its assets from drf-spectacular-sidecar (works offline;
                             Redoc is left out: its page loads fonts from Google)
                             Both for viewers only (core.api.ApiDocsPermission: 401 without a
                             token or session; the docs page sends a browser to the login page)
                             unless GLASSLOOP_API_DOCS_PUBLIC=true.
    <each app's routes>      registered by the app's ``api`` module

Adding an app's endpoints takes one line: write ``<app>/api.py`` with ``register(router)``
(router.register(...) for its viewsets) and, for plain views, a ``urlpatterns`` list; then add
``"<app>.api"`` to ``settings.GLASSLOOP_API_MODULES``. The shared rules (roles, errors,
pagination) are in ``core.api``.
"""

import importlib

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.renderers import JSONRenderer
from rest_framework.routers import DefaultRouter

from core.api import ApiDocsPermission, not_found
from core.roles import VIEWER, has_role
from core.throttling import obtain_auth_token


def build_router(modules):
    """The router with every app's viewsets (each app's ``api.register(router)``)."""
    router = DefaultRouter()
    router.include_format_suffixes = False  # /api/alloys.json adds nothing to ?format= and Accept
    for module in modules:
        if hasattr(module, "register"):
            module.register(router)
    return router


class JSONErrors:
    """Refusals as the API's JSON errors, not in the view's own format (YAML, an HTML template)."""

    permission_classes = [ApiDocsPermission]

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        self.request.accepted_renderer, self.request.accepted_media_type = JSONRenderer(), "application/json"
        return response


class SchemaView(JSONErrors, SpectacularAPIView):
    pass


class DocsView(JSONErrors, SpectacularSwaggerSplitView):
    """Swagger UI with its start-up script served from /api/docs/?script= (no inline script: the CSP)."""


schema_view = SchemaView.as_view()
_swagger_view = DocsView.as_view(url_name="api-schema")


def docs_view(request, *args, **kwargs):
    """The Swagger UI page. Unless the docs are public, a browser without a session goes to the
    login page (and back here after it) and a session without the viewer role gets the site's 403;
    a caller sending an Authorization header, or another method, is answered by DRF (401/403/405
    as anywhere in the API)."""
    browser = request.method in ("GET", "HEAD") and "HTTP_AUTHORIZATION" not in request.META
    if not settings.GLASSLOOP_API_DOCS_PUBLIC and browser:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not has_role(request.user, VIEWER):
            raise PermissionDenied(f"This needs the {VIEWER} role.")
    return _swagger_view(request, *args, **kwargs)


api_modules = [importlib.import_module(name) for name in settings.GLASSLOOP_API_MODULES]
router = build_router(api_modules)

urlpatterns = [
    path("auth/token/", obtain_auth_token, name="api-token"),
    path("schema/", schema_view, name="api-schema"),
    path("docs/", docs_view, name="api-docs"),
]
for module in api_modules:
    urlpatterns += list(getattr(module, "urlpatterns", []))
urlpatterns += [
    path("", include(router.urls)),
    re_path(r"^.*$", not_found, name="api-not-found"),
]
