"""Endpoints for scripts: parse compositions, predict properties with the active model.

    POST /api/compositions/parse   {"composition": "..."} or {"compositions": ["...", ...]}
    POST /api/predict              {"compositions": ["...", ...]}

Every composition goes through ``ml.composition.parse_composition``; a refused one gets the
parser's message word for word. Both endpoints change nothing, so any viewer may call them.
Predictions come only from the active model bundle (``training.bundles.load_active_bundle``);
until one exists the answer is 503 "no trained model is active yet".

The Models pages' actions, with their roles (reads: viewer; writes: approver, as on the pages),
through ``training.services`` only:

    GET  /api/model-versions/                 ?status=candidate|active|retired, paginated
    GET  /api/model-versions/<id>/            with its validation metrics, status and reason
    POST /api/model-versions/<id>/activate/   the page's Activate ({"reason": "..."} optional)
    GET  /api/training-runs/                  ?status=, ?trigger=, paginated
    GET  /api/training-runs/<id>/             status, phase, progress, epoch, error, version, job URLs
    POST /api/training-runs/                  the page's "Retrain now": 202 with the queued run and
                                              its progress URL (/api/jobs/training-runs/<id>/);
                                              409 when a run on this data is already queued,
                                              running or done; 400 when there is no data yet

Cancel and retry of a run are /api/jobs/training-runs/<id>/cancel/ and .../retry/ (core.api_jobs).
"""

import math

from django.urls import path
from django_filters import rest_framework as filters
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import HasRole, ServiceUnavailable, error_body
from core.roles import APPROVER, VIEWER
from ml.composition import Composition, CompositionError, parse_composition

from . import selectors, services
from .models import ModelVersion, TrainingRun
from .serializers import (
    ActivateResponseSerializer,
    ActivateSerializer,
    ModelVersionDetailSerializer,
    ModelVersionSerializer,
    RetrainResponseSerializer,
    TrainingRunDetailSerializer,
    TrainingRunSerializer,
    job_links,
)

MAX_COMPOSITIONS = 1000
MAX_COMPOSITION_CHARS = 500
NO_ACTIVE_MODEL = "no trained model is active yet"


# ------------------------------------------------------------------ serializers


def _composition_field(**kwargs):
    return serializers.CharField(max_length=MAX_COMPOSITION_CHARS, trim_whitespace=False, **kwargs)


class ParseRequestSerializer(serializers.Serializer):
    composition = _composition_field(required=False, allow_blank=True, help_text="One composition; a bad one is a 400")
    compositions = serializers.ListField(
        child=_composition_field(allow_blank=True),
        required=False,
        max_length=MAX_COMPOSITIONS,
        help_text=f"Up to {MAX_COMPOSITIONS}; each gets its result or its own error",
    )

    def validate(self, attrs):
        if ("composition" in attrs) == ("compositions" in attrs):
            raise serializers.ValidationError('Give either "composition" (one text) or "compositions" (a list).')
        return attrs


class ParsedSerializer(serializers.Serializer):
    input = serializers.CharField(help_text="The text as given")
    formula = serializers.CharField(help_text="Canonical formula, at.% by descending fraction")
    key = serializers.CharField(help_text="Identity: alphabetical elements, at.% to 0.01")
    atomic_percent = serializers.DictField(child=serializers.FloatField(), help_text="Element → at.%, canonical order")
    elements = serializers.ListField(child=serializers.CharField())
    base_element = serializers.CharField()
    n_elements = serializers.IntegerField()


class ParseItemSerializer(serializers.Serializer):
    input = serializers.CharField()
    ok = serializers.BooleanField()
    formula = serializers.CharField(required=False)
    key = serializers.CharField(required=False)
    atomic_percent = serializers.DictField(child=serializers.FloatField(), required=False)
    elements = serializers.ListField(child=serializers.CharField(), required=False)
    base_element = serializers.CharField(required=False)
    n_elements = serializers.IntegerField(required=False)
    error = serializers.CharField(required=False, help_text="The parser's message")
    position = serializers.IntegerField(required=False, allow_null=True, help_text="1-based character position")


class ParseListSerializer(serializers.Serializer):
    results = ParseItemSerializer(many=True)
    n_ok = serializers.IntegerField()
    n_errors = serializers.IntegerField()


class PredictRequestSerializer(serializers.Serializer):
    compositions = serializers.ListField(
        child=_composition_field(allow_blank=True), min_length=1, max_length=MAX_COMPOSITIONS
    )


class PredictItemSerializer(ParseItemSerializer):
    prediction = serializers.DictField(
        child=serializers.FloatField(allow_null=True),
        required=False,
        help_text="tg_k, tx_k, tl_k, trg, gamma, dtx_k (each with _std), p_glass",
    )


class PredictResponseSerializer(serializers.Serializer):
    model = serializers.JSONField(allow_null=True, help_text="The active model version used")
    results = PredictItemSerializer(many=True)
    n_ok = serializers.IntegerField()
    n_errors = serializers.IntegerField()


ERROR_SCHEMA = inline_serializer(
    "Error",
    fields={
        "error": serializers.CharField(help_text="One readable sentence"),
        "detail": serializers.JSONField(help_text="Field → messages, or the message"),
    },
)


# ------------------------------------------------------------------ helpers


def describe(text: str, comp: Composition) -> dict:
    return {
        "input": text,
        "formula": comp.formula,
        "key": comp.key,
        "atomic_percent": comp.atomic_percent(),
        "elements": list(comp.elements),
        "base_element": comp.base_element,
        "n_elements": len(comp),
    }


def parse_item(text: str) -> dict:
    try:
        comp = parse_composition(text)
    except CompositionError as exc:
        return {"input": text, "ok": False, "error": str(exc), "position": exc.position}
    return {"ok": True, **describe(text, comp)}


def active_bundle():
    """The active model bundle, or None while there is none.

    Raises ServiceUnavailable when a version is active but its bundle cannot be loaded
    (artefacts missing from the volume, or the ML pipeline not installed).
    """
    from ml.artefacts import ArtefactError

    from . import bundles

    try:
        return bundles.load_active_bundle()
    except FileNotFoundError as exc:
        raise ServiceUnavailable(f"The active model's files are missing ({exc.filename}); retrain or restore them.") from exc
    except ArtefactError as exc:
        raise ServiceUnavailable(f"The active model cannot be loaded: {exc}") from exc


def active_model_description():
    try:
        from .selectors import active_version
    except ImportError:
        return None
    version = active_version()
    if version is None:
        return None
    return {"id": version.pk, "name": str(version), "activated_at": version.activated_at, "metrics": version.metrics}


def _jsonable(value):
    """A number from a model's output as JSON: numpy scalars as Python, NaN/inf as null."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def predictions(bundle, texts):
    """[(prediction dict or None, error or None)] per text, in order.

    Uses the bundle's ``predict_texts`` (per-row errors, e.g. an element the model never saw)
    when it has one, else ``predict`` on parsed compositions. Either returns columns
    (name -> sequence), which become one dict per row.
    """
    if hasattr(bundle, "predict_texts"):
        columns, errors = bundle.predict_texts(list(texts))
    else:
        columns, errors = bundle.predict([parse_composition(t) for t in texts]), [None] * len(texts)
    if hasattr(columns, "to_dict"):  # a DataFrame
        columns = columns.to_dict(orient="list")
    out = []
    for i, error in enumerate(errors):
        if error:
            out.append((None, str(error)))
        else:
            out.append(({name: _jsonable(values[i]) for name, values in columns.items()}, None))
    return out


# ------------------------------------------------------------------ views


class ParseCompositionsView(APIView):
    permission_classes = [HasRole(VIEWER)]

    @extend_schema(
        summary="Parse compositions: canonical formula, key, at.%, base element",
        request=ParseRequestSerializer,
        responses={
            200: OpenApiResponse(
                PolymorphicProxySerializer(
                    component_name="ParseResult",
                    serializers=[ParsedSerializer, ParseListSerializer],
                    resource_type_field_name=None,
                ),
                description='One composition: its reading; a list: {"results": [...]} with per-item errors',
            ),
            400: OpenApiResponse(ERROR_SCHEMA, description="The single composition was refused (the parser's message)"),
        },
        examples=[
            OpenApiExample("one", value={"composition": "Zr42Ti14Cu12Ni10Be22"}, request_only=True),
            OpenApiExample("many", value={"compositions": ["Cu50Hf50", "Cu50Zr40"]}, request_only=True),
        ],
    )
    def post(self, request):
        serializer = ParseRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if "composition" in data:
            text = data["composition"]
            try:
                comp = parse_composition(text)
            except CompositionError as exc:
                raise serializers.ValidationError({"composition": [str(exc)]}) from exc
            return Response(describe(text, comp))
        results = [parse_item(text) for text in data["compositions"]]
        n_ok = sum(r["ok"] for r in results)
        return Response({"results": results, "n_ok": n_ok, "n_errors": len(results) - n_ok})


class PredictView(APIView):
    permission_classes = [HasRole(VIEWER)]

    @extend_schema(
        summary="Predict Tg, Tx, Tl (K), Trg, γ and P(glass) with the active model",
        request=PredictRequestSerializer,
        responses={
            200: PredictResponseSerializer,
            503: OpenApiResponse(ERROR_SCHEMA, description=NO_ACTIVE_MODEL),
        },
    )
    def post(self, request):
        serializer = PredictRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        bundle = active_bundle()
        if bundle is None:
            raise ServiceUnavailable(NO_ACTIVE_MODEL)
        texts = serializer.validated_data["compositions"]
        items = [parse_item(text) for text in texts]
        good = [i for i, item in enumerate(items) if item["ok"]]
        if good:
            # The canonical formula: the model sees exactly what the parser read.
            for i, (prediction, error) in zip(good, predictions(bundle, [items[i]["formula"] for i in good])):
                if error:
                    items[i].update(ok=False, error=error)
                else:
                    items[i]["prediction"] = prediction
        n_ok = sum(item["ok"] for item in items)
        return Response(
            {"model": active_model_description(), "results": items, "n_ok": n_ok, "n_errors": len(items) - n_ok}
        )


# ------------------------------------------------------------------ model versions, training runs

_INT_PK = r"[0-9]+"
_APPROVERS = [HasRole(APPROVER)]


class ModelVersionFilterSet(filters.FilterSet):
    status = filters.ChoiceFilter(choices=ModelVersion.Status.choices)

    class Meta:
        model = ModelVersion
        fields = ["status"]


class TrainingRunFilterSet(filters.FilterSet):
    status = filters.ChoiceFilter(choices=TrainingRun.Status.choices)
    trigger = filters.ChoiceFilter(choices=TrainingRun.Trigger.choices)

    class Meta:
        model = TrainingRun
        fields = ["status", "trigger"]


class _ListFiltersOnly:
    def filter_queryset(self, queryset):
        # Filters and ordering shape lists; a detail (and an action on it) is found by its id alone.
        return super().filter_queryset(queryset) if self.action == "list" else queryset


@extend_schema_view(
    list=extend_schema(summary="Model versions, newest first, with validation metrics, status and reason"),
    retrieve=extend_schema(summary="A model version: validation metrics, status and why, every stored metric"),
)
class ModelVersionViewSet(_ListFiltersOnly, viewsets.ReadOnlyModelViewSet):
    permission_classes = _APPROVERS
    filterset_class = ModelVersionFilterSet
    lookup_value_regex = _INT_PK
    ordering_fields = ["created_at", "activated_at", "data_size", "status"]

    def get_queryset(self):
        return selectors.version_list().order_by("-created_at", "-pk")

    def get_serializer_class(self):
        if self.action == "activate":
            return ActivateSerializer
        return ModelVersionDetailSerializer if self.action == "retrieve" else ModelVersionSerializer

    @extend_schema(
        summary="Activate this version (the page's Activate): the active one is retired",
        request=ActivateSerializer,
        responses={200: ActivateResponseSerializer, 404: OpenApiResponse(ERROR_SCHEMA)},
    )
    @action(detail=True, methods=["post"], url_path="activate", url_name="activate")
    def activate(self, request, pk=None):
        version = self.get_object()
        serializer = ActivateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        reason = (serializer.validated_data.get("reason") or "").strip()
        services.activate_version(version, user=request.user, reason=reason)
        version = self.get_queryset().get(pk=version.pk)
        body = ModelVersionDetailSerializer(version, context=self.get_serializer_context()).data
        return Response({"version": body, "outcome": f"Model v{version.pk} is now active."})


@extend_schema_view(
    list=extend_schema(summary="Training runs, newest first: status, phase, progress, epoch, error, version"),
    retrieve=extend_schema(summary="A training run with its curves and log"),
    create=extend_schema(
        summary='Retrain now (the page\'s button): queue a run on the current data; poll its progress_url',
        request=None,
        responses={
            202: RetrainResponseSerializer,
            400: OpenApiResponse(ERROR_SCHEMA, description="No training data yet"),
            409: OpenApiResponse(ERROR_SCHEMA, description="A run on exactly this data is already queued, running or done"),
        },
    ),
)
class TrainingRunViewSet(_ListFiltersOnly, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    permission_classes = _APPROVERS
    filterset_class = TrainingRunFilterSet
    lookup_value_regex = _INT_PK
    ordering_fields = ["created_at", "finished_at", "status", "data_size"]

    def get_queryset(self):
        return TrainingRun.objects.select_related("model_version", "requested_by").order_by("-created_at", "-pk")

    def get_serializer_class(self):
        return TrainingRunDetailSerializer if self.action == "retrieve" else TrainingRunSerializer

    def create(self, request, *args, **kwargs):
        # The page's retrain view: the same service, queued once the request's transaction commits.
        result = services.request_retrain(trigger=TrainingRun.Trigger.MANUAL, user=request.user)
        if result.run is None:
            return Response(error_body(result.message), status=status.HTTP_400_BAD_REQUEST)
        run = self.get_queryset().get(pk=result.run.pk)
        context = self.get_serializer_context()
        body = {"run": TrainingRunSerializer(run, context=context).data,
                "progress_url": job_links(run, context)["progress_url"]}
        if not result.created:
            return Response({**error_body(result.message), **body}, status=status.HTTP_409_CONFLICT)
        return Response({**body, "outcome": result.message}, status=status.HTTP_202_ACCEPTED)


def register(router):
    """Add the training viewsets to the API router (core/api_urls.py)."""
    router.register("model-versions", ModelVersionViewSet, basename="model-version")
    router.register("training-runs", TrainingRunViewSet, basename="training-run")


urlpatterns = [
    path("compositions/parse", ParseCompositionsView.as_view(), name="api-compositions-parse"),
    path("predict", PredictView.as_view(), name="api-predict"),
]
