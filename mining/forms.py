from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models.functions import Length

from core.doi import validate_doi
from core.forms import IdChoiceField, IdMultipleChoiceField
from lab.models import TemperatureUnit, to_kelvin
from ml.rules import ElementListError, parse_element_list

from .llm import CHARS_PER_TOKEN, LLMConfig, estimate, estimated_chunks
from .models import ExtractedRecord, ExtractionBatch, LiteratureSource


class SourceForm(forms.Form):
    """A literature source needs at least one of a DOI, a file or pasted text; each gives
    something different (the help texts say what), and the extractors read only text."""

    doi = forms.CharField(
        label="DOI", required=False, max_length=255,
        help_text="Gives the citation (the lab reference) and a link to the paper. Optional; alone it gives no text to extract from.",
    )
    file = forms.FileField(
        label="PDF or text file", required=False,
        help_text="A .pdf (its text is read in the background: the source page shows the progress) or a UTF-8 .txt "
                  "file: the text the extractors read.",
    )
    text = forms.CharField(
        label="…or paste the text", required=False, widget=forms.Textarea(attrs={"rows": 6}),
        help_text="The paper's text (or the part with the data), when there is no file.",
    )
    title = forms.CharField(required=False, max_length=500)
    authors = forms.CharField(required=False, max_length=500)
    year = forms.IntegerField(required=False, min_value=1900, max_value=2100)
    journal = forms.CharField(required=False, max_length=255)
    url = forms.URLField(label="URL", required=False, max_length=500, assume_scheme="https")

    def clean_doi(self):
        return validate_doi(self.cleaned_data["doi"])

    def clean_file(self):
        upload = self.cleaned_data.get("file")
        limit = settings.GLASSLOOP_MAX_UPLOAD_BYTES
        if upload and upload.size > limit:
            raise ValidationError(f"The file is {upload.size:,} bytes; at most {limit:,} are accepted (GLASSLOOP_MAX_UPLOAD_BYTES).")
        return upload

    def clean(self):
        from .services import NEEDS_ONE

        data = super().clean()
        if not (data.get("doi") or data.get("file") or (data.get("text") or "").strip()) and not self.errors:
            raise ValidationError(NEEDS_ONE)
        return data


def source_choice_label(source):
    """A source in the batch form's list: number, title (or file), DOI, size of its text, and
    whether its text is ready."""
    chars = getattr(source, "text_chars", None)
    chars = len(source.text) if chars is None else chars
    parts = [f"#{source.pk} {source.title or source.original_name or '(untitled)'}", f"DOI {source.doi}" if source.doi else "no DOI",
             f"{chars:,} characters of text"]
    if source.text_status != source.TEXT_READY:
        parts.append(f"not ready: {source.text_status_display}")
    return " · ".join(parts)


class BatchForm(forms.Form):
    """A new batch. With an LLM extractor each source is listed with the requests it needs,
    the cap is stated, and a choice over the cap is refused (mining.llm.estimate)."""

    name = forms.CharField(max_length=120)
    sources = IdMultipleChoiceField(
        queryset=LiteratureSource.objects.order_by("-created_at").select_related("pdf_reading").defer("text")
        .annotate(text_chars=Length("text")),
        widget=forms.CheckboxSelectMultiple,
        help_text="Tick the papers to extract from (type in the filter box to find them by title, DOI or number). "
                  "A source whose PDF is still being read cannot be chosen yet.",
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
        self.fields["sources"].label_from_instance = source_choice_label
        if self.llm_config:
            config = self.llm_config
            self.fields["sources"].label_from_instance = lambda s: (
                f"{source_choice_label(s)} · ~{estimated_chunks(getattr(s, 'text_chars', None) or len(s.text), config.chunk_chars, config.overlap_chars)} LLM requests"
            )
            self.fields["sources"].help_text += " " + (
                f"With the LLM, each source costs about one request per {config.chunk_chars:,} characters of its text "
                f"(~{config.chunk_chars // CHARS_PER_TOKEN:,} tokens each, plus the prompt); a batch may send at most "
                f"{config.max_requests_per_batch} requests (GLASSLOOP_LLM_MAX_REQUESTS_PER_BATCH)."
            )

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if ExtractionBatch.objects.filter(name=name).exists():
            raise ValidationError("A batch with this name exists.")
        return name

    def clean_sources(self):
        from .services import not_ready_problem

        sources = self.cleaned_data["sources"]
        problem = not_ready_problem(sources)
        if problem:
            raise ValidationError(problem)
        return sources

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
    """The record page's editor. Tg, Tx and Tl are typed in the unit chosen (K or °C) and
    stored in K (ml.rules.to_kelvin); ``cleaned_data`` holds them in K."""

    TEMPERATURES = ("tg_k", "tx_k", "tl_k")

    composition_raw = forms.CharField(label="Composition as written", max_length=255)
    composition_formula = forms.CharField(label="Composition as parsed (edit to correct)", max_length=255, required=False)
    temperature_unit = forms.ChoiceField(
        label="Tg, Tx and Tl are in", choices=TemperatureUnit.choices, initial=TemperatureUnit.KELVIN, required=False,
        widget=forms.RadioSelect,
    )
    tg_k = forms.FloatField(label="Tg", required=False)
    tx_k = forms.FloatField(label="Tx", required=False)
    tl_k = forms.FloatField(label="Tl", required=False)
    dmax_mm = forms.FloatField(label="Dmax (mm)", required=False, min_value=0)
    heating_rate_k_min = forms.FloatField(label="Heating rate (K/min)", required=False, min_value=0)

    @classmethod
    def for_record(cls, record, data=None):
        initial = {name: getattr(record, name) for name in cls.base_fields if name != "temperature_unit"}
        initial["composition_formula"] = record.composition_edited or record.composition_formula
        initial["temperature_unit"] = TemperatureUnit.KELVIN
        return cls(data, initial=initial)

    @property
    def unit(self):
        data = getattr(self, "cleaned_data", None) or {}
        return data.get("temperature_unit") or TemperatureUnit.KELVIN

    def clean(self):
        data = super().clean()
        unit = data.get("temperature_unit") or TemperatureUnit.KELVIN
        data["temperature_unit"] = unit
        self.typed = {name: data.get(name) for name in self.TEMPERATURES}
        for name in self.TEMPERATURES:
            value = data.get(name)
            if value is None:
                continue
            kelvin = to_kelvin(value, unit)
            if kelvin <= 0:
                self.add_error(name, f"{value:g} {TemperatureUnit(unit).label} is below absolute zero.")
            else:
                data[name] = kelvin
        return data

    def edits(self):
        """The cleaned values the services take (mining.services.EDITABLE), temperatures in K."""
        return {k: v for k, v in self.cleaned_data.items() if k != "temperature_unit"}

    def as_typed(self):
        """"Tg 500 °C, Tx 560 °C" — what the reviewer typed, in the unit typed (for messages)."""
        label = TemperatureUnit(self.unit).label
        names = {"tg_k": "Tg", "tx_k": "Tx", "tl_k": "Tl"}
        typed = getattr(self, "typed", {})
        return ", ".join(f"{names[n]} {v:g} {label}" for n, v in typed.items() if v is not None)


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
