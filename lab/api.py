"""The lab's REST endpoints: alloys, samples, XRD and DSC measurements, property values.

Thin, like the web views: serializers check the shape of the input, ``lab.services`` make
every change (so a bad file or an implausible temperature is refused with the same message
as on the web pages, and then nothing is saved), ``lab.selectors`` give the reads with their
aggregates computed in the database (a page costs the same queries whatever its length).

Reads need the viewer role; creating alloys, samples and measurements and overriding an
XRD verdict need the experimenter role (as on the web pages).
"""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Prefetch
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from core.api import HasRole, error_body
from core.api_jobs import job_links
from core.roles import EXPERIMENTER
from core.selectors import columns_except
from ml.composition import CompositionError

from . import selectors, services
from .filters import (
    AlloyFilterSet,
    DSCFilterSet,
    PropertyValueFilterSet,
    SampleFilterSet,
    XRDFilterSet,
)
from .models import Alloy, DSCMeasurement, PropertyValue, Sample, XRDMeasurement
from .serializers import (
    AcceptProposalsSerializer,
    ConflictResolutionSerializer,
    CorrectionSerializer,
    DSCCorrectionSerializer,
    PropertyValueCorrectionSerializer,
    RetractSerializer,
    SampleCorrectionSerializer,
    AlloyCreateSerializer,
    AlloyDetailSerializer,
    AlloySerializer,
    DSCCreateSerializer,
    DSCMeasurementSerializer,
    PropertyValueSerializer,
    SampleCreateSerializer,
    SampleSerializer,
    VerdictOverrideSerializer,
    XRDAcceptedSerializer,
    XRDMeasurementSerializer,
    XRDUploadSerializer,
)


def register(router):
    """Add the lab's viewsets to the API router (core/api_urls.py)."""
    router.register("alloys", AlloyViewSet, basename="alloy")
    router.register("samples", SampleViewSet, basename="sample")
    router.register("xrd-measurements", XRDMeasurementViewSet, basename="xrd-measurement")
    router.register("dsc-measurements", DSCMeasurementViewSet, basename="dsc-measurement")
    router.register("property-values", PropertyValueViewSet, basename="property-value")


_INT_PK = r"[0-9]+"
_WRITE = [HasRole(EXPERIMENTER)]


def _is_stale(exc):
    return any(getattr(e, "code", None) == "stale" for e in getattr(exc, "error_dict", {}).get("version", ()))


def _service(call):
    """Run a correction service; a stale version ("changed by X at T, reload") answers 409."""
    try:
        return call()
    except DjangoValidationError as exc:
        if _is_stale(exc):
            message = "; ".join(exc.message_dict["version"])
            return Response(error_body(message, {"version": exc.message_dict["version"]}), status=status.HTTP_409_CONFLICT)
        raise


class CorrectionActions:
    """``POST .../correct/`` (and PATCH on the record) with ``reason`` and ``version``,
    ``POST .../retract/``, ``GET .../history/``: the web pages' corrections (lab.services),
    experimenters write, viewers read."""

    record_type = None
    detail_serializer = None
    correction_serializer = None

    def _respond(self, request, pk, result):
        if isinstance(result, Response):
            return result
        obj = self.get_queryset().get(pk=pk)
        return Response(self.detail_serializer(obj, context={"request": request}).data)

    def _retract(self, obj, user, reason, version):
        raise NotImplementedError

    def _correct(self, obj, user, serializer):
        raise NotImplementedError

    def history(self, request, pk=None):
        obj = self.get_object()
        return Response(CorrectionSerializer(selectors.record_corrections(self.record_type, obj.pk), many=True).data)

    def retract(self, request, pk=None):
        obj = self.get_object()
        serializer = RetractSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        d = serializer.validated_data
        return self._respond(request, obj.pk, _service(lambda: self._retract(obj, request.user, d["reason"], d.get("version"))))

    def correct(self, request, pk=None):
        obj = self.get_object()
        serializer = self.correction_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return self._respond(request, obj.pk, _service(lambda: self._correct(obj, request.user, serializer)))


def _partial_update(self, request, pk=None):
    """PATCH on a record: its correction (``reason`` and ``version`` with the fields to change)."""
    return self.correct(request, pk)


def _fresh(method):
    """A new function object for ``method``: action() and extend_schema() annotate the function
    itself, and each viewset's actions need their own annotations."""

    def wrapper(self, request, pk=None):
        return method(self, request, pk)

    name = method.__name__.lstrip("_")
    wrapper.__name__, wrapper.__qualname__, wrapper.__doc__ = name, name, method.__doc__
    return wrapper


def _correction_actions(name, record_serializer, correction_serializer):
    """history, retract (and correct, partial_update) with their schema, for one kind of record."""
    history = extend_schema(summary=f"The {name}'s corrections and retractions, newest first",
                            responses={200: CorrectionSerializer(many=True)})(
        action(detail=True, methods=["get"], url_path="history", url_name="history", filter_backends=[], pagination_class=None)(
            _fresh(CorrectionActions.history)))
    retract = extend_schema(
        summary=f"Retract the {name} (kept and shown, out of the means and the training data); a reason is required",
        request=RetractSerializer, responses={200: record_serializer, 409: OpenApiResponse(description="Changed since your version")},
    )(action(detail=True, methods=["post"], url_path="retract", url_name="retract")(_fresh(CorrectionActions.retract)))
    if correction_serializer is None:
        return history, retract
    doc = dict(summary=f"Correct the {name}: the fields given change; a reason is required",
               request=correction_serializer,
               responses={200: record_serializer, 409: OpenApiResponse(description="Changed since your version")})
    correct = extend_schema(**doc)(action(detail=True, methods=["post"], url_path="correct", url_name="correct")(
        _fresh(CorrectionActions.correct)))
    return history, retract, correct, extend_schema(**doc)(_fresh(_partial_update))


def _created(serializer_class, instance, request):
    return Response(serializer_class(instance, context={"request": request}).data, status=status.HTTP_201_CREATED)


@extend_schema_view(
    list=extend_schema(summary="Alloys with their mean properties; filter by elements, base element, property ranges"),
    retrieve=extend_schema(summary="An alloy with its property values (with provenance) and samples"),
    create=extend_schema(
        summary="Find or create the alloy of a composition (200 if it existed, 201 if new)",
        request=AlloyCreateSerializer,
        responses={200: AlloySerializer, 201: AlloySerializer},
    ),
)
class AlloyViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    permission_classes = _WRITE
    filterset_class = AlloyFilterSet
    lookup_value_regex = _INT_PK
    ordering_fields = {
        "formula": "formula",
        "name": "name",
        "base_element": "base_element",
        "n_elements": "n_elements",
        "n_samples": "n_samples",
        "n_values": "n_values",
        "tg_mean_k": "tg_mean_k",
        "tx_mean_k": "tx_mean_k",
        "tl_mean_k": "tl_mean_k",
        "trg": "trg",
        "gamma": "gamma",
        "dtx_k": "dtx_k",
        "created_at": "created_at",
    }

    def get_queryset(self):
        qs = selectors.alloys_with_properties().order_by("formula", "pk")
        if self.action == "retrieve":
            qs = qs.prefetch_related(
                Prefetch("property_values", queryset=PropertyValue.objects.select_related("dsc__sample", "reference").order_by("origin", "created_at", "pk")),
                # with their XRDs: the castings are read from them (not a second query of the samples)
                Prefetch("samples", queryset=selectors.samples_with_measurements(Sample.objects.order_by("-created_at", "-pk"))),
            )
        return qs

    def filter_queryset(self, queryset):
        # Filters and ordering shape lists; a detail is found by its id alone.
        return super().filter_queryset(queryset) if self.action == "list" else queryset

    def get_serializer_class(self):
        if self.action == "retrieve":
            return AlloyDetailSerializer
        if self.action == "create":
            return AlloyCreateSerializer
        return AlloySerializer

    def create(self, request, *args, **kwargs):
        serializer = AlloyCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            alloy, created = services.get_or_create_alloy(data["composition"], user=request.user, name=data.get("name", "").strip())
        except CompositionError as exc:
            raise serializers.ValidationError({"composition": [str(exc)]}) from exc
        alloy = self.get_queryset().get(pk=alloy.pk)  # with its aggregates
        body = AlloySerializer(alloy, context=self.get_serializer_context()).data
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


@extend_schema_view(
    list=extend_schema(summary="Samples, newest first"),
    create=extend_schema(
        summary="Log a sample of an alloy (the alloy is created if new)",
        request=SampleCreateSerializer,
        responses={201: SampleSerializer},
    ),
)
class SampleViewSet(CorrectionActions, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    permission_classes = _WRITE
    record_type = "sample"
    detail_serializer = SampleSerializer
    correction_serializer = SampleCorrectionSerializer
    history, retract, correct, partial_update = _correction_actions("sample", SampleSerializer, SampleCorrectionSerializer)

    def _retract(self, obj, user, reason, version):
        return services.retract_sample(sample=obj, user=user, reason=reason, version=version)

    def _correct(self, obj, user, serializer):
        d = serializer.validated_data
        return services.correct_sample(sample=obj, user=user, reason=d["reason"], version=d.get("version"), **serializer.changes())
    filterset_class = SampleFilterSet
    lookup_value_regex = _INT_PK
    ordering_fields = ["created_at", "label", "diameter_mm", "cast_on", "method"]

    def get_queryset(self):
        qs = selectors.samples_with_measurements(Sample.objects.order_by("-created_at", "-pk"))
        # Reads show of the alloy its id and formula only; the services get whole records.
        return selectors.with_alloy_formula_only(qs) if self.action in ("list", "retrieve") else qs

    def get_serializer_class(self):
        return SampleCreateSerializer if self.action == "create" else SampleSerializer

    def create(self, request, *args, **kwargs):
        serializer = SampleCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        composition = data.get("composition") or data["alloy"].formula
        sample = services.log_experiment(
            user=request.user,
            composition=composition,
            label=data["label"],
            alloy_name=data.get("alloy_name") or "",
            method=data["method"],
            diameter_mm=data.get("diameter_mm"),
            cast_on=data.get("cast_on"),
            notes=data.get("notes") or "",
        )
        return _created(SampleSerializer, self.get_queryset().get(pk=sample.pk), request)


@extend_schema_view(
    list=extend_schema(summary="XRD measurements with main peak, FWHM and amorphous verdict"),
    create=extend_schema(
        summary="Upload an XRD pattern of a sample: stored at once, analysed on the worker (202; poll progress_url)",
        description="The request only checks the size, the wavelength and the first 64 KB. The measurement is answered "
                    "with analysis_status \"pending\" and no verdict; analysis_job.status_url (also progress_url) says how far "
                    "the worker is. An unreadable pattern fails its job with the reader's sentence (analysis_state); retry "
                    "with POST analysis_job.retry_url (experimenter).",
        request={"multipart/form-data": XRDUploadSerializer},
        responses={202: XRDAcceptedSerializer},
    ),
)
class XRDMeasurementViewSet(CorrectionActions, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    permission_classes = _WRITE
    record_type = "xrd"
    detail_serializer = XRDMeasurementSerializer
    history, retract = _correction_actions("XRD measurement", XRDMeasurementSerializer, None)

    def _retract(self, obj, user, reason, version):
        return services.retract_xrd(xrd=obj, user=user, reason=reason, version=version)
    filterset_class = XRDFilterSet
    lookup_value_regex = _INT_PK
    parser_classes = [MultiPartParser, FormParser, JSONParser]
    ordering_fields = ["created_at", "measured_on", "fwhm_inv_a", "peak_q_inv_a"]

    def get_queryset(self):
        return XRDMeasurement.objects.select_related("sample__alloy", "operator", "xrd_analysis").order_by("-created_at", "-pk")

    def get_serializer_class(self):
        if self.action == "create":
            return XRDUploadSerializer
        if self.action == "override_verdict":
            return VerdictOverrideSerializer
        return XRDMeasurementSerializer

    def create(self, request, *args, **kwargs):
        serializer = XRDUploadSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        xrd = services.record_xrd(
            data["sample"],
            user=request.user,
            uploaded_file=data["xrd_file"],
            wavelength_a=data["wavelength_a"],
            measured_on=data.get("measured_on"),
        )
        context = self.get_serializer_context()
        xrd = self.get_queryset().get(pk=xrd.pk)
        body = XRDMeasurementSerializer(xrd, context=context).data
        body["progress_url"] = job_links(xrd.analysis_job, context)["status_url"]
        return Response(body, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="Override (or, with verdict \"\", clear) the amorphous verdict; a reason is required",
        request=VerdictOverrideSerializer,
        responses={200: XRDMeasurementSerializer},
    )
    @action(detail=True, methods=["post"], url_path="override-verdict", url_name="override-verdict")
    def override_verdict(self, request, pk=None):
        xrd = self.get_object()
        serializer = VerdictOverrideSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.override_xrd_verdict(xrd, user=request.user, **serializer.validated_data)
        return Response(XRDMeasurementSerializer(self.get_queryset().get(pk=xrd.pk), context={"request": request}).data)

    @extend_schema(
        summary="The pattern file as uploaded",
        responses={(200, "application/octet-stream"): OpenApiTypes.BINARY, 404: OpenApiResponse(description="No file stored")},
    )
    @action(detail=True, methods=["get"], url_path="pattern", url_name="pattern", filter_backends=[], pagination_class=None)
    def pattern(self, request, pk=None):
        xrd = get_object_or_404(self.get_queryset(), pk=pk)
        return _file_response(xrd.pattern)


def _file_response(field_file):
    if not field_file:
        raise Http404("No file stored.")
    try:
        handle = field_file.open("rb")
    except (FileNotFoundError, OSError) as exc:
        raise Http404("The stored file is missing.") from exc
    return FileResponse(handle, as_attachment=True, filename=field_file.name.rsplit("/", 1)[-1])


@extend_schema_view(
    list=extend_schema(summary="DSC measurements: Tg, Tx, Tl (K) with Trg, γ, ΔTx"),
    create=extend_schema(
        summary="Record a DSC scan of a sample (with its curve file, optional); it adds an experimental property value",
        request={"multipart/form-data": DSCCreateSerializer, "application/json": DSCCreateSerializer},
        responses={201: DSCMeasurementSerializer},
    ),
)
class DSCMeasurementViewSet(CorrectionActions, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    permission_classes = _WRITE
    record_type = "dsc"
    detail_serializer = DSCMeasurementSerializer
    correction_serializer = DSCCorrectionSerializer
    history, retract, correct, partial_update = _correction_actions(
        "DSC measurement", DSCMeasurementSerializer, DSCCorrectionSerializer)

    def _retract(self, obj, user, reason, version):
        return services.retract_dsc(dsc=obj, user=user, reason=reason, version=version)

    def _correct(self, obj, user, serializer):
        d = serializer.validated_data
        changes, unit = serializer.changes()
        return services.correct_dsc(dsc=obj, user=user, reason=d["reason"], version=d.get("version"),
                                    units_confirmed=d["confirm_units"], typed_unit=unit, **changes)
    filterset_class = DSCFilterSet
    lookup_value_regex = _INT_PK
    parser_classes = [MultiPartParser, FormParser, JSONParser]
    ordering_fields = ["created_at", "measured_on", "tg_k", "tx_k", "tl_k"]

    def get_queryset(self):
        return DSCMeasurement.objects.select_related("sample__alloy", "operator", "property_value").order_by("-created_at", "-pk")

    def get_serializer_class(self):
        if self.action == "accept_proposals":
            return AcceptProposalsSerializer
        return DSCCreateSerializer if self.action == "create" else DSCMeasurementSerializer

    @extend_schema(
        summary="Accept the trace's proposals (all that differ, or those of `fields`) as a correction whose reason "
                "names the method; each value's provenance then says which method",
        request=AcceptProposalsSerializer,
        responses={200: DSCMeasurementSerializer,
                   400: OpenApiResponse(description="Unknown field, or the values break Tg < Tx < Tl (the reason given)"),
                   409: OpenApiResponse(description="Changed since your version, retracted, or nothing to accept (the reason given)")},
    )
    @action(detail=True, methods=["post"], url_path="accept-proposals", url_name="accept-proposals")
    def accept_proposals(self, request, pk=None):
        dsc = self.get_object()
        serializer = AcceptProposalsSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        d = serializer.validated_data
        try:
            result = _service(lambda: services.accept_dsc_proposals(
                dsc=dsc, user=request.user, fields=d.get("fields") or None, version=d.get("version")))
        except DjangoValidationError as exc:
            codes = {getattr(e, "code", None) for e in exc.error_list} if not hasattr(exc, "error_dict") else set()
            if codes & {"nothing_to_accept", "retracted"}:
                message = " ".join(exc.messages)
                return Response(error_body(message, {"non_field_errors": exc.messages}), status=status.HTTP_409_CONFLICT)
            raise
        return self._respond(request, dsc.pk, result)

    def create(self, request, *args, **kwargs):
        serializer = DSCCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        sample = data.pop("sample")
        dsc = services.record_dsc(
            sample,
            user=request.user,
            tg_k=data.get("tg_k"),
            tx_k=data.get("tx_k"),
            tl_k=data.get("tl_k"),
            heating_rate_k_min=data["heating_rate_k_min"],
            curve_file=data.get("curve_file"),
            curve_unit=data["curve_unit"],
            measured_on=data.get("measured_on"),
        )
        return _created(DSCMeasurementSerializer, self.get_queryset().get(pk=dsc.pk), request)


@extend_schema_view(
    list=extend_schema(summary="Property values (Tg/Tx/Tl) of every source, with provenance; corrected and retracted through their actions"),
)
class PropertyValueViewSet(CorrectionActions, viewsets.ReadOnlyModelViewSet):
    permission_classes = _WRITE
    serializer_class = PropertyValueSerializer
    record_type = "value"
    detail_serializer = PropertyValueSerializer
    correction_serializer = PropertyValueCorrectionSerializer
    # POST .../correct/ only: PATCH on a property value stays refused (tests/api/test_measurements.py
    # holds the list read-only for PUT/PATCH/DELETE).
    history, retract, correct, _ = _correction_actions(
        "property value", PropertyValueSerializer, PropertyValueCorrectionSerializer)

    def _retract(self, obj, user, reason, version):
        return services.retract_property_value(value=obj, user=user, reason=reason, version=version)

    def _correct(self, obj, user, serializer):
        d = serializer.validated_data
        changes, unit = serializer.changes()
        return services.correct_property_value(value=obj, user=user, reason=d["reason"], version=d.get("version"),
                                               units_confirmed=d["confirm_units"], typed_unit=unit, **changes)

    @extend_schema(
        summary="Resolve a conflict: keep this value (retracting those it conflicts with), keep all, or retract it",
        request=ConflictResolutionSerializer,
        responses={200: PropertyValueSerializer, 409: OpenApiResponse(description="Changed since your version")},
    )
    @action(detail=True, methods=["post"], url_path="resolve", url_name="resolve")
    def resolve(self, request, pk=None):
        obj = self.get_object()
        serializer = ConflictResolutionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        d = serializer.validated_data
        return self._respond(request, obj.pk, _service(lambda: services.resolve_conflict(
            value=obj, user=request.user, how=d["how"], reason=d["reason"], version=d.get("version"))))
    filterset_class = PropertyValueFilterSet
    lookup_value_regex = _INT_PK
    ordering_fields = ["created_at", "tg_k", "tx_k", "tl_k", "alloy"]

    def get_queryset(self):
        qs = PropertyValue.objects.select_related("alloy", "dsc__sample", "reference").order_by("alloy__formula", "created_at", "pk")
        if self.action in ("list", "retrieve"):
            # A value shows of its alloy the formula, of its DSC the values' methods and the sample's
            # label (its provenance): the rest (summary columns, fractions, the trace) is not converted.
            qs = qs.defer(*columns_except("alloy", Alloy, "id", "formula"),
                          *columns_except("dsc", DSCMeasurement, "id", "sample", "tg_k", "tx_k", "tl_k", "value_methods"),
                          *columns_except("dsc__sample", Sample, "id", "label"))
        return qs
