"""The lab's REST endpoints: alloys, samples, XRD and DSC measurements, property values.

Thin, like the web views: serializers check the shape of the input, ``lab.services`` make
every change (so a bad file or an implausible temperature is refused with the same message
as on the web pages, and then nothing is saved), ``lab.selectors`` give the reads with their
aggregates computed in the database (a page costs the same queries whatever its length).

Reads need the viewer role; creating alloys, samples and measurements and overriding an
XRD verdict need the experimenter role (as on the web pages).
"""

from django import forms
from django.db.models import Prefetch, Q
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from core.api import HasRole
from ml.composition import ELEMENTS, CompositionError

from . import selectors, services
from .models import (
    CU_KALPHA_WAVELENGTH_A,
    Alloy,
    DSCMeasurement,
    PropertyValue,
    Reference,
    Sample,
    TemperatureUnit,
    XRDMeasurement,
)
from core.roles import EXPERIMENTER

_ELEMENT_BY_FOLD = {el.lower(): el for el in ELEMENTS}


def register(router):
    """Add the lab's viewsets to the API router (core/api_urls.py)."""
    router.register("alloys", AlloyViewSet, basename="alloy")
    router.register("samples", SampleViewSet, basename="sample")
    router.register("xrd-measurements", XRDMeasurementViewSet, basename="xrd-measurement")
    router.register("dsc-measurements", DSCMeasurementViewSet, basename="dsc-measurement")
    router.register("property-values", PropertyValueViewSet, basename="property-value")


# ====================================================================== serializers


class ReferenceSerializer(serializers.ModelSerializer):
    text = serializers.CharField(source="__str__", read_only=True)

    class Meta:
        model = Reference
        fields = ["id", "doi", "authors", "year", "title", "journal", "label", "text"]


class PropertyValueSerializer(serializers.ModelSerializer):
    """Tg/Tx/Tl (K) of an alloy from one source, with where it came from."""

    formula = serializers.CharField(source="alloy.formula", read_only=True)
    provenance = serializers.CharField(read_only=True, help_text="The source in words: a DSC scan here or a reference")
    sample = serializers.SerializerMethodField(help_text="The sample whose DSC scan gave an experimental value")
    reference = ReferenceSerializer(read_only=True)
    trg = serializers.FloatField(source="reduced_glass_transition", read_only=True, allow_null=True, help_text="Tg/Tl")
    gamma = serializers.FloatField(read_only=True, allow_null=True, help_text="Tx/(Tg+Tl)")
    dtx_k = serializers.FloatField(source="supercooled_liquid_region_k", read_only=True, allow_null=True, help_text="Tx−Tg (K)")

    class Meta:
        model = PropertyValue
        fields = [
            "id", "alloy", "formula", "origin", "tg_k", "tx_k", "tl_k", "trg", "gamma", "dtx_k",
            "heating_rate_k_min", "conflict", "provenance", "dsc", "sample", "reference", "source_label",
            "note", "created_at",
        ]  # fmt: skip

    @extend_schema_field(
        {"type": "object", "nullable": True, "properties": {"id": {"type": "integer"}, "label": {"type": "string"}}}
    )
    def get_sample(self, value):
        if value.dsc_id is None:
            return None
        return {"id": value.dsc.sample_id, "label": value.dsc.sample.label}


class AlloySerializer(serializers.ModelSerializer):
    """An alloy with the mean of its property values over all sources (K) and derived criteria."""

    url = serializers.HyperlinkedIdentityField(view_name="alloy-detail")
    elements = serializers.ListField(child=serializers.CharField(), read_only=True, help_text="By descending fraction")
    atomic_percent = serializers.SerializerMethodField(help_text="Element → at.%, by descending fraction")
    n_samples = serializers.IntegerField(read_only=True)
    n_values = serializers.IntegerField(read_only=True, help_text="Property values (all sources)")
    tg_mean_k = serializers.FloatField(read_only=True, allow_null=True)
    tx_mean_k = serializers.FloatField(read_only=True, allow_null=True)
    tl_mean_k = serializers.FloatField(read_only=True, allow_null=True)
    trg = serializers.FloatField(read_only=True, allow_null=True, help_text="Tg/Tl of the means")
    gamma = serializers.FloatField(read_only=True, allow_null=True, help_text="Tx/(Tg+Tl) of the means")
    dtx_k = serializers.FloatField(read_only=True, allow_null=True, help_text="Tx−Tg of the means (K)")
    has_conflict = serializers.BooleanField(read_only=True, help_text="Some sources disagree by more than 10 K")

    class Meta:
        model = Alloy
        fields = [
            "id", "url", "formula", "composition_key", "name", "base_element", "n_elements", "elements",
            "atomic_percent", "n_samples", "n_values", "tg_mean_k", "tx_mean_k", "tl_mean_k", "trg", "gamma",
            "dtx_k", "has_conflict", "created_at",
        ]  # fmt: skip

    @extend_schema_field({"type": "object", "additionalProperties": {"type": "number"}})
    def get_atomic_percent(self, alloy):
        return {el: round(pct, 2) for el, pct in selectors.composition_table(alloy)}


class SampleBriefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Sample
        fields = ["id", "label", "method", "diameter_mm", "cast_on"]


class AlloyDetailSerializer(AlloySerializer):
    property_values = PropertyValueSerializer(many=True, read_only=True)
    samples = SampleBriefSerializer(many=True, read_only=True)

    class Meta(AlloySerializer.Meta):
        fields = AlloySerializer.Meta.fields + ["property_values", "samples"]


class AlloyCreateSerializer(serializers.Serializer):
    composition = serializers.CharField(
        max_length=255, help_text="Atomic per cent or fractions, groups allowed: Zr42Ti14Cu12Ni10Be22, (Cu50Zr40Al10)95Si5"
    )
    name = serializers.CharField(max_length=120, required=False, allow_blank=True, default="", help_text="e.g. Vitreloy 1")


class SampleSerializer(serializers.ModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name="sample-detail")
    formula = serializers.CharField(source="alloy.formula", read_only=True)
    operator = serializers.SlugRelatedField(slug_field="username", read_only=True)
    xrd_measurements = serializers.SerializerMethodField(help_text="XRD ids, newest first")
    dsc_measurements = serializers.SerializerMethodField(help_text="DSC ids, newest first")
    latest_verdict = serializers.SerializerMethodField(help_text="Verdict of the newest XRD (amorphous/crystalline)")

    class Meta:
        model = Sample
        fields = [
            "id", "url", "label", "alloy", "formula", "method", "diameter_mm", "cast_on", "operator", "notes",
            "xrd_measurements", "dsc_measurements", "latest_verdict", "created_at",
        ]  # fmt: skip

    @extend_schema_field({"type": "array", "items": {"type": "integer"}})
    def get_xrd_measurements(self, sample):
        return [x.pk for x in sample.xrds]

    @extend_schema_field({"type": "array", "items": {"type": "integer"}})
    def get_dsc_measurements(self, sample):
        return [d.pk for d in sample.dscs]

    @extend_schema_field({"type": "string", "nullable": True, "enum": [*XRDMeasurement.Verdict.values, None]})
    def get_latest_verdict(self, sample):
        return sample.xrds[0].verdict if sample.xrds else None


class SampleCreateSerializer(serializers.Serializer):
    """A new sample of an alloy given by its composition (created if new) or its id."""

    composition = serializers.CharField(max_length=255, required=False, help_text="Give this or alloy")
    alloy = serializers.PrimaryKeyRelatedField(queryset=Alloy.objects.all(), required=False, help_text="Give this or composition")
    alloy_name = serializers.CharField(max_length=120, required=False, allow_blank=True, default="")
    label = serializers.CharField(max_length=64, help_text="Unique; as written on the sample")
    method = serializers.ChoiceField(choices=Sample.Method.choices, default=Sample.Method.ARC_SUCTION)
    diameter_mm = serializers.FloatField(required=False, allow_null=True, help_text="0–100 mm")
    cast_on = serializers.DateField(required=False, allow_null=True)
    notes = serializers.CharField(required=False, allow_blank=True, default="")

    def validate(self, attrs):
        if not attrs.get("composition") and not attrs.get("alloy"):
            raise serializers.ValidationError({"composition": "Give the composition or the id of an existing alloy."})
        if attrs.get("composition") and attrs.get("alloy"):
            raise serializers.ValidationError({"alloy": "Give the composition or the alloy, not both."})
        return attrs


class XRDMeasurementSerializer(serializers.ModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name="xrd-measurement-detail")
    sample_label = serializers.CharField(source="sample.label", read_only=True)
    alloy = serializers.IntegerField(source="sample.alloy_id", read_only=True)
    formula = serializers.CharField(source="sample.alloy.formula", read_only=True)
    verdict = serializers.ChoiceField(choices=XRDMeasurement.Verdict.choices, read_only=True, help_text="The override if any, else the computed verdict")
    is_amorphous = serializers.BooleanField(read_only=True)
    operator = serializers.SlugRelatedField(slug_field="username", read_only=True)
    pattern_url = serializers.HyperlinkedIdentityField(view_name="xrd-measurement-pattern", help_text="The pattern file as uploaded")

    class Meta:
        model = XRDMeasurement
        fields = [
            "id", "url", "sample", "sample_label", "alloy", "formula", "wavelength_a", "peak_q_inv_a",
            "peak_two_theta_deg", "fwhm_inv_a", "computed_verdict", "verdict_reason", "override_verdict",
            "override_reason", "verdict", "is_amorphous", "analysis", "measured_on", "operator", "pattern_url",
            "created_at",
        ]  # fmt: skip
        read_only_fields = fields


class XRDUploadSerializer(serializers.Serializer):
    sample = serializers.PrimaryKeyRelatedField(queryset=Sample.objects.all())
    # Oversized and unreadable files are refused by the service, with the web form's message.
    xrd_file = serializers.FileField(help_text="Two columns: 2θ (°), intensity. .xy, .csv or .txt")
    wavelength_a = serializers.FloatField(default=CU_KALPHA_WAVELENGTH_A, help_text="Å; Cu Kα is 1.5406")
    measured_on = serializers.DateField(required=False, allow_null=True)


class VerdictOverrideSerializer(serializers.Serializer):
    verdict = serializers.ChoiceField(
        choices=[("", "Computed (clear the override)"), *XRDMeasurement.Verdict.choices],
        allow_blank=True,
        help_text='"" clears the override',
    )
    reason = serializers.CharField(allow_blank=True, help_text="Required: why the verdict is overridden")


class DSCMeasurementSerializer(serializers.ModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name="dsc-measurement-detail")
    sample_label = serializers.CharField(source="sample.label", read_only=True)
    alloy = serializers.IntegerField(source="sample.alloy_id", read_only=True)
    formula = serializers.CharField(source="sample.alloy.formula", read_only=True)
    trg = serializers.FloatField(source="reduced_glass_transition", read_only=True, allow_null=True, help_text="Tg/Tl")
    gamma = serializers.FloatField(read_only=True, allow_null=True, help_text="Tx/(Tg+Tl)")
    dtx_k = serializers.FloatField(source="supercooled_liquid_region_k", read_only=True, allow_null=True, help_text="Tx−Tg (K)")
    has_curve = serializers.SerializerMethodField()
    property_value = serializers.PrimaryKeyRelatedField(read_only=True, help_text="The experimental property value it gave")
    operator = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = DSCMeasurement
        fields = [
            "id", "url", "sample", "sample_label", "alloy", "formula", "tg_k", "tx_k", "tl_k", "trg", "gamma",
            "dtx_k", "heating_rate_k_min", "curve_temperature_unit", "has_curve", "property_value", "measured_on",
            "operator", "created_at",
        ]  # fmt: skip
        read_only_fields = fields

    def get_has_curve(self, dsc) -> bool:
        return bool(dsc.curve)


class DSCCreateSerializer(serializers.Serializer):
    sample = serializers.PrimaryKeyRelatedField(queryset=Sample.objects.all())
    # Tg and Tx are checked by the service (Tg < Tx < Tl, 200–2500 K), with the web form's messages.
    tg_k = serializers.FloatField(required=False, allow_null=True, help_text="K; required")
    tx_k = serializers.FloatField(required=False, allow_null=True, help_text="K; required")
    tl_k = serializers.FloatField(required=False, allow_null=True, help_text="K")
    heating_rate_k_min = serializers.FloatField(default=20.0)
    curve_file = serializers.FileField(required=False, allow_null=True, help_text="Two columns: temperature, heat flow")
    curve_unit = serializers.ChoiceField(choices=TemperatureUnit.choices, default=TemperatureUnit.KELVIN, help_text="Unit of the curve's temperature column")
    measured_on = serializers.DateField(required=False, allow_null=True)


# ====================================================================== filters


class FloatFilter(filters.NumberFilter):
    field_class = forms.FloatField  # finite floats (NumberFilter takes Decimals)


class ElementsField(forms.CharField):
    """Comma-separated element symbols (case-insensitive) → a tuple of symbols."""

    def clean(self, value):
        value = super().clean(value)
        if not value:
            return ()
        symbols = []
        for token in value.replace(" ", "").split(","):
            if not token:
                continue
            symbol = _ELEMENT_BY_FOLD.get(token.lower())
            if symbol is None:
                raise forms.ValidationError(f"{token!r} is not an element symbol.")
            symbols.append(symbol)
        return tuple(dict.fromkeys(symbols))


class ElementsFilter(filters.CharFilter):
    field_class = ElementsField


class AlloyFilterSet(filters.FilterSet):
    """The alloy list's filters; they are applied by ``lab.selectors.alloy_list`` (the web page's
    search), so both always agree. Property ranges apply to the mean over all sources."""

    elements = ElementsFilter(method="by_selector", help_text="Comma-separated symbols; the alloy contains ALL of them: Zr,Cu")
    base_element = filters.CharFilter(method="by_selector", help_text="The element with the largest fraction: Zr")
    q = filters.CharFilter(method="by_selector", help_text="Text in the formula or the name")
    tg_min = FloatFilter(method="by_selector", help_text="Mean Tg ≥ (K)")
    tg_max = FloatFilter(method="by_selector", help_text="Mean Tg ≤ (K)")
    tx_min = FloatFilter(method="by_selector", help_text="Mean Tx ≥ (K)")
    tx_max = FloatFilter(method="by_selector", help_text="Mean Tx ≤ (K)")
    tl_min = FloatFilter(method="by_selector", help_text="Mean Tl ≥ (K)")
    tl_max = FloatFilter(method="by_selector", help_text="Mean Tl ≤ (K)")
    trg_min = FloatFilter(method="by_selector", help_text="Trg = Tg/Tl ≥")
    gamma_min = FloatFilter(method="by_selector", help_text="γ = Tx/(Tg+Tl) ≥")

    class Meta:
        model = Alloy
        fields = []

    def by_selector(self, queryset, name, value):
        return queryset  # all of them at once in filter_queryset

    def filter_queryset(self, queryset):
        data = self.form.cleaned_data
        wanted = selectors.AlloyFilters(
            elements=data.get("elements") or (),
            base_element=(data.get("base_element") or "").strip(),
            text=(data.get("q") or "").strip(),
            **{name: data.get(name) for name in ("tg_min", "tg_max", "tx_min", "tx_max", "tl_min", "tl_max", "trg_min", "gamma_min")},
        )
        if wanted == selectors.AlloyFilters():
            return queryset
        # The view lists selectors.alloys_with_properties(); alloy_list filters exactly those
        # (the view applies filters to lists only, see AlloyViewSet.filter_queryset).
        return selectors.alloy_list(wanted)


class SampleFilterSet(filters.FilterSet):
    q = filters.CharFilter(method="by_text", help_text="Text in the label, the formula or the alloy's name")

    class Meta:
        model = Sample
        fields = ["alloy", "method"]

    def by_text(self, queryset, name, value):
        return queryset.filter(pk__in=selectors.sample_list(text=value).values("pk")) if value.strip() else queryset


class XRDFilterSet(filters.FilterSet):
    alloy = filters.NumberFilter(field_name="sample__alloy", help_text="Alloy id")
    verdict = filters.ChoiceFilter(choices=XRDMeasurement.Verdict.choices, method="by_verdict", help_text="Override if any, else computed")

    class Meta:
        model = XRDMeasurement
        fields = ["sample", "computed_verdict"]

    def by_verdict(self, queryset, name, value):
        return queryset.filter(Q(override_verdict=value) | Q(override_verdict="", computed_verdict=value))


class DSCFilterSet(filters.FilterSet):
    alloy = filters.NumberFilter(field_name="sample__alloy", help_text="Alloy id")
    tg_min = FloatFilter(field_name="tg_k", lookup_expr="gte")
    tg_max = FloatFilter(field_name="tg_k", lookup_expr="lte")

    class Meta:
        model = DSCMeasurement
        fields = ["sample"]


class PropertyValueFilterSet(filters.FilterSet):
    tg_min = FloatFilter(field_name="tg_k", lookup_expr="gte")
    tg_max = FloatFilter(field_name="tg_k", lookup_expr="lte")
    tx_min = FloatFilter(field_name="tx_k", lookup_expr="gte")
    tx_max = FloatFilter(field_name="tx_k", lookup_expr="lte")
    tl_min = FloatFilter(field_name="tl_k", lookup_expr="gte")
    tl_max = FloatFilter(field_name="tl_k", lookup_expr="lte")

    class Meta:
        model = PropertyValue
        fields = ["alloy", "origin", "conflict", "reference"]


# ====================================================================== viewsets

_INT_PK = r"[0-9]+"
_WRITE = [HasRole(EXPERIMENTER)]


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
                Prefetch("samples", queryset=Sample.objects.order_by("-created_at", "-pk")),
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
class SampleViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    permission_classes = _WRITE
    filterset_class = SampleFilterSet
    lookup_value_regex = _INT_PK
    ordering_fields = ["created_at", "label", "diameter_mm", "cast_on", "method"]

    def get_queryset(self):
        return selectors.samples_with_measurements(Sample.objects.order_by("-created_at", "-pk"))

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
        summary="Upload an XRD pattern of a sample; it is analysed and the verdict computed",
        request={"multipart/form-data": XRDUploadSerializer},
        responses={201: XRDMeasurementSerializer},
    ),
)
class XRDMeasurementViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    permission_classes = _WRITE
    filterset_class = XRDFilterSet
    lookup_value_regex = _INT_PK
    parser_classes = [MultiPartParser, FormParser, JSONParser]
    ordering_fields = ["created_at", "measured_on", "fwhm_inv_a", "peak_q_inv_a"]

    def get_queryset(self):
        return XRDMeasurement.objects.select_related("sample__alloy", "operator").order_by("-created_at", "-pk")

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
        return _created(XRDMeasurementSerializer, self.get_queryset().get(pk=xrd.pk), request)

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
class DSCMeasurementViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    permission_classes = _WRITE
    filterset_class = DSCFilterSet
    lookup_value_regex = _INT_PK
    parser_classes = [MultiPartParser, FormParser, JSONParser]
    ordering_fields = ["created_at", "measured_on", "tg_k", "tx_k", "tl_k"]

    def get_queryset(self):
        return DSCMeasurement.objects.select_related("sample__alloy", "operator", "property_value").order_by("-created_at", "-pk")

    def get_serializer_class(self):
        return DSCCreateSerializer if self.action == "create" else DSCMeasurementSerializer

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
    list=extend_schema(summary="Property values (Tg/Tx/Tl) of every source, with provenance; read-only"),
)
class PropertyValueViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = PropertyValueSerializer
    filterset_class = PropertyValueFilterSet
    lookup_value_regex = _INT_PK
    ordering_fields = ["created_at", "tg_k", "tx_k", "tl_k", "alloy"]

    def get_queryset(self):
        return PropertyValue.objects.select_related("alloy", "dsc__sample", "reference").order_by("alloy__formula", "created_at", "pk")
