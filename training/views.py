"""Model pages: versions with their metrics, training runs with live progress and curves."""

from django.conf import settings
from django.contrib import messages
from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from core.jobs import QUEUE_UNAVAILABLE
from core.roles import APPROVER, VIEWER, has_role, role_required
from core.views import job_action_view

from . import selectors, services
from .models import ModelVersion, TrainingRun


@role_required(VIEWER)
def model_list(request):
    runs = list(selectors.run_list())
    return render(
        request,
        "ml/model_list.html",
        {
            "active": selectors.active_version(),
            "versions": selectors.version_list(),
            "runs": runs,
            "live_runs": [r for r in runs if not r.is_finished],
            "curve_runs": [r for r in runs if r.curves][:6],
            "can_train": has_role(request.user, APPROVER),
            "outlook": selectors.retrain_outlook(services.retrain_min_new_results()),
            "mae_tolerance": settings.GLASSLOOP_PROMOTION_MAE_TOLERANCE,
            "f1_tolerance": settings.GLASSLOOP_PROMOTION_F1_TOLERANCE,
        },
    )


@require_POST
@role_required(APPROVER)
def retrain(request):
    result = services.request_retrain(trigger=TrainingRun.Trigger.MANUAL, user=request.user)
    if result.run is None:
        messages.error(request, result.message)
        return redirect("ml:model_list")
    if result.run.error.startswith(QUEUE_UNAVAILABLE):
        messages.error(request, result.message)
    else:
        messages.success(request, result.message)
    return redirect("ml:run_detail", pk=result.run.pk)


run_action = job_action_view("ml.TrainingRun", detail_url="ml:run_detail")


@role_required(VIEWER)
def run_detail(request, pk):
    run = get_object_or_404(TrainingRun.objects.select_related("requested_by"), pk=pk)
    version = ModelVersion.objects.filter(training_run=run).first()
    return render(request, "ml/run_detail.html", {"run": run, "version": version})


@require_GET
@role_required(VIEWER)
def run_status(request, pk):
    run = get_object_or_404(TrainingRun, pk=pk)
    version = ModelVersion.objects.filter(training_run=run).first()
    last = (run.curves or [])[-1:] or [{}]
    return JsonResponse(
        {
            "id": run.pk,
            "status": run.status,
            "status_display": run.get_status_display(),
            "phase": run.phase,
            "epoch": run.epoch,
            "total_epochs": run.total_epochs,
            "progress": run.progress_fraction,
            "last": last[0],
            "error": run.error,
            "finished": run.is_finished,
            "version": None if version is None else {"id": version.pk, "status": version.status, "reason": version.status_reason},
        }
    )


@require_GET
@role_required(VIEWER)
def run_curves(request, pk):
    from .plots import training_curves_svg

    run = get_object_or_404(TrainingRun, pk=pk)
    return HttpResponse(training_curves_svg(run.curves, title=f"Training run {run.pk}"), content_type="image/svg+xml")


@require_POST
@role_required(APPROVER)
def version_activate(request, pk):
    version = get_object_or_404(ModelVersion, pk=pk)
    services.activate_version(version, user=request.user, reason=request.POST.get("reason", "").strip())
    messages.success(request, f"Model v{version.pk} is now active.")
    return redirect("ml:model_list")
