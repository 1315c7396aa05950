"""base.html's navigation comes from core.context_processors.nav, reversed once per URL
configuration and script prefix: the same links as {% url %}, under a script prefix too."""

import re

import pytest
from django.urls import reverse, set_script_prefix

from core.context_processors import NAV_URLS
from core.roles import ALL_ROLES

pytestmark = pytest.mark.django_db


def nav_links(html):
    nav = re.search(r"<nav>(.*?)</nav>", html, re.S).group(1)
    return re.findall(r'href="([^"]+)"', nav)


def test_the_nav_links_are_the_url_names_reversed(client, make_user, all_roles):
    user = make_user("staffer", *all_roles)
    user.is_staff = True
    user.save()
    client.force_login(user)
    links = nav_links(client.get("/").content.decode())
    expected = [reverse(name) for name in NAV_URLS.values() if name != "logout"]
    assert sorted(links) == sorted(expected)


def test_the_nav_follows_the_script_prefix(client, make_user, all_roles):
    client.force_login(make_user("mounted", *all_roles))
    plain = nav_links(client.get("/").content.decode())
    set_script_prefix("/glassloop/")  # as the WSGI handler does for SCRIPT_NAME=/glassloop
    try:
        mounted = nav_links(client.get("/").content.decode())
    finally:
        set_script_prefix("/")
    assert mounted == ["/glassloop" + link for link in plain]
    assert nav_links(client.get("/").content.decode()) == plain  # and back


class _ReversedSet(set):
    """A set that iterates in the reverse of ALL_ROLES, as another process's hash seed may."""

    def __iter__(self):
        return iter(sorted(super().__iter__(), key=ALL_ROLES.index, reverse=True))


def test_the_header_lists_roles_in_one_order_in_every_process(client, make_user, monkeypatch):
    from core import context_processors

    client.force_login(make_user("two-roles", "viewer", "reviewer"))
    monkeypatch.setattr(context_processors, "user_roles", lambda user: _ReversedSet({"viewer", "reviewer"}))
    html = client.get("/").content.decode()
    assert "two-roles · viewer, reviewer" in html and "reviewer, viewer" not in html
