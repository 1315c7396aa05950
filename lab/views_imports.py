"""Import of literature tables from the web (run by the Celery worker) and export to CSV/XLSX."""

import logging

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET

from core import jobs
from core.exports import neutralise_row
from core.jobs import QUEUE_UNAVAILABLE
from core.roles import EXPERIMENTER, VIEWER, role_required
from core.views import job_action_view

from .importing import (
    OUTCOMES,
    REPORT_COLUMNS,
    check_table_upload,
    outcome_counts,
    report_csv_lines,
    report_rows,
    start_import,
)
from .models import Alloy, AlloyImport, PropertyValue
from .resources import PropertyValueResource
from .tables import ImportFileError

logger = logging.getLogger(__name__)
REPORT_PAGE_SIZE = 100
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
        # Only what is cheap is checked here (type, size, a CSV's header line, a workbook's zip
        # directory and expanded size); the rows are read by the worker, which stops at the
        # first limit passed.
        try:
            check_table_upload(upload)
        except ImportFileError as exc:
            raise forms.ValidationError(str(exc)) from None
        return upload


@role_required(EXPERIMENTER)
def import_list(request):
    if request.method == "POST":
        form = ImportUploadForm(request.POST, request.FILES)
        if form.is_valid():
            job = start_import(upload=form.cleaned_data["table"], user=request.user, dry_run=form.cleaned_data["dry_run"])
            if job.queue_unavailable:
                messages.error(request, f"{QUEUE_UNAVAILABLE}: the import of {job.original_name} is saved as queued but cannot run yet.")
            else:
                messages.success(request, f"Import of {job.original_name} queued.")
            return redirect("lab:import_detail", pk=job.pk)
    else:
        form = ImportUploadForm()
    imports = AlloyImport.objects.select_related("created_by")[:50]
    return render(request, "lab/import_list.html", {"form": form, "imports": imports})


@require_GET
@role_required(EXPERIMENTER)
def import_detail(request, pk):
    """The import's status and its report: counts per outcome, rows filtered by outcome and
    composition, 100 a page (refused first when unfiltered); ``?format=csv`` downloads the rows
    the filter selects, all of them."""
    job = get_object_or_404(AlloyImport, pk=pk)
    outcome = request.GET.get("outcome", "")
    if outcome not in OUTCOMES:
        outcome = ""
    q = request.GET.get("q", "").strip()[:100]
    rows = report_rows(job, outcome=outcome, q=q)
    if request.GET.get("format") == "csv":
        response = StreamingHttpResponse(report_csv_lines(rows), content_type="text/csv; charset=utf-8")
        suffix = f"-{outcome}" if outcome else ""
        response["Content-Disposition"] = f'attachment; filename="import-{job.pk}-report{suffix}.csv"'
        return response
    page = Paginator(rows, REPORT_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "lab/import_detail.html",
        {
            "job": job,
            "page": page,
            "rows": page.object_list,
            "counts": job.counts or {},
            "outcome_counts": outcome_counts(job),
            "outcome": outcome,
            "q": q,
            "finished": job.is_finished,
            "report_columns": REPORT_COLUMNS,
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
