"""The REST API's shared rules: permissions by role, pagination, ordering, the error format.

Named in settings.REST_FRAMEWORK (DRF imports these classes while ``rest_framework.views`` is
being imported, so this module imports no DRF views, viewsets or routers; the URLs are in
``core.api_urls``).

- authentication: an API token (:class:`ExpiringTokenAuthentication`: refused once older than
  ``GLASSLOOP_TOKEN_TTL_HOURS``; POST /api/auth/token/ then gives a new one), then session;
- permission: reads need the viewer role (as on the web pages); a write is refused unless
  the view names the role that may make it: ``permission_classes = [HasRole(EXPERIMENTER)]``.
  An anonymous caller can never change anything (401);
- errors: ``{"error": "<one readable sentence>", "detail": <field -> [messages] | message>}``,
  validators' and the composition parser's messages kept word for word;
- pagination ``?page=`` (50 a page, ``?page_size=`` up to 500); ordering ``?ordering=``.
"""

import logging
from collections.abc import Mapping
from datetime import UTC, timedelta
from types import FunctionType, MethodType

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import F, Model
from django.http import Http404, JsonResponse
from django.urls import Resolver404, resolve, reverse
from django.utils import timezone
from rest_framework import exceptions, status
from rest_framework.authentication import TokenAuthentication
from rest_framework.fields import Field, SkipField, is_simple_callable
from rest_framework.filters import OrderingFilter
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.relations import HyperlinkedIdentityField, PKOnlyObject
from rest_framework.settings import api_settings

from core.links import PLACEHOLDER_ID, split_at_placeholder
from core.roles import VIEWER, has_role

logger = logging.getLogger(__name__)
OUT_OF_RANGE = "A number in the request is out of range (too large to store or compare)."
AUTH_HINT = "Log in, or send an API token: Authorization: Token <key> (POST /api/auth/token/ gives one)."


# ------------------------------------------------------------------ expiring tokens


def token_expires_at(token):
    """When ``token`` (DRF's authtoken Token) stops working: ``created`` + GLASSLOOP_TOKEN_TTL_HOURS,
    or None when tokens never expire (GLASSLOOP_TOKEN_TTL_HOURS=0)."""
    hours = settings.GLASSLOOP_TOKEN_TTL_HOURS
    if not hours:
        return None
    return token.created + timedelta(hours=hours)


def token_expired(token, now=None):
    expires = token_expires_at(token)
    return expires is not None and expires <= (now or timezone.now())


def _when(moment):
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def token_for(user):
    """The user's API token, a new one (a new key) in place of an expired one."""
    from rest_framework.authtoken.models import Token

    token, _ = Token.objects.get_or_create(user=user)
    if token_expired(token):
        # Delete by key, then get_or_create (which resolves a concurrent create by reading the
        # winner's row): two simultaneous renewals end with one new token, never an IntegrityError.
        Token.objects.filter(pk=token.pk).delete()
        token, _ = Token.objects.get_or_create(user=user)
    return token


class ExpiringTokenAuthentication(TokenAuthentication):
    """``Authorization: Token <key>``, refused (401) once the token is older than
    ``GLASSLOOP_TOKEN_TTL_HOURS`` (0: never): "Token expired on …; POST /api/auth/token/ for a new one."."""

    def authenticate_credentials(self, key):
        user, token = super().authenticate_credentials(key)
        if token_expired(token):
            raise exceptions.AuthenticationFailed(
                f"Token expired on {_when(token_expires_at(token))}; POST /api/auth/token/ for a new one."
            )
        return user, token


# ------------------------------------------------------------------ permissions


class RolePermission(BasePermission):
    """Reads (GET/HEAD/OPTIONS) need ``read_role``; writes need ``write_role`` (None: no writes).

    Superusers hold every role (core.roles). Anonymous callers are refused before anything
    else, so DRF answers 401 with ``WWW-Authenticate: Token``.
    """

    read_role = VIEWER
    write_role = None

    def has_permission(self, request, view):
        user = request.user
        if not (user and user.is_authenticated):
            self.message = AUTH_HINT
            return False
        role = self.read_role if request.method in SAFE_METHODS else self.write_role
        if role is None:
            self.message = f"{request.method} is not allowed here: this endpoint is read-only."
            return False
        if not has_role(user, role):
            self.message = f"This needs the {role} role."
            return False
        return True


class ReadOnlyForViewers(RolePermission):
    """The default: viewers read, nobody writes unless the view says who may."""


_role_permissions = {}


def HasRole(write_role, *, read_role=VIEWER):  # noqa: N802 - reads as a class in permission_classes
    """A permission class: reads need ``read_role``, writes (POST/PUT/PATCH/DELETE) ``write_role``.

    ``permission_classes = [HasRole(EXPERIMENTER)]``. ``HasRole(VIEWER)`` suits POST endpoints
    that change nothing (parse, predict).
    """
    key = (write_role, read_role)
    if key not in _role_permissions:
        _role_permissions[key] = type(
            f"HasRole_{write_role}",
            (RolePermission,),
            {"write_role": write_role, "read_role": read_role, "__doc__": f"Reads: {read_role}; writes: {write_role}."},
        )
    return _role_permissions[key]


class ApiDocsPermission(ReadOnlyForViewers):
    """The schema and its docs: for viewers (token or session) unless ``GLASSLOOP_API_DOCS_PUBLIC``."""

    def has_permission(self, request, view):
        if settings.GLASSLOOP_API_DOCS_PUBLIC:
            return True
        return super().has_permission(request, view)


# ------------------------------------------------------------------ pagination, ordering


class Pagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class NullsLastOrderingFilter(OrderingFilter):
    """``?ordering=a,-b``: unknown values (NULL) last whichever way, on SQLite and PostgreSQL
    alike, and the primary key as the last tie-break so pages never overlap.

    A view may name public fields that differ from its queryset's:
    ``ordering_fields = {"tg_mean_k": "tg_mean", "formula": "formula"}``.
    """

    def get_valid_fields(self, queryset, view, context=None):
        fields = getattr(view, "ordering_fields", None)
        if isinstance(fields, dict):
            return [(public, public) for public in fields]
        return super().get_valid_fields(queryset, view, context or {})

    def filter_queryset(self, request, queryset, view):
        ordering = self.get_ordering(request, queryset, view)
        if not ordering:
            return queryset
        mapping = getattr(view, "ordering_fields", None)
        mapping = mapping if isinstance(mapping, dict) else {}
        terms = []
        for term in ordering:
            descending = term.startswith("-")
            name = term.lstrip("-")
            expression = F(mapping.get(name, name))
            terms.append(expression.desc(nulls_last=True) if descending else expression.asc(nulls_last=True))
        return queryset.order_by(*terms, "pk")

    def get_default_ordering(self, view):
        # The queryset's own order applies when no ?ordering is given.
        return None


# ------------------------------------------------------------------ links


class IdentityLink(HyperlinkedIdentityField):
    """DRF's HyperlinkedIdentityField (``"url": "http://host/api/alloys/7/"``) for records with
    an integer id, with the same text: the URL is reversed and made absolute once per request
    with a placeholder id, and each row's link is that text with its id in place (reversing it
    for each of a page's 50 rows was ~10 % of the list's CPU). Anything else (a format suffix, a
    ``?format=`` to keep, API versioning, an id that is not an int) goes DRF's own way."""

    def get_url(self, obj, view_name, request, format):
        pk = getattr(obj, self.lookup_field, None)
        if (
            type(pk) is not int
            or format is not None
            or request is None
            or getattr(request, "versioning_scheme", None) is not None
            or api_settings.URL_FORMAT_OVERRIDE in request.GET
        ):
            return super().get_url(obj, view_name, request, format)
        cached = getattr(self, "_link_parts", None)
        if cached is None or cached[0] is not request or cached[1] != view_name:
            parts = split_at_placeholder(
                request.build_absolute_uri(reverse(view_name, kwargs={self.lookup_url_kwarg: PLACEHOLDER_ID})))
            if parts is None:
                return super().get_url(obj, view_name, request, format)
            cached = self._link_parts = (request, view_name, *parts)
        return f"{cached[2]}{pk}{cached[3]}"


# ------------------------------------------------------------------ fast rows


_SLOW = object()


class FastRepresentation:
    """A serializer mixin (before the DRF class): ``to_representation`` as DRF's ``Serializer``
    does it, with the same output, but each plain field's value read by ``getattr`` along its
    source instead of DRF's ``get_attribute`` (which asks ``inspect`` whether every value is a
    callable to call, with ``inspect.signature``: ~40 % of a 50-row page's serialisation; here
    that answer is kept per function). Anything else (a mapping, a missing attribute, a callable
    that is not a plain function or method, a field with its own ``get_attribute``: relations,
    ``source="*"``) goes DRF's own way, so the answer is DRF's."""

    def to_representation(self, instance):
        plan = self.__dict__.get("_fast_plan")
        if plan is None:
            plan = self._fast_plan = [
                (field.field_name, field,
                 tuple(field.source_attrs) if type(field).get_attribute is Field.get_attribute and field.source_attrs else None)
                for field in self._readable_fields
            ]
        fast = isinstance(instance, Model)
        ret = {}
        for name, field, attrs in plan:
            attribute = _SLOW
            if fast and attrs is not None:
                attribute = _plain_attribute(instance, attrs)
            if attribute is _SLOW:
                try:
                    attribute = field.get_attribute(instance)
                except SkipField:
                    continue
            check_for_none = attribute.pk if isinstance(attribute, PKOnlyObject) else attribute
            ret[name] = None if check_for_none is None else field.to_representation(attribute)
        return ret


_SIMPLE_CALLABLES = {}  # function -> DRF's is_simple_callable of it (a signature, so one answer per function)


def _plain_attribute(instance, attrs):
    """``instance.a.b…`` when every step is a plain attribute or a method DRF would call
    (``source="__str__"``), else _SLOW."""
    value = instance
    try:
        for i, attr in enumerate(attrs):
            if i and isinstance(value, Mapping):  # DRF reads a mapping by key
                return _SLOW
            value = getattr(value, attr)
            if callable(value):
                func = value.__func__ if isinstance(value, MethodType) else value if isinstance(value, FunctionType) else None
                if func is None:
                    return _SLOW
                simple = _SIMPLE_CALLABLES.get(func)
                if simple is None:
                    simple = _SIMPLE_CALLABLES[func] = is_simple_callable(value)
                if not simple:
                    return _SLOW
                value = value()
    except Exception:  # a missing or failing attribute: DRF decides (default, None, skip or raise)
        return _SLOW
    return value


# ------------------------------------------------------------------ errors


def _messages(detail, prefix=""):
    """Flatten DRF error detail into readable lines: "field: message"."""
    if isinstance(detail, dict):
        lines = []
        for key, value in detail.items():
            label = "" if key in (api_settings.NON_FIELD_ERRORS_KEY, "__all__", "detail") else f"{key}: "
            lines += _messages(value, prefix + label)
        return lines
    if isinstance(detail, (list, tuple)):
        lines = []
        for i, value in enumerate(detail):
            lines += _messages(value, f"{prefix}[{i}] " if isinstance(value, dict) else prefix)
        return lines
    return [f"{prefix}{detail}"]


def _django_validation_detail(exc):
    """A Django ValidationError (as the services raise) as DRF detail: field -> [messages]."""
    if hasattr(exc, "error_dict"):
        return {
            (api_settings.NON_FIELD_ERRORS_KEY if field == "__all__" else field): messages
            for field, messages in exc.message_dict.items()
        }
    return {api_settings.NON_FIELD_ERRORS_KEY: exc.messages}


def absolute_url(context, path):
    """``path`` made absolute with the serializer context's request (as DRF's hyperlinks are)."""
    request = context.get("request")
    return request.build_absolute_uri(path) if request is not None else path


def error_body(message, detail=None):
    return {"error": message, "detail": message if detail is None else detail}


def exception_handler(exc, context):
    """Every API error as ``{"error": "...", "detail": ...}``.

    Services raise Django's ValidationError (keyed by field, with the validator's or the
    parser's message); it becomes a 400 whose ``detail`` keeps those keys and messages.

    An OverflowError is a number in the request too large to store or compare (SQLite refuses
    integers beyond 64 bits in a query: ``?batch=2**70``, an id list in a form): a 400 naming
    that, logged with its traceback so the field that let it through can still be found. It is
    a safety net; a field should refuse such a number itself.
    """
    from rest_framework.views import exception_handler as drf_exception_handler

    if isinstance(exc, OverflowError):
        view = context.get("view")
        logger.warning("A number out of range reached %s: answered 400.", type(view).__name__, exc_info=exc)
        exc = exceptions.ParseError(OUT_OF_RANGE)
    elif isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(_django_validation_detail(exc))
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or None)
    elif isinstance(exc, exceptions.NotAuthenticated) and exc.detail == exceptions.NotAuthenticated.default_detail:
        exc.detail = exceptions.ErrorDetail(f"{exc.detail} {AUTH_HINT}", code=exc.detail.code)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # a bug: Django logs it and answers 500
    data = response.data
    if isinstance(exc, exceptions.ValidationError):
        lines = _messages(data)
        message = "; ".join(lines) if lines else "Invalid input."
        response.data = error_body(message, data)
    else:
        message = data.get("detail") if isinstance(data, dict) and "detail" in data else data
        response.data = error_body(str(message), message)
    return response


class ServiceUnavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The service is unavailable."
    default_code = "unavailable"


def not_found(request, *args, **kwargs):
    """Unknown /api/ URLs answer JSON too, with the right spelling when only a slash is off."""
    path = request.path
    alternative = path[:-1] if path.endswith("/") else path + "/"
    message = f"No API endpoint at {path}."
    try:
        match = resolve(alternative)
    except Resolver404:
        match = None
    if match is not None and match.func is not not_found:
        message += f" Did you mean {alternative}?"
    return JsonResponse(error_body(message), status=status.HTTP_404_NOT_FOUND)
