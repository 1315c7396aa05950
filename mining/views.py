"""Mining pages: sources, batches (with a live status endpoint) and the review queue.

Viewers read; reviewers add sources, run batches and review records.
"""

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models.functions import Length
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from core.jobs import QUEUE_UNAVAILABLE
from core.roles import REVIEWER, VIEWER, has_role, role_required

from . import selectors, services
from .forms import BatchForm, QueueFilterForm, RecordEditForm, RejectForm, SourceForm
from .models import ExtractedRecord, ExtractionBatch, LiteratureSource


def _next(request, default):
    target = request.POST.get("next") or request.GET.get("next")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return target
    return default


# ---------------------------------------------------------------- sources


@role_required(VIEWER)
def source_list(request):
    sources = selectors.source_list().select_related("pdf_reading").annotate(text_chars=Length("text")).defer("text")
    page = Paginator(sources, 50).get_page(request.GET.get("page"))
    return render(request, "mining/source_list.html", {"page": page, "can_edit": has_role(request.user, REVIEWER)})


@role_required(REVIEWER)
def source_create(request):
    form = SourceForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        try:
            source = services.create_source(
                doi=d["doi"], upload=d.get("file"), text=d.get("text") or "", title=d["title"], authors=d["authors"],
                year=d["year"], journal=d["journal"], url=d["url"], user=request.user,
            )
        except services.SourceExists as exc:
            messages.error(request, str(exc))
            return redirect(exc.source)
        except (services.MiningError, ValidationError) as exc:
            form.add_error(None, str(exc) if isinstance(exc, services.MiningError) else exc)
        else:
            if source.reading is not None:
                messages.success(request, f"Source #{source.pk} stored; its PDF is being read (this page shows how far).")
            else:
                messages.success(request, f"Source #{source.pk} stored ({len(source.text):,} characters of text).")
            return redirect(source)
    return render(request, "mining/source_form.html", {"form": form})


@role_required(VIEWER)
def source_detail(request, pk):
    source = get_object_or_404(LiteratureSource.objects.select_related("reference", "pdf_reading"), pk=pk)
    reading = source.reading
    return render(request, "mining/source_detail.html", {
        "source": source, "records": source.records.select_related("batch")[:200], "reading": reading,
        "reading_url": reverse("api-job", args=[reading.job_api_name, reading.pk]) if reading else "",
        "can_edit": has_role(request.user, REVIEWER),
    })


# ---------------------------------------------------------------- batches


@role_required(VIEWER)
def batch_list(request):
    return render(request, "mining/batch_list.html", {"batches": selectors.batch_list()[:200], "can_edit": has_role(request.user, REVIEWER)})


@role_required(REVIEWER)
def batch_create(request):
    default = services.default_extractor()
    form = BatchForm(request.POST or None, default_extractor=default, initial={"sources": request.GET.getlist("source")})
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        try:
            batch = services.create_batch(name=d["name"], sources=d["sources"], extractor=d["extractor"], user=request.user)
        except services.MiningError as exc:
            form.add_error(None, str(exc))
        else:
            batch.refresh_from_db()
            if batch.error:
                messages.error(request, f"Batch {batch.name} is saved and stays queued. {batch.error}")
            else:
                messages.success(request, f"Batch {batch.name} queued.")
            return redirect(batch)
    return render(request, "mining/batch_form.html", {"form": form})


@role_required(VIEWER)
def batch_detail(request, pk):
    batch = get_object_or_404(ExtractionBatch, pk=pk)
    status = selectors.batch_status(batch)
    sources = {str(s.pk): s for s in batch.sources.all()}
    errors = [(sources.get(sid), sid, message) for sid, message in (batch.source_errors or {}).items()]
    approval = batch.bulk_approvals.order_by("-pk").first()
    return render(request, "mining/batch_detail.html", {
        "batch": batch, "status": status, "errors": errors, "sources": sources.values(),
        "can_edit": has_role(request.user, REVIEWER), "approval": approval,
        "approval_url": reverse("api-job", args=[approval.job_api_name, approval.pk]) if approval else "",
        "status_rows": [(k, ExtractedRecord.Status(k).label, n) for k, n in status["counts"]["status"].items()],
    })


@role_required(VIEWER)
def batch_status(request, pk):
    batch = get_object_or_404(ExtractionBatch, pk=pk)
    return JsonResponse(selectors.batch_status(batch))


def _batch_action(request, pk, action, done_message):
    try:
        result = action()
    except services.MiningError as exc:
        messages.error(request, str(exc))
    else:
        batch = ExtractionBatch.objects.get(pk=pk)
        if batch.error.startswith(QUEUE_UNAVAILABLE):
            messages.error(request, batch.error)
        else:
            messages.success(request, done_message(result))
    return redirect("mining:batch_detail", pk=pk)


@require_POST
@role_required(REVIEWER)
def batch_cancel(request, pk):
    return _batch_action(request, pk, lambda: services.cancel_batch(pk, user=request.user), lambda b: f"Batch {b.name}: cancel requested.")


@require_POST
@role_required(REVIEWER)
def batch_rerun(request, pk):
    source_ids = [int(s) for s in request.POST.getlist("source") if s.isdigit()] or None
    return _batch_action(request, pk, lambda: services.rerun_batch(pk, source_ids=source_ids, user=request.user),
                         lambda b: f"Batch {b.name} queued again.")


@require_POST
@role_required(REVIEWER)
def batch_bulk_approve(request, pk):
    get_object_or_404(ExtractionBatch, pk=pk)
    try:
        job, created = services.request_bulk_approval(pk, user=request.user)
    except services.MiningError as exc:
        messages.error(request, str(exc))
        return redirect("mining:batch_detail", pk=pk)
    job.refresh_from_db()
    if job.queue_unavailable:
        messages.error(request, f"The approval is saved and stays queued. {job.error}")
    elif created:
        messages.success(request, "Approving the clean records in the background; this page shows how far it is.")
    else:
        messages.info(request, "An approval of this batch is already under way; this page shows how far it is.")
    return redirect("mining:batch_detail", pk=pk)


# ---------------------------------------------------------------- review


@role_required(VIEWER)
def review_queue(request):
    data = request.GET.copy()
    if "status" not in data:
        data["status"] = "pending"
    form = QueueFilterForm(data)
    filters = form.cleaned_data if form.is_valid() else {"status": "pending"}
    batch = filters.get("batch")
    queue = selectors.review_queue(
        batch_id=batch.pk if batch else None, flag=filters.get("flag") or None,
        status=filters.get("status") or None, element=filters.get("element") or None,
    )
    page = Paginator(queue, 50).get_page(request.GET.get("page"))
    page.object_list = selectors.attach_source_context(page.object_list)
    return render(request, "mining/review_queue.html", {
        "form": form, "page": page, "can_review": has_role(request.user, REVIEWER), "query": request.GET.urlencode(),
    })


@role_required(VIEWER)
def record_detail(request, pk):
    record = get_object_or_404(ExtractedRecord.objects.select_related("batch", "source", "reviewer", "alloy"), pk=pk)
    form = RecordEditForm.for_record(record)
    if request.method == "POST":
        if not has_role(request.user, REVIEWER):
            raise PermissionDenied("This needs the reviewer role.")
        form = RecordEditForm.for_record(record, request.POST)
        if form.is_valid():
            edits = form.edits()
            try:
                if request.POST.get("action") == "approve":
                    try:
                        services.approve_record(pk, request.user, edits=edits)
                    except services.ReviewConflict:
                        raise
                    except services.MiningError as exc:
                        # Keep the reviewer's edits (re-validated, with their flags), then say why,
                        # with the form as typed (°C stays °C).
                        services.update_record(pk, request.user, edits)
                        typed = form.as_typed()
                        messages.error(request, f"{exc}" + (f" (You typed {typed}.)" if typed and form.unit != "K" else ""))
                        record = get_object_or_404(ExtractedRecord.objects.select_related("batch", "source", "reviewer", "alloy"), pk=pk)
                        return _record_page(request, record, form)
                    messages.success(request, f"Record {pk} approved.")
                    return redirect(_next(request, reverse("mining:review_queue")))
                services.update_record(pk, request.user, edits)
                messages.success(request, f"Record {pk} saved and re-validated.")
                return redirect("mining:record_detail", pk=pk)
            except services.MiningError as exc:
                messages.error(request, str(exc))
                return redirect("mining:record_detail", pk=pk)
    return _record_page(request, record, form)


def _record_page(request, record, form):
    queue = selectors.review_queue(batch_id=record.batch_id)
    prev_id, next_id = selectors.neighbours(record, queue)
    selectors.attach_source_context([record], chars=1500)
    return render(request, "mining/record_detail.html", {
        "record": record, "form": form, "reject_form": RejectForm(), "can_review": has_role(request.user, REVIEWER),
        "prev_id": prev_id, "next_id": next_id, "history": record.history.select_related("history_user")[:20],
        "temperature_fields": RecordEditForm.TEMPERATURES,
    })


@require_POST
@role_required(REVIEWER)
def record_approve(request, pk):
    try:
        services.approve_record(pk, request.user)
        messages.success(request, f"Record {pk} approved.")
    except services.MiningError as exc:
        messages.error(request, str(exc))
    return redirect(_next(request, reverse("mining:review_queue")))


@require_POST
@role_required(REVIEWER)
def record_reject(request, pk):
    form = RejectForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Say why the record is rejected.")
    else:
        try:
            services.reject_record(pk, request.user, form.cleaned_data["reason"])
            messages.success(request, f"Record {pk} rejected.")
        except services.MiningError as exc:
            messages.error(request, str(exc))
    return redirect(_next(request, reverse("mining:review_queue")))


@require_POST
@role_required(REVIEWER)
def record_reopen(request, pk):
    try:
        services.reopen_record(pk, request.user)
        messages.success(request, f"Record {pk} is back in the review queue.")
    except services.MiningError as exc:
        messages.error(request, str(exc))
    return redirect("mining:record_detail", pk=pk)
