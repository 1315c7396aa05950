"""The design API's serializers: campaigns (read, create, change), candidates and rounds (read), decisions.

Writes are checked here for shape and with the model's own rules (``design.models``:
``target_problems``, ``probability_problem``; Dmax bounds from ``ml.rules``) so the API refuses
what the campaign form refuses, with the same words, every problem at once; the services
(``design.services``) then validate the whole campaign again before saving.
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.api_jobs import job_links
from ml.rules import BMG_MIN_DMAX_MM, ElementListError, parse_element_list

from .models import Candidate, DesignCampaign, GenerationRound, probability_problem, target_problems

CAMPAIGN_FIELDS = [
    "name", "description", "targets", "base_element", "allowed_elements", "forbidden_elements", "max_elements",
    "element_ranges", "min_p_glass", "min_p_bmg", "min_novelty", "batch_size", "n_draws", "kappa", "novelty_weight",
    "fill_with_near_misses",
]  # fmt: skip


class CampaignSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.username", read_only=True, allow_null=True)
    status_display = serializers.CharField(source="get_status_display", read_only=True)
    targets = serializers.JSONField(
        help_text='{"tg_k": {"min": 700}, "trg": {"min": 0.62}, "dmax_mm": {"min": 3}}: Tg, Tx, Tl, ΔTx (K), Trg, γ, Dmax (mm)'
    )

    class Meta:
        model = DesignCampaign
        fields = ["id", *CAMPAIGN_FIELDS, "owner", "status", "status_display", "created_at"]
        read_only_fields = fields


def _elements(value):
    try:
        return list(parse_element_list(" ".join(str(v) for v in value)))
    except ElementListError as exc:
        raise serializers.ValidationError(str(exc)) from exc


class CampaignWriteSerializer(serializers.Serializer):
    """A new campaign (POST) or the changed fields of one (PATCH)."""

    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True)
    targets = serializers.JSONField(help_text=CampaignSerializer._declared_fields["targets"].help_text)
    base_element = serializers.CharField(required=False, allow_blank=True, max_length=3)
    allowed_elements = serializers.ListField(child=serializers.CharField(), required=False)
    forbidden_elements = serializers.ListField(child=serializers.CharField(), required=False)
    max_elements = serializers.IntegerField(required=False)
    element_ranges = serializers.DictField(child=serializers.ListField(child=serializers.FloatField()), required=False,
                                           help_text='{"Zr": [40, 70]} in at.%')
    min_p_glass = serializers.FloatField(required=False, help_text="0–1")
    min_p_bmg = serializers.FloatField(required=False, help_text="0–1; 0: no P(BMG) threshold")
    min_novelty = serializers.FloatField(required=False)
    batch_size = serializers.IntegerField(required=False)
    n_draws = serializers.IntegerField(required=False)
    kappa = serializers.FloatField(required=False)
    novelty_weight = serializers.FloatField(required=False)
    fill_with_near_misses = serializers.BooleanField(required=False)

    def validate_targets(self, value):
        problems = target_problems(value)
        if problems:
            raise serializers.ValidationError(problems)
        return value

    def validate_min_p_glass(self, value):
        return self._probability(value)

    def validate_min_p_bmg(self, value):
        return self._probability(value)

    @staticmethod
    def _probability(value):
        why = probability_problem(value)
        if why:
            raise serializers.ValidationError(why)
        return value

    def validate_base_element(self, value):
        symbols = _elements([value]) if value else []
        if len(symbols) > 1:
            raise serializers.ValidationError("Give one element.")
        return symbols[0] if symbols else ""

    def validate_allowed_elements(self, value):
        return _elements(value)

    def validate_forbidden_elements(self, value):
        return _elements(value)


class CandidateSerializer(serializers.ModelSerializer):
    label = serializers.CharField(read_only=True)
    round = serializers.IntegerField(source="generation_round.number", read_only=True)
    status_display = serializers.CharField(source="get_status_display", read_only=True)
    validation = serializers.SerializerMethodField(
        help_text='The two parts of validation: {"glass": {"state", "text"}, "thermal": {"state", "text"}}; state is '
                  "pending, ok, incomplete, missed or failed; text e.g. \"glass ✓ (amorphous 3 mm rod)\"",
    )
    contributions = serializers.JSONField(
        read_only=True,
        help_text='Top feature contributions: {"p_glass": [[feature, value], ...], "p_bmg": [...], "dmax_mm": [...]} '
                  "({} without a GFA model)",
    )

    class Meta:
        model = Candidate
        fields = [
            "id", "label", "campaign", "round", "number", "rank", "formula", "composition_key", "status",
            "status_display", "validation", "model_version",
            "tg_k_pred", "tg_k_std", "tx_k_pred", "tx_k_std", "tl_k_pred", "tl_k_std", "tg_k_low", "tg_k_high",
            "tx_k_low", "tx_k_high", "tl_k_low", "tl_k_high", "trg_pred", "gamma_pred",
            "delta_tx_k_pred",
            "p_glass", "p_bmg", "dmax_mm_pred", "dmax_low_mm", "dmax_high_mm", "contributions",
            "nearest_known_formula", "nearest_distance", "acquisition_score", "score_terms",
            "xrd_verdict", "tg_k_measured", "tx_k_measured", "tl_k_measured", "sample", "created_at",
        ]  # fmt: skip
        read_only_fields = fields
        extra_kwargs = {
            "tg_k_std": {"help_text": "Spread σ of the forward ensemble (K), not a calibrated interval"},
            "tx_k_std": {"help_text": "Spread σ of the forward ensemble (K), not a calibrated interval"},
            "tl_k_std": {"help_text": "Spread σ of the forward ensemble (K), not a calibrated interval"},
            "p_glass": {"help_text": "P(glass); null when the model has no GFA model"},
            "p_bmg": {"help_text": f"P(castable as a glassy rod ≥ {BMG_MIN_DMAX_MM:g} mm); null without a GFA model"},
            "dmax_mm_pred": {"help_text": "Predicted critical casting diameter (mm); null without a GFA model"},
            "dmax_low_mm": {"help_text": "Low end of Dmax's 80 % interval (mm)"},
            "dmax_high_mm": {"help_text": "High end of Dmax's 80 % interval (mm)"},
        }

    def get_validation(self, obj) -> dict:
        glass, thermal = obj.validation_parts()
        return {"glass": glass.as_dict(), "thermal": thermal.as_dict()}


# ------------------------------------------------------------------ rounds and actions


class RoundSerializer(serializers.ModelSerializer):
    status = serializers.ChoiceField(choices=GenerationRound.Status.choices, read_only=True)
    status_display = serializers.CharField(source="get_status_display", read_only=True)
    requested_by = serializers.CharField(source="requested_by.username", read_only=True, allow_null=True)
    n_candidates = serializers.SerializerMethodField()
    explanation = serializers.SerializerMethodField(
        help_text="Where a finished round's draws went, as on the campaign page; \"\" when it filled its batch",
    )
    job = serializers.SerializerMethodField(help_text="The job API: status_url (poll it for progress), cancel_url, retry_url")

    class Meta:
        model = GenerationRound
        fields = [
            "id", "campaign", "number", "status", "status_display", "progress", "message", "error", "counts",
            "n_candidates", "explanation", "model_version", "requested_by", "created_at", "queued_at", "started_at",
            "finished_at", "job",
        ]  # fmt: skip
        read_only_fields = fields

    def get_n_candidates(self, obj) -> int:
        return obj.candidates.count()

    def get_explanation(self, obj) -> str:
        from .feasibility import round_explanation

        return round_explanation(obj.counts, obj.campaign) if obj.status == GenerationRound.Status.DONE else ""

    def get_job(self, obj) -> dict:
        return job_links(obj, self.context)


class DecisionSerializer(serializers.Serializer):
    """The note of an approval, rejection or start of synthesis (the page's DecisionForm)."""

    note = serializers.CharField(required=False, allow_blank=True, max_length=2000,
                                 help_text="Why; required to reject (as on the page)")


@extend_schema_field(OpenApiTypes.STR)
class _ActiveUsername(serializers.SlugRelatedField):
    def get_queryset(self):
        from django.contrib.auth import get_user_model

        return get_user_model().objects.filter(is_active=True)


class SynthesisSampleSerializer(serializers.Serializer):
    """Casting details of a candidate's sample, the page's SynthesisSampleForm; only the fields given change."""

    method = serializers.ChoiceField(choices=(), required=False)
    diameter_mm = serializers.FloatField(required=False, allow_null=True,
                                         help_text="Rod diameter (mm); validation needs it: an amorphous rod of stated diameter")
    cast_on = serializers.DateField(required=False, allow_null=True)
    operator = _ActiveUsername(slug_field="username", required=False, allow_null=True, help_text="The operator's username")

    def __init__(self, *args, **kwargs):
        from lab.models import Sample

        super().__init__(*args, **kwargs)
        self.fields["method"].choices = Sample.Method.choices
