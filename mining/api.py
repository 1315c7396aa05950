"""The mining API: literature sources, extraction batches and the review of their records.

    GET        /api/literature-sources/                     sources, newest first (?q=, ?year=, ?doi=, ?has_doi=)
    POST       /api/literature-sources/                     add one: DOI, .txt/.pdf file (multipart) or text;
                                                            201, or 202 for a PDF (read on the worker: reading.status_url)
    GET        /api/literature-sources/<id>/                one, with its text
    GET        /api/extraction-batches/                     batches with status, progress, record counts
    POST       /api/extraction-batches/                     a batch over sources; queued for the worker
                                                            once committed (the answer links its job)
    GET        /api/extraction-batches/<id>/                one, with counts by status and flag, errors per source
    POST       /api/extraction-batches/<id>/rerun/          the page's Re-run (all sources, or {"sources": [...]})
    POST       /api/extraction-batches/<id>/approve-clean/  the page's "Approve all clean records": a job (202,
                                                            /api/jobs/bulk-approvals/<id>/ for progress)
    GET        /api/extracted-records/                      the review queue (?batch=, ?status=, ?flag=,
                                                            ?elements=, ?q=, ?source=), flagged first
    GET/PATCH  /api/extracted-records/<id>/                 one, with snippet, source context, flags and
                                                            history; PATCH = the page's editor (saved,
                                                            re-validated, not approved)
    POST       /api/extracted-records/<id>/approve/         approve (creates the literature property value)
    POST       /api/extracted-records/<id>/reject/          reject, {"reason": "..."} required
    POST       /api/extracted-records/<id>/reopen/          a rejected record back to review (the page's "Back to review")

Cancel and retry of a batch are the job API's (core.api_jobs):
``/api/jobs/extraction-batches/<id>/`` (progress), ``…/cancel/``, ``…/retry/``; each batch
links them.

Thin like the pages: the pages' forms (``mining.forms``, through ``mining.serializers``)
check the input with the pages' messages, ``mining.services`` make every change and
``mining.selectors`` give the reads. Viewers read; writes need the reviewer role, as on the
mining pages.
"""

from django.db.models import Count, Q
from django.db.models.functions import Length
from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view, inline_serializer
from rest_framework import exceptions, mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from core.api import HasRole, error_body
from core.api_jobs import job_links
from core.roles import REVIEWER

from . import selectors, services
from .filters import BatchFilterSet, RecordFilterSet, SourceFilterSet
from .models import ExtractedRecord
from .serializers import (
    BatchActionSerializer,
    BatchCreateSerializer,
    BatchDetailSerializer,
    BatchSerializer,
    BulkApprovalSerializer,
    BulkApproveSerializer,
    RecordDetailSerializer,
    RecordEditSerializer,
    RecordSerializer,
    RejectSerializer,
    RerunSerializer,
    SourceCreateSerializer,
    SourceDetailSerializer,
    SourceSerializer,
    job_payload,
)


def register(router):
    """Add the mining viewsets to the API router (core/api_urls.py)."""
    router.register("literature-sources", SourceViewSet, basename="literature-source")
    router.register("extraction-batches", BatchViewSet, basename="extraction-batch")
    router.register("extracted-records", RecordViewSet, basename="extracted-record")


_INT_PK = r"[0-9]+"
_REVIEWERS = [HasRole(REVIEWER)]

ERROR = inline_serializer(
    "MiningError",
    fields={"error": serializers.CharField(help_text="One readable sentence"),
            "detail": serializers.JSONField(help_text="Field → messages, or the message")},
)
SOURCE_EXISTS = inline_serializer(
    "SourceExists",
    fields={"error": serializers.CharField(), "detail": serializers.CharField(),
            "source": serializers.IntegerField(help_text="The source already stored"),
            "source_url": serializers.CharField()},
)


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The record was already reviewed."
    default_code = "conflict"


def refused(exc):
    """A service's refusal as an API error: already reviewed → 409, anything else → 400."""
    if isinstance(exc, services.ReviewConflict):
        return Conflict(str(exc))
    return serializers.ValidationError({"non_field_errors": [str(exc)]})


class _ListFiltersOnly:
    def filter_queryset(self, queryset):
        # Filters and ordering shape lists; a detail (and an action on it) is found by its id alone.
        return super().filter_queryset(queryset) if self.action == "list" else queryset


# ---------------------------------------------------------------- sources


@extend_schema_view(
    list=extend_schema(summary="Literature sources (papers), newest first"),
    retrieve=extend_schema(summary="A literature source with its plain text"),
    create=extend_schema(
        summary="Add a source: a DOI, a .txt/.pdf file and/or the text (the source page's form and checks)",
        request={"multipart/form-data": SourceCreateSerializer, "application/json": SourceCreateSerializer},
        responses={
            201: SourceDetailSerializer,
            202: OpenApiResponse(SourceDetailSerializer, description="A PDF: stored, its text read on the worker (poll reading.status_url)"),
            400: OpenApiResponse(ERROR),
            409: OpenApiResponse(SOURCE_EXISTS, description="The DOI or file is already stored"),
        },
    ),
)
class SourceViewSet(_ListFiltersOnly, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    permission_classes = _REVIEWERS
    filterset_class = SourceFilterSet
    lookup_value_regex = _INT_PK
    parser_classes = [MultiPartParser, FormParser, JSONParser]
    ordering_fields = ["created_at", "year", "title", "doi", "n_records"]

    def get_queryset(self):
        qs = selectors.source_list().select_related("created_by", "pdf_reading").annotate(text_chars=Length("text")).order_by("-created_at", "-pk")
        return qs if self.action == "retrieve" else qs.defer("text")

    def get_serializer_class(self):
        if self.action == "create":
            return SourceCreateSerializer
        return SourceDetailSerializer if self.action == "retrieve" else SourceSerializer

    def create(self, request, *args, **kwargs):
        serializer = SourceCreateSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        d = serializer.validated_data
        try:
            source = services.create_source(
                doi=d["doi"], upload=d.get("file"), text=d.get("text") or "", title=d["title"], authors=d["authors"],
                year=d["year"], journal=d["journal"], url=d["url"], user=request.user,
            )
        except services.SourceExists as exc:
            url = request.build_absolute_uri(reverse("literature-source-detail", args=[exc.source.pk]))
            return Response({**error_body(str(exc)), "source": exc.source.pk, "source_url": url}, status=status.HTTP_409_CONFLICT)
        except services.MiningError as exc:
            raise refused(exc) from exc
        source = self.get_queryset().get(pk=source.pk)
        body = SourceDetailSerializer(source, context=self.get_serializer_context()).data
        # A PDF is read on the worker: 202, and body["reading"]["status_url"] says how far it is.
        code = status.HTTP_202_ACCEPTED if source.reading is not None else status.HTTP_201_CREATED
        return Response(body, status=code)


# ---------------------------------------------------------------- batches


@extend_schema_view(
    list=extend_schema(summary="Extraction batches, newest first, with status, progress and record counts"),
    retrieve=extend_schema(summary="A batch: status and progress, records by status and flag, errors per source"),
    create=extend_schema(
        summary="Create a batch over sources; it is queued for the worker once committed (poll job.status_url)",
        request=BatchCreateSerializer,
        responses={201: BatchActionSerializer, 400: OpenApiResponse(ERROR)},
    ),
)
class BatchViewSet(_ListFiltersOnly, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    permission_classes = _REVIEWERS
    filterset_class = BatchFilterSet
    lookup_value_regex = _INT_PK
    ordering_fields = ["created_at", "name", "status", "finished_at", "n_records", "n_pending"]

    def get_queryset(self):
        pending, approved, rejected = (ExtractedRecord.Status.PENDING, ExtractedRecord.Status.APPROVED, ExtractedRecord.Status.REJECTED)
        return selectors.batch_list().select_related("created_by").annotate(
            n_pending=Count("records", filter=Q(records__status=pending)),
            n_approved=Count("records", filter=Q(records__status=approved)),
            n_rejected=Count("records", filter=Q(records__status=rejected)),
        ).order_by("-created_at", "-pk")

    def get_serializer_class(self):
        if self.action == "create":
            return BatchCreateSerializer
        if self.action == "rerun":
            return RerunSerializer
        return BatchDetailSerializer if self.action == "retrieve" else BatchSerializer

    def _answer(self, batch_id, outcome, code=status.HTTP_200_OK):
        batch = self.get_queryset().get(pk=batch_id)
        if batch.queue_unavailable:  # as the batch pages say it: saved, stays queued, and why
            outcome = f"Batch {batch.name} is saved and stays queued. {batch.error}"
        context = self.get_serializer_context()
        # progress_url at the top, as a training run's and a generation round's answers have it
        body = {"batch": BatchDetailSerializer(batch, context=context).data, "outcome": outcome,
                "job": job_payload(batch), "progress_url": job_links(batch, context)["status_url"]}
        return Response(body, status=code)

    def create(self, request, *args, **kwargs):
        serializer = BatchCreateSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        d = serializer.validated_data
        try:
            batch = services.create_batch(name=d["name"], sources=d["sources"], extractor=d["extractor"], user=request.user)
        except services.MiningError as exc:
            raise refused(exc) from exc
        # The message is sent once the request's transaction commits: the job (status_url) says how it goes.
        return self._answer(batch.pk, f"Batch {batch.name} queued.", status.HTTP_201_CREATED)

    @extend_schema(
        summary="Re-run the batch (the page's Re-run): all its sources, or only those given; reviewed records are kept",
        request=RerunSerializer, responses={200: BatchActionSerializer, 400: OpenApiResponse(ERROR)},
    )
    @action(detail=True, methods=["post"], url_path="rerun", url_name="rerun")
    def rerun(self, request, pk=None):
        batch = self.get_object()
        serializer = RerunSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            services.rerun_batch(batch.pk, source_ids=serializer.validated_data.get("sources") or None, user=request.user)
        except services.MiningError as exc:
            raise refused(exc) from exc
        return self._answer(batch.pk, f"Batch {batch.name} queued again.")

    @extend_schema(
        summary="Approve every pending record that is complete and clean (the page's \"Approve all clean records\"), as a job",
        description="Queued for the worker (202): it re-validates first; a record with any flag, a missing Tg/Tx/Tl or an "
                    "unparsed composition is left for a person. Poll bulk_approval.job.status_url; once done, "
                    "bulk_approval has approved, skipped and skipped_reasons. A bulk approval of this batch already "
                    "queued or running is returned (200) instead of a second one; only pending records are approved, "
                    "so a re-run approves nothing twice.",
        request=None, responses={202: BulkApproveSerializer, 200: BulkApproveSerializer, 400: OpenApiResponse(ERROR)},
    )
    @action(detail=True, methods=["post"], url_path="approve-clean", url_name="approve-clean")
    def approve_clean(self, request, pk=None):
        batch = self.get_object()
        try:
            job, created = services.request_bulk_approval(batch.pk, user=request.user)
        except services.MiningError as exc:
            raise refused(exc) from exc
        job.refresh_from_db()
        if job.queue_unavailable:
            outcome = f"The approval is saved and stays queued. {job.error}"
        else:
            outcome = "Approval of the clean records queued." if created else "An approval of this batch is already under way."
        batch = self.get_queryset().get(pk=batch.pk)
        context = self.get_serializer_context()
        return Response(
            {"bulk_approval": BulkApprovalSerializer(job, context=context).data, "outcome": outcome,
             "batch": BatchDetailSerializer(batch, context=context).data},
            status=status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK,
        )


# ---------------------------------------------------------------- records


@extend_schema_view(
    list=extend_schema(summary="Extracted records (the review queue): flagged first, then in batch order"),
    retrieve=extend_schema(summary="A record: values in K, as written, snippet and the source around it, flags, history"),
    partial_update=extend_schema(
        summary="Edit a pending record (the record page's editor): saved and re-validated, not approved",
        description="The fields not sent keep their values. Tg, Tx and Tl are in temperature_unit (default K). "
                    "Values out of order or range are saved and flagged (as on the page); approval refuses them.",
        request=RecordEditSerializer,
        responses={200: RecordDetailSerializer, 400: OpenApiResponse(ERROR), 409: OpenApiResponse(ERROR, description="Already reviewed")},
    ),
)
class RecordViewSet(_ListFiltersOnly, mixins.UpdateModelMixin, viewsets.ReadOnlyModelViewSet):
    permission_classes = _REVIEWERS
    filterset_class = RecordFilterSet
    lookup_value_regex = _INT_PK
    http_method_names = ["get", "post", "patch", "head", "options"]
    ordering_fields = ["id", "created_at", "flag_count", "status", "composition_formula", "tg_k", "tx_k", "tl_k", "reviewed_at"]

    def get_queryset(self):
        if self.action == "list":
            return selectors.review_queue(status=None)
        return ExtractedRecord.objects.select_related("batch", "source", "reviewer", "alloy").defer("source__text")

    def get_serializer_class(self):
        if self.action == "partial_update":
            return RecordEditSerializer
        if self.action == "reject":
            return RejectSerializer
        return RecordSerializer if self.action == "list" else RecordDetailSerializer

    def paginate_queryset(self, queryset):
        page = super().paginate_queryset(queryset)
        # The queue page's snippet context, each source's text read once per page.
        return None if page is None else selectors.attach_source_context(page)

    def _detail(self, pk):
        record = self.get_queryset().get(pk=pk)
        selectors.attach_source_context([record], chars=1500)  # as the record page
        return Response(RecordDetailSerializer(record, context=self.get_serializer_context()).data)

    def retrieve(self, request, *args, **kwargs):
        return self._detail(self.get_object().pk)

    def update(self, request, *args, **kwargs):
        if not kwargs.get("partial"):
            raise exceptions.MethodNotAllowed(request.method)
        record = self.get_object()
        serializer = RecordEditSerializer(record, data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        try:
            services.update_record(record_id=record.pk, reviewer=request.user, edits=serializer.validated_data)
        except services.MiningError as exc:
            raise refused(exc) from exc
        return self._detail(record.pk)

    @extend_schema(
        summary="Approve a pending record: its alloy is created or linked and a literature property value stored",
        description="Refused (400, saying why) when its composition is not parsed, it holds no value, or Tg/Tx/Tl "
                    "break the rules; edit it first (PATCH), as the page's Save then Approve.",
        request=None,
        responses={200: RecordDetailSerializer, 400: OpenApiResponse(ERROR), 409: OpenApiResponse(ERROR, description="Already reviewed")},
    )
    @action(detail=True, methods=["post"], url_path="approve", url_name="approve")
    def approve(self, request, pk=None):
        record = self.get_object()
        try:
            services.approve_record(record_id=record.pk, reviewer=request.user)
        except services.MiningError as exc:
            raise refused(exc) from exc
        return self._detail(record.pk)

    @extend_schema(
        summary="Put a rejected record back in the review queue (the record page's \"Back to review\")",
        description="Pending again and re-validated; the records of its alloy are compared with it again. "
                    "An approved or pending record: 400.",
        request=None,
        responses={200: RecordDetailSerializer, 400: OpenApiResponse(ERROR)},
    )
    @action(detail=True, methods=["post"], url_path="reopen", url_name="reopen")
    def reopen(self, request, pk=None):
        record = self.get_object()
        try:
            services.reopen_record(record.pk, request.user)
        except services.MiningError as exc:
            raise refused(exc) from exc
        return self._detail(record.pk)

    @extend_schema(
        summary="Reject a pending record, saying why",
        request=RejectSerializer,
        responses={200: RecordDetailSerializer, 400: OpenApiResponse(ERROR), 409: OpenApiResponse(ERROR, description="Already reviewed")},
    )
    @action(detail=True, methods=["post"], url_path="reject", url_name="reject")
    def reject(self, request, pk=None):
        record = self.get_object()
        serializer = RejectSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            services.reject_record(record_id=record.pk, reviewer=request.user, reason=serializer.validated_data["reason"])
        except services.MiningError as exc:
            raise refused(exc) from exc
        return self._detail(record.pk)
