"""Design-loop data for the browser tests, made through the real services.

A small synthetic literature set (made up here: smooth Tg/Tx/Tl of Zr–Cu–Al–Ni alloys, not
rows of any data set), a tiny training (few epochs, small models) and a campaign with one
generation round. The trained artefacts are kept for the session: a later test on the same
data gets TrainingRun/ModelVersion rows pointing at them instead of training again.
"""

import numpy as np

_TRAINED = {}  # snapshot hash -> (artefact dir, metrics, curves)


def literature_rows(n=70, seed=11):
    rng = np.random.default_rng(seed)
    rows, seen = [], set()
    while len(rows) < n:
        zr, al, ni = rng.uniform(0.45, 0.68), rng.uniform(0.05, 0.15), rng.uniform(0.0, 0.12)
        cu = 1 - zr - al - ni
        if cu < 0.08:
            continue
        at = {k: round(v * 100, 1) for k, v in (("Zr", zr), ("Cu", cu), ("Al", al), ("Ni", ni)) if round(v * 100, 1) > 0}
        at["Zr"] = round(at["Zr"] + 100 - sum(at.values()), 1)
        text = "".join(f"{k}{v:g}" for k, v in at.items())
        if text in seen:
            continue
        seen.add(text)
        x = {k: v / 100 for k, v in at.items()}
        tg = 560 + 250 * x["Cu"] + 700 * x["Al"] + 300 * x.get("Ni", 0) - 50 * x["Zr"]
        tx = tg + 35 + 250 * x["Al"] + 80 * x.get("Ni", 0)
        tl = 1000 + 250 * x["Zr"] + 150 * x["Cu"] - 300 * x["Al"]
        rows.append((text, round(tg, 1), round(tx, 1), round(tl, 1)))
    return rows


def add_literature():
    from lab.models import PropertyValue
    from lab.services import get_or_create_alloy

    for text, tg, tx, tl in literature_rows():
        alloy, _ = get_or_create_alloy(text)
        PropertyValue.objects.create(alloy=alloy, origin="literature", tg_k=tg, tx_k=tx, tl_k=tl, source_label="synthetic set")


def active_model():
    """An active ModelVersion trained (once a session) on the literature in the database."""
    from ml import services as ml_services
    from ml.models import ModelVersion, TrainingRun

    run = ml_services.request_retrain(trigger=TrainingRun.Trigger.BOOTSTRAP, enqueue=False).run
    cached = _TRAINED.get(run.snapshot_hash)
    if cached is None:
        run = ml_services.run_training(run.pk)
        assert run.status == TrainingRun.Status.DONE, run.error
        version = ModelVersion.objects.get(training_run=run)
        _TRAINED[run.snapshot_hash] = (version.artefact_dir, version.metrics, run.curves)
    else:
        artefact_dir, metrics, curves = cached
        TrainingRun.objects.filter(pk=run.pk).update(status=TrainingRun.Status.DONE, curves=curves, phase="done")
        ModelVersion.objects.create(
            training_run=run, artefact_dir=artefact_dir, snapshot_hash=run.snapshot_hash, data_size=run.data_size,
            n_lab_results=run.n_lab_results, snapshot_taken_at=run.snapshot_taken_at, metrics=metrics,
            status=ModelVersion.Status.ACTIVE, status_reason="First model: nothing to compare with.",
        )
    return ModelVersion.objects.get(status=ModelVersion.Status.ACTIVE)


def campaign_with_candidates(owner, name="Zr-based, high Tg"):
    from design import services as design_services

    add_literature()
    active_model()
    campaign = design_services.create_campaign(
        owner=owner, name=name, targets={"tg_k": {"min": 650}},
        base_element="Zr", max_elements=4, min_p_glass=0.0, min_novelty=0.02, batch_size=3, n_draws=1000,
    )
    gen_round = design_services.create_round(campaign, user=owner)
    gen_round = design_services.run_generation(gen_round.pk, seed=0)
    assert gen_round.status == "done", gen_round.error
    assert campaign.candidates.exists()
    return campaign


def seed(user):
    """For the every-page crawl: a campaign with candidates, one approved."""
    from design import services as design_services

    campaign = campaign_with_candidates(user, name="Every page campaign")
    design_services.approve_candidate(campaign.candidates.order_by("rank").first(), user=user, note="crawl")
    return campaign
