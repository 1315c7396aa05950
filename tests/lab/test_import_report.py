"""The import report (issues 16 and 18): stored as rows, shown 100 a page with counts per
outcome, filtered by outcome and composition, downloadable whole as CSV; live progress from a
static script (no inline JavaScript); temperatures by the one display rule."""

import csv
import importlib
import io
import re

import pytest
from django.apps import apps
from django.core.files.base import ContentFile
from django.urls import reverse

from lab.importing import run_alloy_import
from lab.models import AlloyImport, ImportRow

COMBOS = [(a, b, 100 - a - b) for a in range(20, 60) for b in range(10, 40)]


def table():
    """235 rows: 200 new alloys, 10 repeats within 10 K (merged), 5 more than 10 K off
    (conflict), 20 refused (one a would-be spreadsheet formula)."""
    lines = ["composition,Tg_K,Tx_K,Tl_K"]
    for i, (a, b, c) in enumerate(COMBOS[:200]):
        tg = 623.15 if i == 0 else 600 + i % 50
        lines.append(f"Cu{a}Zr{b}Al{c},{tg},{tg + 60},{tg + 500}")
    for i, (a, b, c) in enumerate(COMBOS[1:16]):
        off = 3 if i < 10 else 40
        tg = 600 + (i + 1) % 50 + off
        lines.append(f"Cu{a}Zr{b}Al{c},{tg},{tg + 60},{tg + 500}")
    lines += [f"Qq{i}Zr50,600,660,1100" for i in range(19)]
    lines.append('"=HYPERLINK(""http://x.example"",""click"")",600,660,1100')
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture
def finished_import(experimenter, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    job = AlloyImport.objects.create(upload=ContentFile(table(), name="t.csv"), original_name="t.csv", created_by=experimenter)
    run_alloy_import(job.pk)
    job.refresh_from_db()
    assert job.status == "done", job.error
    assert job.counts == {"rows": 235, "created": 200, "merged": 10, "conflicts": 5, "refused": 20}
    return job


def _lines(page):
    """The line numbers of the report rows on a page, in order."""
    return [int(n) for n in re.findall(r'<tr>\s*<td class="num">(\d+)</td>', page)]


@pytest.mark.django_db
def test_report_rows_are_stored_not_kept_as_json(finished_import):
    assert finished_import.report == []
    assert finished_import.rows.count() == 235
    row = finished_import.rows.get(line=2)
    assert (row.outcome, row.formula, row.tg_k, row.alloy.formula) == ("created", row.alloy.formula, 623.15, row.alloy.formula)


@pytest.mark.django_db
def test_report_page_is_paginated_refused_first(experimenter_client, finished_import):
    url = reverse("lab:import_detail", args=[finished_import.pk])
    page = experimenter_client.get(url).content.decode()
    lines = _lines(page)
    assert len(lines) == 100
    assert lines[:20] == list(range(217, 237))  # the 20 refused rows, then the others in file order
    assert lines[20:] == list(range(2, 82))
    assert "page 1 of 3" in page
    last = experimenter_client.get(url + "?page=3").content.decode()
    assert len(_lines(last)) == 35
    # Counts per outcome, each a filter link.
    assert re.search(r'href="\?outcome=refused#rows">refused</a> 20', page)
    assert re.search(r'href="\?outcome=conflict#rows">conflict</a> 5', page)
    # Temperatures by the one display rule (623.15 K reads 623.2, as everywhere else).
    assert '<td class="num">623.2</td>' in page and "623.15" not in page


@pytest.mark.django_db
def test_report_filters_by_outcome_and_composition(experimenter_client, finished_import):
    url = reverse("lab:import_detail", args=[finished_import.pk])
    page = experimenter_client.get(url, {"outcome": "conflict"}).content.decode()
    assert _lines(page) == list(range(212, 217))
    assert page.count(">conflict</span>") == 5 and "<b>conflict</b>" in page
    # The merged repeats are Cu20Zr11Al69 … Cu20Zr20Al60 (lines 202–211); case does not matter.
    page = experimenter_client.get(url, {"outcome": "merged", "q": "cu20zr1"}).content.decode()
    assert _lines(page) == list(range(202, 211))
    assert 'name="outcome" value="merged"' in page  # the search keeps the outcome
    page = experimenter_client.get(url, {"outcome": "nonsense", "q": "Qq1"}).content.decode()
    assert set(_lines(page)) == {r.line for r in finished_import.rows.filter(composition__startswith="Qq1")}
    assert "No row matches." in experimenter_client.get(url, {"q": "Xe"}).content.decode()


@pytest.mark.django_db
def test_report_downloads_whole_as_csv(experimenter_client, finished_import):
    url = reverse("lab:import_detail", args=[finished_import.pk])
    response = experimenter_client.get(url, {"format": "csv"})
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"] == f'attachment; filename="import-{finished_import.pk}-report.csv"'
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    assert len(rows) == 235
    assert list(rows[0]) == ["line", "composition", "formula", "outcome", "reason", "alloy_id", "Tg_K", "Tx_K", "Tl_K"]
    formula_row = next(r for r in rows if "HYPERLINK" in r["composition"])
    assert formula_row["composition"].startswith("'=HYPERLINK")  # neutralised (core.exports)
    assert formula_row["outcome"] == "refused"
    refused = experimenter_client.get(url, {"format": "csv", "outcome": "refused"})
    assert len(list(csv.DictReader(io.StringIO(b"".join(refused.streaming_content).decode("utf-8-sig"))))) == 20


@pytest.mark.django_db
def test_page_has_no_inline_script_and_follows_the_job(experimenter_client, experimenter, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    job = AlloyImport.objects.create(upload=ContentFile(table(), name="t.csv"), original_name="t.csv", created_by=experimenter)
    page = experimenter_client.get(reverse("lab:import_detail", args=[job.pk])).content.decode()
    assert re.findall(r"<script(?![^>]*\bsrc=)", page) == []  # no inline script
    assert re.search(r'<script src="/static/js/job-progress\.js" defer>', page)
    assert f'data-job-url="/api/jobs/imports/{job.pk}/"' in page and 'data-job-reload="1"' in page
    assert 'class="job-progress"' in page and 'class="job-status"' in page
    assert experimenter_client.get(f"/api/jobs/imports/{job.pk}/").json()["status"] == "queued"
    run_alloy_import(job.pk)
    page = experimenter_client.get(reverse("lab:import_detail", args=[job.pk])).content.decode()
    assert "data-job-url" not in page and "job-progress.js" not in page and "<script" not in page


@pytest.mark.django_db
def test_dry_run_report_is_stored_without_alloys(experimenter, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    job = AlloyImport.objects.create(upload=ContentFile(table(), name="t.csv"), original_name="t.csv", created_by=experimenter,
                                     dry_run=True)
    run_alloy_import(job.pk)
    job.refresh_from_db()
    assert job.status == "done" and job.rows.count() == 235
    assert not job.rows.filter(alloy__isnull=False).exists()
    assert job.rows.get(line=2).formula  # parsed, though not saved


@pytest.mark.django_db
def test_migration_moves_json_reports_into_rows(experimenter, finished_import):
    migration = importlib.import_module("lab.migrations.0009_import_rows")
    alloy_id = finished_import.rows.get(line=2).alloy_id
    old = AlloyImport.objects.create(original_name="old.csv", created_by=experimenter, report=[
        {"line": 2, "composition": "Cu50Zr50", "formula": "Cu50Zr50", "outcome": "created", "reason": "New alloy.", "alloy_id": alloy_id},
        {"line": 3, "composition": "Qq", "outcome": "refused", "reason": "unknown element", "alloy_id": None},
        {"line": 4, "composition": "Cu50Zr50", "outcome": "merged", "reason": "x", "alloy_id": 10**9},  # alloy since gone
    ])
    migration.move_reports(apps, None)
    old.refresh_from_db()
    assert old.report == []
    assert list(ImportRow.objects.filter(alloy_import=old).values_list("line", "outcome", "alloy_id")) == [
        (2, "created", alloy_id), (3, "refused", None), (4, "merged", None)]
