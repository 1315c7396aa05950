"""Rows of the design pages for the query-count tests: campaigns, each with a round and candidates.

Candidates are stored directly (their predictions are made-up numbers): the list pages only
read them, and no model needs training for that.
"""

from django.utils import timezone

from ml.composition import parse_composition


def _model_version():
    from training.models import ModelVersion

    version = ModelVersion.objects.filter(snapshot_hash="perf" + "0" * 60).first()
    return version or ModelVersion.objects.create(
        artefact_dir="perf-not-trained", snapshot_hash="perf" + "0" * 60, snapshot_taken_at=timezone.now()
    )


def add_campaigns(start, stop, user):
    from design.models import Candidate, GenerationRound
    from design.services import create_campaign

    version = _model_version()
    statuses = [Candidate.Status.PROPOSED, Candidate.Status.VALIDATED, Candidate.Status.FAILED]
    for i in range(start, stop):
        campaign = create_campaign(owner=user, name=f"Perf campaign {i}", targets={"tg_k": {"min": 600 + i}, "trg": {"min": 0.55}})
        gen_round = GenerationRound.objects.create(campaign=campaign, number=1, model_version=version, status="done")
        for k, status in enumerate(statuses):
            comp = parse_composition(f"Zr{50 + k}Cu{40 - k}Al10")
            Candidate.objects.create(
                campaign=campaign, generation_round=gen_round, number=k + 1, rank=k + 1, composition_key=comp.key,
                formula=comp.formula, fractions=dict(comp), model_version=version, tg_k_pred=680, tx_k_pred=750,
                tl_k_pred=1100, trg_pred=0.62, gamma_pred=0.42, delta_tx_k_pred=70, p_glass=0.8, nearest_distance=0.1,
                acquisition_score=1.0 - k / 10, status=status,
            )
