"""The import page in Chromium under the site's policy: live progress from the static
job-progress.js (no inline script), then the report, filtered by a click on an outcome."""

import pytest
from django.core.files.base import ContentFile

from lab.importing import run_alloy_import
from lab.models import AlloyImport
from tests.lab.test_import_report import table

from .test_every_page import policy_problems, site_csp  # noqa: F401 (a fixture)

pytestmark = pytest.mark.browser


def test_import_page_follows_the_job_then_filters_the_report(page, live_server, login, superuser, site_csp, settings, tmp_path):  # noqa: F811
    settings.MEDIA_ROOT = tmp_path / "media"
    job = AlloyImport.objects.create(upload=ContentFile(table(), name="t.csv"), original_name="t.csv", created_by=superuser)
    login("sudo")
    response = page.goto(f"{live_server.url}/lab/imports/{job.pk}/")
    assert page.inner_text("#import-status .job-status") == "Queued"

    AlloyImport.objects.filter(pk=job.pk).update(status="running", progress=0.4, message="reading row 201 of 235")
    page.wait_for_function("() => document.querySelector('#import-status .job-status').textContent === 'Running'", timeout=10_000)
    assert page.inner_text("#import-status .job-message") == "reading row 201 of 235"
    assert page.eval_on_selector("#import-status .job-progress", "el => el.value") == pytest.approx(0.4)

    AlloyImport.objects.filter(pk=job.pk).update(status="queued", progress=0, message="")
    run_alloy_import(job.pk)  # the worker's run; the page reloads by itself once it has finished
    page.wait_for_selector("table.import-rows", timeout=15_000)
    assert "235 rows: 200 created, 10 merged, 5 conflicts, 20 refused" in page.inner_text("#status-counts")
    assert page.locator("table.import-rows tbody tr").count() == 100
    assert "page 1 of 3" in page.inner_text("nav.pagination")

    with page.expect_navigation():
        page.click("nav.outcomes >> text=conflict")
    assert page.locator("table.import-rows tbody tr").count() == 5
    assert set(page.locator("table.import-rows tbody tr td:nth-child(3)").all_inner_texts()) == {"conflict"}
    assert policy_problems(page, response, site_csp) == [] and page.console_errors == []
