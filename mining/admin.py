from django.contrib import admin
from django.db import models
from simple_history.admin import SimpleHistoryAdmin

from .models import BulkApproval, ExtractedRecord, ExtractionBatch, LiteratureSource, PdfReading


@admin.register(LiteratureSource)
class LiteratureSourceAdmin(SimpleHistoryAdmin):
    list_display = ("id", "doi", "title", "year", "journal", "created_at")
    search_fields = ("doi", "title", "authors")
    readonly_fields = ("sha256", "reference", "created_at")
    # as the source form: a typed "doi.org/…" means https (Django 6 changes the default from http)
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}


@admin.register(ExtractionBatch)
class ExtractionBatchAdmin(SimpleHistoryAdmin):
    list_display = ("name", "extractor", "status", "sources_done", "sources_total", "records_found", "created_at")
    list_filter = ("status", "extractor")
    search_fields = ("name",)


@admin.register(ExtractedRecord)
class ExtractedRecordAdmin(SimpleHistoryAdmin):
    list_display = ("id", "batch", "composition_raw", "composition_formula", "tg_k", "tx_k", "tl_k", "flag_index", "status", "reviewer")
    list_filter = ("status", "batch")
    search_fields = ("composition_raw", "composition_key")
    raw_id_fields = ("alloy", "property_value", "source")


@admin.register(PdfReading)
class PdfReadingAdmin(admin.ModelAdmin):
    list_display = ("id", "source", "status", "pages_read", "pages_total", "created_at", "finished_at")
    list_filter = ("status",)
    raw_id_fields = ("source",)
    readonly_fields = ("task_id", "attempts", "queued_at", "started_at", "heartbeat_at", "finished_at")


@admin.register(BulkApproval)
class BulkApprovalAdmin(admin.ModelAdmin):
    list_display = ("id", "batch", "status", "approved", "alloys_created", "skipped", "requested_by", "created_at", "finished_at")
    list_filter = ("status",)
    raw_id_fields = ("batch",)
    readonly_fields = ("task_id", "attempts", "queued_at", "started_at", "heartbeat_at", "finished_at", "skipped_reasons")
