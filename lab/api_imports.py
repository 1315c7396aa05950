"""Table imports in the REST API, with the pages' role (experimenter, for reads and writes alike):

    GET  /api/imports/                  imports, newest first (?status=, ?dry_run=), paginated
    GET  /api/imports/<id>/             status, counts per outcome, the job and report URLs
    POST /api/imports/                  the import page's upload (multipart: ``table``, ``dry_run``):
                                        the same cheap checks as the form (type, size, header,
                                        a workbook's expanded size; 400 with the reason), then
                                        202 with the queued import and its progress URL; the
                                        worker reads the rows
    GET  /api/imports/<id>/rows/        the report's rows (?outcome=created|merged|conflict|refused,
                                        ?q= in the composition), paginated, in file order

Cancel and retry are /api/jobs/imports/<id>/cancel/ and .../retry/ (core.api_jobs). Registered by
``"lab.api_imports"`` in ``settings.GLASSLOOP_API_MODULES``.
"""

from django.urls import reverse
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response

from core.api import HasRole, absolute_url, error_body
from core.api_jobs import job_links
from core.roles import EXPERIMENTER

from .importing import OUTCOMES, ImportFileError, check_table_upload, outcome_counts, report_rows, start_import
from .models import AlloyImport
from .models_imports import ImportRow


_EXPERIMENTERS = [HasRole(EXPERIMENTER, read_role=EXPERIMENTER)]
ERROR_SCHEMA = inline_serializer(name="ImportError", fields={"detail": serializers.CharField()})


class ImportSerializer(serializers.ModelSerializer):
    status_display = serializers.CharField(source="get_status_display", read_only=True)
    created_by = serializers.CharField(source="created_by.username", read_only=True, default=None)
    outcomes = serializers.SerializerMethodField(help_text="Rows per outcome: created, merged, conflict, refused")
    progress_url = serializers.SerializerMethodField(help_text="The job's status (core.api_jobs), as the page polls it")
    rows_url = serializers.SerializerMethodField(help_text="The report's rows, paginated; ?outcome= and ?q= filter them")
    page_url = serializers.SerializerMethodField(help_text="The import's page")

    class Meta:
        model = AlloyImport
        fields = [
            "id", "original_name", "dry_run", "status", "status_display", "progress", "message", "error", "counts",
            "outcomes", "created_by", "created_at", "started_at", "finished_at", "progress_url", "rows_url", "page_url",
        ]
        read_only_fields = fields
        extra_kwargs = {"counts": {"help_text": "rows, created, merged, conflicts, refused (once it has run)"}}

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_outcomes(self, job) -> dict:
        return {o["outcome"]: o["count"] for o in outcome_counts(job)}

    def get_progress_url(self, job) -> str:
        return job_links(job, self.context)["status_url"]

    def get_rows_url(self, job) -> str:
        return absolute_url(self.context, reverse("import-rows", kwargs={"pk": job.pk}))

    def get_page_url(self, job) -> str:
        return absolute_url(self.context, reverse("lab:import_detail", args=[job.pk]))


class ImportRowSerializer(serializers.ModelSerializer):
    alloy = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True, help_text="Null on a dry run and for refused rows")

    class Meta:
        model = ImportRow
        fields = ["line", "composition", "formula", "outcome", "reason", "alloy", "tg_k", "tx_k", "tl_k"]
        read_only_fields = fields


class ImportUploadSerializer(serializers.Serializer):
    table = serializers.FileField(help_text="CSV or XLSX; columns composition, Tg_K, Tx_K, Tl_K; optional source, doi, …")
    dry_run = serializers.BooleanField(required=False, default=False, help_text="Report only, save nothing")

    def validate_table(self, upload):
        try:
            check_table_upload(upload)
        except ImportFileError as exc:
            raise serializers.ValidationError(str(exc)) from None
        return upload


class ImportFilterSet(filters.FilterSet):
    status = filters.ChoiceFilter(choices=AlloyImport.Status.choices)
    dry_run = filters.BooleanFilter()

    class Meta:
        model = AlloyImport
        fields = ["status", "dry_run"]


OUTCOME = OpenApiParameter("outcome", OpenApiTypes.STR, enum=list(OUTCOMES), description="Only rows with this outcome")
SEARCH = OpenApiParameter("q", OpenApiTypes.STR, description="Only rows whose composition (as written or parsed) contains this")


@extend_schema_view(
    list=extend_schema(summary="Table imports, newest first: status and counts per outcome"),
    retrieve=extend_schema(summary="A table import: status, counts per outcome, the URLs of its progress and rows"),
    create=extend_schema(
        summary="Import a table (the import page's upload): queued for the worker; poll its progress_url",
        request={"multipart/form-data": ImportUploadSerializer},
        responses={202: ImportSerializer, 400: OpenApiResponse(ERROR_SCHEMA, description="The file is refused, with the reason")},
    ),
)
class ImportViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    permission_classes = _EXPERIMENTERS
    filterset_class = ImportFilterSet
    lookup_value_regex = r"[0-9]+"
    ordering_fields = ["created_at", "finished_at", "status"]
    parser_classes = [MultiPartParser, FormParser]

    def get_queryset(self):
        return AlloyImport.objects.select_related("created_by").order_by("-created_at", "-pk")

    def filter_queryset(self, queryset):
        # Filters shape the list; a detail and its rows are found by the import's id alone.
        return super().filter_queryset(queryset) if self.action == "list" else queryset

    def get_serializer_class(self):
        if self.action == "create":
            return ImportUploadSerializer
        return ImportRowSerializer if self.action == "rows" else ImportSerializer

    def create(self, request, *args, **kwargs):
        serializer = ImportUploadSerializer(data=request.data)
        if not serializer.is_valid():
            errors = serializer.errors
            message = " ".join(str(m) for messages in errors.values() for m in messages)
            return Response({**error_body(message), "errors": errors}, status=status.HTTP_400_BAD_REQUEST)
        job = start_import(upload=serializer.validated_data["table"], user=request.user,
                           dry_run=serializer.validated_data["dry_run"])
        return Response(ImportSerializer(job, context=self.get_serializer_context()).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(summary="The rows of an import's report (what each row became and why), in file order",
                   parameters=[OUTCOME, SEARCH], responses={200: ImportRowSerializer(many=True)})
    @action(detail=True, methods=["get"], url_path="rows", url_name="rows", filter_backends=[])
    def rows(self, request, pk=None):
        job = self.get_object()
        outcome = request.query_params.get("outcome", "")
        if outcome and outcome not in OUTCOMES:
            return Response(error_body(f"outcome is one of {', '.join(OUTCOMES)}."), status=status.HTTP_400_BAD_REQUEST)
        q = request.query_params.get("q", "").strip()[:100]
        rows = report_rows(job, outcome=outcome, q=q).order_by("line")
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(ImportRowSerializer(page, many=True).data)


def register(router):
    """Add the import viewset to the API router (core/api_urls.py)."""
    router.register("imports", ImportViewSet, basename="import")
