"""The 404 page, in the site's layout, says whom to ask (issue 18); the 403 page's tests are in
tests/core/test_url_roles.py."""

import pytest

pytestmark = pytest.mark.django_db


def test_404_page_names_the_administrators(client, make_user, django_user_model, settings):
    settings.DEBUG = False
    django_user_model.objects.create_superuser("boss", password="pw-glassloop-1")
    client.force_login(make_user("vera", "viewer"))
    response = client.get("/design/99999/")
    assert response.status_code == 404
    html = response.content.decode()
    assert "<nav>" in html and "Page not found" in html
    assert "ask the site's administrators: <strong>boss</strong>" in html


def test_404_page_for_someone_not_logged_in_names_nobody(client, django_user_model, settings):
    settings.DEBUG = False
    django_user_model.objects.create_superuser("boss", password="pw-glassloop-1")
    html = client.get("/nowhere/").content.decode()
    assert "Page not found" in html and "boss" not in html
