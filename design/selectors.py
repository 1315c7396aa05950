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
    """The rows of the campaign page's table (``design_rows.candidate_rows``): each with its
    round's number as ``round_number`` and its sample; the JSON it does not show left unread."""
    order = CANDIDATE_SORTS.get(sort, CANDIDATE_SORTS["rank"])
    # No select_related("campaign"): the reverse manager sets each row's campaign to this one
    # (a join and 30 copies of the campaign's JSON decoded for nothing). Nor the round or the
    # nearest alloy: the row shows the round's number and the alloy's id only (their records'
    # JSON, counts and fractions, were most of the query's CPU).
    return (campaign.candidates.select_related("sample").defer(*UNSHOWN_CANDIDATE_FIELDS)
            .annotate(round_number=F("generation_round__number")).order_by(*order, "pk"))


# Candidate columns no table of the campaign page shows (read when a row is opened)
UNSHOWN_CANDIDATE_FIELDS = ("fractions", "contributions")


def latest_round(campaign):
    return campaign.rounds.order_by("-number").first()


def measured_candidates(campaign):
    """Candidates with an XRD verdict or DSC values (whatever their status)."""
    # each row's campaign is this one (the reverse manager sets it); the rows show neither the sample
    # nor the JSON columns
    return (campaign.candidates.filter(~Q(xrd_verdict="") | Q(tg_k_measured__isnull=False) | Q(tx_k_measured__isnull=False))
            .defer(*UNSHOWN_CANDIDATE_FIELDS))


def round_history(campaign):
    """Per round: the model version used, its metrics, hits among measured candidates."""
    rounds = campaign.rounds.select_related("model_version").annotate(
        n_candidates=Count("candidates"),
        n_validated=Count("candidates", filter=Q(candidates__status=Candidate.Status.VALIDATED)),
        n_failed=Count("candidates", filter=Q(candidates__status=Candidate.Status.FAILED)),
    )
    return rounds.order_by("number")


def model_history():
    """Every model version with its validation metrics and when it was active (the campaign
    page shows none of their training runs: no join)."""
    return ModelVersion.objects.order_by("created_at")


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



# ------------------------------------------------------------------------------ evidence

NEAREST_ALLOYS = 5


def measured_alloys():
    """The lab's alloys with measured values: a mean Tg/Tx/Tl, a GFA class or a Dmax."""
    return Alloy.objects.filter(Q(tg_mean_k__isnull=False) | Q(tx_mean_k__isnull=False) | Q(tl_mean_k__isnull=False)
                                | Q(dmax_mm__isnull=False) | ~Q(gfa_class=""))


def l1_distances(fractions, others):
    """L1 distance on atomic fractions from one element -> fraction dict to each of ``others``."""
    import numpy as np

    from ml.descriptors import fractions_matrix, l1_distances as l1

    if not others:
        return np.zeros(0)
    vocab = sorted({el for f in others for el in f} | set(fractions))
    return l1(fractions_matrix([fractions], vocab), fractions_matrix(list(others), vocab))[0]


def nearest_alloys(candidate, k=NEAREST_ALLOYS):
    """The ``k`` alloys with measured values nearest to the candidate (L1 on the stored atomic
    fractions; the candidate's own alloy left out): [{alloy, distance, sources}], nearest first,
    each source {text, url} (a DOI link, a DSC of this lab's sample, or the label as written)."""
    import numpy as np

    from lab.models import PropertyValue

    rows = list(measured_alloys().exclude(composition_key=candidate.composition_key).values_list("pk", "fractions"))
    if not rows:
        return []
    dist = l1_distances(candidate.fractions, [f for _, f in rows])
    order = np.argsort(dist, kind="stable")[:k]
    picked = [(rows[i][0], float(dist[i])) for i in order]
    alloys = Alloy.objects.in_bulk([pk for pk, _ in picked])
    values = PropertyValue.objects.filter(alloy_id__in=alloys).select_related("reference", "dsc__sample").order_by("pk")
    sources = {}
    for v in values:
        sources.setdefault(v.alloy_id, [])
        entry = _source(v)
        if entry not in sources[v.alloy_id]:
            sources[v.alloy_id].append(entry)
    return [{"alloy": alloys[pk], "distance": d, "sources": sources.get(pk, [])} for pk, d in picked]


def _source(value):
    from django.urls import reverse

    if value.dsc_id and value.dsc is not None:
        sample = value.dsc.sample
        return {"text": f"DSC of sample {sample.label}", "url": reverse("lab:sample_detail", args=[sample.pk])}
    ref = value.reference
    if ref is not None:
        text = f"{ref}, {value.source_label}" if value.source_label else str(ref)
        return {"text": text, "url": f"https://doi.org/{ref.doi}" if ref.doi else ""}
    return {"text": value.source_label or "literature (source not given)", "url": ""}
