"""The home page is a dashboard of what needs doing, per role (core.views.home).

Every count a viewer may read is shown and links to where it is done; the roles that import see
the recent imports; a live training run shows a progress bar that polls the job API
(static/js/job-progress.js); once a model is active, "Design candidates" links to a new
campaign; a user with no role gets the styled 403 page that says whom to ask.
"""

import io
import re
from datetime import timedelta

import pytest
from django.db import models
from django.urls import reverse
from django.utils import timezone

from design.models import Candidate, DesignCampaign, GenerationRound
from lab.importing import import_alloys
from lab.models import AlloyImport
from training.models import ModelVersion, TrainingRun

pytestmark = pytest.mark.django_db

ROWS = [
    {"composition": "Cu46Zr46Al8", "Tg_K": "705", "Tx_K": "780", "Tl_K": "1160"},
    {"composition": "Pd40Ni40P20", "Tg_K": "575", "Tx_K": "650", "Tl_K": "990"},
    {"composition": "Zr65Al7.5Ni10Cu17.5", "Tg_K": "652", "Tx_K": "735", "Tl_K": "1168"},
    {"composition": "Mg65Cu25Y10", "Tg_K": "", "Tx_K": "", "Tl_K": ""},
]


def html_of(client):
    response = client.get("/")
    assert response.status_code == 200
    return response.content.decode()


def section(html, section_id):
    """The inner HTML of one dashboard section (<section id=...>...</section>)."""
    match = re.search(rf'<section[^>]*id="{section_id}"[^>]*>(.*?)</section>', html, re.S)
    assert match, f"no section #{section_id}"
    return match.group(1)


def text(fragment):
    return " ".join(re.sub(r"<[^>]+>", " ", fragment).split())


def todo_list(html):
    match = re.search(r'<div class="card dash-todo-list" id="dash-todo">(.*?)</div>', html, re.S)
    assert match, "no to-do list"
    return match.group(1)


def candidate_steps(design):
    """{status: the text of its line} of the dashboard's candidate steps."""
    return {m.group(1): text(m.group(2)) for m in re.finditer(r'<li id="candidates-([a-z_]+)">(.*?)</li>', design, re.S)}


def version(**fields):
    values = dict(artefact_dir="v", snapshot_hash="a" * 64, snapshot_taken_at=timezone.now(), data_size=123)
    values.update(fields)
    return ModelVersion.objects.create(**values)


def run(status, **fields):
    values = dict(snapshot_hash=f"{status}-{TrainingRun.objects.count()}", snapshot_path="s.csv",
                  snapshot_taken_at=timezone.now(), status=status, epochs=100)
    values.update(fields)
    return TrainingRun.objects.create(**values)


def _filled(model, **given):
    """A row of ``model`` with every required plain field filled (schemas grow; tests should not)."""
    for field in model._meta.concrete_fields:
        if field.name in given or field.primary_key or field.null or field.has_default() or isinstance(field, models.ForeignKey):
            continue
        if getattr(field, "auto_now_add", False) or getattr(field, "auto_now", False):
            continue
        if isinstance(field, models.JSONField):
            given[field.name] = {}
        elif isinstance(field, (models.FloatField, models.IntegerField)):
            given[field.name] = 1
        elif isinstance(field, models.CharField):
            given[field.name] = "x"
    return model.objects.create(**given)


def candidates(statuses):
    """Candidates in the given statuses, in one open campaign."""
    active = ModelVersion.objects.filter(status="active").first() or version(status="active")
    campaign = DesignCampaign.objects.create(name="Zr-based, high Tg", targets={"tg_k": {"min": 650}})
    gen_round = GenerationRound.objects.create(campaign=campaign, number=1, model_version=active, status="done")
    for i, status in enumerate(statuses, start=1):
        _filled(Candidate, campaign=campaign, generation_round=gen_round, model_version=active, number=i, rank=i,
                composition_key=f"Zr{60 + i}Cu{40 - i}", formula=f"Zr{60 + i}Cu{40 - i}",
                fractions={"Zr": (60 + i) / 100, "Cu": (40 - i) / 100}, status=status)
    return campaign


def pending_records(n):
    from mining import services as mining_services

    lines = ["composition,Tg_K,Tx_K,Tl_K,source,doi,snippet"]
    lines += [f'Cu{47 + i}Zr{45 - i}Al8,{700 + i},{775 + i},{1150 + i},Smith 2020,,"Tg = {700 + i} K"' for i in range(n)]
    mining_services.import_extracted(io.StringIO("\n".join(lines) + "\n"), batch_name="dashboard batch")


# ---------------------------------------------------------------- per role


def test_viewer_sees_the_counts_each_linking_where_it_is_done(client, viewer):
    import_alloys(ROWS, source_label="dashboard test")
    pending_records(2)
    campaign = candidates(["proposed", "proposed", "proposed", "approved_for_synthesis", "in_synthesis", "validated"])
    client.force_login(viewer)
    html = html_of(client)

    data = text(section(html, "dash-data"))
    assert "4 alloys" in data and "3 with Tg, Tx and Tl" in data
    assert reverse("lab:alloy_list") in section(html, "dash-data")

    review = section(html, "dash-review")
    assert "2 extracted records waiting for review" in text(review)
    assert reverse("mining:review_queue") in review
    assert "reviewers approve them" in text(review)  # a viewer reads, a reviewer acts

    design = section(html, "dash-design")
    steps = candidate_steps(design)
    assert steps["proposed"].startswith("3 awaiting approval")
    assert steps["approved_for_synthesis"].startswith("1 awaiting synthesis")
    assert steps["in_synthesis"].startswith("1 awaiting XRD or DSC")
    assert "yours to do" not in design  # nothing is a viewer's to do
    assert text(todo_list(html)) == "Nothing waits for you right now."
    assert campaign.get_absolute_url() in design

    # Imports are the experimenters' (their pages need that role): a viewer is not shown them.
    assert 'id="dash-imports"' not in html
    assert reverse("lab:import_list") not in html.split("<main>", 1)[1]
    # A viewer cannot start a campaign: no "Design candidates" button even with an active model.
    assert 'id="design-candidates"' not in html
    assert "needs the experimenter or approver role" in text(section(html, "dash-model"))


def test_each_role_sees_what_is_theirs_to_do(client, make_user):
    candidates(["proposed", "approved_for_synthesis"])
    approver = make_user("ada", "approver")
    client.force_login(approver)
    steps = candidate_steps(section(html_of(client), "dash-design"))
    assert "yours to do" in steps["proposed"] and "yours to do" not in steps["approved_for_synthesis"]

    experimenter = make_user("erin", "experimenter")
    client.force_login(experimenter)
    html = html_of(client)
    steps = candidate_steps(section(html, "dash-design"))
    assert "yours to do" not in steps["proposed"] and "yours to do" in steps["approved_for_synthesis"]
    assert "yours to do" not in steps["in_synthesis"]  # none is waiting there
    assert reverse("lab:log_experiment") in section(html, "dash-design")


def test_the_todo_list_names_each_roles_work_with_links(client, make_user):
    pending_records(2)
    candidates(["proposed", "proposed", "approved_for_synthesis", "in_synthesis"])
    expected = {
        "reviewer": [("Review 2 extracted records", reverse("mining:review_queue"))],
        "approver": [("Approve or reject 2 proposed candidates", reverse("design:campaign_list"))],
        "experimenter": [("Cast 1 approved candidate", reverse("design:campaign_list")),
                         ("Enter the XRD or DSC of 1 candidate in synthesis", reverse("lab:sample_list"))],
    }
    for role, items in expected.items():
        client.force_login(make_user(f"only-{role}", role))
        got = [(text(label), href) for href, label in re.findall(r'<li><a href="([^"]+)">(.*?)</a></li>', todo_list(html_of(client)))]
        assert got == [(label, href) for label, href in items], role


def test_experimenter_sees_recent_imports_with_links(client, experimenter):
    from django.core.files.base import ContentFile

    job = AlloyImport.objects.create(upload=ContentFile(b"composition\n", name="table.csv"), original_name="table.csv",
                                     created_by=experimenter)
    client.force_login(experimenter)
    imports = section(html_of(client), "dash-imports")
    assert "table.csv" in imports and reverse("lab:import_detail", args=[job.pk]) in imports
    assert reverse("lab:import_list") in imports


def test_user_without_a_role_gets_the_403_page_naming_whom_to_ask(client, make_user, django_user_model):
    django_user_model.objects.create_superuser("boss", password="pw-glassloop-1")
    client.force_login(make_user("noone"))
    response = client.get("/")
    assert response.status_code == 403
    html = response.content.decode()
    assert "has no role yet" in html and "boss" in html
    assert 'id="dash-model"' not in html


def test_anonymous_visitor_is_sent_to_log_in(client):
    response = client.get("/")
    assert response.status_code == 302 and reverse("login") in response["Location"]


# ---------------------------------------------------------------- empty states and the model


def test_empty_database_points_to_the_import_page_and_the_starter_corpus(client, experimenter):
    client.force_login(experimenter)
    html = html_of(client)
    data, model = text(section(html, "dash-data")), section(html, "dash-model")
    assert "No alloy yet" in data and "load_starter_set" in data
    assert reverse("lab:import_list") in section(html, "dash-data")
    assert "No model yet" in text(model) and "the models need at least 10" in text(model)
    assert reverse("lab:import_list") in model
    assert "No design campaign yet" in text(section(html, "dash-design"))
    assert "Import alloys with Tg, Tx and Tl" in text(todo_list(html))


def test_live_training_shows_a_progress_bar_polling_the_job_api(client, viewer):
    live = run(TrainingRun.Status.RUNNING, progress=0.25, message="training the CGAN")
    client.force_login(viewer)
    html = html_of(client)
    model = section(html, "dash-model")
    api_url = reverse("api-job", args=["training-runs", live.pk])
    assert api_url == f"/api/jobs/training-runs/{live.pk}/"
    assert re.search(rf'data-job-url="{re.escape(api_url)}"', model)
    assert re.search(r'<progress class="job-progress" max="1" value="0\.250"', model)
    assert "training the CGAN" in model and reverse("ml:run_detail", args=[live.pk]) in model
    # The polling is a static file (no inline script: a CSP is coming), and it is served.
    assert re.search(r'<script src="/static/js/job-progress\.js"', html)
    assert "<script>" not in html
    # The URL it polls answers the page's user.
    assert client.get(api_url).json()["progress"] == 0.25


def test_no_progress_bar_without_a_live_run(client, viewer):
    run(TrainingRun.Status.DONE)
    client.force_login(viewer)
    html = html_of(client)
    assert "data-job-url" not in html and "job-progress.js" not in html


def test_active_model_shows_version_date_metrics_and_design_link(client, approver):
    active = version(status="active", metrics={"validation": {
        "n": 42, "forward": {"mean_mae_k": 23.456},
        "gfa": {"glass": {"roc_auc": 0.912, "f1": 0.801}, "bmg": {"roc_auc": 0.77}, "dmax": {"mae_log10_mm": 0.31}},
    }})
    client.force_login(approver)
    model = section(html_of(client), "dash-model")
    words = text(model)
    assert f"Active model v{active.pk}" in words and f"{active.created_at:%Y-%m-%d}" in words
    assert "forward MAE 23.5 K" in words and "ROC-AUC 0.912" in words and "F1 0.801" in words
    assert "BMG (≥ 1 mm) ROC-AUC 0.770" in words and "Dmax MAE 0.31" in words
    assert re.search(rf'<a class="button[^"]*" id="design-candidates" href="{reverse("design:campaign_create")}"', model)
    assert "No model yet" not in words


def test_refused_training_is_shown_in_plain_words_with_what_to_do(client, experimenter):
    run(TrainingRun.Status.FAILED, error="Only 5 alloys have usable Tg, Tx and Tl values; the models need at least 10. "
                                         "Import a table or load the starter corpus.")
    client.force_login(experimenter)
    model = section(html_of(client), "dash-model")
    assert "Only 5 alloys have usable Tg, Tx and Tl values" in text(model)
    assert reverse("lab:import_list") in model and "load_starter_set" in model
    assert "Traceback" not in model


def test_a_failed_retrain_is_mentioned_beside_the_active_model(client, viewer):
    active = version(status="active")
    run(TrainingRun.Status.FAILED, error="The training stopped on an unexpected error (KeyError: 'x'). "
                                         "The details are in the worker's log.")
    client.force_login(viewer)
    model = text(section(html_of(client), "dash-model"))
    assert f"v{active.pk} stays active" in model and "KeyError" in model


def test_a_live_run_older_than_a_failed_one_still_shows_its_progress(client, viewer):
    # The newest run failed; an older one is still queued: its progress is shown (the live run
    # is looked for beyond the newest one).
    queued = run(TrainingRun.Status.QUEUED, progress=0.0)
    failed = run(TrainingRun.Status.FAILED, error="The worker was lost.")
    TrainingRun.objects.filter(pk=queued.pk).update(created_at=failed.created_at - timedelta(minutes=5))
    client.force_login(viewer)
    response = client.get("/")
    assert (response.context["live_run"], response.context["failed_run"]) == (queued, failed)
    assert f'data-job-url="/api/jobs/training-runs/{queued.pk}/"' in section(response.content.decode(), "dash-model")


def test_no_campaign_yet_is_said_only_when_there_is_none(client, approver):
    client.force_login(approver)
    assert "No design campaign yet" in text(section(html_of(client), "dash-design"))
    DesignCampaign.objects.create(name="Closed one", targets={"tg_k": {"min": 650}}, status=DesignCampaign.Status.CLOSED)
    design = text(section(html_of(client), "dash-design"))
    assert "No design campaign yet" not in design and "Open campaigns" not in design
