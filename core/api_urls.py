"""The REST API's URLs (under /api/): one router for every app, the schema and docs.

    auth/token/              POST username + password -> {"token": ...}; then send
                             "Authorization: Token <key>"
    schema/                  OpenAPI 3 (YAML; ?format=json for JSON)
    docs/                    Swagger UI, its assets from drf-spectacular-sidecar (works offline;
                             Redoc is left out: its page loads fonts from Google)
    <each app's routes>      registered by the app's ``api`` module

Adding an app's endpoints takes one line: write ``<app>/api.py`` with ``register(router)``
(router.register(...) for its viewsets) and, for plain views, a ``urlpatterns`` list; then add
``"<app>.api"`` to ``settings.GLASSLOOP_API_MODULES``. The shared rules (roles, errors,
pagination) are in ``core.api``.
"""

import importlib

from django.conf import settings
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from core.api import not_found
from core.throttling import obtain_auth_token


def build_router(modules):
    """The router with every app's viewsets (each app's ``api.register(router)``)."""
    router = DefaultRouter()
    router.include_format_suffixes = False  # /api/alloys.json adds nothing to ?format= and Accept
    for module in modules:
        if hasattr(module, "register"):
            module.register(router)
    return router


api_modules = [importlib.import_module(name) for name in settings.GLASSLOOP_API_MODULES]
router = build_router(api_modules)

urlpatterns = [
    path("auth/token/", obtain_auth_token, name="api-token"),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
]
for module in api_modules:
    urlpatterns += list(getattr(module, "urlpatterns", []))
urlpatterns += [
    path("", include(router.urls)),
    re_path(r"^.*$", not_found, name="api-not-found"),
]
