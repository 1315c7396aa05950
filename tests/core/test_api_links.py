"""core.api.IdentityLink gives the same "url" text as DRF's HyperlinkedIdentityField, which it
replaces on the busiest lists (it reverses once per request instead of once per row)."""

import json

import pytest
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from core.api import IdentityLink
from lab.models import Alloy, Sample
from lab.serializers import AlloySerializer, SampleSerializer
from tests.api.conftest import make_alloys

pytestmark = pytest.mark.django_db


class DrfAlloySerializer(AlloySerializer):
    url = serializers.HyperlinkedIdentityField(view_name="alloy-detail")


class DrfSampleSerializer(SampleSerializer):
    url = serializers.HyperlinkedIdentityField(view_name="sample-detail")


def request_for(path="/api/alloys/", **extra):
    return Request(APIRequestFactory().get(path, **extra))


def as_json(serializer_class, objects, request):
    return json.dumps(serializer_class(objects, many=True, context={"request": request}).data)


@pytest.mark.parametrize("path, extra", [
    ("/api/alloys/", {}),
    ("/api/alloys/?page=2&ordering=-tg_mean_k", {}),
    ("/api/alloys/?format=json", {}),  # DRF keeps ?format= on its links: so must this
    ("/api/alloys/", {"HTTP_HOST": "glass.example.org:8443", "wsgi.url_scheme": "https"}),
    ("/api/alloys/", {"SCRIPT_NAME": "/lab"}),
])
def test_alloy_and_sample_links_are_drfs_own(path, extra, settings):
    settings.ALLOWED_HOSTS = ["testserver", "glass.example.org"]
    make_alloys(3)
    alloys = list(Alloy.objects.order_by("pk"))
    samples = list(Sample.objects.select_related("alloy", "operator").order_by("pk"))
    for sample in samples:
        sample.xrds, sample.dscs = [], []
    request = request_for(path, **extra)
    ours = as_json(AlloySerializer, alloys, request)
    assert ours == as_json(DrfAlloySerializer, alloys, request_for(path, **extra))
    assert as_json(SampleSerializer, samples, request) == as_json(DrfSampleSerializer, samples, request_for(path, **extra))
    assert f'/api/alloys/{alloys[-1].pk}/' in ours


def test_the_links_follow_each_request(client):
    """One serializer per request: a second request's host is not the first's."""
    make_alloys(1)
    alloy = Alloy.objects.get()
    field = IdentityLink(view_name="alloy-detail")
    field.bind("url", serializers.Serializer(context={}))
    first = request_for(HTTP_HOST="127.0.0.1")
    second = request_for(HTTP_HOST="localhost")
    assert field.get_url(alloy, "alloy-detail", first, None) == f"http://127.0.0.1/api/alloys/{alloy.pk}/"
    assert field.get_url(alloy, "alloy-detail", second, None) == f"http://localhost/api/alloys/{alloy.pk}/"


def test_an_unsaved_record_has_no_link():
    field = IdentityLink(view_name="alloy-detail")
    field.bind("url", serializers.Serializer(context={}))
    assert field.get_url(Alloy(), "alloy-detail", request_for(), None) is None


def test_the_api_list_answers_with_them(viewer_client):
    make_alloys(2)
    body = viewer_client.get("/api/alloys/").json()
    assert [row["url"] for row in body["results"]] == [
        f"http://testserver/api/alloys/{pk}/" for pk in Alloy.objects.order_by("formula", "pk").values_list("pk", flat=True)
    ]
