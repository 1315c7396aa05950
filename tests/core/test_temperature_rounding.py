"""Temperatures on the dashboard, design and model pages follow the one display rule (issue 18:
the same value read 623.1 on one page and 623.2 on another): the ``kelvin`` filter
(ml.rules.display_k, 0.1 K, halves up), never floatformat or fixed on a Tg/Tx/Tl/ΔTx."""

import re
from pathlib import Path

import pytest

from design.models import Candidate
from tests.design.conftest import campaign_factory  # noqa: F401 (a fixture)
from tests.design.test_approval import make_candidate

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
# A Tg/Tx/Tl/ΔTx value, interval or spread piped to another number format.
OTHER_FORMAT = re.compile(
    r"\b(?:delta_)?t[gxl]_(?:k|mean_k)(?:_(?:pred|low|high|std|measured))?\s*\|\s*(?:floatformat|fixed|stringformat)"
)


@pytest.mark.parametrize("folder", ["core", "design", "ml"])
def test_templates_format_temperatures_with_kelvin(folder):
    found = [
        f"{path.relative_to(TEMPLATES)}:{n}: {line.strip()[:120]}"
        for path in sorted((TEMPLATES / folder).glob("*.html"))
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if OTHER_FORMAT.search(line)
    ]
    assert found == [], "use |kelvin for temperatures:\n" + "\n".join(found)


def test_candidate_page_and_campaign_table_round_as_display_k(approver_client, campaign_factory):
    c = make_candidate(campaign_factory())
    Candidate.objects.filter(pk=c.pk).update(tg_k_pred=623.15, tg_k_low=610.05, tg_k_high=636.25, delta_tx_k_pred=70.25)
    page = approver_client.get(c.get_absolute_url()).content.decode()
    tg = re.search(r'id="pred-tg">(.*?)</td>', page, re.S).group(1)
    assert tg.startswith("623.2 K") and "610.1–636.3 K" in tg
    assert "70.3 K" in page  # ΔTx
    table = approver_client.get(c.campaign.get_absolute_url()).content.decode()
    assert "610–636" in table and ">623<" in table  # the compact table: whole K, halves up
