"""The API's alloy detail reads the alloy's samples once, with their XRDs (the castings come
from them), and costs the same queries whatever the number of measured samples."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from lab import services
from tests.api.conftest import token_client
from tests.perf.test_detail_query_counts import add_measured_samples

pytestmark = pytest.mark.django_db


def detail(client, alloy):
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(f"/api/alloys/{alloy.pk}/")
    assert response.status_code == 200
    sample_reads = [q["sql"] for q in ctx.captured_queries if q["sql"].startswith('SELECT "lab_sample"."id"')]
    return len(ctx.captured_queries), len(sample_reads), response.json()


def test_alloy_detail_reads_its_samples_once_whatever_their_number(viewer, experimenter):
    client = token_client(viewer)
    alloy, _ = services.get_or_create_alloy("Zr55Cu30Al10Ni5", user=experimenter)
    add_measured_samples(alloy, experimenter, 0, 2)
    few, sample_reads, body = detail(client, alloy)
    assert sample_reads == 1
    assert len(body["samples"]) == 2 and len(body["castings"]) == 2
    assert {c["label"] for c in body["castings"]} == {"D-0", "D-1"}
    add_measured_samples(alloy, experimenter, 2, 12)
    many, sample_reads, body = detail(client, alloy)
    assert sample_reads == 1 and len(body["castings"]) == 12
    assert many == few, f"the API's alloy detail made {few} queries with 2 measured samples but {many} with 12"


def test_an_alloy_without_samples_has_no_castings(viewer):
    alloy, _ = services.get_or_create_alloy("Cu50Zr50")
    _, sample_reads, body = detail(token_client(viewer), alloy)
    assert sample_reads == 1 and body["samples"] == [] and body["castings"] == []


def test_property_values_and_samples_lists_answer_as_without_deferred_columns(viewer, experimenter):
    """The lists read only the columns they show of alloys, DSCs and samples: the same JSON as
    the serializers give on whole records, and no query per row for a column left out."""
    from rest_framework.request import Request
    from rest_framework.test import APIRequestFactory

    from lab import selectors
    from lab.models import PropertyValue, Sample
    from lab.serializers import PropertyValueSerializer, SampleSerializer

    client = token_client(viewer)
    alloy, _ = services.get_or_create_alloy("Zr55Cu30Al10Ni5", user=experimenter)
    add_measured_samples(alloy, experimenter, 0, 2)
    counts = []
    for stop in (2, 12):
        add_measured_samples(alloy, experimenter, 2, stop) if stop > 2 else None
        for path in ("/api/property-values/", "/api/samples/"):
            with CaptureQueriesContext(connection) as ctx:
                response = client.get(path)
            counts.append((path, len(ctx.captured_queries)))
            request = Request(APIRequestFactory().get(path))
            if path == "/api/property-values/":
                whole = PropertyValue.objects.select_related("alloy", "dsc__sample", "reference").order_by(
                    "alloy__formula", "created_at", "pk")
                expected = PropertyValueSerializer(whole, many=True, context={"request": request}).data
            else:
                whole = selectors.samples_with_measurements(Sample.objects.order_by("-created_at", "-pk"))
                expected = SampleSerializer(whole, many=True, context={"request": request}).data
            assert response.json()["results"] == expected
    assert counts[:2] == counts[2:], counts
