"""Design-loop data for the browser tests, made through the real services.

The design tests' synthetic literature set (smooth, made-up Tg/Tx/Tl of Zr–Cu–Al–Ni alloys,
not rows of any data set), a tiny training (few epochs, small models) and a campaign with one
generation round; trained artefacts are reused within the session (tests/design/conftest.py).
"""

from tests.design.conftest import add_literature, synthetic_rows, train_active_model


def campaign_with_candidates(owner, name="Zr-based, high Tg"):
    from design import services as design_services

    add_literature(synthetic_rows(70, seed=11))
    train_active_model()
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
