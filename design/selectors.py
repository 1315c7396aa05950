"""Reads of the design pages."""

from django.db.models import Count, F, Q

from lab.models import Alloy
from training.models import ModelVersion

from .models import Candidate, DesignCampaign

# ?sort= values of the candidates table -> ordering
CANDIDATE_SORTS = {
    "rank": ("generation_round__number", "rank"),
    "score": ("-acquisition_score",),
    "tg": ("-tg_k_pred",),
    "tx": ("-tx_k_pred",),
    "tl": ("-tl_k_pred",),
    "trg": ("-trg_pred",),
    "gamma": ("-gamma_pred",),
    # unknown (no GFA model) last, on SQLite and PostgreSQL alike
    "p_glass": (F("p_glass").desc(nulls_last=True),),
    "p_bmg": (F("p_bmg").desc(nulls_last=True),),
    "dmax": (F("dmax_mm_pred").desc(nulls_last=True),),
    "novelty": ("-nearest_distance",),
    "status": ("status", "generation_round__number", "rank"),
    "formula": ("formula",),
}


def campaign_list():
    return DesignCampaign.objects.select_related("owner").annotate(
        n_candidates=Count("candidates", distinct=True),
        n_validated=Count("candidates", filter=Q(candidates__status=Candidate.Status.VALIDATED), distinct=True),
        n_failed=Count("candidates", filter=Q(candidates__status=Candidate.Status.FAILED), distinct=True),
    )


def campaign_candidates(campaign, sort="rank"):
    order = CANDIDATE_SORTS.get(sort, CANDIDATE_SORTS["rank"])
    return campaign.candidates.select_related("generation_round", "sample", "nearest_known_alloy").order_by(*order, "pk")


def latest_round(campaign):
    return campaign.rounds.order_by("-number").first()


def measured_candidates(campaign):
    return campaign.candidates.filter(status__in=(Candidate.Status.VALIDATED, Candidate.Status.FAILED)).select_related("sample")


def round_history(campaign):
    """Per round: the model version used, its metrics, hits among measured candidates."""
    rounds = campaign.rounds.select_related("model_version").annotate(
        n_candidates=Count("candidates"),
        n_validated=Count("candidates", filter=Q(candidates__status=Candidate.Status.VALIDATED)),
        n_failed=Count("candidates", filter=Q(candidates__status=Candidate.Status.FAILED)),
    )
    return rounds.order_by("number")


def model_history():
    """Every model version with its validation metrics and when it was active."""
    return ModelVersion.objects.select_related("training_run").order_by("created_at")


def map_points(campaign):
    """Fractions of known alloys, the campaign's candidates, validated and failed ones."""
    known = list(Alloy.objects.values_list("fractions", flat=True))
    candidates, validated, failed = [], [], []
    for status, fractions in campaign.candidates.values_list("status", "fractions"):
        if status == Candidate.Status.VALIDATED:
            validated.append(fractions)
        elif status == Candidate.Status.FAILED:
            failed.append(fractions)
        else:
            candidates.append(fractions)
    return known, candidates, validated, failed

