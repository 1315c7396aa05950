"""No N+1: the number of queries a list page makes is the same with 5 and with 40 rows.

Each case names a page, how to add rows to it, and how to count the rows it shows.
"""

from dataclasses import dataclass
from typing import Callable

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from lab import services
from lab.models import DSCMeasurement, PropertyValue, Reference, Sample, XRDMeasurement

pytestmark = pytest.mark.django_db

FEW, MANY = 5, 40


def composition(i):
    """A distinct, parser-valid Zr–Cu–Al(–Ni) composition for each i."""
    zr, al, ni = 40 + i % 20, 5 + (i // 20) % 5, i // 100
    return f"Zr{zr}Cu{100 - zr - al - ni}Al{al}" + (f"Ni{ni}" if ni else "")


def add_alloys(start, stop, user):
    reference = Reference.objects.get_or_create(label="perf test source")[0]
    for i in range(start, stop):
        alloy, _ = services.get_or_create_alloy(composition(i), user=user)
        for k in range(2):  # two sources each, one flagged in conflict
            PropertyValue.objects.create(
                alloy=alloy, origin=PropertyValue.Origin.LITERATURE, reference=reference,
                tg_k=650 + i + 20 * k, tx_k=730 + i, tl_k=1100 + i, conflict=bool(k),
            )
        Sample.objects.create(alloy=alloy, label=f"P-{i}", operator=user)


def add_samples(start, stop, user):
    alloy, _ = services.get_or_create_alloy("Cu46Zr46Al8", user=user)
    for i in range(start, stop):
        sample = Sample.objects.create(alloy=alloy, label=f"S-{i}", operator=user, diameter_mm=2)
        XRDMeasurement.objects.create(
            sample=sample, pattern=f"xrd/perf-{i}.xy", computed_verdict="amorphous", fwhm_inv_a=0.4, operator=user
        )
        dsc = DSCMeasurement.objects.create(sample=sample, tg_k=700, tx_k=770, tl_k=1150, operator=user)
        PropertyValue.objects.create(alloy=alloy, origin="experiment", dsc=dsc, tg_k=700, tx_k=770, tl_k=1150)


def add_review_records(start, stop, user):
    import io

    from mining import services as mining_services

    # Re-importing into a batch replaces its pending records, so the file holds every row so far.
    lines = ["composition,Tg_K,Tx_K,Tl_K,source,snippet"]
    for i in range(0, stop):
        # Every third row is flagged (Tg above Tx) so flagged and clean rows both show.
        tg, tx = (800 + i, 700 + i) if i % 3 == 0 else (650 + i, 730 + i)
        lines.append(f"{composition(i)},{tg},{tx},{1100 + i},Paper {i % 4},\"Tg = {tg} K for {composition(i)}\"")
    mining_services.import_extracted(io.StringIO("\n".join(lines) + "\n"), batch_name="perf batch", user=user)


def review_queue_url():
    from mining.models import ExtractionBatch

    batch = ExtractionBatch.objects.get(name="perf batch")
    return reverse("mining:review") + f"?batch={batch.pk}"


def add_campaigns(start, stop, user):
    from tests.perf import design_rows

    design_rows.add_campaigns(start, stop, user)


def api_rows(response):
    body = response.json()
    return len(body["results"] if isinstance(body, dict) else body)


@dataclass
class Case:
    id: str
    url: Callable[[], str]  # called after the rows exist (a page may be a batch's)
    add_rows: Callable  # add_rows(start, stop, user)
    rows_in: Callable = None  # response -> number of rows shown (to prove the rows are on the page)


CASES = [
    Case("alloy list", lambda: reverse("lab:alloy_list"), add_alloys,
         lambda r: len(r.context["alloys"])),
    Case("alloy list filtered", lambda: reverse("lab:alloy_list") + "?elements=Zr+Cu&tg_min=600&order=tg", add_alloys,
         lambda r: len(r.context["alloys"])),
    Case("sample list", lambda: reverse("lab:sample_list"), add_samples,
         lambda r: len(r.context["samples"])),
    Case("review queue", review_queue_url, add_review_records,
         lambda r: len(r.context["page"].object_list)),
    Case("campaign list", lambda: reverse("design:campaign_list"), add_campaigns,
         lambda r: len(r.context["campaigns"])),
    Case("home with alloys", lambda: reverse("home"), add_alloys),
    Case("home with candidates", lambda: reverse("home"), add_campaigns),
    Case("api alloys", lambda: "/api/alloys/", add_alloys, api_rows),
    Case("api alloys filtered", lambda: "/api/alloys/?elements=Zr,Cu&tg_min=600&ordering=-tg_mean_k", add_alloys,
         api_rows),
    Case("api samples", lambda: "/api/samples/", add_samples, api_rows),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_list_page_query_count_does_not_grow_with_rows(case, client, django_user_model):
    user = django_user_model.objects.create_superuser("perf", password="pw-glassloop-1", email="")
    client.force_login(user)

    def queries():
        url = case.url()
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(url)
        assert response.status_code == 200, f"{url} answered {response.status_code}"
        return len(ctx.captured_queries), response

    case.add_rows(0, FEW, user)
    few, response = queries()
    if case.rows_in:
        assert case.rows_in(response) == FEW
    case.add_rows(FEW, MANY, user)
    many, response = queries()
    if case.rows_in:
        assert case.rows_in(response) == MANY
    assert many == few, f"{case.id}: {few} queries with {FEW} rows but {many} with {MANY}"
