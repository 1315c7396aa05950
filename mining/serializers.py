"""The mining API's serializers (``mining.api`` uses them).

Responses are shaped here. Requests are checked by the pages' own forms (``mining.forms``):
a ``FormSerializer`` declares the fields (for the OpenAPI schema) and validates with its form,
so the API refuses exactly what the page refuses, with the page's messages, keyed by field.
"""

from collections.abc import Mapping

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.settings import api_settings

from core import jobs
from core.api import absolute_url
from core.api_jobs import job_links
from lab.models import TemperatureUnit, to_kelvin

from . import selectors
from .forms import BatchForm, RecordEditForm, RejectForm, SourceForm
from .models import BulkApproval, ExtractedRecord, ExtractionBatch, LiteratureSource

JOB_KIND = ExtractionBatch.job_api_name
TEMPERATURES = ("tg_k", "tx_k", "tl_k")


def job_with_links(job, context, **extra):
    """A job's status (as GET /api/jobs/<kind>/<id>/ gives it) with its URLs."""
    return {**jobs.status_payload(job), "kind": type(job).job_api_name, **job_links(job, context), **extra}


JOB_SCHEMA = {"type": "object", "nullable": True, "properties": {
    "id": {"type": "integer"}, "kind": {"type": "string"}, "status": {"type": "string"}, "status_display": {"type": "string"},
    "progress": {"type": "number"}, "message": {"type": "string"}, "error": {"type": "string"},
    "finished": {"type": "boolean"}, "status_url": {"type": "string"}, "cancel_url": {"type": "string"},
    "retry_url": {"type": "string"}}}


def form_errors(form):
    """A bound, invalid form's errors as DRF detail: field -> [messages] (the page's words)."""
    return {
        (api_settings.NON_FIELD_ERRORS_KEY if field == "__all__" else field): list(messages)
        for field, messages in form.errors.items()
    }


def require_mapping(data, fields=None):
    """A JSON object (form data is one too), its single-value fields not lists or objects: the
    pages' forms would read those as text."""
    if not isinstance(data, Mapping):
        raise serializers.ValidationError(
            {api_settings.NON_FIELD_ERRORS_KEY: [f"Invalid data. Expected a dictionary, but got {type(data).__name__}."]}
        )
    if hasattr(data, "getlist"):  # form data: each value is text (or a file)
        return
    scalar = {name for name, field in (fields or {}).items() if not isinstance(field, serializers.ListField)}
    wrong = {name: ["Give one value, not a list or an object."] for name in sorted(scalar)
             if isinstance(data.get(name), (list, dict))}
    if wrong:
        raise serializers.ValidationError(wrong)


class FormSerializer(serializers.Serializer):
    """Declared fields describe the request; the page's form (``form_class``) validates it."""

    form_class = None

    def get_form(self, data):
        return self.form_class(data)

    def to_internal_value(self, data):
        require_mapping(data, self.fields)
        form = self.get_form(data)
        if not form.is_valid():
            raise serializers.ValidationError(form_errors(form))
        return form.cleaned_data


# ---------------------------------------------------------------- sources


class SourceSerializer(serializers.ModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name="literature-source-detail")
    text_chars = serializers.SerializerMethodField(help_text="Characters of plain text the extractors read")
    has_file = serializers.SerializerMethodField()
    reference_text = serializers.CharField(source="reference.__str__", read_only=True, allow_null=True, default=None,
                                           help_text="The lab reference (citation) made for it")
    n_records = serializers.IntegerField(read_only=True, help_text="Records extracted from it (all batches)")
    records_url = serializers.SerializerMethodField(help_text="Its records: /api/extracted-records/?source=<id>")
    # The model's "url" (the paper's web address); "url" is this API's link, as everywhere.
    paper_url = serializers.URLField(source="url", read_only=True, help_text="The paper's web address")
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    text_status = serializers.ChoiceField(
        choices=["ready", "reading", "refused"], read_only=True,
        help_text="ready: extractors can read it; reading: its PDF is being read on the worker; refused: see text_status_display",
    )
    text_status_display = serializers.CharField(read_only=True, help_text="The source page's words: 'reading the PDF…', "
                                                "'12 pages read', 'refused: <why, naming the limit>'")
    reading = serializers.SerializerMethodField(help_text="The job reading its PDF (poll status_url), or null")

    class Meta:
        model = LiteratureSource
        fields = [
            "id", "url", "doi", "title", "authors", "year", "journal", "paper_url", "original_name", "has_file",
            "sha256", "text_chars", "text_status", "text_status_display", "reading", "reference", "reference_text",
            "n_records", "records_url", "created_by", "created_at",
        ]  # fmt: skip

    @extend_schema_field(JOB_SCHEMA)
    def get_reading(self, source):
        reading = source.reading
        if reading is None:
            return None
        return job_with_links(reading, self.context, pages_total=reading.pages_total, pages_read=reading.pages_read)

    def get_text_chars(self, source) -> int:
        chars = getattr(source, "text_chars", None)
        return chars if chars is not None else len(source.text)

    def get_has_file(self, source) -> bool:
        return bool(source.file)

    def get_records_url(self, source) -> str:
        return absolute_url(self.context, reverse("extracted-record-list") + f"?source={source.pk}")


class SourceDetailSerializer(SourceSerializer):
    class Meta(SourceSerializer.Meta):
        fields = SourceSerializer.Meta.fields + ["text"]


class SourceCreateSerializer(FormSerializer):
    """mining.forms.SourceForm: a DOI, a .txt/.pdf file or the text (at least one)."""

    form_class = SourceForm

    doi = serializers.CharField(required=False, allow_blank=True, max_length=255, help_text="doi:…, https://doi.org/… or 10.…")
    file = serializers.FileField(required=False, help_text="PDF or plain-text file (multipart/form-data)")
    text = serializers.CharField(required=False, allow_blank=True, help_text="…or the text itself")
    title = serializers.CharField(required=False, allow_blank=True, max_length=500)
    authors = serializers.CharField(required=False, allow_blank=True, max_length=500)
    year = serializers.IntegerField(required=False, allow_null=True, min_value=1900, max_value=2100)
    journal = serializers.CharField(required=False, allow_blank=True, max_length=255)
    url = serializers.URLField(required=False, allow_blank=True, max_length=500)

    def get_form(self, data):
        request = self.context.get("request")
        return SourceForm(data, getattr(request, "FILES", None))


# ---------------------------------------------------------------- batches


class BatchSerializer(serializers.ModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name="extraction-batch-detail")
    status_display = serializers.CharField(source="get_status_display", read_only=True)
    finished = serializers.BooleanField(source="is_finished", read_only=True)
    can_cancel = serializers.BooleanField(read_only=True)
    can_retry = serializers.BooleanField(read_only=True)
    n_records = serializers.IntegerField(read_only=True)
    n_pending = serializers.IntegerField(read_only=True)
    n_approved = serializers.IntegerField(read_only=True)
    n_rejected = serializers.IntegerField(read_only=True)
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    job = serializers.SerializerMethodField(help_text="The job API: status (poll it for progress), cancel, retry")
    rerun_url = serializers.HyperlinkedIdentityField(view_name="extraction-batch-rerun")
    approve_clean_url = serializers.HyperlinkedIdentityField(view_name="extraction-batch-approve-clean")
    records_url = serializers.SerializerMethodField(help_text="Its records: /api/extracted-records/?batch=<id>")

    class Meta:
        model = ExtractionBatch
        fields = [
            "id", "url", "name", "extractor", "prompt_version", "status", "status_display", "progress", "message",
            "error", "attempts", "cancel_requested", "finished", "can_cancel", "can_retry", "queued_at", "started_at",
            "heartbeat_at", "finished_at", "sources_total", "sources_done", "records_found", "n_records", "n_pending",
            "n_approved", "n_rejected", "prompt_tokens", "completion_tokens", "created_by", "created_at", "job",
            "rerun_url", "approve_clean_url", "records_url",
        ]  # fmt: skip
        read_only_fields = fields

    @extend_schema_field({"type": "object", "properties": {
        "status_url": {"type": "string"}, "cancel_url": {"type": "string"}, "retry_url": {"type": "string"}}})
    def get_job(self, batch):
        return job_links(batch, self.context)

    def get_records_url(self, batch) -> str:
        return absolute_url(self.context, reverse("extracted-record-list") + f"?batch={batch.pk}")


class BatchDetailSerializer(BatchSerializer):
    counts = serializers.SerializerMethodField(help_text="Records by status and by flag, and how many are clean (the batch page's tables)")
    source_errors = serializers.JSONField(read_only=True, help_text="Source id → why its extraction failed")
    sources = serializers.SerializerMethodField()

    last_bulk_approval = serializers.SerializerMethodField(help_text="Its latest “approve all clean records” job, or null")

    class Meta(BatchSerializer.Meta):
        fields = BatchSerializer.Meta.fields + ["counts", "source_errors", "sources", "last_bulk_approval"]
        read_only_fields = fields

    @extend_schema_field({"type": "object", "nullable": True})
    def get_last_bulk_approval(self, batch):
        job = batch.bulk_approvals.order_by("-pk").first()
        return None if job is None else BulkApprovalSerializer(job, context=self.context).data

    @extend_schema_field({"type": "object", "properties": {
        "records": {"type": "integer"}, "clean": {"type": "integer"},
        "status": {"type": "object", "additionalProperties": {"type": "integer"}},
        "flags": {"type": "object", "additionalProperties": {"type": "integer"}}}})
    def get_counts(self, batch):
        return selectors.batch_counts(batch)

    @extend_schema_field({"type": "array", "items": {"type": "object", "properties": {
        "id": {"type": "integer"}, "text": {"type": "string"}, "url": {"type": "string"}}}})
    def get_sources(self, batch):
        return [
            {"id": s.pk, "text": str(s), "url": absolute_url(self.context, reverse("literature-source-detail", args=[s.pk]))}
            for s in batch.sources.defer("text").order_by("id")
        ]


class BatchCreateSerializer(FormSerializer):
    """mining.forms.BatchForm: a unique name, the sources, the extractor (the page's choices)."""

    name = serializers.CharField(max_length=120)
    sources = serializers.ListField(child=serializers.IntegerField(), help_text="Source ids")
    extractor = serializers.CharField(
        required=False, help_text="'rules' (offline) or the configured 'llm:<model>'; default: the LLM if one is configured, else rules"
    )

    def get_form(self, data):
        from . import services

        default = services.default_extractor()
        values = {"name": data.get("name"), "sources": _as_list(data, "sources"), "extractor": data.get("extractor") or default}
        return BatchForm(values, default_extractor=default)


def _as_list(data, name):
    if hasattr(data, "getlist"):  # form data: sources=1&sources=2
        return data.getlist(name)
    value = data.get(name)
    return value if isinstance(value, (list, tuple)) else ([] if value in (None, "") else [value])


class RerunSerializer(serializers.Serializer):
    sources = serializers.ListField(
        child=serializers.IntegerField(), required=False, allow_empty=True,
        help_text="Re-run only these sources of the batch (the page's 'Re-run this source'); none: all of them",
    )


class BulkApprovalSerializer(serializers.ModelSerializer):
    """A bulk approval job: its status and, once done, the summary."""

    status_display = serializers.CharField(source="get_status_display", read_only=True)
    finished = serializers.BooleanField(source="is_finished", read_only=True)
    requested_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    summary = serializers.CharField(read_only=True, help_text="Approved N (new alloys), M left for review, and why")
    job = serializers.SerializerMethodField(help_text="The job API: status (poll it for progress), cancel, retry")

    class Meta:
        model = BulkApproval
        fields = ["id", "batch", "status", "status_display", "progress", "message", "error", "finished", "approved",
                  "alloys_created", "skipped", "skipped_reasons", "requested_by", "created_at", "finished_at", "summary", "job"]
        read_only_fields = fields

    @extend_schema_field(JOB_SCHEMA)
    def get_job(self, job):
        return job_with_links(job, self.context)


class BulkApproveSerializer(serializers.Serializer):
    bulk_approval = BulkApprovalSerializer()
    outcome = serializers.CharField(help_text="What was done, in a sentence")
    batch = BatchDetailSerializer()


class BatchActionSerializer(serializers.Serializer):
    batch = BatchDetailSerializer()
    outcome = serializers.CharField(help_text="What was done, in a sentence")
    job = serializers.DictField(help_text="The job's status, as GET /api/jobs/extraction-batches/<id>/ gives it")


# ---------------------------------------------------------------- records


class RecordSerializer(serializers.ModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name="extracted-record-detail")
    batch_name = serializers.CharField(source="batch.name", read_only=True)
    source_text = serializers.SerializerMethodField(help_text="The source in words (title, DOI or file name), or the imported table's label")
    elements = serializers.SerializerMethodField()
    flag_names = serializers.ListField(child=serializers.CharField(), read_only=True)
    bulk_blockers = serializers.SerializerMethodField(
        help_text="Why 'approve clean' leaves it for a person ([] when it would approve it)"
    )
    source_context = serializers.SerializerMethodField(
        help_text="The source text around the snippet: before, the passage, after; null when the snippet is not found"
    )
    reviewer = serializers.SlugRelatedField(slug_field="username", read_only=True)
    approve_url = serializers.HyperlinkedIdentityField(view_name="extracted-record-approve")
    reject_url = serializers.HyperlinkedIdentityField(view_name="extracted-record-reject")

    class Meta:
        model = ExtractedRecord
        fields = [
            "id", "url", "batch", "batch_name", "source", "source_label", "source_text", "status",
            "composition_raw", "composition_edited", "composition_formula", "composition_key", "base_element",
            "elements", "parse_error", "tg_k", "tx_k", "tl_k", "original_values", "dmax_mm", "gfa_class",
            "heating_rate_k_min", "derived", "snippet", "more_snippets", "snippet_in_source", "source_context",
            "flags", "flag_names", "flag_count", "bulk_blockers", "reviewer", "reviewed_at", "reject_reason",
            "alloy", "property_value", "created_at", "approve_url", "reject_url",
        ]  # fmt: skip
        read_only_fields = fields

    def get_source_text(self, record) -> str:
        return str(record.source) if record.source_id else record.source_label

    @extend_schema_field({"type": "array", "items": {"type": "string"}})
    def get_elements(self, record):
        return [e for e in record.elements_index.split("|") if e]

    @extend_schema_field({"type": "array", "items": {"type": "string"}})
    def get_bulk_blockers(self, record):
        blockers = getattr(record, "bulk_blockers", None)
        if blockers is None:
            from .validation import bulk_blockers

            blockers = bulk_blockers(record)
        return blockers

    @extend_schema_field({"type": "object", "nullable": True, "properties": {
        "before": {"type": "string"}, "passage": {"type": "string"}, "after": {"type": "string"}}})
    def get_source_context(self, record):
        context = getattr(record, "source_context", None)
        return None if context is None else dict(zip(("before", "passage", "after"), context))


class RecordDetailSerializer(RecordSerializer):
    history = serializers.SerializerMethodField(help_text="Its last 20 changes, newest first (the record page's history)")

    class Meta(RecordSerializer.Meta):
        fields = RecordSerializer.Meta.fields + ["history"]
        read_only_fields = fields

    @extend_schema_field({"type": "array", "items": {"type": "object", "properties": {
        "at": {"type": "string", "format": "date-time"}, "user": {"type": "string", "nullable": True},
        "change": {"type": "string"}, "status": {"type": "string"}, "flags": {"type": "array", "items": {"type": "string"}}}}})
    def get_history(self, record):
        return [
            {"at": h.history_date, "user": h.history_user.get_username() if h.history_user else None,
             "change": h.get_history_type_display(), "status": h.status, "flags": [f for f in h.flag_index.split("|") if f]}
            for h in record.history.select_related("history_user")[:20]
        ]  # fmt: skip


class RecordEditSerializer(FormSerializer):
    """mining.forms.RecordEditForm (the record page's editor): the fields not sent keep their
    values, as the page's form shows them; then the record is saved and re-validated."""

    composition_raw = serializers.CharField(required=False, max_length=255, help_text="Composition as written")
    composition_formula = serializers.CharField(
        required=False, allow_blank=True, max_length=255, help_text="Composition as parsed: change it to correct it; \"\" drops a correction"
    )
    tg_k = serializers.FloatField(required=False, allow_null=True, help_text="Tg, in temperature_unit (stored in K)")
    tx_k = serializers.FloatField(required=False, allow_null=True, help_text="Tx, in temperature_unit (stored in K)")
    tl_k = serializers.FloatField(required=False, allow_null=True, help_text="Tl, in temperature_unit (stored in K)")
    dmax_mm = serializers.FloatField(required=False, allow_null=True, min_value=0)
    heating_rate_k_min = serializers.FloatField(required=False, allow_null=True, min_value=0)
    temperature_unit = serializers.ChoiceField(
        choices=TemperatureUnit.choices, required=False, default=TemperatureUnit.KELVIN,
        help_text="The unit of the Tg, Tx, Tl sent here (K or C); converted to K by ml.rules.to_kelvin",
    )

    def get_form(self, data):
        record = self.instance
        given = {name: data[name] for name in RecordEditForm.base_fields if name in data}
        initial = RecordEditForm.for_record(record).initial
        values = {**initial, **{k: ("" if v is None else v) for k, v in given.items()}}
        values["temperature_unit"] = TemperatureUnit.KELVIN  # converted below, only the values sent
        return RecordEditForm.for_record(record, values)

    def to_internal_value(self, data):
        require_mapping(data, self.fields)
        unit_field = self.fields["temperature_unit"]
        try:
            unit = unit_field.run_validation(data.get("temperature_unit") or unit_field.default)
        except serializers.ValidationError as exc:
            raise serializers.ValidationError({"temperature_unit": exc.detail}) from exc
        edits = dict(super().to_internal_value(data))
        edits.pop("temperature_unit", None)
        for name in TEMPERATURES:
            if name in data and edits.get(name) is not None:  # only the values sent here are in that unit
                edits[name] = to_kelvin(edits[name], unit)
        return edits


class RejectSerializer(FormSerializer):
    """mining.forms.RejectForm: a reason is required."""

    form_class = RejectForm
    reason = serializers.CharField(max_length=1000, help_text="Why the record is rejected (required)")

    def to_internal_value(self, data):
        require_mapping(data, self.fields)
        if not str(data.get("reason") or "").strip():
            raise serializers.ValidationError({"reason": ["Say why the record is rejected."]})  # the page's words
        return super().to_internal_value(data)


def job_payload(batch):
    """The batch's job status as GET /api/jobs/extraction-batches/<id>/ gives it."""
    return {**jobs.status_payload(batch), "kind": JOB_KIND}
