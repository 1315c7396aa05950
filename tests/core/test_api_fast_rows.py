"""core.api.FastRepresentation answers exactly what DRF's Serializer.to_representation does, on
the lab serializers that use it (alloys, samples, property values and their references)."""

import json

import pytest
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from core.api import FastRepresentation
from lab import selectors, services
from lab.models import PropertyValue, Reference, Sample
from lab.serializers import AlloyDetailSerializer, AlloySerializer, PropertyValueSerializer, SampleSerializer
from tests.api.conftest import make_alloys
from tests.perf.test_detail_query_counts import add_measured_samples

pytestmark = pytest.mark.django_db


@pytest.fixture
def records(experimenter):
    alloys = make_alloys(3, user=experimenter)
    add_measured_samples(alloys[0], experimenter, 0, 2)  # DSC values: "sample" is a method field
    bare, _ = services.get_or_create_alloy("Pd40Ni40P20")  # no values: every mean is null
    PropertyValue.objects.create(alloy=bare, origin=PropertyValue.Origin.LITERATURE, tg_k=575, tx_k=650,
                                 reference=Reference.objects.create(doi="10.1000/xyz", year=1999, title="A paper"))
    PropertyValue.objects.create(alloy=bare, origin=PropertyValue.Origin.LITERATURE, tg_k=580, tx_k=655, tl_k=None,
                                 source_label="a handbook")  # no reference at all
    Sample.objects.create(alloy=bare, label="no-operator")


def both(serializer_class, objects, monkeypatch):
    """(DRF's JSON, FastRepresentation's JSON) of ``objects``."""
    request = Request(APIRequestFactory().get("/api/alloys/"))

    def dump():
        return json.dumps(serializer_class(objects, many=True, context={"request": request}).data)

    with monkeypatch.context() as patch:
        patch.setattr(FastRepresentation, "to_representation", serializers.Serializer.to_representation)
        drf = dump()
    return drf, dump()


def test_alloys_as_drf_writes_them(records, monkeypatch):
    alloys = list(selectors.alloy_list())
    drf, fast = both(AlloySerializer, alloys, monkeypatch)
    assert fast == drf and '"tl_mean_k": null' in fast


def test_alloy_details_as_drf_writes_them(records, monkeypatch):
    alloys = [selectors.alloy_detail(a.pk) for a in selectors.alloy_list()]
    drf, fast = both(AlloyDetailSerializer, alloys, monkeypatch)
    assert fast == drf and '"castings": [{' in fast


def test_samples_as_drf_writes_them(records, monkeypatch):
    samples = list(selectors.samples_with_measurements(Sample.objects.order_by("-created_at", "-pk")))
    drf, fast = both(SampleSerializer, samples, monkeypatch)
    assert fast == drf and '"operator": null' in fast


def test_property_values_with_their_references_as_drf_writes_them(records, monkeypatch):
    values = list(PropertyValue.objects.select_related("alloy", "dsc__sample", "reference").order_by("pk"))
    drf, fast = both(PropertyValueSerializer, values, monkeypatch)
    assert fast == drf
    assert '"reference": null' in fast and '"text": "' in fast and '"sample": {"id": ' in fast


class Thing:
    """Not a model: every field goes DRF's way."""

    name = "x"

    def shout(self):
        return "X"


class ThingSerializer(FastRepresentation, serializers.Serializer):
    name = serializers.CharField()
    shout = serializers.CharField()
    missing = serializers.CharField(required=False)


def test_anything_but_a_model_goes_drfs_way():
    assert ThingSerializer(Thing()).data == {"name": "x", "shout": "X"}
    assert ThingSerializer({"name": "y", "shout": "Y"}).data == {"name": "y", "shout": "Y"}
