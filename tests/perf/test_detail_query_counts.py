"""No N+1 on the record pages: the alloy page's history (changes to the alloy, its property
values and samples, each with what changed) costs the same number of queries whether 2 or 8
of its values were corrected; and it says what simple_history's own ``prev_record`` would."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from lab import selectors, services
from lab.models import PropertyValue, Reference

pytestmark = pytest.mark.django_db

N_VALUES = 30


@pytest.fixture
def alloy(experimenter):
    alloy, _ = services.get_or_create_alloy("Zr55Cu30Al10Ni5", user=experimenter)
    reference = Reference.objects.create(label="perf history source")
    for i in range(N_VALUES):
        PropertyValue.objects.create(alloy=alloy, origin=PropertyValue.Origin.LITERATURE, reference=reference,
                                     tg_k=650 + i, tx_k=730 + i, tl_k=1100 + i)
    return alloy


def change(alloy, start, stop):
    """Change the oldest values first: their first version lies beyond the newest history rows."""
    for value in PropertyValue.objects.filter(alloy=alloy).order_by("pk")[start:stop]:
        value.tg_k += 5
        value.save()


def page_queries(client, alloy):
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(reverse("lab:alloy_detail", args=[alloy.pk]))
    assert response.status_code == 200
    return len(ctx.captured_queries), response


def test_alloy_page_queries_do_not_grow_with_changed_values(viewer_client, alloy):
    change(alloy, 0, 2)
    few, response = page_queries(viewer_client, alloy)
    assert sum(1 for e in response.context["history"] if e.kind == "changed" and e.changes) == 2
    change(alloy, 2, 8)
    many, response = page_queries(viewer_client, alloy)
    assert sum(1 for e in response.context["history"] if e.kind == "changed" and e.changes) == 8
    assert many == few, f"the alloy page made {few} queries with 2 changed values but {many} with 8"


def test_history_changes_are_those_of_prev_record(alloy):
    change(alloy, 0, 6)
    entries = {e.what: e for e in selectors.alloy_history(alloy, limit=15) if e.kind == "changed"}
    assert len([w for w in entries if w.startswith("property value")]) == 6
    for record in PropertyValue.history.filter(alloy_id=alloy.pk, history_type="~"):
        expected = [(c.field, c.old, c.new) for c in record.diff_against(record.prev_record).changes
                    if c.field not in selectors._SKIP_DIFF]
        entry = entries[f"property value #{record.id} ({record.origin})"]
        assert entry.changes == expected
        assert ("tg_k", record.tg_k - 5, record.tg_k) in entry.changes


def add_measured_samples(alloy, user, start, stop):
    from lab.models import DSCMeasurement, Sample, XRDMeasurement

    for i in range(start, stop):
        sample = Sample.objects.create(alloy=alloy, label=f"D-{i}", operator=user, diameter_mm=2)
        XRDMeasurement.objects.create(sample=sample, pattern=f"xrd/detail-{i}.xy", computed_verdict="amorphous",
                                      fwhm_inv_a=0.4, operator=user)
        dsc = DSCMeasurement.objects.create(sample=sample, tg_k=700, tx_k=770, tl_k=1150, operator=user)
        PropertyValue.objects.create(alloy=alloy, origin="experiment", dsc=dsc, tg_k=700, tx_k=770, tl_k=1150)


def test_alloy_page_queries_do_not_grow_with_measured_samples(viewer_client, alloy, experimenter):
    add_measured_samples(alloy, experimenter, 0, 3)
    few, response = page_queries(viewer_client, alloy)
    assert len(response.context["samples"]) == 3 and len(response.context["castings"]) == 3
    add_measured_samples(alloy, experimenter, 3, 20)
    many, response = page_queries(viewer_client, alloy)
    assert len(response.context["samples"]) == 20 and len(response.context["castings"]) == 20
    assert many == few, f"the alloy page made {few} queries with 3 measured samples but {many} with 20"


def test_sample_page_queries_do_not_grow_with_measurements(viewer_client, alloy, experimenter):
    from lab.models import DSCMeasurement, Sample, XRDMeasurement

    sample = Sample.objects.create(alloy=alloy, label="D-many", operator=experimenter, diameter_mm=3)

    def measure(n):
        for i in range(n):
            XRDMeasurement.objects.create(sample=sample, pattern=f"xrd/many-{i}.xy", computed_verdict="crystalline",
                                          fwhm_inv_a=0.2, operator=experimenter)
            DSCMeasurement.objects.create(sample=sample, tg_k=690 + i, tx_k=760, tl_k=1140, operator=experimenter)

    def queries():
        with CaptureQueriesContext(connection) as ctx:
            response = viewer_client.get(reverse("lab:sample_detail", args=[sample.pk]))
        assert response.status_code == 200
        return len(ctx.captured_queries), response

    measure(2)
    few, response = queries()
    assert len(response.context["sample"].xrds) == 2
    measure(10)
    many, response = queries()
    assert len(response.context["sample"].xrds) == 12
    assert many == few, f"the sample page made {few} queries with 2 XRD+DSC but {many} with 12"
