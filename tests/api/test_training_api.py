"""Model versions and training runs in the REST API (issue 16): the Models pages' actions —
Retrain now, Activate — with the pages' roles (viewers read, approvers write) and messages."""

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.api.conftest import token_client
from tests.design.conftest import add_literature, synthetic_rows
from training.models import ModelVersion, TrainingRun

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _artefacts(settings, tmp_path):
    settings.MODEL_ARTEFACT_ROOT = tmp_path / "models"


@pytest.fixture
def approver_api(approver):
    return token_client(approver)


def version(**kw):
    fields = dict(artefact_dir="x", snapshot_hash="a" * 64, snapshot_taken_at=timezone.now())
    fields.update(kw)
    return ModelVersion.objects.create(**fields)


METRICS = {
    "validation": {
        "n": 12,
        "forward": {"mean_mae_k": 14.5, "tg_k_mae": 12.0, "tx_k_mae": 13.0, "tl_k_mae": 18.5},
        "gfa": {"glass": {"roc_auc": 0.91, "f1": 0.84}, "bmg": {"roc_auc": 0.77, "f1": 0.6},
                "dmax": {"mae_log10_mm": 0.31, "coverage_80": 0.79}},
    }
}


# ---------------------------------------------------------------- reads


def test_viewer_lists_versions_with_metrics_and_filters_by_status(viewer_api):
    active = version(status=ModelVersion.Status.ACTIVE, metrics=METRICS, status_reason="First model.")
    candidate = version(status=ModelVersion.Status.CANDIDATE, status_reason="Not promoted: forward MAE worse")
    response = viewer_api.get("/api/model-versions/")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2 and {v["id"] for v in body["results"]} == {active.pk, candidate.pk}
    row = next(v for v in body["results"] if v["id"] == active.pk)
    assert row["status"] == "active" and row["reason"] == "First model."
    assert row["validation"] == {
        "n": 12, "forward_mae_k": 14.5, "tg_mae_k": 12.0, "tx_mae_k": 13.0, "tl_mae_k": 18.5,
        "glass_roc_auc": 0.91, "glass_f1": 0.84, "bmg_roc_auc": 0.77, "bmg_f1": 0.6,
        "dmax_mae_log10_mm": 0.31, "dmax_coverage_80": 0.79,
    }
    other = next(v for v in body["results"] if v["id"] == candidate.pk)
    assert other["validation"]["forward_mae_k"] is None  # no metrics stored: null, not an error

    only = viewer_api.get("/api/model-versions/", {"status": "candidate"}).json()
    assert [v["id"] for v in only["results"]] == [candidate.pk]
    assert viewer_api.get("/api/model-versions/", {"status": "nonsense"}).status_code == 400

    detail = viewer_api.get(f"/api/model-versions/{active.pk}/").json()
    assert detail["metrics"] == METRICS and detail["validation"]["glass_f1"] == 0.84
    assert viewer_api.get("/api/model-versions/999999/").status_code == 404


def test_viewer_reads_runs_with_progress_version_and_job_urls(viewer_api):
    now = timezone.now()
    failed = TrainingRun.objects.create(
        snapshot_hash="b" * 64, snapshot_taken_at=now, status=TrainingRun.Status.FAILED,
        error="Only 3 alloys have usable Tg, Tx and Tl values; the models need at least 10.",
    )
    done = TrainingRun.objects.create(
        snapshot_hash="c" * 64, snapshot_taken_at=now, status=TrainingRun.Status.DONE, phase="done", progress=1.0,
        epoch=10, total_epochs=10, curves=[{"epoch": 10, "d_loss": 0.1, "g_loss": 0.2, "val_w": 0.3}],
    )
    produced = version(training_run=done, status=ModelVersion.Status.ACTIVE, status_reason="First model.")
    body = viewer_api.get("/api/training-runs/").json()
    assert body["count"] == 2
    rows = {r["id"]: r for r in body["results"]}
    assert rows[failed.pk]["error"].startswith("Only 3 alloys") and rows[failed.pk]["model_version"] is None
    assert rows[failed.pk]["can_retry"] is True
    assert rows[done.pk]["model_version"] == {"id": produced.pk, "status": "active", "reason": "First model."}
    assert rows[done.pk]["phase"] == "done" and rows[done.pk]["epoch"] == 10 and rows[done.pk]["progress"] == 1.0
    progress_url = rows[done.pk]["progress_url"]
    assert progress_url.endswith(reverse("api-job", args=["training-runs", done.pk]))
    assert viewer_api.get(progress_url).json()["status"] == "done"  # the URL works

    assert [r["id"] for r in viewer_api.get("/api/training-runs/", {"status": "failed"}).json()["results"]] == [failed.pk]
    assert rows[done.pk]["url"].endswith(f"/api/training-runs/{done.pk}/")  # a self link, as batches and XRDs have
    detail = viewer_api.get(rows[done.pk]["url"]).json()
    assert detail["curves"][-1]["epoch"] == 10 and "log" in detail


def test_anonymous_is_refused(api):
    assert api.get("/api/model-versions/").status_code == 401
    assert api.post("/api/training-runs/").status_code == 401


# ---------------------------------------------------------------- retrain now


def test_only_an_approver_retrains_as_on_the_page(viewer_api, experimenter_api):
    add_literature(synthetic_rows(20))
    for client in (viewer_api, experimenter_api):
        response = client.post("/api/training-runs/")
        assert response.status_code == 403
        assert response.json()["error"] == "This needs the approver role."
    assert not TrainingRun.objects.exists()


def test_retrain_queues_one_run_and_a_second_request_joins_it(approver_api, approver, django_capture_on_commit_callbacks):
    add_literature(synthetic_rows(20))
    with django_capture_on_commit_callbacks(execute=False) as sent:
        response = approver_api.post("/api/training-runs/")
    assert response.status_code == 202, response.json()
    body = response.json()
    run = TrainingRun.objects.get()
    assert body["run"]["id"] == run.pk and body["run"]["status"] == "queued"
    assert body["outcome"] == f"Training run {run.pk} queued on 20 rows."
    assert body["progress_url"].endswith(f"/api/jobs/training-runs/{run.pk}/")
    assert run.requested_by == approver and run.trigger == TrainingRun.Trigger.MANUAL
    assert len(sent) == 1  # the worker's message, sent once the request commits

    with django_capture_on_commit_callbacks(execute=False):
        again = approver_api.post("/api/training-runs/")
    assert again.status_code == 409
    assert again.json()["error"] == f"A training run on exactly this data is already queued (run {run.pk})."
    assert again.json()["run"]["id"] == run.pk
    assert TrainingRun.objects.count() == 1


def test_retrain_without_data_is_the_pages_message(approver_api):
    response = approver_api.post("/api/training-runs/")
    assert response.status_code == 400
    assert response.json()["error"].startswith("There is no training data yet")
    assert not TrainingRun.objects.exists()


# ---------------------------------------------------------------- activate


def test_activate_switches_the_active_version(approver_api, approver):
    old = version(status=ModelVersion.Status.ACTIVE, status_reason="First model.")
    new = version(status=ModelVersion.Status.CANDIDATE, status_reason="Not promoted: forward MAE worse")
    response = approver_api.post(f"/api/model-versions/{new.pk}/activate/", {"reason": "better on our own alloys"})
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["outcome"] == f"Model v{new.pk} is now active."
    assert body["version"]["status"] == "active" and "better on our own alloys" in body["version"]["reason"]
    old.refresh_from_db(), new.refresh_from_db()
    assert new.status == ModelVersion.Status.ACTIVE and old.status == ModelVersion.Status.RETIRED
    assert ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).count() == 1
    assert approver_api.post("/api/model-versions/999999/activate/").status_code == 404


def test_only_an_approver_activates(viewer_api, experimenter_api):
    old = version(status=ModelVersion.Status.ACTIVE)
    new = version(status=ModelVersion.Status.CANDIDATE)
    for client in (viewer_api, experimenter_api):
        response = client.post(f"/api/model-versions/{new.pk}/activate/")
        assert response.status_code == 403 and response.json()["error"] == "This needs the approver role."
    old.refresh_from_db()
    assert old.status == ModelVersion.Status.ACTIVE


def test_versions_and_runs_are_read_only_otherwise(approver_api):
    v = version()
    assert approver_api.post("/api/model-versions/").status_code == 405
    assert approver_api.delete(f"/api/model-versions/{v.pk}/").status_code == 405
    assert approver_api.patch(f"/api/model-versions/{v.pk}/", {"status": "active"}).status_code == 405


# ---------------------------------------------------------------- schema


def test_the_routes_are_in_the_schema(viewer_api):
    response = viewer_api.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert set(paths["/api/model-versions/"]) >= {"get"}
    assert set(paths["/api/model-versions/{id}/"]) >= {"get"}
    assert set(paths["/api/model-versions/{id}/activate/"]) >= {"post"}
    assert set(paths["/api/training-runs/"]) >= {"get", "post"}
    assert set(paths["/api/training-runs/{id}/"]) >= {"get"}
    assert "202" in paths["/api/training-runs/"]["post"]["responses"]
    assert "409" in paths["/api/training-runs/"]["post"]["responses"]
