"""Candidates keep the forward model's calibrated 80 % intervals and the pages say so; candidates
of older models (no interval) keep saying their ± is the ensemble's spread."""

from design.models import Candidate

from .test_approval import make_candidate


def test_candidate_page_shows_the_80_percent_interval(approver_client, campaign_factory):
    c = make_candidate(campaign_factory())
    Candidate.objects.filter(pk=c.pk).update(tg_k_low=671.5, tg_k_high=702.5, tx_k_low=740.0, tx_k_high=771.0,
                                             tl_k_low=1090.0, tl_k_high=1150.0)
    page = approver_client.get(c.get_absolute_url()).content.decode()
    assert "(80 % interval 671.5–702.5 K)" in page and "(80 % interval 1090.0–1150.0 K)" in page
    assert "ensemble spread σ)" not in page
    table = approver_client.get(c.campaign.get_absolute_url()).content.decode()
    assert "672–703" in table  # floatformat rounds halves up


def test_candidate_of_an_older_model_says_spread_not_interval(approver_client, campaign_factory):
    c = make_candidate(campaign_factory())
    page = approver_client.get(c.get_absolute_url()).content.decode()
    assert "80 % interval 6" not in page and "ensemble spread σ" in page
