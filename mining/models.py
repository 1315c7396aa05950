"""Literature mining: sources (papers), extraction batches and the records they yield.

A record is a claim read from a paper ("Zr57Cu28Al10Ni5 has Tg = 683 K", with the sentence
that says so). It stays ``pending`` until a reviewer approves it, which creates the lab's
``PropertyValue`` (origin=literature). The link lives on this side
(``ExtractedRecord.property_value``), so from a property value
``value.extracted_record`` reaches the source, batch, snippet, reviewer and time.
"""

import hashlib

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from simple_history.models import HistoricalRecords

from core.jobs import Job
from core.roles import REVIEWER
from ml.rules import GFA_CLASS_LABELS, GFA_CLASSES


class LiteratureSource(models.Model):
    """A paper: metadata plus its text (uploaded as plain text, or extracted from a PDF)."""

    doi = models.CharField("DOI", max_length=255, unique=True, null=True, blank=True)
    title = models.CharField(max_length=500, blank=True)
    authors = models.CharField(max_length=500, blank=True)
    year = models.PositiveSmallIntegerField(null=True, blank=True)
    journal = models.CharField(max_length=255, blank=True)
    url = models.URLField(max_length=500, blank=True)
    file = models.FileField(upload_to="mining/sources/%Y/%m/", blank=True)
    original_name = models.CharField(max_length=255, blank=True)
    text = models.TextField(blank=True, help_text="Plain text the extractors read")
    sha256 = models.CharField(max_length=64, unique=True, null=True, blank=True, help_text="Checksum of the uploaded file")
    reference = models.OneToOneField(
        "lab.Reference", null=True, blank=True, on_delete=models.PROTECT, related_name="literature_source"
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords(excluded_fields=["text"])

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return self.title or self.doi or self.original_name or f"Source {self.pk}"

    def get_absolute_url(self):
        from django.urls import reverse

        return reverse("mining:source_detail", args=[self.pk])

    TEXT_READY, TEXT_READING, TEXT_REFUSED = "ready", "reading", "refused"

    @property
    def reading(self):
        """Its PdfReading (the job reading its PDF on the worker), or None (text or DOI only)."""
        try:
            return self.pdf_reading
        except models.ObjectDoesNotExist:
            return None

    @property
    def text_status(self):
        """ready (its text can be extracted from), reading (its PDF is being read) or refused."""
        reading = self.reading
        if reading is None or reading.status == reading.Status.DONE:
            return self.TEXT_READY
        if reading.status in (reading.Status.FAILED, reading.Status.CANCELLED):
            return self.TEXT_REFUSED
        return self.TEXT_READING

    @property
    def text_status_display(self):
        """The source page's words: "reading the PDF…", "12 pages read", "refused: <why>"."""
        reading, status = self.reading, self.text_status
        if status == self.TEXT_READING:
            return "reading the PDF…" + (f" ({reading.pages_read} of {reading.pages_total} pages)" if reading.pages_total else "")
        if status == self.TEXT_REFUSED:
            return f"refused: {reading.error or reading.message or 'cancelled'}"
        if reading is not None:
            return f"{reading.pages_read} page{'s' if reading.pages_read != 1 else ''} read"
        chars = getattr(self, "text_chars", None)  # annotated on lists, which defer the text itself
        return "text given" if (self.text if chars is None else chars) else "no text (DOI only)"

    @property
    def has_text(self):
        return self.text_status == self.TEXT_READY and bool(self.text.strip())


class ExtractionBatch(Job):
    """One run of an extractor over a set of sources (or one imported table); a job (core.jobs)."""

    job_task_name = "mining.run_batch"
    job_api_name = "extraction-batches"
    job_control_roles = (REVIEWER,)

    RULES = "rules"
    IMPORT = "import"
    LLM_PREFIX = "llm:"

    name = models.CharField(max_length=120, unique=True)
    sources = models.ManyToManyField(LiteratureSource, blank=True, related_name="batches")
    extractor = models.CharField(max_length=120, help_text="llm:<model>, rules or import")
    prompt_version = models.CharField(max_length=40, blank=True)
    sources_total = models.PositiveIntegerField(default=0)
    sources_done = models.PositiveIntegerField(default=0)
    records_found = models.PositiveIntegerField(default=0)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    source_errors = models.JSONField(default=dict, blank=True, help_text="Source id → error message")
    only_source_ids = models.JSONField(null=True, blank=True, help_text="Run only these sources (a partial re-run); null: all")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "extraction batches"

    def __str__(self):
        return self.name

    def job_label(self):
        return f"extraction batch {self.name}"

    def reset_for_retry(self):
        super().reset_for_retry()
        if self.only_source_ids is None:  # a full re-run counts every source again
            self.sources_done, self.source_errors = 0, {}

    def get_absolute_url(self):
        from django.urls import reverse

        return reverse("mining:batch_detail", args=[self.pk])

    @property
    def is_llm(self):
        return self.extractor.startswith(self.LLM_PREFIX)

    @property
    def llm_model(self):
        return self.extractor[len(self.LLM_PREFIX):] if self.is_llm else ""

    @property
    def total_tokens(self):
        return self.prompt_tokens + self.completion_tokens

    def clean(self):
        super().clean()
        if not (self.extractor in {self.RULES, self.IMPORT} or (self.is_llm and self.llm_model)):
            raise ValidationError({"extractor": "The extractor is 'rules', 'import' or 'llm:<model>'."})


def record_fingerprint(source_id, composition_raw, snippet, tg_k, tx_k, tl_k):
    """Identity of a record inside its batch: re-running an extraction that reads the same
    claim from the same text yields the same fingerprint, so it is never stored twice."""
    parts = [str(source_id or ""), composition_raw.strip(), " ".join(snippet.split())]
    parts += ["" if v is None else f"{float(v):.2f}" for v in (tg_k, tx_k, tl_k)]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


class ExtractedRecord(models.Model):
    """One alloy's Tg/Tx/Tl as read from a source, with the snippet that supports it."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending review"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"

    batch = models.ForeignKey(ExtractionBatch, on_delete=models.CASCADE, related_name="records")
    source = models.ForeignKey(LiteratureSource, null=True, blank=True, on_delete=models.PROTECT, related_name="records")
    source_label = models.CharField(max_length=255, blank=True, help_text="Source as written in an imported table")
    fingerprint = models.CharField(max_length=64)
    # Composition: as written in the source, a reviewer's correction, and the parser's reading.
    composition_raw = models.CharField("composition as written", max_length=255)
    composition_edited = models.CharField("corrected composition", max_length=255, blank=True)
    composition_formula = models.CharField("composition as parsed", max_length=255, blank=True)
    composition_key = models.CharField(max_length=255, blank=True, db_index=True)
    base_element = models.CharField(max_length=3, blank=True)
    elements_index = models.CharField(max_length=255, blank=True, help_text="'|Al|Cu|Zr|' for filtering by element")
    parse_error = models.TextField(blank=True)
    # Values in kelvin; what the source wrote (value, unit) is kept in original_values.
    tg_k = models.FloatField("Tg (K)", null=True, blank=True)
    tx_k = models.FloatField("Tx (K)", null=True, blank=True)
    tl_k = models.FloatField("Tl (K)", null=True, blank=True)
    original_values = models.JSONField(default=dict, blank=True, help_text='e.g. {"tx": {"value": 410, "unit": "C"}}')
    dmax_mm = models.FloatField("Dmax (mm)", null=True, blank=True)
    gfa_class = models.CharField(
        "glass-forming ability", max_length=16, blank=True, choices=[(c, GFA_CLASS_LABELS[c]) for c in GFA_CLASSES],
        help_text="As the source states it: bulk glass, ribbon only, or crystalline",
    )
    heating_rate_k_min = models.FloatField("heating rate (K/min)", null=True, blank=True)
    # Values the extractor worked out rather than read, e.g. {"tx": "Tx = Tg + ΔTx = 680 K + 85 K"}.
    derived = models.JSONField(default=dict, blank=True, help_text='Property -> how it was derived from the text')
    snippet = models.TextField(blank=True, help_text="Exact supporting text from the source")
    more_snippets = models.JSONField(
        default=list, blank=True, help_text="Further passages (other chunks of a long paper) stating the same record"
    )
    snippet_in_source = models.BooleanField(null=True, help_text="Whether the snippet was found in the source text")
    # Validation: [{"flag": "order", "reason": "..."}]; flag_index mirrors it for filtering.
    flags = models.JSONField(default=list, blank=True)
    flag_index = models.CharField(max_length=255, blank=True)
    flag_count = models.PositiveSmallIntegerField(default=0, db_index=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True)
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    reviewed_at = models.DateTimeField(null=True, blank=True)
    reject_reason = models.TextField(blank=True)
    alloy = models.ForeignKey("lab.Alloy", null=True, blank=True, on_delete=models.SET_NULL, related_name="extracted_records")
    property_value = models.OneToOneField(
        "lab.PropertyValue", null=True, blank=True, on_delete=models.SET_NULL, related_name="extracted_record"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["batch", "id"]
        constraints = [models.UniqueConstraint(fields=["batch", "fingerprint"], name="mining_record_unique_in_batch")]
        indexes = [models.Index(fields=["batch", "status", "flag_count"])]

    def __str__(self):
        return f"{self.composition_raw} (record {self.pk})"

    def get_absolute_url(self):
        from django.urls import reverse

        return reverse("mining:record_detail", args=[self.pk])

    @property
    def flag_names(self):
        return [f["flag"] for f in self.flags]

    @property
    def composition_for_parsing(self):
        return self.composition_edited or self.composition_raw

    def set_flags(self, flags):
        self.flags = list(flags)
        names = sorted({f["flag"] for f in self.flags})
        self.flag_index = "|" + "|".join(names) + "|" if names else ""
        self.flag_count = len(self.flags)


class PdfReading(Job):
    """Reading the text of an uploaded PDF source on the worker (core.jobs): the web request only
    checks the size and the ``%PDF`` header and stores the file, since parsing a crafted PDF can
    take seconds and hundreds of MB (issue 16). While it is not done, the source's text is not
    ready and no batch may include it."""

    job_task_name = "mining.read_pdf"
    job_api_name = "pdf-readings"
    job_time_limit_setting = "GLASSLOOP_PDF_MAX_SECONDS"
    job_control_roles = (REVIEWER,)

    source = models.OneToOneField(LiteratureSource, on_delete=models.CASCADE, related_name="pdf_reading")
    pages_total = models.PositiveIntegerField(default=0)
    pages_read = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"Reading of {self.source} ({self.get_status_display()})"

    def job_label(self):
        return f"PDF reading {self.pk} (source {self.source_id})"

    def reset_for_retry(self):
        super().reset_for_retry()
        self.pages_total = self.pages_read = 0

    def get_absolute_url(self):
        return self.source.get_absolute_url()


class BulkApproval(Job):
    """“Approve all clean records” of a batch, run on the worker (core.jobs): 30,000 records took
    49 s in the request against gunicorn's 60 s. Idempotent: it approves only records still
    pending, in chunks each committed on its own, so a re-run after a crash approves nothing twice."""

    job_task_name = "mining.bulk_approve"
    job_api_name = "bulk-approvals"
    job_control_roles = (REVIEWER,)

    batch = models.ForeignKey(ExtractionBatch, on_delete=models.CASCADE, related_name="bulk_approvals")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    approved = models.PositiveIntegerField(default=0)
    alloys_created = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0, help_text="Pending records left for a person")
    skipped_reasons = models.JSONField(default=dict, blank=True, help_text="Why records were left: reason → count")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"Bulk approval {self.pk} of batch {self.batch_id} ({self.get_status_display()})"

    def job_label(self):
        return f"bulk approval {self.pk} (batch {self.batch_id})"

    def get_absolute_url(self):
        return self.batch.get_absolute_url()

    def summary(self):
        """The outcome in a sentence, as the batch page and the API say it."""
        text = f"Approved {self.approved} clean records ({self.alloys_created} new alloys); {self.skipped} left for review"
        if self.skipped_reasons:
            reasons = sorted(self.skipped_reasons.items(), key=lambda kv: (-kv[1], kv[0]))
            text += ": " + "; ".join(f"{n} {why}" for why, n in reasons[:6])
        return text + "."
