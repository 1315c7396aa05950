"""The candidate page's evidence: the nearest known alloys with their measured values, links and
sources, the candidate on the campaign's map, and honestly labelled spreads."""

import re

from django.urls import reverse

from design import selectors
from lab.models import Alloy, PropertyValue, Reference
from lab.services import get_or_create_alloy

from .test_approval import make_candidate


def _l1(a, b):
    return sum(abs(a.get(el, 0.0) - b.get(el, 0.0)) for el in set(a) | set(b))


def test_nearest_alloys_are_the_closest_with_values_and_their_sources(approver_client, campaign_factory):
    ref = Reference.objects.create(doi="10.1016/j.actamat.2020.01.001", authors="Inoue A", year=2020, title="Zr glasses")
    near, _ = get_or_create_alloy("Zr55Cu26Al11Ni8")
    PropertyValue.objects.create(alloy=near, origin="literature", tg_k=702, tx_k=771, tl_k=1118, gfa_class="bmg", dmax_mm=5,
                                 reference=ref)
    labelled, _ = get_or_create_alloy("Zr57Cu23Al12Ni8")
    PropertyValue.objects.create(alloy=labelled, origin="literature", tg_k=690, tx_k=760, tl_k=1125, source_label="Handbook table 3")
    far, _ = get_or_create_alloy("Cu60Zr30Ti10")
    PropertyValue.objects.create(alloy=far, origin="literature", tg_k=720, tx_k=760, tl_k=1150, source_label="far away")
    unmeasured, _ = get_or_create_alloy("Zr55Cu25Al11Ni9")  # nearest of all, but nothing measured
    c = make_candidate(campaign_factory(), "Zr55Cu25Al12Ni8")

    rows = selectors.nearest_alloys(c)
    assert [r["alloy"] for r in rows] == [near, labelled, far]
    assert unmeasured not in [r["alloy"] for r in rows]
    for r in rows:
        assert abs(r["distance"] - _l1(c.fractions, r["alloy"].fractions)) < 1e-9
    assert rows[0]["sources"] == [{"text": str(ref), "url": "https://doi.org/10.1016/j.actamat.2020.01.001"}]
    assert rows[1]["sources"] == [{"text": "Handbook table 3", "url": ""}]

    page = approver_client.get(c.get_absolute_url()).content.decode()
    table = page[page.index('id="nearest-alloys"'):page.index("</table>", page.index('id="nearest-alloys"'))]
    assert table.index(near.formula) < table.index(labelled.formula) < table.index(far.formula)
    assert reverse("lab:alloy_detail", args=[near.pk]) in table
    assert "https://doi.org/10.1016/j.actamat.2020.01.001" in table and "Handbook table 3" in table
    near_row = re.search(rf'data-alloy="{near.pk}">(.*?)</tr>', table, re.S).group(1)
    for text in ("702", "771", "1118", "bulk glass (BMG)", ">5<", f"{rows[0]['distance']:.3f}"):
        assert text in near_row, text


def test_at_most_five_nearest(campaign_factory, literature):
    c = make_candidate(campaign_factory(), "Zr55Cu25Al12Ni8")
    rows = selectors.nearest_alloys(c)
    assert len(rows) == selectors.NEAREST_ALLOYS
    distances = [r["distance"] for r in rows]
    assert distances == sorted(distances)
    others = [a for a in Alloy.objects.exclude(pk__in=[r["alloy"].pk for r in rows]) if a.tg_mean_k is not None or a.gfa_class]
    assert min(_l1(c.fractions, a.fractions) for a in others) >= distances[-1] - 1e-9


def test_candidate_is_ringed_on_the_campaign_map(approver_client, campaign_factory, literature):
    campaign = campaign_factory()
    c = make_candidate(campaign, "Zr55Cu25Al12Ni8")
    page = approver_client.get(c.get_absolute_url()).content.decode()
    url = reverse("design:campaign_map", args=[campaign.pk]) + f"?highlight={c.pk}"
    assert f'src="{url}"' in page
    svg = approver_client.get(url).content
    assert b'id="highlight"' in svg and c.formula.encode() in svg
    assert b'id="highlight"' not in approver_client.get(reverse("design:campaign_map", args=[campaign.pk])).content


def test_spread_is_labelled_as_ensemble_spread_not_an_interval(approver_client, campaign_factory):
    c = make_candidate(campaign_factory())
    page = approver_client.get(c.get_absolute_url()).content.decode()
    tg = re.search(r'id="pred-tg">(.*?)</td>', page, re.S).group(1)
    assert "± 5.0 K (ensemble spread σ)" in tg and "80 %" not in tg
    assert "not a calibrated interval" in page
