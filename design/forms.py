"""Forms of the design pages: campaign creation and candidate decisions."""

import re

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator

from ml.rules import DMAX_MAX_MM, DTX_MAX_K, T_MAX_K, T_MIN_K, ElementListError, parse_element_list

from .models import DMAX_TARGET, RATIO_TARGETS, TARGET_PROPERTIES, TEMPERATURE_TARGETS, DesignCampaign, target_bound_problem

_RANGE_ITEM = re.compile(r"^\s*([A-Za-z]{1,2})\s*[:=]?\s*([0-9.]+)\s*(?:-|–|\.\.|to)\s*([0-9.]+)\s*%?\s*$")


def _elements(text):
    """Element symbols, case-insensitive, in the order given (ml.rules.parse_element_list, as
    the lab's searches and the API read them)."""
    try:
        return list(parse_element_list(text))
    except ElementListError as exc:
        raise ValidationError(str(exc)) from exc


def _element(text):
    """One element symbol, or '' for none."""
    symbols = _elements(text)
    if len(symbols) > 1:
        raise ValidationError("Give one element.")
    return symbols[0] if symbols else ""


class CampaignForm(forms.ModelForm):
    """Targets as min/max pairs, constraints as short text; becomes the model's JSON."""

    allowed_text = forms.CharField(
        label="Allowed elements", required=False, help_text="e.g. Zr Cu Al Ni Ti (empty: any element the model knows)"
    )
    forbidden_text = forms.CharField(label="Forbidden elements", required=False, help_text="e.g. Be")
    ranges_text = forms.CharField(
        label="Per-element ranges (at.%)", required=False, help_text="e.g. Zr 45-70, Al 5-15"
    )

    class Meta:
        model = DesignCampaign
        fields = [
            "name", "description", "base_element", "max_elements", "min_p_glass", "min_p_bmg", "min_novelty",
            "batch_size", "n_draws", "kappa", "novelty_weight", "fill_with_near_misses",
        ]
        widgets = {"description": forms.Textarea(attrs={"rows": 2})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name, (label, unit) in TARGET_PROPERTIES.items():
            suffix = f" ({unit})" if unit else ""
            self.fields[f"{name}_min"] = forms.FloatField(label=f"{label} min{suffix}", required=False)
            self.fields[f"{name}_max"] = forms.FloatField(label=f"{label} max{suffix}", required=False)
        self.fields[f"{DMAX_TARGET}_min"].help_text = f"critical casting diameter, 0 < Dmax ≤ {DMAX_MAX_MM:g} mm"
        for name in TEMPERATURE_TARGETS:
            self.fields[f"{name}_min"].help_text = f"{T_MIN_K:g}–{T_MAX_K:g} K"
            for end in ("min", "max"):
                self.fields[f"{name}_{end}"].widget.attrs.update(min=f"{T_MIN_K:g}", max=f"{T_MAX_K:g}", step="any")
        for name in RATIO_TARGETS:
            self.fields[f"{name}_min"].help_text = "between 0 and 1"
            for end in ("min", "max"):
                self.fields[f"{name}_{end}"].widget.attrs.update(min="0", max="1", step="any")
        self.fields["delta_tx_k_min"].help_text = f"0 < ΔTx ≤ {DTX_MAX_K:g} K"
        for end in ("min", "max"):
            self.fields[f"delta_tx_k_{end}"].widget.attrs.update(min="0", max=f"{DTX_MAX_K:g}", step="any")
        for name in (f"{DMAX_TARGET}_min", f"{DMAX_TARGET}_max"):
            self.fields[name].widget.attrs.update(min="0", max=f"{DMAX_MAX_MM:g}", step="any")
        # Probabilities: 0–1, each field's error on the field (every one shown at once).
        for name in ("min_p_glass", "min_p_bmg"):
            field = self.fields[name]
            field.validators += [MinValueValidator(0.0, "A probability between 0 and 1."),
                                 MaxValueValidator(1.0, "A probability between 0 and 1.")]
            field.widget.attrs.update(min="0", max="1", step="any")
        self.fields["min_p_bmg"].required = False  # empty: no P(BMG) threshold

    # Model-level errors on the JSON fields are shown on the form fields that feed them.
    _ERROR_FIELDS = {"targets": None, "allowed_elements": "allowed_text", "forbidden_elements": "forbidden_text",
                     "element_ranges": "ranges_text", "owner": None}

    def add_error(self, field, error):
        if field is None and isinstance(error, ValidationError) and hasattr(error, "error_dict"):
            for name, messages in error.error_dict.items():
                if name == "targets" and self._target_refused():
                    # The refused target field says what is wrong; "state a target" would mislead.
                    messages = [m for m in messages if not " ".join(m.messages).startswith("State at least one target")]
                    if not messages:
                        continue
                target = self._ERROR_FIELDS.get(name, name) if name in self._ERROR_FIELDS or name in self.fields else None
                super().add_error(target, messages)
            return
        super().add_error(field, error)

    def _target_refused(self):
        return any(f"{name}_{end}" in self.errors for name in TARGET_PROPERTIES for end in ("min", "max"))

    def campaign_fields(self):
        """The cleaned campaign as keyword arguments of ``services.create_campaign``."""
        instance = self.instance
        fields = {name: getattr(instance, name) for name in self.Meta.fields}
        fields.update(targets=instance.targets, allowed_elements=instance.allowed_elements,
                      forbidden_elements=instance.forbidden_elements, element_ranges=instance.element_ranges)
        return fields

    def target_fields(self):
        return [(self[f"{n}_min"], self[f"{n}_max"]) for n in TARGET_PROPERTIES]

    def constraint_fields(self):
        return [self[n] for n in ("base_element", "allowed_text", "forbidden_text", "max_elements", "ranges_text")]

    def threshold_fields(self):
        return [self[n] for n in ("min_p_glass", "min_p_bmg", "min_novelty", "batch_size", "n_draws", "kappa", "novelty_weight",
                                  "fill_with_near_misses")]

    def clean_min_p_bmg(self):
        value = self.cleaned_data.get("min_p_bmg")
        return 0.0 if value is None else value

    def _clean_target_fields(self):
        """Every target bound's physical limits (models.target_bound_problem), each on its field."""
        for name in TARGET_PROPERTIES:
            for end in ("min", "max"):
                field = f"{name}_{end}"
                if field in self.cleaned_data:
                    why = target_bound_problem(name, self.cleaned_data[field])
                    if why:
                        self.add_error(field, f"{why}.")

    def clean_base_element(self):
        return _element(self.cleaned_data.get("base_element"))

    def clean_allowed_text(self):
        return _elements(self.cleaned_data.get("allowed_text"))

    def clean_forbidden_text(self):
        return _elements(self.cleaned_data.get("forbidden_text"))

    def clean_ranges_text(self):
        out = {}
        for item in [t for t in re.split(r"[,;\n]+", self.cleaned_data.get("ranges_text") or "") if t.strip()]:
            m = _RANGE_ITEM.match(item)
            if not m:
                raise ValidationError(f"Cannot read {item.strip()!r}: write e.g. “Zr 45-70”.")
            el, lo, hi = _element(m.group(1)), float(m.group(2)), float(m.group(3))
            out[el] = [lo, hi]
        return out

    def clean(self):
        data = super().clean()
        self._clean_target_fields()
        targets = {}
        for name in TARGET_PROPERTIES:
            lo, hi = data.get(f"{name}_min"), data.get(f"{name}_max")
            if lo is not None or hi is not None:
                targets[name] = {k: v for k, v in (("min", lo), ("max", hi)) if v is not None}
        # A target whose field was refused is not "missing": its own error says what is wrong.
        if not targets and not self._target_refused():
            raise ValidationError("State at least one target: a minimum or a range for Tg, Tx, Tl, Trg, γ, ΔTx or Dmax.")
        self.instance.targets = targets
        self.instance.allowed_elements = data.get("allowed_text") or []
        self.instance.forbidden_elements = data.get("forbidden_text") or []
        self.instance.element_ranges = data.get("ranges_text") or {}
        return data


class DecisionForm(forms.Form):
    note = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}), max_length=2000)


class SynthesisSampleForm(forms.Form):
    """The casting details of a candidate's sample (design.services.update_synthesis_sample)."""

    method = forms.ChoiceField(label="Method", choices=())
    diameter_mm = forms.FloatField(label="Rod diameter (mm)", required=False, help_text="validation needs it: an amorphous rod of stated diameter")
    cast_on = forms.DateField(label="Cast on", required=False, widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))
    operator = forms.ModelChoiceField(label="Operator", queryset=None, required=False)

    def __init__(self, *args, sample=None, **kwargs):
        from django.contrib.auth import get_user_model

        from lab.models import Sample

        if sample is not None and not args and "data" not in kwargs:
            kwargs["initial"] = {"method": sample.method, "diameter_mm": sample.diameter_mm, "cast_on": sample.cast_on,
                                 "operator": sample.operator_id}
        super().__init__(*args, **kwargs)
        self.fields["method"].choices = Sample.Method.choices
        self.fields["operator"].queryset = get_user_model().objects.filter(is_active=True).order_by("username")
