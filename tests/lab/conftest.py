"""Fixtures of the lab tests."""

import pytest

from tests.lab import xrd_helpers

# the fixtures of tests/lab/xrd_helpers.py, here for these tests
xrd_analysed_at_once, xrd_on_worker = xrd_helpers.xrd_analysed_at_once, xrd_helpers.xrd_on_worker


@pytest.fixture(autouse=True)
def _xrd_analysed_at_once(xrd_analysed_at_once):
    """Recorded patterns are analysed at once (tests/lab/xrd_helpers.py); ``xrd_on_worker`` undoes it."""
