"""The Django admin under the site's Content-Security-Policy (no inline script, no inline style).

A superuser opens, for every model registered in the admin, its list, its add form, and the
change form and history of one stored row, and the export page of the models that offer one.
Each page must carry the site's policy, have nothing blocked by it (the page's own
securitypolicyviolation events and Chromium's console) and log no console error. The packages'
few inline styles and handlers are cut by templates/admin/import_export/export.html and
templates/simple_history/object_history.html.
"""

import pytest
from django.contrib import admin
from django.urls import reverse

from core.middleware import SITE_POLICY

from .test_every_page import policy_problems, seed_design, seed_lab, seed_mining, site_csp  # noqa: F401 (a fixture)

pytestmark = pytest.mark.browser


def admin_pages():
    """(label, path) of every admin page the crawl opens, from the admin's own registry."""
    pages = [("index", reverse("admin:index"))]
    for model, model_admin in sorted(admin.site._registry.items(), key=lambda kv: kv[0]._meta.label):
        opts = model._meta
        name = f"admin:{opts.app_label}_{opts.model_name}"
        pages.append((f"{opts.label} list", reverse(f"{name}_changelist")))
        if model_admin.has_add_permission(_superuser_request()):
            pages.append((f"{opts.label} add", reverse(f"{name}_add")))
        row = model.objects.order_by("pk").first()
        if row is not None:
            pages.append((f"{opts.label} change", reverse(f"{name}_change", args=[row.pk])))
            pages.append((f"{opts.label} history", reverse(f"{name}_history", args=[row.pk])))
        if hasattr(model_admin, "export_action") or hasattr(model_admin, "get_export_resource_classes"):
            pages.append((f"{opts.label} export", reverse(f"{name}_export")))
    return pages


def _superuser_request():
    from django.contrib.auth import get_user_model
    from django.test import RequestFactory

    request = RequestFactory().get("/admin/")
    request.user = get_user_model().objects.get(username="sudo")
    return request


def test_every_admin_page_passes_the_site_policy(page, live_server, login, superuser, small_models, memory_broker,
                                                  site_csp):
    seed_lab(superuser)
    seed_mining(superuser)
    seed_design(superuser)
    login("sudo")
    pages = admin_pages()
    problems, seen = [], set()
    for label, path in pages:
        page.console_errors.clear()
        response = page.goto(live_server.url + path)
        page.wait_for_load_state("load")
        page.wait_for_timeout(50)
        seen.add(label.rsplit(" ", 1)[-1])
        if response.status != 200:
            problems.append(f"{label} {path}: HTTP {response.status}")
        problems += [f"{label} {path}: {p}" for p in policy_problems(page, response, SITE_POLICY)]
        problems += [f"{label} {path}: console {e}" for e in page.console_errors]
    assert problems == [], "\n".join(problems)
    # the crawl reached each kind of page, the two that needed their inline styles cut included
    assert {"index", "list", "add", "change", "history", "export"} <= seen, seen
    assert len(pages) > 40, len(pages)
