"""Forms of the lab pages. They turn input into clean values (°C → K, text → Composition);
the services enforce the lab's rules again, so code other than these forms is safe too.

Field-level checks that need the upload (size, parse, analysis) run through the same
``services.prepare_*`` functions that the services use, so the form shows exactly the
message the service would raise.
"""


from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import get_language

from ml.composition import CompositionError, parse_composition
from ml.rules import ElementListError, parse_element_list

from . import services
from .models import (
    CU_KALPHA_WAVELENGTH_A,
    DMAX_KIND_CHOICES,
    GFA_CLASS_CHOICES,
    Sample,
    TemperatureUnit,
    XRDMeasurement,
    to_kelvin,
    validate_transition_temperatures,
)
from .selectors import ALLOY_ORDERINGS, GFA_UNKNOWN, AlloyFilters

GFA_FILTER_CHOICES = [("", "any"), *GFA_CLASS_CHOICES, (GFA_UNKNOWN, "unknown")]
HAS_DMAX_CHOICES = [("", "any"), ("yes", "Dmax known"), ("no", "no Dmax")]
HAS_CONFLICT_CHOICES = [("", "any"), ("yes", "has conflicts"), ("no", "no conflicts")]

# Service error keys → form field names (the forms take temperatures in K or °C).
SERVICE_FIELD_NAMES = {
    "tg_k": "tg",
    "tx_k": "tx",
    "tl_k": "tl",
    "curve_file": "dsc_curve",
    "curve_unit": "dsc_curve_unit",
}


def add_service_errors(form, error):
    """Put a ValidationError raised by a service on the form's matching fields (else on the form).

    A stale version ("changed by X at T") and a suspected unit go on the form as a whole; the
    latter shows the form's "The unit is right" box (``units_suspected``)."""
    if not hasattr(error, "error_dict"):
        form.add_error(None, error)
        if hasattr(form, "keep_uploads"):
            form.keep_uploads()
        return
    for key, errors in error.error_dict.items():
        if any(getattr(e, "code", None) == "units" for e in errors):
            form.units_suspected = True
        name = SERVICE_FIELD_NAMES.get(key, key)
        hidden = name in form.fields and form.fields[name].widget.is_hidden
        form.add_error(name if name in form.fields and not hidden else None, errors)
    if hasattr(form, "keep_uploads"):
        form.keep_uploads()


# ------------------------------------------------------------------ uploads kept across a failed form

KEPT_UPLOAD_SALT = "lab.kept-upload"
KEPT_UPLOAD_MAX_AGE_S = 24 * 3600
KEPT_UPLOAD_DIR = "pending"


def kept_upload_storage():
    """Where kept uploads wait: outside MEDIA_ROOT (a refused form leaves nothing among the lab's
    files), in settings.GLASSLOOP_KEPT_UPLOADS_DIR."""
    from django.conf import settings
    from django.core.files.storage import FileSystemStorage

    return FileSystemStorage(location=str(settings.GLASSLOOP_KEPT_UPLOADS_DIR))


class KeptUploadsMixin:
    """Uploads survive a failed form: when the form (or the service after it) refuses the input,
    each file uploaded is stored in kept_upload_storage() under pending/ and the form carries a signed token
    to it (hidden ``kept_<field>``, bound to the user, valid a day); the page shows
    "pattern.xy — kept" and a resubmission without a new file uses the kept one. A new upload
    replaces it. ``discard_kept()`` removes the kept files once the record is saved."""

    kept_upload_fields = ("xrd_file", "dsc_curve")

    def __init__(self, *args, user=None, **kwargs):
        self.upload_user_id = getattr(user, "pk", None)
        super().__init__(*args, **kwargs)
        self.kept = {}  # field → original file name
        self._kept_paths = {}
        for name in self.kept_upload_fields:
            if name in self.fields:
                self.fields[f"kept_{name}"] = forms.CharField(required=False, widget=forms.HiddenInput)

    def _kept_names(self):
        return [n for n in self.kept_upload_fields if n in self.fields]

    def _signer(self):
        from django.core import signing

        return signing.TimestampSigner(salt=f"{KEPT_UPLOAD_SALT}:{self.upload_user_id}")

    def _load_kept(self, token):
        """(storage path, original name) of a valid token of this user, else None."""
        from django.core import signing

        try:
            payload = signing.loads(self._signer().unsign(token, max_age=KEPT_UPLOAD_MAX_AGE_S))
        except (signing.BadSignature, ValueError, TypeError):
            return None
        path, name = payload.get("path", ""), payload.get("name", "")
        if not path.startswith(f"{KEPT_UPLOAD_DIR}/") or ".." in path:
            return None
        return path, name

    def _use_kept(self):
        from django.core.files.uploadedfile import SimpleUploadedFile

        default_storage = kept_upload_storage()

        files = None
        for name in self._kept_names():
            if self.files.get(name):
                continue
            token = self.data.get(f"kept_{name}") or ""
            found = self._load_kept(token) if token else None
            if found is None:
                continue
            path, original = found
            try:
                with default_storage.open(path, "rb") as fh:
                    content = fh.read()
            except OSError:
                continue
            files = files if files is not None else self.files.copy()
            files[name] = SimpleUploadedFile(original, content)
            self.kept[name], self._kept_paths[name] = original, path
        if files is not None:
            self.files = files

    def full_clean(self):
        if self.is_bound:
            self._use_kept()
        super().full_clean()
        if self.is_bound and self._errors:
            self.keep_uploads()

    def keep_uploads(self):
        """Store the uploads of a refused form and put their tokens on it (idempotent)."""
        import uuid

        from django.core import signing
        from django.core.files.base import ContentFile

        default_storage = kept_upload_storage()

        data = None
        for name in self._kept_names():
            upload = self.files.get(name)
            if not upload or name in self.kept or name in (self._errors or {}):
                continue  # nothing new, kept already, or the file itself is refused
            size = getattr(upload, "size", None)
            if size is None or size > services.max_upload_bytes() or size == 0:
                continue
            upload.seek(0)
            content = upload.read()
            upload.seek(0)
            original = services._storage_name(upload, "upload.txt")
            path = default_storage.save(f"{KEPT_UPLOAD_DIR}/{uuid.uuid4().hex}/{original}", ContentFile(content))
            token = self._signer().sign(signing.dumps({"path": path, "name": original}))
            data = data if data is not None else self.data.copy()
            data[f"kept_{name}"] = token
            self.kept[name], self._kept_paths[name] = original, path
        if data is not None:
            self.data = data

    def discard_kept(self):
        default_storage = kept_upload_storage()

        for path in self._kept_paths.values():
            try:
                default_storage.delete(path)
            except OSError:
                pass
        self._kept_paths = {}


def _temperature_field(label, required=False):
    return forms.FloatField(label=label, required=required, widget=forms.NumberInput(attrs={"step": "any"}))


class SampleFieldsForm(forms.Form):
    composition = forms.CharField(
        max_length=255,
        help_text="Atomic per cent or fractions, groups allowed: Zr42Ti14Cu12Ni10Be22, (Cu50Zr40Al10)95Si5",
    )
    alloy_name = forms.CharField(label="Alloy name (optional)", max_length=120, required=False)
    label = forms.CharField(label="Sample label", max_length=64, help_text="Unique; as written on the sample")
    method = forms.ChoiceField(label="Casting method", choices=Sample.Method.choices, initial=Sample.Method.ARC_SUCTION)
    diameter_mm = forms.FloatField(
        label="Rod diameter (mm)", required=False, min_value=0.001, max_value=100, widget=forms.NumberInput(attrs={"step": "any"})
    )
    cast_on = forms.DateField(label="Cast on", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    notes = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))

    def clean_composition(self):
        text = self.cleaned_data["composition"]
        try:
            return parse_composition(text)
        except CompositionError as exc:
            raise ValidationError(str(exc)) from exc

    def clean_label(self):
        label = self.cleaned_data["label"].strip()
        if not label:
            raise ValidationError("Give the sample a label.")
        if Sample.objects.filter(label=label).exists():
            raise ValidationError(f"A sample labelled {label!r} already exists.")
        return label


class XRDFieldsForm(forms.Form):
    xrd_required = True

    xrd_file = forms.FileField(
        label="XRD pattern",
        required=False,
        help_text="Two columns: 2θ (°), intensity. .xy, .csv or .txt; header lines allowed.",
    )
    wavelength_a = forms.FloatField(
        label="Wavelength (Å)",
        initial=CU_KALPHA_WAVELENGTH_A,
        required=False,
        widget=forms.NumberInput(attrs={"step": "any"}),
        help_text="Cu Kα = 1.5406 Å",
    )

    def clean_xrd(self):
        """The upload's cheap checks (services.prepare_xrd: the worker analyses it); leaves
        ``xrd`` (PreparedXRD or None) in cleaned_data."""
        upload = self.cleaned_data.get("xrd_file")
        self.cleaned_data["xrd"] = None
        if not upload:
            if self.xrd_required:
                self.add_error("xrd_file", "Choose an XRD pattern file.")
            return
        if "wavelength_a" in self.errors:
            return
        wavelength = self.cleaned_data.get("wavelength_a") or CU_KALPHA_WAVELENGTH_A
        self.cleaned_data["wavelength_a"] = wavelength
        try:
            self.cleaned_data["xrd"] = services.prepare_xrd(upload, wavelength_a=wavelength)
        except ValidationError as exc:
            add_service_errors(self, exc)


def _typed(data, unit, names=("tg", "tx", "tl")):
    """"Tg = 705 °C, Tx = 780 °C" as the person typed them."""
    shown = "°C" if unit == TemperatureUnit.CELSIUS else "K"
    labels = {"tg": "Tg", "tx": "Tx", "tl": "Tl"}
    return ", ".join(f"{labels[n]} = {data[n]:g} {shown}" for n in names if data.get(n) is not None)


class UnitsGuardMixin:
    """The units guard (lab.services.check_units): temperatures that look typed in the wrong
    unit are refused with "did you mean K?" until the person ticks ``confirm_units``, a box
    shown only after that refusal. ``units_alloy()`` says whose values to compare with."""

    units_suspected = False

    def units_alloy(self):
        return getattr(self, "alloy", None)

    def guard_units(self, temps_k, unit):
        """True when the temperatures may be saved; else the refusal is on the form."""
        if self.cleaned_data.get("confirm_units"):
            return True
        alloy = self.units_alloy()
        if alloy is None:
            return True
        try:
            services.check_units(alloy, typed_unit=unit, exclude_value=getattr(self, "exclude_value", None), **temps_k)
        except ValidationError as exc:
            add_service_errors(self, exc)
            return False
        return True

    def echo_in_typed_unit(self, data, unit):
        """After a refusal of °C input, say what was typed in °C (the rules speak K)."""
        if unit == TemperatureUnit.CELSIUS:
            kelvin = ", ".join(f"{to_kelvin(data[n], unit):.1f} K" for n in ("tg", "tx", "tl") if data.get(n) is not None)
            self.add_error(None, f"You typed {_typed(data, unit)}, which is {kelvin}.")


def _confirm_units_field():
    return forms.BooleanField(
        label="The unit is right", required=False,
        help_text="Tick to save the temperatures as typed although they look like the other unit.",
    )


class DSCFieldsForm(UnitsGuardMixin, forms.Form):
    dsc_required = True

    tg = _temperature_field("Tg (blank with a curve: the trace's proposal)")
    tx = _temperature_field("Tx (blank with a curve: the trace's proposal)")
    tl = _temperature_field("Tl (optional)")
    temperature_unit = forms.ChoiceField(
        label="Unit of Tg, Tx, Tl", choices=TemperatureUnit.choices, initial=TemperatureUnit.KELVIN, required=False,
        widget=forms.RadioSelect,
    )
    heating_rate_k_min = forms.FloatField(
        label="Heating rate (K/min)", initial=20.0, required=False, widget=forms.NumberInput(attrs={"step": "any"})
    )
    dsc_curve = forms.FileField(label="DSC curve (optional)", required=False, help_text="Two columns: temperature, heat flow.")
    dsc_curve_unit = forms.ChoiceField(
        label="Temperature unit of the curve file", choices=TemperatureUnit.choices, initial=TemperatureUnit.KELVIN, required=False
    )
    confirm_units = _confirm_units_field()

    def __init__(self, *args, alloy=None, **kwargs):
        self.alloy = alloy
        super().__init__(*args, **kwargs)

    def clean_dsc(self):
        """Convert to K and check the rules; leaves ``dsc`` (a dict for the services, or None)."""
        data = self.cleaned_data
        data["dsc"] = None
        given = [data.get(n) is not None for n in ("tg", "tx", "tl")] + [bool(data.get("dsc_curve"))]
        if not any(given) and not any(self.errors.get(n) for n in ("tg", "tx", "tl")):
            if self.dsc_required:
                self.add_error("tg", "Give at least Tg and Tx.")
            return
        if any(n in self.errors for n in ("tg", "tx", "tl", "temperature_unit", "heating_rate_k_min", "dsc_curve_unit")):
            return
        unit = data.get("temperature_unit") or TemperatureUnit.KELVIN
        for name in ("tg", "tx"):
            # With a curve, a blank Tg or Tx is taken from the trace's proposal (lab.services.prepare_dsc).
            if data.get(name) is None and not data.get("dsc_curve"):
                self.add_error(name, "Tg and Tx are both needed for a DSC measurement (or upload its curve to take them from the trace).")
        if self.errors:
            return
        dsc = {
            "tg_k": to_kelvin(data["tg"], unit),
            "tx_k": to_kelvin(data["tx"], unit),
            "tl_k": to_kelvin(data.get("tl"), unit),
            "heating_rate_k_min": data.get("heating_rate_k_min") or 20.0,
            "curve_file": data.get("dsc_curve") or None,
            "curve_unit": data.get("dsc_curve_unit") or TemperatureUnit.KELVIN,
        }
        try:
            prepared = services.prepare_dsc(**dsc)  # the same checks the service makes, for field errors
        except ValidationError as exc:
            add_service_errors(self, exc)
            self.echo_in_typed_unit(data, unit)
            return
        if not self.guard_units({k: dsc[k] for k in ("tg_k", "tx_k", "tl_k")}, unit):
            return
        data["dsc"] = dsc
        data["dsc_prepared"] = prepared  # the curve read and analysed once: the service takes it as is


class LogExperimentForm(KeptUploadsMixin, SampleFieldsForm, XRDFieldsForm, DSCFieldsForm):
    """Sample + optional XRD + optional DSC in one go."""

    xrd_required = False
    dsc_required = False

    def units_alloy(self):
        """The alloy of the composition typed, or an unsaved one (compared with close alloys)."""
        from .models import Alloy

        comp = self.cleaned_data.get("composition")
        if comp is None or isinstance(comp, str):
            return None
        return Alloy.objects.filter(composition_key=comp.key).first() or Alloy(
            composition_key=comp.key, formula=comp.formula, fractions=dict(comp), base_element=comp.base_element,
            n_elements=len(comp),
        )

    def clean(self):
        super().clean()
        self.clean_xrd()
        self.clean_dsc()
        return self.cleaned_data


class XRDForm(KeptUploadsMixin, XRDFieldsForm):
    def clean(self):
        super().clean()
        self.clean_xrd()
        return self.cleaned_data


class DSCForm(KeptUploadsMixin, DSCFieldsForm):
    def clean(self):
        super().clean()
        self.clean_dsc()
        return self.cleaned_data


class VerdictOverrideForm(forms.Form):
    verdict = forms.ChoiceField(
        choices=[("", "Use the computed verdict")] + list(XRDMeasurement.Verdict.choices), required=False
    )
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), help_text="Required: why the verdict differs.")

    def clean_reason(self):
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise ValidationError("Say why the verdict is overridden.")
        return reason


class AlloySearchForm(forms.Form):
    """GET form of the alloy list. Invalid fields are reported and ignored."""

    elements = forms.CharField(required=False, help_text='Contains all of these, e.g. "Zr Cu"')
    base_element = forms.CharField(required=False, max_length=3, label="Base element")
    q = forms.CharField(required=False, label="Formula or name contains")
    tg_min = forms.FloatField(required=False, label="Tg ≥ (K)")
    tg_max = forms.FloatField(required=False, label="Tg ≤ (K)")
    tx_min = forms.FloatField(required=False, label="Tx ≥ (K)")
    tx_max = forms.FloatField(required=False, label="Tx ≤ (K)")
    tl_min = forms.FloatField(required=False, label="Tl ≥ (K)")
    tl_max = forms.FloatField(required=False, label="Tl ≤ (K)")
    trg_min = forms.FloatField(required=False, label="Trg ≥")
    gamma_min = forms.FloatField(required=False, label="γ ≥")
    gfa_class = forms.ChoiceField(required=False, choices=GFA_FILTER_CHOICES, label="GFA class")
    has_dmax = forms.ChoiceField(required=False, choices=HAS_DMAX_CHOICES, label="Dmax")
    has_conflict = forms.ChoiceField(required=False, choices=HAS_CONFLICT_CHOICES, label="Conflicts")
    order = forms.ChoiceField(required=False, choices=[(k, k) for k in ALLOY_ORDERINGS], initial="formula")

    @staticmethod
    def _symbols(text):
        """Element symbols, case-insensitive (ml.rules.parse_element_list, as the API reads them)."""
        try:
            return parse_element_list(text)
        except ElementListError as exc:
            raise ValidationError(str(exc)) from exc

    def clean_elements(self):
        return self._symbols(self.cleaned_data.get("elements") or "")

    def clean_base_element(self):
        symbols = self._symbols(self.cleaned_data.get("base_element") or "")
        if len(symbols) > 1:
            raise ValidationError("Give one base element.")
        return symbols[0] if symbols else ""

    # field name, language, shown value, errors -> that field's as_field_group() HTML. The
    # fourteen field groups (label, help text, errors, widget: four templates each) were a
    # third of the alloy list's time; each depends only on the field's own shown value and
    # errors, so the same search renders from here. Bounded: cleared when full.
    _groups = {}
    _GROUPS_MAX = 2000

    def field_groups(self):
        """{name: as_field_group() HTML} of every field, from the cache above when possible."""
        language = get_language()
        errors = self.errors if self.is_bound else {}
        out = {}
        for name in self.fields:
            bound = self[name]
            key = (name, language, self.is_bound, repr(bound.value()), tuple(errors.get(name) or ()))
            html = self._groups.get(key)
            if html is None:
                html = bound.as_field_group()
                if len(self._groups) >= self._GROUPS_MAX:
                    self._groups.clear()
                self._groups[key] = html
            out[name] = html
        return out

    def filters(self):
        """AlloyFilters from the valid fields (call after is_valid())."""
        d = getattr(self, "cleaned_data", {})
        return AlloyFilters(
            elements=d.get("elements") or (),
            base_element=d.get("base_element") or "",
            text=(d.get("q") or "").strip(),
            tg_min=d.get("tg_min"),
            tg_max=d.get("tg_max"),
            tx_min=d.get("tx_min"),
            tx_max=d.get("tx_max"),
            tl_min=d.get("tl_min"),
            tl_max=d.get("tl_max"),
            trg_min=d.get("trg_min"),
            gamma_min=d.get("gamma_min"),
            gfa_class=d.get("gfa_class") or "",
            has_dmax={"yes": True, "no": False}.get(d.get("has_dmax") or ""),
            has_conflict={"yes": True, "no": False}.get(d.get("has_conflict") or ""),
            order=d.get("order") or "formula",
        )


# ------------------------------------------------------------------ corrections


class CorrectionFieldsForm(forms.Form):
    """The reason (required) and the version the record was loaded at (optimistic concurrency)."""

    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), max_length=services.REASON_MAX_CHARS,
        help_text="Required; kept in the history with who and when.",
        error_messages={"required": "Say why: a reason is required."},
    )
    version = forms.IntegerField(widget=forms.HiddenInput)

    def clean_reason(self):
        reason = (self.cleaned_data.get("reason") or "").strip()
        if not reason:
            raise ValidationError("Say why: a reason is required.")
        return reason


class RetractForm(CorrectionFieldsForm):
    pass


def _temperature_initial(obj):
    return {"tg": obj.tg_k, "tx": obj.tx_k, "tl": obj.tl_k, "temperature_unit": TemperatureUnit.KELVIN, "version": obj.version}


class TemperatureCorrectionForm(UnitsGuardMixin, CorrectionFieldsForm):
    """Tg, Tx, Tl in K or °C; ``temperatures()`` gives them in K."""

    tg = _temperature_field("Tg")
    tx = _temperature_field("Tx")
    tl = _temperature_field("Tl")
    temperature_unit = forms.ChoiceField(
        label="Unit of Tg, Tx, Tl", choices=TemperatureUnit.choices, initial=TemperatureUnit.KELVIN, required=False,
        widget=forms.RadioSelect,
    )
    confirm_units = _confirm_units_field()

    def __init__(self, *args, alloy=None, exclude_value=None, **kwargs):
        self.alloy, self.exclude_value = alloy, exclude_value
        super().__init__(*args, **kwargs)

    def clean(self):
        data = super().clean()
        if any(n in self.errors for n in ("tg", "tx", "tl", "temperature_unit")):
            return data
        unit = data.get("temperature_unit") or TemperatureUnit.KELVIN
        data["temps_k"] = {f"{n}_k": to_kelvin(data.get(n), unit) for n in ("tg", "tx", "tl")}
        data["unit"] = unit
        try:
            validate_transition_temperatures(**data["temps_k"])
        except ValidationError as exc:
            add_service_errors(self, exc)
            self.echo_in_typed_unit(data, unit)
            return data
        self.guard_units(data["temps_k"], unit)
        return data


class DSCCorrectionForm(TemperatureCorrectionForm):
    tg = _temperature_field("Tg", required=True)
    tx = _temperature_field("Tx", required=True)
    tl = _temperature_field("Tl (optional)")
    heating_rate_k_min = forms.FloatField(label="Heating rate (K/min)", widget=forms.NumberInput(attrs={"step": "any"}))
    measured_on = forms.DateField(label="Measured on", required=False, widget=forms.DateInput(attrs={"type": "date"}))

    @classmethod
    def initial_for(cls, dsc):
        return {**_temperature_initial(dsc), "heating_rate_k_min": dsc.heating_rate_k_min, "measured_on": dsc.measured_on}

    def changes(self):
        d = self.cleaned_data
        return {**d["temps_k"], "heating_rate_k_min": d["heating_rate_k_min"], "measured_on": d.get("measured_on")}


class PropertyValueCorrectionForm(TemperatureCorrectionForm):
    tg = _temperature_field("Tg")
    tx = _temperature_field("Tx")
    tl = _temperature_field("Tl")
    heating_rate_k_min = forms.FloatField(label="Heating rate (K/min)", required=False, widget=forms.NumberInput(attrs={"step": "any"}))
    gfa_class = forms.ChoiceField(label="GFA class", choices=[("", "—"), *GFA_CLASS_CHOICES], required=False)
    dmax_mm = forms.FloatField(label="Dmax (mm)", required=False, widget=forms.NumberInput(attrs={"step": "any"}))
    dmax_kind = forms.ChoiceField(label="Dmax kind", choices=DMAX_KIND_CHOICES, required=False)
    note = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))

    @classmethod
    def initial_for(cls, value):
        return {**_temperature_initial(value), "heating_rate_k_min": value.heating_rate_k_min, "gfa_class": value.gfa_class,
                "dmax_mm": value.dmax_mm, "dmax_kind": value.dmax_kind, "note": value.note}

    def changes(self):
        d = self.cleaned_data
        return {**d["temps_k"], "heating_rate_k_min": d.get("heating_rate_k_min"), "gfa_class": d.get("gfa_class") or "",
                "dmax_mm": d.get("dmax_mm"), "dmax_kind": d.get("dmax_kind") or "point", "note": d.get("note") or ""}


class SampleCorrectionForm(CorrectionFieldsForm):
    label = forms.CharField(label="Sample label", max_length=64)
    method = forms.ChoiceField(label="Casting method", choices=Sample.Method.choices)
    diameter_mm = forms.FloatField(
        label="Rod diameter (mm)", required=False, min_value=0.001, max_value=100, widget=forms.NumberInput(attrs={"step": "any"})
    )
    cast_on = forms.DateField(label="Cast on", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    notes = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))

    def __init__(self, *args, sample=None, **kwargs):
        self.sample = sample
        super().__init__(*args, **kwargs)

    @classmethod
    def initial_for(cls, sample):
        return {"label": sample.label, "method": sample.method, "diameter_mm": sample.diameter_mm, "cast_on": sample.cast_on,
                "notes": sample.notes, "version": sample.version}

    def clean_label(self):
        label = self.cleaned_data["label"].strip()
        if not label:
            raise ValidationError("Give the sample a label.")
        if Sample.objects.filter(label=label).exclude(pk=getattr(self.sample, "pk", None)).exists():
            raise ValidationError(f"A sample labelled {label!r} already exists.")
        return label

    def changes(self):
        d = self.cleaned_data
        return {n: d.get(n) if n != "notes" else d.get(n) or "" for n in services.SAMPLE_CORRECTABLE}


class ConflictResolutionForm(forms.Form):
    HOW = [
        ("keep_one", "Keep this value; retract the values it conflicts with"),
        ("keep_all", "Keep both (all): the difference is real"),
        ("retract", "Retract this value"),
    ]
    how = forms.ChoiceField(choices=HOW, widget=forms.RadioSelect, initial="keep_all")
    reason = CorrectionFieldsForm.base_fields["reason"]
    version = forms.IntegerField(widget=forms.HiddenInput)

    def clean_reason(self):
        return CorrectionFieldsForm.clean_reason(self)
