from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models.functions import Length

from core.doi import validate_doi
from core.forms import IdChoiceField, IdMultipleChoiceField
from ml.rules import ElementListError, parse_element_list

from .llm import CHARS_PER_TOKEN, LLMConfig, estimate, estimated_chunks
from .models import ExtractedRecord, ExtractionBatch, LiteratureSource


class SourceForm(forms.Form):
    doi = forms.CharField(label="DOI", required=False, max_length=255)
    file = forms.FileField(label="PDF or text file", required=False)
    text = forms.CharField(label="…or paste the text", required=False, widget=forms.Textarea(attrs={"rows": 6}))
    title = forms.CharField(required=False, max_length=500)
    authors = forms.CharField(required=False, max_length=500)
    year = forms.IntegerField(required=False, min_value=1900, max_value=2100)
    journal = forms.CharField(required=False, max_length=255)
    url = forms.URLField(label="URL", required=False, max_length=500, assume_scheme="https")

    def clean_doi(self):
        return validate_doi(self.cleaned_data["doi"])

    def clean_file(self):
        upload = self.cleaned_data.get("file")
        if upload and upload.size > settings.GLASSLOOP_MAX_UPLOAD_BYTES:
            raise ValidationError(f"The file is larger than {settings.GLASSLOOP_MAX_UPLOAD_BYTES // 1_000_000} MB.")
        return upload

    def clean(self):
        data = super().clean()
        if not (data.get("doi") or data.get("file") or (data.get("text") or "").strip()):
            raise ValidationError("Give a DOI and a file (or the text).")
        return data


class BatchForm(forms.Form):
    """A new batch. With an LLM extractor each source is listed with the requests it needs,
    the cap is stated, and a choice over the cap is refused (mining.llm.estimate)."""

    name = forms.CharField(max_length=120)
    sources = IdMultipleChoiceField(
        queryset=LiteratureSource.objects.order_by("-created_at").defer("text").annotate(text_chars=Length("text")),
        widget=forms.SelectMultiple(attrs={"size": 8}),
    )
    extractor = forms.ChoiceField(choices=())

    def __init__(self, *args, default_extractor="rules", **kwargs):
        super().__init__(*args, **kwargs)
        choices = [(ExtractionBatch.RULES, "rules (offline)")]
        self.llm_config = None
        if default_extractor.startswith(ExtractionBatch.LLM_PREFIX):
            choices.insert(0, (default_extractor, f"{default_extractor} (LLM)"))
            self.llm_config = LLMConfig.from_settings(model=default_extractor[len(ExtractionBatch.LLM_PREFIX):])
        self.fields["extractor"].choices = choices
        self.fields["extractor"].initial = default_extractor
        if self.llm_config:
            config = self.llm_config
            self.fields["sources"].label_from_instance = lambda s: (
                f"{s} · ~{estimated_chunks(getattr(s, 'text_chars', None) or len(s.text), config.chunk_chars, config.overlap_chars)} LLM requests"
            )
            self.fields["sources"].help_text = (
                f"With the LLM, each source costs about one request per {config.chunk_chars:,} characters of its text "
                f"(~{config.chunk_chars // CHARS_PER_TOKEN:,} tokens each, plus the prompt); a batch may send at most "
                f"{config.max_requests_per_batch} requests (GLASSLOOP_LLM_MAX_REQUESTS_PER_BATCH)."
            )

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if ExtractionBatch.objects.filter(name=name).exists():
            raise ValidationError("A batch with this name exists.")
        return name

    def clean(self):
        data = super().clean()
        extractor, sources = data.get("extractor") or "", data.get("sources")
        if self.llm_config and extractor.startswith(ExtractionBatch.LLM_PREFIX) and sources:
            self.estimate = estimate([s.text for s in sources], self.llm_config)
            if self.estimate.over_cap:
                raise ValidationError(
                    f"These sources need about {self.estimate.requests} LLM requests (~{self.estimate.tokens:,} tokens), "
                    f"more than the cap of {self.estimate.max_requests} per batch: choose fewer or shorter sources."
                )
        return data


class RecordEditForm(forms.Form):
    composition_raw = forms.CharField(label="Composition as written", max_length=255)
    composition_formula = forms.CharField(label="Composition as parsed (edit to correct)", max_length=255, required=False)
    tg_k = forms.FloatField(label="Tg (K)", required=False)
    tx_k = forms.FloatField(label="Tx (K)", required=False)
    tl_k = forms.FloatField(label="Tl (K)", required=False)
    dmax_mm = forms.FloatField(label="Dmax (mm)", required=False, min_value=0)
    heating_rate_k_min = forms.FloatField(label="Heating rate (K/min)", required=False, min_value=0)

    @classmethod
    def for_record(cls, record, data=None):
        initial = {name: getattr(record, name) for name in cls.base_fields}
        initial["composition_formula"] = record.composition_edited or record.composition_formula
        return cls(data, initial=initial)


class RejectForm(forms.Form):
    reason = forms.CharField(max_length=1000, widget=forms.TextInput(attrs={"placeholder": "why (required)"}))


class QueueFilterForm(forms.Form):
    batch = IdChoiceField(queryset=ExtractionBatch.objects.order_by("-created_at"), required=False)
    status = forms.ChoiceField(choices=[("", "any")] + list(ExtractedRecord.Status.choices), required=False, initial="pending")
    flag = forms.ChoiceField(required=False, choices=())
    element = forms.CharField(required=False, max_length=3)

    def __init__(self, *args, **kwargs):
        from .validation import ALL_FLAGS

        super().__init__(*args, **kwargs)
        self.fields["flag"].choices = [("", "any"), ("none", "clean (no flag)")] + [(f, f) for f in ALL_FLAGS]

    def clean_element(self):
        """One element symbol, case-insensitive (ml.rules.parse_element_list), or ''."""
        try:
            symbols = parse_element_list(self.cleaned_data.get("element"))
        except ElementListError as exc:
            raise ValidationError(str(exc)) from exc
        if len(symbols) > 1:
            raise ValidationError("Give one element.")
        return symbols[0] if symbols else ""
