"""Views every app shares: the home page, the 403 page, cancel and retry of a background job."""

from django.apps import apps
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from . import jobs
from .roles import VIEWER, has_role, role_required, site_admins, user_roles


@role_required(VIEWER)
def home(request):
    """``/``: the alloy list, for anyone who may read (a user with no role gets the 403 page)."""
    return redirect("lab:alloy_list")


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


