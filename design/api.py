"""The design API: campaigns, their rounds and candidates, and every action the design pages offer.

    GET        /api/design-campaigns/                 campaigns, newest first
    POST       /api/design-campaigns/                 a new campaign (experimenter or approver)
    GET/PATCH  /api/design-campaigns/<id>/            one; PATCH changes targets and thresholds
    GET        /api/design-candidates/?campaign=<id>&round=<id>  candidates with their predictions,
                                                      P(glass), P(BMG), Dmax (80 % interval) and
                                                      top feature contributions
    GET        /api/design-candidates/<id>/recipe/?ingot_g=10&purity=0.9995
                                                      its casting recipe (ml.recipe): grams per
                                                      element, at.%, wt%, atomic weights, purity
    POST       /api/design-campaigns/<id>/close/      close it, as the page's Close (approver)
    POST       /api/design-campaigns/<id>/generate/   queue the next round, as the page's Generate
                                                      (experimenter or approver): 202 with the round
                                                      and its progress URL /api/jobs/generation-rounds/<id>/
    GET        /api/design-rounds/?campaign=<id>      rounds with status, progress, counts and the
    GET        /api/design-rounds/<id>/               page's explanation of where the draws went
    POST       /api/design-candidates/<id>/approve/   approve for synthesis (approver; note): its sample
    POST       /api/design-candidates/<id>/reject/    reject (approver; note required)
    POST       /api/design-candidates/<id>/start-synthesis/
                                                      approved → in synthesis (experimenter or approver)
    POST       /api/design-candidates/<id>/sample/    its sample's casting details (experimenter or approver)

The actions call the services the pages call (``services.start_generation``,
``approve_candidate``, ``reject_candidate``, ``start_synthesis``) with the pages' roles. A step
the current state does not allow answers 409 with the service's words: a candidate whose status
does not allow it (``services.TransitionError``), a campaign that cannot start a round now
(closed, no active model, a round still queued or running); a bad request (a rejection without
a note) is a 400. Cancel and retry of a round are the job API's (core.api_jobs).

Thin like the pages: ``design.serializers`` check the shape with the model's rules,
``design.services`` make the change (validated again as a whole, so the API refuses what the
campaign form refuses). Registered by ``register(router)`` once ``"design.api"`` is named in
``settings.GLASSLOOP_API_MODULES``.
"""

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from core.api import HasRole, RolePermission
from core.jobs import QUEUE_UNAVAILABLE
from core.roles import APPROVER, EXPERIMENTER, has_role

from . import recipes, services
from .models import Candidate, DesignCampaign, GenerationRound
from .serializers import (
    CampaignSerializer,
    CampaignWriteSerializer,
    CandidateSerializer,
    DecisionSerializer,
    RoundSerializer,
    SynthesisSampleSerializer,
)

_INT_PK = r"[0-9]+"


def register(router):
    """Add the design viewsets to the API router (core/api_urls.py)."""
    router.register("design-campaigns", CampaignViewSet, basename="design-campaign")
    router.register("design-candidates", CandidateViewSet, basename="design-candidate")
    router.register("design-rounds", RoundViewSet, basename="design-round")


class Conflict(exceptions.APIException):
    """The current state does not allow the step (409), in the service's words."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = "The current state does not allow this."
    default_code = "conflict"


def _conflict(exc):
    return Conflict("; ".join(exc.messages))


ERROR = {"type": "object", "properties": {"error": {"type": "string"}, "detail": {}}}


class ExperimenterOrApprover(RolePermission):
    """Reads: viewer. Writes: experimenter or approver (generate, start synthesis, as the pages)."""

    def has_permission(self, request, view):
        if request.method in ("GET", "HEAD", "OPTIONS") or not (request.user and request.user.is_authenticated):
            return super().has_permission(request, view)
        if has_role(request.user, EXPERIMENTER) or has_role(request.user, APPROVER):
            return True
        self.message = "This needs the experimenter or approver role."
        return False


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

    @extend_schema(
        summary="Queue the campaign's next round, as the page's Generate button (experimenter or approver)",
        description="Sent to the worker once committed; poll progress_url (GET /api/jobs/generation-rounds/<id>/). "
                    "409 when the campaign is closed, no model is active or a round is still queued or running.",
        request=None,
        responses={202: OpenApiTypes.OBJECT, 403: OpenApiResponse(ERROR), 409: OpenApiResponse(ERROR)},
    )
    @action(detail=True, methods=["post"])
    def generate(self, request, pk=None):
        campaign = self.get_object()
        try:
            gen_round = services.start_generation(campaign, user=request.user)
        except DjangoValidationError as exc:
            raise _conflict(exc) from exc
        if gen_round.error.startswith(QUEUE_UNAVAILABLE):  # as the page says it
            outcome = f"{QUEUE_UNAVAILABLE}: round {gen_round.number} is saved as queued but cannot run yet."
        else:
            outcome = f"Round {gen_round.number} queued: sampling {campaign.n_draws:,} compositions."
        body = RoundSerializer(gen_round, context=self.get_serializer_context()).data
        return Response({"round": body, "outcome": outcome, "progress_url": body["job"]["status_url"]},
                        status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="Close the campaign, as the page's Close button (approver): no further rounds",
        request=None, responses={200: OpenApiTypes.OBJECT, 403: OpenApiResponse(ERROR)},
    )
    @action(detail=True, methods=["post"], permission_classes=[HasRole(APPROVER)])
    def close(self, request, pk=None):
        campaign = services.close_campaign(self.get_object(), user=request.user)
        return Response({"campaign": CampaignSerializer(campaign).data, "outcome": "Campaign closed."})


@extend_schema_view(
    list=extend_schema(
        summary="Candidates with predictions, P(glass), P(BMG), Dmax and its 80 % interval",
        parameters=[OpenApiParameter("campaign", OpenApiTypes.INT, description="Only this campaign's candidates"),
                    OpenApiParameter("round", OpenApiTypes.INT, description="Only this generation round's candidates")],
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
        for param, field, what in (("campaign", "campaign_id", "campaign"), ("round", "generation_round_id", "round")):
            value = self.request.query_params.get(param)
            if value:
                if not value.isdigit():
                    raise exceptions.ValidationError({param: [f"A {what} id (a whole number)."]})
                qs = qs.filter(**{field: int(value)})
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

    def _decide(self, request, step, outcome):
        candidate = self.get_object()
        serializer = DecisionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            candidate = step(candidate, user=request.user, note=serializer.validated_data.get("note", ""))
        except services.TransitionError as exc:
            raise _conflict(exc) from exc
        candidate = self.get_queryset().get(pk=candidate.pk)
        data = CandidateSerializer(candidate, context=self.get_serializer_context()).data
        return Response({"candidate": data, "outcome": outcome(candidate)})

    @extend_schema(
        summary="Approve a proposed candidate for synthesis (approver): creates its lab sample, as the page does",
        request=DecisionSerializer,
        responses={200: OpenApiTypes.OBJECT, 403: OpenApiResponse(ERROR), 409: OpenApiResponse(ERROR)},
    )
    @action(detail=True, methods=["post"], permission_classes=[HasRole(APPROVER)])
    def approve(self, request, pk=None):
        return self._decide(request, services.approve_candidate,
                            lambda c: f"{c.label} approved for synthesis: sample {c.sample.label} is ready to cast.")

    @extend_schema(
        summary="Reject a proposed candidate (approver); the note (why) is required, as on the page",
        request=DecisionSerializer,
        responses={200: OpenApiTypes.OBJECT, 400: OpenApiResponse(ERROR), 403: OpenApiResponse(ERROR),
                   409: OpenApiResponse(ERROR)},
    )
    @action(detail=True, methods=["post"], permission_classes=[HasRole(APPROVER)])
    def reject(self, request, pk=None):
        return self._decide(request, services.reject_candidate, lambda c: f"{c.label} rejected.")

    @extend_schema(
        summary="Start the synthesis of an approved candidate (experimenter or approver), as the page's Start",
        request=DecisionSerializer,
        responses={200: OpenApiTypes.OBJECT, 403: OpenApiResponse(ERROR), 409: OpenApiResponse(ERROR)},
    )
    @action(detail=True, methods=["post"], url_path="start-synthesis", url_name="start-synthesis",
            permission_classes=[ExperimenterOrApprover])
    def start_synthesis(self, request, pk=None):
        return self._decide(request, services.start_synthesis, lambda c: f"{c.label} is in synthesis.")

    @extend_schema(
        summary="Change the casting details of the candidate's sample (experimenter or approver), as the page's form",
        description="Only the fields given change; the candidate's validation follows (a rod diameter completes "
                    "the glass part). 409 before approval (no sample yet).",
        request=SynthesisSampleSerializer,
        responses={200: OpenApiTypes.OBJECT, 400: OpenApiResponse(ERROR), 403: OpenApiResponse(ERROR),
                   409: OpenApiResponse(ERROR)},
    )
    @action(detail=True, methods=["post"], permission_classes=[ExperimenterOrApprover])
    def sample(self, request, pk=None):
        candidate = self.get_object()
        serializer = SynthesisSampleSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            candidate = services.update_synthesis_sample(candidate, user=request.user, **serializer.validated_data)
        except services.TransitionError as exc:
            raise _conflict(exc) from exc
        candidate = self.get_queryset().get(pk=candidate.pk)
        data = CandidateSerializer(candidate, context=self.get_serializer_context()).data
        outcome = f"Sample {candidate.sample.label} saved; {candidate.label} is {candidate.get_status_display().lower()}."
        return Response({"candidate": data, "outcome": outcome})


@extend_schema_view(
    list=extend_schema(
        summary="Generation rounds with status, progress, counts and the page's explanation",
        parameters=[OpenApiParameter("campaign", OpenApiTypes.INT, description="Only this campaign's rounds")],
    ),
    retrieve=extend_schema(summary="A generation round: status, progress, counts, explanation, job URLs"),
)
class RoundViewSet(viewsets.ReadOnlyModelViewSet):
    permission_classes = [RolePermission]
    serializer_class = RoundSerializer
    lookup_value_regex = _INT_PK
    ordering_fields = ["created_at", "number", "status"]

    def get_queryset(self):
        qs = GenerationRound.objects.select_related("campaign", "requested_by").order_by("campaign", "number")
        campaign = self.request.query_params.get("campaign")
        if campaign and self.action == "list":
            if not campaign.isdigit():
                raise exceptions.ValidationError({"campaign": ["A campaign id (a whole number)."]})
            qs = qs.filter(campaign_id=int(campaign))
        return qs
