"""Views every app shares: the home page (a dashboard of what needs doing), the 403 page,
cancel and retry of a background job.

core sits below every app (ARCHITECTURE.md), so the dashboard imports none of their code: it
reads their models by label (``apps.get_model``, as ``job_action_view`` does) and skips a
section whose app or field is missing.
"""

from django.apps import apps
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import FieldError, PermissionDenied
from django.db.models import Count, Q
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from ml.dataprep import MIN_ALLOYS

from . import jobs
from .roles import APPROVER, EXPERIMENTER, REVIEWER, VIEWER, has_role, role_required, site_admins, user_roles


@role_required(VIEWER)
def home(request):
    """``/``: what needs doing, for anyone who may read (a user with no role gets the 403 page).

    Counts everyone may read (records waiting for review, candidates at each step, the data the
    models learn from), the active model or what to do to get one, a live training run with its
    progress (polled from ``/api/jobs/<kind>/<id>/`` by static/js/job-progress.js) and, for the
    roles that import, the recent imports. Each item links to the page where it is done.
    """
    user = request.user
    context = {
        "can_import": has_role(user, EXPERIMENTER),
        "can_review": has_role(user, REVIEWER),
        "can_approve": has_role(user, APPROVER),
        "can_design": has_role(user, APPROVER) or has_role(user, EXPERIMENTER),
        **_data_summary(),
        **_review_summary(),
        **_design_summary(),
        **_model_summary(),
    }
    context["imports"] = _recent_imports() if context["can_import"] else None
    context["todo"] = _todo(user, context)
    return render(request, "core/home.html", context)


def _plural(n, one, many):
    return f"{n} {one if n == 1 else many}"


def _todo(user, c):
    """What waits for this person's roles, most urgent first: [{"text", "url"}]."""
    todo = []
    if c.get("models_installed") and not c.get("active_version") and not c.get("live_run"):
        if (c.get("n_alloys_with_temps") or 0) < MIN_ALLOYS:
            if c["can_import"]:
                todo.append({"text": f"Import alloys with Tg, Tx and Tl (the models need at least {MIN_ALLOYS})", "url": reverse("lab:import_list")})
        elif c["can_approve"]:
            todo.append({"text": "Train the first model", "url": reverse("ml:model_list")})
    if c.get("active_version") and c["can_design"] and not c.get("has_campaigns"):
        todo.append({"text": "Design candidates: start a campaign", "url": reverse("design:campaign_create")})
    if c["can_review"] and c.get("n_pending_records"):
        n = c["n_pending_records"]
        todo.append({"text": f"Review {_plural(n, 'extracted record', 'extracted records')}", "url": reverse("mining:review_queue")})
    verbs = {
        "proposed": ("Approve or reject", "proposed candidate", "proposed candidates", "design:campaign_list"),
        "approved_for_synthesis": ("Cast", "approved candidate", "approved candidates", "design:campaign_list"),
        "in_synthesis": ("Enter the XRD or DSC of", "candidate in synthesis", "candidates in synthesis", "lab:sample_list"),
    }
    for step in c.get("candidate_steps", []):
        if step["count"] and has_role(user, step["role"]):
            verb, one, many, url = verbs[step["status"]]
            todo.append({"text": f"{verb} {_plural(step['count'], one, many)}", "url": reverse(url)})
    return todo


def _model_or_none(label):
    try:
        return apps.get_model(label)
    except LookupError:
        return None


def _count(label, **filters):
    """Rows of the model ``label`` matching ``filters``; None when the app or a field is missing."""
    model = _model_or_none(label)
    if model is None:
        return None
    try:
        return model.objects.filter(**filters).count()
    except FieldError:
        return None


def _counts(label, within=None, **named):
    """{name: rows of the model ``label`` matching the filters ``named[name]``} in one query,
    over the rows matching ``within`` (a Q, so an index narrows the scan); None for each when
    the app or a field is missing."""
    model = _model_or_none(label)
    if model is None:
        return dict.fromkeys(named)
    try:
        rows = model.objects.filter(within) if within is not None else model.objects.all()
        return rows.aggregate(**{name: Count("pk", filter=Q(**f) if f else None) for name, f in named.items()})
    except FieldError:
        return dict.fromkeys(named)


def _data_summary():
    alloys = _counts("lab.Alloy", n_alloys={},
                     n_alloys_with_temps={"tg_mean_k__isnull": False, "tx_mean_k__isnull": False, "tl_mean_k__isnull": False})
    return {**alloys, "n_samples": _count("lab.Sample"), "min_alloys": MIN_ALLOYS}


def _review_summary():
    return {"n_pending_records": _count("mining.ExtractedRecord", status="pending")}


# Candidate steps shown on the dashboard: (status, what waits, who acts).
CANDIDATE_STEPS = (
    ("proposed", "awaiting approval", APPROVER),
    ("approved_for_synthesis", "awaiting synthesis", EXPERIMENTER),
    ("in_synthesis", "awaiting XRD or DSC", EXPERIMENTER),
)


def _design_summary():
    statuses = [status for status, _, _ in CANDIDATE_STEPS]
    counts = _counts("design.Candidate", Q(status__in=statuses), **{status: {"status": status} for status in statuses})
    steps = [
        {"status": status, "label": label, "role": role, "count": counts[status]}
        for status, label, role in CANDIDATE_STEPS
    ]
    campaign = _model_or_none("design.DesignCampaign")
    open_campaigns, has_campaigns = [], None
    if campaign is not None:
        open_campaigns = list(campaign.objects.filter(status="open").order_by("-pk")[:5])
        # An open campaign is a campaign: only without one is the table asked.
        has_campaigns = bool(open_campaigns) or campaign.objects.exists()
    return {
        "candidate_steps": [s for s in steps if s["count"] is not None],
        "has_campaigns": has_campaigns,
        "open_campaigns": open_campaigns,
    }


def _model_summary():
    version_model, run_model = _model_or_none("ml.ModelVersion"), _model_or_none("ml.TrainingRun")
    if version_model is None or run_model is None:
        return {"models_installed": False}
    active = version_model.objects.filter(status="active").first()
    latest, live = _latest_and_live_run(run_model)
    metrics = (active.metrics or {}).get("validation") or {} if active else {}
    return {
        "models_installed": True,
        "active_version": active,
        "active_metrics": _key_metrics(metrics),
        "live_run": live,
        "live_run_api_url": reverse("api-job", args=[run_model.job_api_name, live.pk]) if live else "",
        # The newest run when it failed or was cancelled: why there is no (new) model.
        "failed_run": latest if latest is not None and latest.status in (jobs.JobStatus.FAILED, jobs.JobStatus.CANCELLED) else None,
    }


LIVE_STATUSES = (jobs.JobStatus.QUEUED, jobs.JobStatus.RUNNING)


def _latest_and_live_run(run_model):
    """(the newest training run, the newest queued or running one), None where there is none.
    The newest run is often the live one, or there is none: then one query is enough (two plain
    queries cost less to build than one with subqueries)."""
    runs = run_model.objects.order_by("-created_at", "-pk")
    latest = runs.first()
    if latest is None or latest.status in LIVE_STATUSES:
        return latest, latest
    return latest, runs.filter(status__in=LIVE_STATUSES).first()


def _key_metrics(validation):
    """The few validation numbers the home page shows (None where the version has none):
    forward MAE, and the GFA model's glass-vs-crystal and BMG scores (older versions: the
    surrogate's F1)."""

    def part(*keys):
        value = validation
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        return value

    return {
        "n": part("n"),
        "mae": part("forward", "mean_mae_k"),
        "glass_auc": part("gfa", "glass", "roc_auc"),
        "glass_f1": part("gfa", "glass", "f1") if part("gfa", "glass", "f1") is not None else part("surrogate", "f1"),
        "bmg_auc": part("gfa", "bmg", "roc_auc"),
        "dmax_mae_log10": part("gfa", "dmax", "mae_log10_mm"),
    }


def _recent_imports(limit=5):
    model = _model_or_none("lab.AlloyImport")
    if model is None:
        return []
    return list(model.objects.order_by("-created_at")[:limit])


def permission_denied(request, exception=None):
    """handler403: the site's layout, what was refused and whom to ask for a role."""
    message = str(exception) if exception and str(exception) else ""
    user = getattr(request, "user", None)
    context = {
        "exception": message,
        "held_roles": sorted(user_roles(user)) if user is not None else [],
        "admins": site_admins(),
    }
    return render(request, "403.html", context, status=403)


def job_action_view(model_label, *, detail_url):
    """A POST view ``<pk>/<cancel|retry>/`` for one job model, for people holding one of its
    ``job_control_roles`` (as in the API); it redirects to the job's page (``detail_url``: a
    URL name taking the pk, or a function of the job giving a URL)."""

    @require_POST
    @login_required
    def view(request, pk, action):
        model = apps.get_model(model_label)
        roles = model.job_control_roles
        if not any(has_role(request.user, role) for role in roles):
            raise PermissionDenied(f"This needs the {' or '.join(roles)} role.")
        job = get_object_or_404(model, pk=pk)
        if action == "cancel":
            job, text = jobs.cancel(job)
        elif action == "retry":
            job, text = jobs.retry(job)
        else:
            raise Http404("The actions are cancel and retry.")
        level = messages.ERROR if job.queue_unavailable else messages.INFO
        messages.add_message(request, level, f"{job.job_label().capitalize()}: {text}")
        return redirect(detail_url(job) if callable(detail_url) else reverse(detail_url, args=[job.pk]))

    return view


