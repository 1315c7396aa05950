"""XRD patterns are analysed on the worker (lab.XRDAnalysis, issue 16). Tests that record a
pattern and then look at its verdict run that analysis in-process, with the same service the
worker calls (lab.services.analyse_xrd), instead of weakening what they assert:

* ``xrd_analysed_at_once`` (autouse in tests/lab, tests/api, tests/design): record_xrd and
  log_experiment behave as with ``analyse_now=True``: the measurement is committed "pending",
  then analysed in this process, as a worker would right after the commit. The request's own
  part (the peek, the 202, "pending") is shown by tests that use ``xrd_on_worker``.
* ``xrd_on_worker``: undoes that, so the analysis waits queued until ``run_xrd_analyses()``.
"""

import functools

import pytest

from lab import services
from lab.models import XRDAnalysis

_RECORD_XRD, _LOG_EXPERIMENT = services.record_xrd, services.log_experiment


def run_xrd_analyses():
    """Run every queued XRD analysis as the worker would; returns the jobs as they ended."""
    return [services.analyse_xrd(pk) for pk in XRDAnalysis.objects.filter(status="queued").order_by("pk").values_list("pk", flat=True)]


@pytest.fixture
def xrd_analysed_at_once(monkeypatch):
    monkeypatch.setattr(services, "record_xrd", functools.partial(_RECORD_XRD, analyse_now=True))
    monkeypatch.setattr(services, "log_experiment", functools.partial(_LOG_EXPERIMENT, analyse_now=True))


@pytest.fixture
def xrd_on_worker(monkeypatch):
    monkeypatch.setattr(services, "record_xrd", _RECORD_XRD)
    monkeypatch.setattr(services, "log_experiment", _LOG_EXPERIMENT)
