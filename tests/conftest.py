"""Shared fixtures: users in each role, logged-in clients."""

import pytest
from django.test import Client

from core.roles import ALL_ROLES, assign_role

# Recorded XRD patterns analysed in-process, or left to the worker (tests/lab/xrd_helpers.py);
# the lab, api, design and browser tests analyse at once by default (their conftest's autouse).
from tests.lab.xrd_helpers import xrd_analysed_at_once, xrd_on_worker  # noqa: F401 (fixtures)


@pytest.fixture
def make_user(django_user_model):
    def make(username, *roles, password="pw-glassloop-1"):
        user = django_user_model.objects.create_user(username=username, password=password)
        for role in roles:
            assign_role(user, role)
        return user

    return make


@pytest.fixture
def viewer(make_user):
    return make_user("vera", "viewer")


@pytest.fixture
def experimenter(make_user):
    return make_user("erin", "viewer", "experimenter")


@pytest.fixture
def reviewer(make_user):
    return make_user("rhys", "viewer", "reviewer")


@pytest.fixture
def approver(make_user):
    return make_user("ada", "viewer", "approver")


def logged_in(user):
    """A client of its own for one user: two role clients in one test are two sessions, not
    one client logged in as whichever fixture ran last."""
    c = Client()
    c.force_login(user)
    return c


@pytest.fixture
def viewer_client(viewer):
    return logged_in(viewer)


@pytest.fixture
def experimenter_client(experimenter):
    return logged_in(experimenter)


@pytest.fixture
def reviewer_client(reviewer):
    return logged_in(reviewer)


@pytest.fixture
def approver_client(approver):
    return logged_in(approver)


@pytest.fixture
def all_roles():
    return ALL_ROLES


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    """Uploads go to a per-test folder (never var/media); test users hash quickly."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.GLASSLOOP_KEPT_UPLOADS_DIR = tmp_path / "kept-uploads"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # No job heartbeat thread in tests: its own connection cannot write into a test's open
    # transaction (SQLite locks). Real-worker tests run workers with their own settings.
    settings.GLASSLOOP_JOB_HEARTBEAT_SECONDS = 0
    return settings.MEDIA_ROOT
