"""Fixtures of the lab tests."""

import pytest


@pytest.fixture(autouse=True)
def _xrd_analysed_at_once(xrd_analysed_at_once):
    """Recorded patterns are analysed at once (tests/lab/xrd_helpers.py); ``xrd_on_worker`` undoes it."""
