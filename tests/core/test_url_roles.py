"""One role rule on every page and API route, walked from the URL map (so no new page is missed).

A logged-in user with no role is refused (403) everywhere but the login, logout, admin (its own
staff rule), static files and the public API token/schema/docs; every other role implies viewer;
the 403 and 404 pages use the site's layout and the 403 says whom to ask for a role.
"""

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, resolve, reverse

pytestmark = pytest.mark.django_db

# Routes outside the role rule: logging in and out, the admin (staff only), public API pages.
PUBLIC_NAMES = {"login", "logout", "api-token", "api-schema", "api-docs", "api-not-found"}
PUBLIC_PREFIXES = ("/admin/", "/static/", "/media/")
# Values for path parameters by name (anything else numeric: 1; text: x).
PARAM_VALUES = {"fmt": "csv", "action": "cancel", "format": "json", "kind": "imports"}


def _walk(patterns, prefix="/", namespace=""):
    """(url pattern text, route name with namespace) for every route, includes flattened."""
    for p in patterns:
        if isinstance(p, URLResolver):
            ns = f"{namespace}{p.namespace}:" if p.namespace else namespace
            yield from _walk(p.url_patterns, prefix + str(p.pattern), ns)
        elif isinstance(p, URLPattern):
            yield prefix + str(p.pattern), (namespace + p.name) if p.name else None


def _concrete(text):
    """A URL for a route: path converters and regex groups replaced by values."""

    def value(name, numeric):
        return PARAM_VALUES.get(name, "1" if numeric else "x")

    url = text.replace("^", "").replace("$", "").replace("\\.", ".").replace("/?", "/")
    url = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: value(m.group(1), True), url)
    url = re.sub(r"<(?:(\w+):)?(\w+)>", lambda m: value(m.group(2), m.group(1) in ("int", None)), url)
    return url.replace("//", "/")


def protected_routes():
    routes = {}
    for text, name in _walk(get_resolver().url_patterns):
        url = _concrete(text)
        if name in PUBLIC_NAMES or (name or "").endswith(":api-not-found") or url.startswith(PUBLIC_PREFIXES):
            continue
        routes.setdefault(url, name or url)
    return sorted((name, url) for url, name in routes.items())


ROUTES = protected_routes()


def test_the_walk_finds_every_app_and_the_api():
    names = {name for name, _ in ROUTES}
    for expected in ("home", "lab:alloy_list", "lab:alloy_export", "lab:import_action", "mining:review_queue",
                     "mining:record_approve", "design:campaign_list", "design:round_action", "design:candidate_start",
                     "ml:model_list", "ml:run_curves", "ml:version_activate", "alloy-list", "api-predict",
                     # model versions and training runs in the API (issue 16)
                     "model-version-list", "model-version-detail", "model-version-activate", "training-run-list",
                     "training-run-detail",
                     "literature-source-list", "extraction-batch-approve-clean", "extracted-record-approve",
                     # lab corrections (issue 18): pages and API
                     "lab:correct_sample", "lab:retract_sample", "lab:retract_xrd", "lab:correct_dsc", "lab:retract_dsc",
                     "lab:correct_value", "lab:retract_value", "lab:resolve_conflict", "sample-correct", "sample-retract",
                     "sample-history", "xrd-measurement-retract", "xrd-measurement-history", "dsc-measurement-correct",
                     "dsc-measurement-retract", "dsc-measurement-history", "property-value-correct",
                     "property-value-retract", "property-value-resolve", "property-value-history",
                     # design actions in the API (issue 16)
                     "design-campaign-generate", "design-campaign-close", "design-round-list", "design-round-detail", "design-candidate-approve",
                     "design-candidate-reject", "design-candidate-start-synthesis", "design-candidate-sample"):
        assert expected in names, expected
    for name in ("login", "logout", "api-token", "api-schema"):
        assert name not in names
    assert not any(url.startswith("/admin/") for _, url in ROUTES)
    assert len(ROUTES) >= 60, len(ROUTES)
    for name, url in ROUTES:  # each concrete URL reaches its own route
        match = resolve(url)
        assert (match.view_name or url) == name, (name, url, match.view_name)


@pytest.mark.parametrize("name,url", ROUTES)
def test_a_user_without_a_role_is_refused_everywhere(client, make_user, name, url):
    """GET and POST: 403 for each method the route accepts (405 for the one it does not), never content."""
    client.force_login(make_user("noone"))
    answers = {}
    for method in ("get", "post"):
        response = getattr(client, method)(url)
        answers[method] = response.status_code
        assert response.status_code in (403, 405), (name, url, method, response.status_code)
    assert 403 in answers.values(), (name, url, answers)


# ---------------------------------------------------------------- every role implies viewer


def test_every_role_implies_viewer(make_user):
    from core.roles import has_role, user_roles

    for role in ("experimenter", "reviewer", "approver"):
        user = make_user(f"only-{role}", role)
        assert user_roles(user) == {role, "viewer"}
        assert has_role(user, "viewer")
    assert user_roles(make_user("noone")) == set()


def test_a_reviewer_alone_reaches_home_and_the_review_queue(client, make_user):
    client.force_login(make_user("rhys", "reviewer"))
    response = client.get("/", follow=True)
    assert response.status_code == 200
    assert response.redirect_chain == [] and 'id="dash-review"' in response.content.decode()  # the dashboard
    assert client.get(reverse("mining:review_queue")).status_code == 200


@pytest.mark.parametrize("role", ["experimenter", "approver"])
def test_experimenters_and_approvers_alone_read_alloys_design_and_models(client, make_user, role):
    client.force_login(make_user(f"only-{role}", role))
    for url in (reverse("lab:alloy_list"), reverse("lab:alloy_export", args=["csv"]), reverse("design:campaign_list"),
                reverse("ml:model_list"), "/api/alloys/"):
        assert client.get(url).status_code == 200, url


# ---------------------------------------------------------------- the 403 and 404 pages


def test_403_page_uses_the_layout_and_names_the_admins(client, make_user, django_user_model):
    django_user_model.objects.create_superuser("boss", password="pw-glassloop-1")
    django_user_model.objects.create_superuser("alice", password="pw-glassloop-1")
    client.force_login(make_user("noone"))
    response = client.get("/")
    assert response.status_code == 403
    html = response.content.decode()
    assert "<nav>" in html and 'class="topbar"' in html and reverse("lab:alloy_list") in html
    assert "has no role yet" in html and "viewer" in html
    assert "alice, boss" in html


def test_403_page_without_superusers_says_an_administrator(client, make_user):
    client.force_login(make_user("vera", "viewer"))
    response = client.get(reverse("lab:log_experiment"))
    assert response.status_code == 403
    html = response.content.decode()
    assert "<nav>" in html
    assert "This needs the experimenter role." in html and "Your roles: viewer." in html
    assert "ask an administrator" in html


def test_404_page_uses_the_layout(client, make_user, settings):
    settings.DEBUG = False
    client.force_login(make_user("vera", "viewer"))
    response = client.get("/lab/nothing-here/")
    assert response.status_code == 404
    html = response.content.decode()
    assert "<nav>" in html and "Page not found" in html and "/lab/nothing-here/" in html
    anonymous = client.__class__().get("/nowhere/")
    assert anonymous.status_code == 404 and "Page not found" in anonymous.content.decode()
