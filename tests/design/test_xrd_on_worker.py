"""A candidate's XRD result arrives when the worker has analysed its pattern (issue 16): a
pattern still pending neither validates nor fails the candidate; its analysis does, once."""

import pytest

from design import services
from design.models import Candidate
from lab import services as lab_services
from lab.models import XRDMeasurement
from tests.lab.xrd_helpers import run_xrd_analyses

from .conftest import xrd_upload
from .test_approval import make_candidate

pytestmark = pytest.mark.usefixtures("xrd_on_worker")

TARGETS = {"tg_k": {"min": 680}, "trg": {"min": 0.58}}


@pytest.fixture
def rod(campaign_factory, approver, experimenter):
    """An approved candidate cast as a 3 mm rod with a DSC meeting its targets: only the XRD is missing."""
    c = services.approve_candidate(make_candidate(campaign_factory(targets=TARGETS)), user=approver)
    c = services.update_synthesis_sample(c, user=experimenter, diameter_mm=3.0)
    lab_services.record_dsc(c.sample, user=experimenter, tg_k=702, tx_k=770, tl_k=1130)
    return Candidate.objects.get(pk=c.pk)


@pytest.mark.parametrize("kind, then", [("amorphous", Candidate.Status.VALIDATED), ("crystalline", Candidate.Status.FAILED)])
def test_a_pending_pattern_decides_nothing_until_the_worker_has_analysed_it(rod, experimenter, kind, then):
    assert rod.status == Candidate.Status.IN_SYNTHESIS
    lab_services.record_xrd(rod.sample, user=experimenter, uploaded_file=xrd_upload(kind, seed=4))
    c = Candidate.objects.get(pk=rod.pk)
    assert XRDMeasurement.objects.get().analysis_status == "pending"
    assert c.status == Candidate.Status.IN_SYNTHESIS and c.xrd_verdict == ""
    glass, _ = c.validation_parts()
    assert glass.state == "pending" and "awaiting XRD" in glass.text  # never "crystalline" for a pending one

    assert [j.status for j in run_xrd_analyses()] == ["done"]  # the worker's analysis
    c = Candidate.objects.get(pk=rod.pk)
    assert c.xrd_verdict == kind and c.status == then
    assert list(c.events.values_list("to_status", flat=True)).count(then) == 1


def test_an_unreadable_pattern_leaves_the_candidate_in_synthesis(rod, experimenter):
    from unittest import mock

    from lab.patterns import PatternError

    lab_services.record_xrd(rod.sample, user=experimenter, uploaded_file=xrd_upload("crystalline"))
    with mock.patch("lab.patterns.analyse_xrd_file", side_effect=PatternError("No peak found")):
        assert [j.status for j in run_xrd_analyses()] == ["failed"]
    c = Candidate.objects.get(pk=rod.pk)
    assert c.status == Candidate.Status.IN_SYNTHESIS and c.xrd_verdict == ""
