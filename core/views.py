"""Views every app shares: cancel and retry of a background job, its status as JSON."""

from django.apps import apps
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from . import jobs
from .roles import has_role


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


