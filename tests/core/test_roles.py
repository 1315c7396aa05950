"""core.roles reads a user's roles with one plain SQL statement per request (the ORM's query
cost ~0.8 ms of CPU to build on every request); it must say exactly what the groups say, and a
role granted or removed must count from the next request on."""

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core.roles import ALL_ROLES, REVIEWER, VIEWER, _held_roles, assign_role, user_roles

pytestmark = pytest.mark.django_db


def test_the_roles_are_the_role_groups_the_user_is_in(make_user):
    user = make_user("mia", "experimenter", "approver")
    user.groups.add(Group.objects.create(name="coffee club"))  # not a role
    make_user("other", "reviewer")  # someone else's roles stay theirs
    orm = set(user.groups.filter(name__in=ALL_ROLES).values_list("name", flat=True))
    assert _held_roles(user) == orm == {"experimenter", "approver"}
    assert user_roles(user) == {"experimenter", "approver", VIEWER}


def test_a_user_without_groups_holds_no_role(make_user):
    user = make_user("nobody")
    assert _held_roles(user) == set()
    assert user_roles(user) == set()


def test_the_roles_are_read_once_per_request_object(make_user):
    user = make_user("olga", "reviewer")
    with CaptureQueriesContext(connection) as ctx:
        assert user_roles(user) == {REVIEWER, VIEWER}
        assert user_roles(user) == {REVIEWER, VIEWER}
    assert len(ctx.captured_queries) == 1


def test_a_removed_role_counts_from_the_next_request(client, make_user):
    user = make_user("rita", "reviewer")
    client.force_login(user)
    assert client.get("/mining/review/").status_code == 200
    user.groups.remove(Group.objects.get(name=REVIEWER))
    assert client.get("/mining/review/").status_code == 403
    assign_role(user, REVIEWER)
    assert client.get("/mining/review/").status_code == 200


def test_a_renamed_group_is_no_longer_the_role(client, make_user):
    user = make_user("sam", "reviewer")
    client.force_login(user)
    Group.objects.filter(name=REVIEWER).update(name="former reviewers")
    assert client.get("/mining/review/").status_code == 403


def test_two_role_clients_in_one_test_are_two_sessions(viewer_client, experimenter_client, viewer, experimenter):
    # the conftest gives each role its own client; one shared client would be logged in as
    # whichever fixture ran last, and a "viewer is refused" test would run as someone else
    assert viewer_client is not experimenter_client
    assert viewer_client.get("/").wsgi_request.user == viewer
    assert experimenter_client.get("/").wsgi_request.user == experimenter
