"""Background jobs in the REST API: their status, and cancel / retry, with the page's roles.

    GET  /api/jobs/<kind>/<id>/           status, progress, message, error (the page's poll)
    POST /api/jobs/<kind>/<id>/cancel/    as the page's Cancel button
    POST /api/jobs/<kind>/<id>/retry/     as the page's Retry button

``kind`` is a job model's ``job_api_name`` (imports, extraction-batches, pdf-readings,
bulk-approvals, generation-rounds, training-runs); reads need one of its ``job_read_roles``, cancel and retry one of its
``job_control_roles`` — the same attributes the pages check.
"""

from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import exceptions, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from . import jobs
from .api import AUTH_HINT, HasRole, absolute_url
from .roles import VIEWER, has_role

JobStatusSerializer = inline_serializer(
    name="JobStatus",
    fields={
        "id": serializers.IntegerField(),
        "kind": serializers.CharField(),
        "status": serializers.ChoiceField(choices=jobs.JobStatus.choices),
        "status_display": serializers.CharField(),
        "progress": serializers.FloatField(),
        "message": serializers.CharField(),
        "error": serializers.CharField(),
        "attempts": serializers.IntegerField(),
        "cancel_requested": serializers.BooleanField(),
        "finished": serializers.BooleanField(),
        "can_cancel": serializers.BooleanField(),
        "can_retry": serializers.BooleanField(),
        "heartbeat_at": serializers.DateTimeField(allow_null=True),
        "outcome": serializers.CharField(required=False, help_text="What cancel or retry did, in a sentence"),
    },
)
KIND = OpenApiParameter("kind", OpenApiTypes.STR, OpenApiParameter.PATH,
                        description="imports, extraction-batches, pdf-readings, bulk-approvals, generation-rounds or training-runs")


def _model(kind):
    for model in jobs.job_models():
        if model.job_api_name == kind:
            return model
    names = ", ".join(sorted(m.job_api_name for m in jobs.job_models()))
    raise exceptions.NotFound(f"No kind of job {kind!r}; the kinds are {names}.")


def _require(user, roles):
    if not (user and user.is_authenticated):
        raise exceptions.NotAuthenticated(AUTH_HINT)
    if not any(has_role(user, role) for role in roles):
        raise exceptions.PermissionDenied(f"This needs the {' or '.join(roles)} role.")


def _payload(job, kind, **extra):
    return {**jobs.status_payload(job), "kind": kind, **extra}


class _JobView(APIView):
    # Logged in first (401 before anything else), then the viewer role as on every route (403,
    # before the kind is looked up); the further roles depend on the kind of job, so each method
    # checks them itself (_require).
    permission_classes = [HasRole(VIEWER)]


class JobStatusView(_JobView):
    @extend_schema(parameters=[KIND], responses={200: JobStatusSerializer}, summary="A background job's status")
    def get(self, request, kind, pk):
        model = _model(kind)
        _require(request.user, model.job_read_roles)
        return Response(_payload(get_object_or_404(model, pk=pk), kind))


class _JobActionView(_JobView):
    action_name = ""

    @extend_schema(request=None, parameters=[KIND], responses={200: JobStatusSerializer, 403: OpenApiResponse(description="Role")})
    def post(self, request, kind, pk):
        model = _model(kind)
        _require(request.user, model.job_control_roles)
        job = get_object_or_404(model, pk=pk)
        job, text = (jobs.cancel if self.action_name == "cancel" else jobs.retry)(job)
        return Response(_payload(job, kind, outcome=text))


class CancelJobView(_JobActionView):
    """Cancel a queued job now, or ask a running one to stop (at once if its worker is gone)."""

    action_name = "cancel"


class RetryJobView(_JobActionView):
    """Queue a failed, cancelled or dead job again."""

    action_name = "retry"


def job_links(job, context):
    """A job's URLs here: its status (the page's progress poll), cancel and retry."""
    kwargs = {"kind": type(job).job_api_name, "pk": job.pk}
    return {name: absolute_url(context, reverse(route, kwargs=kwargs))
            for name, route in (("status_url", "api-job"), ("cancel_url", "api-job-cancel"), ("retry_url", "api-job-retry"))}


urlpatterns = [
    path("jobs/<str:kind>/<int:pk>/", JobStatusView.as_view(), name="api-job"),
    path("jobs/<str:kind>/<int:pk>/cancel/", CancelJobView.as_view(), name="api-job-cancel"),
    path("jobs/<str:kind>/<int:pk>/retry/", RetryJobView.as_view(), name="api-job-retry"),
]
