"""Import of literature tables from the web (run by the Celery worker) and export to CSV/XLSX."""

import logging

from django import forms
from django.conf import settings
from django.contrib import messages
from django.db import transaction
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET

from core import jobs
from core.exports import neutralise_row
from core.jobs import QUEUE_UNAVAILABLE
from core.roles import EXPERIMENTER, VIEWER, role_required
from core.views import job_action_view

from .importing import OUTCOME_REFUSED, enqueue_import
from .models import Alloy, AlloyImport, PropertyValue
from .resources import PropertyValueResource
from .tables import ImportFileError, read_table

logger = logging.getLogger(__name__)
EXPORT_FORMATS = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


class ImportUploadForm(forms.Form):
    table = forms.FileField(
        label="Table (CSV or XLSX)",
        help_text="Columns composition, Tg_K, Tx_K, Tl_K; optional source, doi. Other columns are ignored.",
    )
    dry_run = forms.BooleanField(required=False, label="Dry run (report only, save nothing)")

    def clean_table(self):
        upload = self.cleaned_data["table"]
        if not upload.name.lower().endswith((".csv", ".xlsx", ".txt")):
            raise forms.ValidationError("Upload a .csv or .xlsx file.")
        if upload.size > settings.GLASSLOOP_MAX_UPLOAD_BYTES:
            raise forms.ValidationError(
                f"The file is {upload.size / 1e6:.1f} MB; the limit is {settings.GLASSLOOP_MAX_UPLOAD_BYTES / 1e6:.0f} MB."
            )
        # Unreadable files and missing columns are refused now, not later in the worker.
        try:
            read_table(upload.read(), filename=upload.name)
        except ImportFileError as exc:
            raise forms.ValidationError(str(exc)) from None
        finally:
            upload.seek(0)
        return upload


@role_required(EXPERIMENTER)
def import_list(request):
    if request.method == "POST":
        form = ImportUploadForm(request.POST, request.FILES)
        if form.is_valid():
            upload = form.cleaned_data["table"]
            with transaction.atomic():
                job = AlloyImport.objects.create(
                    upload=upload, original_name=upload.name[:255], dry_run=form.cleaned_data["dry_run"], created_by=request.user
                )
                enqueue_import(job)
            job.refresh_from_db()
            if job.queue_unavailable:
                messages.error(request, f"{QUEUE_UNAVAILABLE}: the import of {job.original_name} is saved as queued but cannot run yet.")
            else:
                messages.success(request, f"Import of {job.original_name} queued.")
            return redirect("lab:import_detail", pk=job.pk)
    else:
        form = ImportUploadForm()
    imports = AlloyImport.objects.select_related("created_by")[:50]
    return render(request, "lab/import_list.html", {"form": form, "imports": imports})


@role_required(EXPERIMENTER)
def import_detail(request, pk):
    job = get_object_or_404(AlloyImport, pk=pk)
    rows = sorted(job.report or [], key=lambda r: (r.get("outcome") != OUTCOME_REFUSED, r.get("line", 0)))
    return render(
        request,
        "lab/import_detail.html",
        {
            "job": job,
            "rows": rows,
            "counts": job.counts or {},
            "finished": job.is_finished,
        },
    )


import_action = job_action_view("lab.AlloyImport", detail_url="lab:import_detail")


@require_GET
@role_required(EXPERIMENTER)
def import_status(request, pk):
    job = get_object_or_404(AlloyImport, pk=pk)
    return JsonResponse({**jobs.status_payload(job), "counts": job.counts or {}})


@require_GET
@role_required(VIEWER)
def export_alloys(request, fmt):
    """Every property value with its alloy and provenance; alloys without values get one row too."""
    if fmt not in EXPORT_FORMATS:
        raise Http404(f"Export formats are {', '.join(EXPORT_FORMATS)}.")
    resource = PropertyValueResource()
    # XLSX keeps numbers as numbers (CSV cells are text anyway); text is neutralised (core.exports).
    dataset = resource.export(queryset=PropertyValue.objects.order_by("alloy__formula", "pk"), force_native_type=fmt == "xlsx")
    headers = dataset.headers
    for alloy in Alloy.objects.filter(property_values__isnull=True).order_by("formula"):
        row = dict.fromkeys(headers, "")
        row.update(formula=alloy.formula, composition_key=alloy.composition_key, name=alloy.name, base_element=alloy.base_element)
        dataset.append(neutralise_row([row[h] for h in headers]))
    content = dataset.export(fmt)
    response = HttpResponse(content, content_type=EXPORT_FORMATS[fmt])
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="glassloop-alloys-{stamp}.{fmt}"'
    return response
