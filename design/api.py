"""The design API: campaigns (read, create, change targets and thresholds) and their candidates (read).

    GET        /api/design-campaigns/                 campaigns, newest first
    POST       /api/design-campaigns/                 a new campaign (experimenter or approver)
    GET/PATCH  /api/design-campaigns/<id>/            one; PATCH changes targets and thresholds
    GET        /api/design-candidates/?campaign=<id>  candidates with their predictions,
                                                      P(glass), P(BMG), Dmax (80 % interval) and
                                                      top feature contributions
    GET        /api/design-candidates/<id>/recipe/?ingot_g=10&purity=0.9995
                                                      its casting recipe (ml.recipe): grams per
                                                      element, at.%, wt%, atomic weights, purity

Thin like the pages: ``design.serializers`` check the shape with the model's rules,
``design.services`` make the change (validated again as a whole, so the API refuses what the
campaign form refuses). Registered by ``register(router)`` once ``"design.api"`` is named in
``settings.GLASSLOOP_API_MODULES``.
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from core.api import RolePermission
from core.roles import APPROVER, EXPERIMENTER, has_role

from . import recipes, services
from .models import Candidate, DesignCampaign
from .serializers import CampaignSerializer, CampaignWriteSerializer, CandidateSerializer

_INT_PK = r"[0-9]+"


def register(router):
    """Add the design viewsets to the API router (core/api_urls.py)."""
    router.register("design-campaigns", CampaignViewSet, basename="design-campaign")
    router.register("design-candidates", CandidateViewSet, basename="design-candidate")


class CampaignWriters(RolePermission):
    """Reads: viewer. Writes: experimenter or approver (as the campaign pages)."""

    write_role = EXPERIMENTER

    def has_permission(self, request, view):
        if request.method not in ("GET", "HEAD", "OPTIONS") and request.user and request.user.is_authenticated:
            if has_role(request.user, APPROVER):
                return True
            if not has_role(request.user, EXPERIMENTER):
                self.message = "This needs the experimenter or approver role."
                return False
        return super().has_permission(request, view)


@extend_schema_view(
    list=extend_schema(summary="Design campaigns, newest first"),
    retrieve=extend_schema(summary="A design campaign: targets (Tg … Dmax), constraints, thresholds"),
    create=extend_schema(summary="Create a design campaign", request=CampaignWriteSerializer,
                         responses={201: CampaignSerializer}),
    partial_update=extend_schema(summary="Change an open campaign's targets and thresholds",
                                 request=CampaignWriteSerializer, responses={200: CampaignSerializer}),
)
class CampaignViewSet(mixins.CreateModelMixin, mixins.UpdateModelMixin, viewsets.ReadOnlyModelViewSet):
    permission_classes = [CampaignWriters]
    serializer_class = CampaignSerializer
    lookup_value_regex = _INT_PK
    http_method_names = ["get", "post", "patch", "head", "options"]
    ordering_fields = ["created_at", "name", "status"]

    def get_queryset(self):
        return DesignCampaign.objects.select_related("owner").order_by("-created_at", "-pk")

    def create(self, request, *args, **kwargs):
        serializer = CampaignWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        campaign = services.create_campaign(owner=request.user, **serializer.validated_data)
        return Response(CampaignSerializer(campaign).data, status=status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        if not kwargs.get("partial"):
            raise exceptions.MethodNotAllowed(request.method)
        campaign = self.get_object()
        serializer = CampaignWriteSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        campaign = services.update_campaign(campaign, user=request.user, **serializer.validated_data)
        return Response(CampaignSerializer(campaign).data)


@extend_schema_view(
    list=extend_schema(
        summary="Candidates with predictions, P(glass), P(BMG), Dmax and its 80 % interval",
        parameters=[OpenApiParameter("campaign", OpenApiTypes.INT, description="Only this campaign's candidates")],
    ),
    retrieve=extend_schema(summary="A candidate with its predictions and top feature contributions"),
)
class CandidateViewSet(viewsets.ReadOnlyModelViewSet):
    permission_classes = [RolePermission]
    serializer_class = CandidateSerializer
    lookup_value_regex = _INT_PK
    ordering_fields = {
        "rank": "rank", "acquisition_score": "acquisition_score", "p_glass": "p_glass", "p_bmg": "p_bmg",
        "dmax_mm_pred": "dmax_mm_pred", "created_at": "created_at",
    }

    def get_queryset(self):
        qs = Candidate.objects.select_related("generation_round", "sample", "campaign").order_by("campaign", "generation_round__number", "rank")
        campaign = self.request.query_params.get("campaign")
        if campaign:
            if not campaign.isdigit():
                raise exceptions.ValidationError({"campaign": ["A campaign id (a whole number)."]})
            qs = qs.filter(campaign_id=int(campaign))
        return qs

    @extend_schema(
        summary="A candidate's casting recipe: grams of each element for an ingot (ml.recipe)",
        parameters=[
            OpenApiParameter("ingot_g", OpenApiTypes.NUMBER, description="Ingot mass in g (default 10; above 0, at most 1000)"),
            OpenApiParameter("purity", OpenApiTypes.STR,
                             description="One mass fraction for every raw material (0.9995) or per element (\"Zr 0.998, Cu 0.9999\")"),
        ],
        responses={200: OpenApiTypes.OBJECT},
    )
    @action(detail=True, methods=["get"])
    def recipe(self, request, pk=None):
        candidate = self.get_object()
        req = recipes.recipe_for(candidate.formula, request.query_params)
        if req.errors:
            raise exceptions.ValidationError({k: [v] for k, v in req.errors.items()})
        return Response({"candidate": candidate.pk, "label": candidate.label, **req.recipe.as_dict()})
