"""Lab records: alloys, cast samples, XRD and DSC measurements, and property values
with their provenance (an experiment here, or a literature reference).

Invariants live here (``clean``); the actions that change state live in
``lab/services.py``.
"""

from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import models
from simple_history.models import HistoricalRecords

from core.doi import validate_doi
from core.jobs import Job
from core.roles import EXPERIMENTER
from ml import rules

# Plausible temperatures for a metallic glass's transitions (K): the rule is ml.rules.
MIN_TEMPERATURE_K = rules.T_MIN_K
MAX_TEMPERATURE_K = rules.T_MAX_K
CU_KALPHA_WAVELENGTH_A = 1.5406


def validate_transition_temperatures(tg_k, tx_k, tl_k):
    """Raise ValidationError unless the given temperatures keep ml.rules' limits: 200 K ≤ T ≤
    2500 K, Tg < Tx < Tl, ΔTx = Tx − Tg ≤ 250 K. A temperature out of range is an error of its
    field; the order and ΔTx are errors of the whole (NON_FIELD_ERRORS)."""
    errors = {}
    for problem in rules.temperature_problems(tg_k, tx_k, tl_k):
        errors.setdefault(problem.field or NON_FIELD_ERRORS, []).append(problem.message)
    if errors:
        raise ValidationError(errors)


GFA_CLASS_CHOICES = [(c, rules.GFA_CLASS_LABELS[c]) for c in rules.GFA_CLASSES]
DMAX_KIND_CHOICES = [(rules.DMAX_POINT, "reported Dmax"), (rules.DMAX_AT_LEAST, "Dmax at least"), (rules.DMAX_BELOW, "Dmax below")]


def gfa_fields(gfa_class_text, dmax_mm, kind=rules.DMAX_POINT):
    """A GFA class and Dmax as written (text or numbers) → ``(gfa_class or "", dmax_mm or None,
    kind)`` ready to store, by ml.rules: the class by its name, the source's codes for "no Dmax"
    (0 on a crystal, 0.15 on a ribbon) stored as no Dmax, and every Dmax problem refused.

    Raises ml.rules.GFAValueError (a ValueError) with the reason(s).
    """
    cls = rules.gfa_class(gfa_class_text)
    if dmax_mm is not None and not isinstance(dmax_mm, (int, float)):
        dmax_mm = str(dmax_mm).strip()
        if dmax_mm.lower() in ("", "nan", "-", "—", "n/a", "na", "none"):
            dmax_mm = None
    if dmax_mm is not None and rules.coded_dmax(cls, dmax_mm):
        dmax_mm = None  # the source's code for "no Dmax", not a measurement
    problems = rules.dmax_problems(cls, dmax_mm, kind)  # "not a number" among them
    if not problems and dmax_mm is not None:
        dmax_mm = float(dmax_mm)
        if dmax_mm != dmax_mm:
            dmax_mm = None
    if problems:
        raise rules.GFAValueError("; ".join(problems))
    return cls or "", dmax_mm, kind or rules.DMAX_POINT


def format_dmax(dmax_mm, kind):
    """"Dmax 5 mm", "Dmax ≥ 3 mm", "Dmax < 2 mm" (empty when there is none)."""
    if dmax_mm is None:
        return ""
    sign = {rules.DMAX_AT_LEAST: "≥ ", rules.DMAX_BELOW: "< "}.get(kind, "")
    return f"Dmax {sign}{dmax_mm:g} mm"


def conflicts_leave_means():
    """Values in an unresolved conflict are out of the alloy's means and the training rows
    (issue 18) when settings.GLASSLOOP_CONFLICTS_OUT_OF_MEANS is true, the default."""
    return settings.GLASSLOOP_CONFLICTS_OUT_OF_MEANS


class TemperatureUnit(models.TextChoices):
    KELVIN = "K", "K"
    CELSIUS = "C", "°C"


def to_kelvin(value, unit):
    """A temperature in ``unit`` (TemperatureUnit) as kelvin; None stays None (ml.rules.to_kelvin)."""
    return rules.to_kelvin(value, unit)


class Correctable(models.Model):
    """A record people can correct and retract (never hard-delete), with a required reason.

    ``version`` goes up with every correction, retraction or resolution, so an edit form loaded
    at one version is refused once someone else has changed the record (optimistic
    concurrency: lab.services.check_version). Every correction is also a ``Correction`` row
    (who, when, reason, before → after) and a simple-history record.
    """

    version = models.PositiveIntegerField(default=1, editable=False)
    corrected_at = models.DateTimeField(null=True, blank=True, editable=False, help_text="Last correction")
    retracted_at = models.DateTimeField(null=True, blank=True, editable=False)
    retracted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    retraction_reason = models.TextField(blank=True, editable=False)

    class Meta:
        abstract = True

    @property
    def is_retracted(self):
        return self.retracted_at is not None


class TransitionTemperatures(models.Model):
    """Tg, Tx, Tl in kelvin with the quantities derived from them."""

    tg_k = models.FloatField("Tg (K)", null=True, blank=True, help_text="Glass transition temperature")
    tx_k = models.FloatField("Tx (K)", null=True, blank=True, help_text="Onset of crystallisation")
    tl_k = models.FloatField("Tl (K)", null=True, blank=True, help_text="Liquidus temperature")

    class Meta:
        abstract = True

    def clean(self):
        super().clean()
        validate_transition_temperatures(self.tg_k, self.tx_k, self.tl_k)

    @property
    def reduced_glass_transition(self):
        """Trg = Tg / Tl (Turnbull)."""
        if self.tg_k and self.tl_k:
            return self.tg_k / self.tl_k
        return None

    @property
    def gamma(self):
        """γ = Tx / (Tg + Tl) (Lu & Liu, 2002)."""
        if self.tg_k and self.tx_k and self.tl_k:
            return self.tx_k / (self.tg_k + self.tl_k)
        return None

    @property
    def supercooled_liquid_region_k(self):
        """ΔTx = Tx − Tg."""
        if self.tg_k and self.tx_k:
            return self.tx_k - self.tg_k
        return None


# Stored on Alloy, derived from its property values and samples by
# lab.services.refresh_alloy_summaries: lists filter and sort on them without aggregating
# every value on every request. Derived data, so kept out of the alloy's history.
ALLOY_SUMMARY_FIELDS = (
    "n_samples", "n_values", "tg_mean_k", "tx_mean_k", "tl_mean_k", "trg", "gamma", "dtx_k", "has_conflict",
    "gfa_class", "dmax_mm", "dmax_is_bound", "gfa_conflict", "gfa_conflict_reason",
)


class Alloy(models.Model):
    """A composition, unique by its key (at.% rounded to 0.01, elements sorted)."""

    composition_key = models.CharField(max_length=255, unique=True)
    formula = models.CharField(max_length=255, help_text="Canonical formula, elements by descending fraction")
    fractions = models.JSONField(help_text="Element → atomic fraction, summing to 1")
    base_element = models.CharField(max_length=3, db_index=True)
    n_elements = models.PositiveSmallIntegerField()
    name = models.CharField(max_length=120, blank=True, help_text="Common name, e.g. Vitreloy 1")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    # Summary over all property values (mean of each temperature over the values that give it).
    n_samples = models.PositiveIntegerField(default=0, editable=False)
    n_values = models.PositiveIntegerField("property values", default=0, editable=False)
    tg_mean_k = models.FloatField("mean Tg (K)", null=True, blank=True, editable=False)
    tx_mean_k = models.FloatField("mean Tx (K)", null=True, blank=True, editable=False)
    tl_mean_k = models.FloatField("mean Tl (K)", null=True, blank=True, editable=False)
    trg = models.FloatField("Trg of the means", null=True, blank=True, editable=False)
    gamma = models.FloatField("γ of the means", null=True, blank=True, editable=False)
    dtx_k = models.FloatField("ΔTx of the means (K)", null=True, blank=True, editable=False)
    has_conflict = models.BooleanField(
        default=False, editable=False, help_text="Some sources disagree: temperatures by more than 10 K, or glass-forming ability"
    )
    # Glass-forming ability from every property value and every cast sample's latest XRD
    # (lab.services.write_gfa_summaries): this lab's castings outweigh the literature.
    gfa_class = models.CharField("GFA class", max_length=16, blank=True, choices=GFA_CLASS_CHOICES, editable=False)
    dmax_mm = models.FloatField(
        "best known Dmax (mm)", null=True, blank=True, editable=False,
        help_text="The largest reported Dmax or the thickest amorphous casting, whichever is larger",
    )
    dmax_is_bound = models.BooleanField(
        "Dmax is a lower bound", default=False, editable=False, help_text="Dmax ≥ this (from a casting), not a reported Dmax"
    )
    gfa_conflict = models.BooleanField("GFA conflict", default=False, editable=False, help_text="Sources disagree on the GFA class or Dmax")
    gfa_conflict_reason = models.TextField(blank=True, editable=False)
    history = HistoricalRecords(excluded_fields=list(ALLOY_SUMMARY_FIELDS))

    class Meta:
        ordering = ["formula"]

    def __str__(self):
        return self.formula

    def get_absolute_url(self):
        from django.urls import reverse

        return reverse("lab:alloy_detail", args=[self.pk])

    @property
    def elements(self):
        return sorted(self.fractions, key=lambda el: (-self.fractions[el], el))

    @property
    def dmax_display(self):
        """"Dmax 5 mm" (reported) or "Dmax ≥ 3 mm" (a casting's bound); "" when unknown."""
        return format_dmax(self.dmax_mm, rules.DMAX_AT_LEAST if self.dmax_is_bound else rules.DMAX_POINT)


class Reference(models.Model):
    """A published source of property values."""

    doi = models.CharField("DOI", max_length=255, unique=True, null=True, blank=True)
    authors = models.CharField(max_length=500, blank=True)
    year = models.PositiveSmallIntegerField(null=True, blank=True)
    title = models.CharField(max_length=500, blank=True)
    journal = models.CharField(max_length=255, blank=True)
    label = models.CharField(max_length=255, blank=True, help_text="Free-text source as given, when there is no DOI")
    history = HistoricalRecords()

    class Meta:
        ordering = ["-year", "authors"]

    def __str__(self):
        if self.authors or self.year:
            parts = [self.authors or "?", f"({self.year})" if self.year else "", self.journal]
            return " ".join(p for p in parts if p)
        return self.label or self.doi or f"Reference {self.pk}"

    def clean(self):
        super().clean()
        try:  # the identity of a DOI is its normalised form (core.doi), as the importers store it
            self.doi = validate_doi(self.doi) or None
        except ValidationError as exc:
            raise ValidationError({"doi": exc.messages}) from exc


class Sample(Correctable):
    """An alloy cast by a method into a rod, plate or ribbon."""

    class Method(models.TextChoices):
        ARC_SUCTION = "arc_suction", "Arc melting + suction casting"
        ARC_TILT = "arc_tilt", "Arc melting + tilt casting"
        COPPER_MOLD = "copper_mold", "Copper-mould injection casting"
        MELT_SPINNING = "melt_spinning", "Melt spinning (ribbon)"
        WATER_QUENCH = "water_quench", "Water quenching in quartz tube"
        OTHER = "other", "Other"

    alloy = models.ForeignKey(Alloy, on_delete=models.PROTECT, related_name="samples")
    label = models.CharField(max_length=64, unique=True, help_text="Lab label written on the sample")
    method = models.CharField(max_length=32, choices=Method.choices, default=Method.ARC_SUCTION)
    diameter_mm = models.FloatField("rod diameter (mm)", null=True, blank=True)
    cast_on = models.DateField(null=True, blank=True)
    operator = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.label} ({self.alloy.formula})"

    def clean(self):
        super().clean()
        if self.diameter_mm is not None and not (0 < self.diameter_mm <= 100):
            raise ValidationError({"diameter_mm": "A rod diameter must be between 0 and 100 mm."})


class XRDMeasurement(Correctable):
    """An XRD pattern of a sample with its main peak, FWHM and amorphous verdict.

    The pattern is analysed on the worker (``XRDAnalysis``; issue 16: a 7.2 MB pattern took
    3.6 s inside the request, ~10 s on a slower machine). Until its analysis is done a measurement has no verdict and is
    no evidence of anything: not a casting, not a candidate's result, not a training row
    (``analysed``). "Not amorphous" is never read as "crystalline" for it."""

    class Verdict(models.TextChoices):
        AMORPHOUS = "amorphous", "Amorphous"
        CRYSTALLINE = "crystalline", "Crystalline"

    class Analysis(models.TextChoices):
        PENDING = "pending", "Analysing the pattern…"
        DONE = "done", "Analysed"
        FAILED = "failed", "Analysis failed"

    sample = models.ForeignKey(Sample, on_delete=models.CASCADE, related_name="xrd_measurements")
    pattern = models.FileField(upload_to="xrd/%Y/%m/")
    wavelength_a = models.FloatField("wavelength (Å)", default=CU_KALPHA_WAVELENGTH_A)
    peak_q_inv_a = models.FloatField("main peak q (Å⁻¹)", null=True, blank=True)
    peak_two_theta_deg = models.FloatField("main peak 2θ (°)", null=True, blank=True)
    fwhm_inv_a = models.FloatField("FWHM (Å⁻¹)", null=True, blank=True)
    computed_verdict = models.CharField(max_length=16, choices=Verdict.choices, blank=True,
                                        help_text="Empty until the analysis is done")
    # "done" by default: a row written with its verdict (starter data, benches, migrations) is
    # analysed; lab.services writes an upload "pending" and its XRDAnalysis fills it in.
    analysis_status = models.CharField(max_length=16, choices=Analysis.choices, default=Analysis.DONE, db_index=True)
    verdict_reason = models.TextField(blank=True, help_text="Why the analysis reached its verdict")
    override_verdict = models.CharField(max_length=16, choices=Verdict.choices, blank=True)
    override_reason = models.TextField(blank=True)
    analysis = models.JSONField(default=dict, blank=True, help_text="Sharp peaks found, points, etc.")
    # What the plot draws (lab.plots.xrd_plot_data: the pattern and background thinned to the
    # plot's resolution, the peak, the FWHM bar), computed once at upload so a GET of the plot
    # never reads or analyses the pattern again (issue 16: 2.8–4.1 s a view for 19 MB).
    plot = models.JSONField(default=dict, blank=True, editable=False)
    measured_on = models.DateField(null=True, blank=True)
    operator = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords(excluded_fields=["plot"])

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "XRD measurement"

    def clean(self):
        super().clean()
        if self.override_verdict and not self.override_reason.strip():
            raise ValidationError({"override_reason": "Say why the verdict is overridden."})
        if self.is_analysed and not self.computed_verdict:
            raise ValidationError({"computed_verdict": "An analysed pattern has a computed verdict."})
        if not self.is_analysed and (self.computed_verdict or self.override_verdict):
            raise ValidationError({"computed_verdict": "A pattern not analysed has no verdict yet."})

    @property
    def is_analysed(self):
        return self.analysis_status == self.Analysis.DONE

    @property
    def verdict(self):
        """The override if any, else the computed verdict; "" while the pattern is not analysed."""
        if not self.is_analysed:
            return ""
        return self.override_verdict or self.computed_verdict

    @property
    def analysis_job(self):
        """Its XRDAnalysis (the job analysing it on the worker), or None (recorded analysed)."""
        try:
            return self.xrd_analysis
        except models.ObjectDoesNotExist:
            return None

    @property
    def analysis_state_display(self):
        """What the pages say: "Analysed", "Analysing the pattern…", "Analysis failed: <why>"
        (the row's status follows its job: XRDAnalysis.on_failed_or_cancelled; the job says why)."""
        if self.analysis_status != self.Analysis.FAILED:
            return self.Analysis(self.analysis_status).label
        job = self.analysis_job
        why = (job.error or job.message) if job is not None else ""
        return f"{self.Analysis.FAILED.label}: {why}" if why else self.Analysis.FAILED.label

    @property
    def is_amorphous(self):
        return self.verdict == self.Verdict.AMORPHOUS

    @property
    def fwhm_two_theta_deg(self):
        """The FWHM in degrees 2θ at this pattern's wavelength (between the half-maximum
        crossings the analysis found; else the peak ± FWHM/2), or None."""
        from .patterns import fwhm_two_theta_deg

        a = self.analysis or {}
        left, right = a.get("half_max_left_q"), a.get("half_max_right_q")
        if (left is None or right is None) and self.peak_q_inv_a is not None and self.fwhm_inv_a is not None:
            left, right = self.peak_q_inv_a - self.fwhm_inv_a / 2, self.peak_q_inv_a + self.fwhm_inv_a / 2
        if self.fwhm_inv_a is None:
            return None
        return fwhm_two_theta_deg(left, right, self.wavelength_a)

    @property
    def wavelength_source(self):
        """Which wavelength the 2θ values use: "Cu Kα" (the default) or "as recorded"."""
        return "Cu Kα" if abs(self.wavelength_a - CU_KALPHA_WAVELENGTH_A) < 1e-6 else "as recorded"


def analysed(model, prefix=""):
    """Q of the XRD measurements whose analysis is done: the only ones that are evidence (also
    on a migration's historical model from before the field existed, where all were)."""
    if not any(f.name == "analysis_status" for f in model._meta.get_fields()):
        return models.Q()
    return models.Q(**{f"{prefix}analysis_status": XRDMeasurement.Analysis.DONE})


class XRDAnalysis(Job):
    """Reading and analysing an uploaded XRD pattern on the worker (core.jobs): the request
    only checks the size, the wavelength and a peek at the first 64 KB, then stores the file
    with the measurement "pending". Idempotent: an analysis already done changes nothing."""

    job_task_name = "lab.analyse_xrd"
    job_api_name = "xrd-analyses"
    job_control_roles = (EXPERIMENTER,)
    job_time_limit_setting = "GLASSLOOP_XRD_MAX_SECONDS"

    measurement = models.OneToOneField(XRDMeasurement, on_delete=models.CASCADE, related_name="xrd_analysis")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "XRD analysis"
        verbose_name_plural = "XRD analyses"

    def __str__(self):
        return f"Analysis of XRD #{self.measurement_id} ({self.get_status_display()})"

    def job_label(self):
        return f"XRD analysis {self.pk} (XRD #{self.measurement_id})"

    def on_failed_or_cancelled(self):
        # However the job ended without a verdict (the reader refused the file, the worker was
        # killed or went silent, a person or a retraction cancelled it), the measurement says
        # so: "failed", no evidence, and Retry makes it "pending" again. A cancelled analysis is
        # "failed" too: no verdict is coming either way, and the job's message says it was cancelled.
        XRDMeasurement.objects.filter(pk=self.measurement_id, analysis_status=XRDMeasurement.Analysis.PENDING).update(
            analysis_status=XRDMeasurement.Analysis.FAILED)

    def retry_refusal(self):
        # A retracted pattern is out of the record: analysing it again would give nobody a verdict.
        reason = XRDMeasurement.objects.filter(pk=self.measurement_id, retracted_at__isnull=False).values_list(
            "retraction_reason", flat=True).first()
        if reason is None:
            return ""
        why = f" ({reason})" if reason else ""
        return f"XRD #{self.measurement_id} was retracted{why}; a retracted pattern is not analysed."

    def reset_for_retry(self):
        super().reset_for_retry()
        # Retried: the measurement is being analysed again (not "failed" while queued).
        XRDMeasurement.objects.filter(pk=self.measurement_id, analysis_status=XRDMeasurement.Analysis.FAILED).update(
            analysis_status=XRDMeasurement.Analysis.PENDING)

    def get_absolute_url(self):
        from django.urls import reverse

        return reverse("lab:xrd_detail", args=[self.measurement_id])


class DSCMeasurement(Correctable, TransitionTemperatures):
    """A DSC scan of a sample: Tg, Tx, Tl (K) at a heating rate, with its curve."""

    sample = models.ForeignKey(Sample, on_delete=models.CASCADE, related_name="dsc_measurements")
    heating_rate_k_min = models.FloatField("heating rate (K/min)", default=20.0)
    curve = models.FileField(upload_to="dsc/%Y/%m/", blank=True)
    # The raw curve is stored as uploaded; its temperature column may be in °C.
    curve_temperature_unit = models.CharField(
        "curve temperature unit", max_length=2, choices=TemperatureUnit.choices, default=TemperatureUnit.KELVIN
    )
    # The trace's own reading, analysed once when the curve is stored (lab.dsc_analysis:
    # Tg, Tx, melting onset, Tl and heating rate, each a value with its method or None with
    # the reason), offered beside the recorded values to accept or override.
    trace_analysis = models.JSONField(default=dict, blank=True, editable=False)
    # How each recorded value came: {"tg_k": "typed" | "accepted the trace's proposal (tangent
    # onset)" | …}; a field not named was typed (records from before proposals).
    value_methods = models.JSONField(default=dict, blank=True, editable=False)
    measured_on = models.DateField(null=True, blank=True)
    operator = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords(excluded_fields=["trace_analysis"])

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "DSC measurement"

    def method_of(self, field):
        """How the recorded value of ``field`` came: "typed" or the trace method accepted."""
        return (self.value_methods or {}).get(field) or TYPED

    @property
    def methods_text(self):
        """"Tg, Tx, Tl typed" or "Tg: accepted the trace's proposal (tangent onset); Tx, Tl typed"."""
        typed, taken = [], []
        for field, label in (("tg_k", "Tg"), ("tx_k", "Tx"), ("tl_k", "Tl")):
            if getattr(self, field) is None:
                continue
            method = self.method_of(field)
            (typed if method == TYPED else taken).append((label, method))
        parts = [f"{label}: {method}" for label, method in taken]
        if typed:
            parts.append(", ".join(label for label, _ in typed) + " typed")
        return "; ".join(parts)

    @property
    def proposals(self):
        """The stored trace proposals beside the recorded values, for pages and the API:
        [{field, label, value, unit, method, short_method, reason, recorded, acceptable}].
        ``acceptable``: found, a field this record has, and not the value already recorded."""
        return dsc_proposal_rows(self)

    @property
    def has_acceptable_proposals(self):
        return any(row["acceptable"] for row in self.proposals)

    def clean(self):
        super().clean()
        if self.tg_k is None or self.tx_k is None:
            raise ValidationError("A DSC measurement needs at least Tg and Tx.")
        if not (0 < self.heating_rate_k_min <= 1000):
            raise ValidationError({"heating_rate_k_min": "Heating rate must be between 0 and 1000 K/min."})


TYPED = "typed"
# The trace's proposals and the record's field each goes to ("" : shown, nothing to accept into).
DSC_PROPOSALS = (
    ("tg_k", "Tg", "tg_k", "K"),
    ("tx_k", "Tx", "tx_k", "K"),
    ("melting_onset_k", "melting onset", "", "K"),
    ("tl_k", "Tl", "tl_k", "K"),
    ("heating_rate_k_min", "heating rate", "heating_rate_k_min", "K/min"),
)
DSC_ACCEPTABLE = tuple(field for _, _, field, _ in DSC_PROPOSALS if field)


def short_method(method):
    """"tangent onset (pre-event baseline …)" → "tangent onset"."""
    return (method or "").split(" (")[0]


def dsc_proposal_rows(dsc):
    analysis = dsc.trace_analysis or {}
    if not analysis:
        return []
    rows = []
    for key, label, field, unit in DSC_PROPOSALS:
        item = analysis.get(key)
        if key == "heating_rate_k_min":
            value = item
            item = {"value_k": value, "method": analysis.get("heating_rate_method") or "stated in the file's header",
                    "reason": "" if value is not None else "the file's header states no heating rate"}
        item = item or {}
        value = item.get("value_k")
        recorded = getattr(dsc, field) if field else None
        same = value is not None and recorded is not None and abs(float(recorded) - float(value)) < 1e-9
        rows.append({
            "key": key, "field": field, "label": label, "value": value, "unit": unit,
            "method": item.get("method") or "", "short_method": short_method(item.get("method")),
            "reason": item.get("reason") or ("" if value is not None else "not found"),
            "recorded": recorded, "recorded_method": dsc.method_of(field) if field and recorded is not None else "",
            "acceptable": bool(field) and value is not None and not same,
        })
    return rows


class PropertyValue(Correctable, TransitionTemperatures):
    """Tg/Tx/Tl and/or the glass-forming ability (GFA class, Dmax) of an alloy from one source:
    a DSC measurement here or a literature reference. Any of them may be missing (a value may
    carry only a GFA class, or only its source).

    Every property value in the system is one of these, so provenance is never lost.
    """

    class Origin(models.TextChoices):
        EXPERIMENT = "experiment", "Experiment (this lab)"
        LITERATURE = "literature", "Literature"

    alloy = models.ForeignKey(Alloy, on_delete=models.CASCADE, related_name="property_values")
    origin = models.CharField(max_length=16, choices=Origin.choices)
    dsc = models.OneToOneField(DSCMeasurement, null=True, blank=True, on_delete=models.CASCADE, related_name="property_value")
    reference = models.ForeignKey(Reference, null=True, blank=True, on_delete=models.PROTECT, related_name="property_values")
    source_label = models.CharField(max_length=255, blank=True, help_text="Source as written in an import")
    heating_rate_k_min = models.FloatField(null=True, blank=True)
    conflict = models.BooleanField(default=False, help_text="Differs by more than 10 K from another value of the same alloy")
    gfa_class = models.CharField("GFA class", max_length=16, blank=True, choices=GFA_CLASS_CHOICES)
    dmax_mm = models.FloatField("Dmax (mm)", null=True, blank=True, help_text="Critical casting diameter")
    dmax_kind = models.CharField("Dmax kind", max_length=16, choices=DMAX_KIND_CHOICES, default=rules.DMAX_POINT)
    note = models.TextField(blank=True)
    # A person looked at the conflict and kept this value (with their reason): it counts again.
    conflict_resolution = models.TextField(blank=True, editable=False)
    conflict_resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    conflict_resolved_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["alloy", "created_at"]
        indexes = [models.Index(fields=["tg_k"]), models.Index(fields=["tx_k"]), models.Index(fields=["tl_k"])]

    def clean_fields(self, exclude=None):
        """The GFA class is read by its name (ml.rules.gfa_class: "BMG" → "bmg"), so an unknown
        one is refused with the rule's reason rather than "not a valid choice"."""
        errors = {}
        exclude = set(exclude or ())
        if self.gfa_class and "gfa_class" not in exclude:
            try:
                self.gfa_class = rules.gfa_class(self.gfa_class) or ""
            except rules.GFAValueError as exc:
                errors["gfa_class"] = [str(exc)]
                exclude.add("gfa_class")
        try:
            super().clean_fields(exclude=exclude)
        except ValidationError as exc:
            errors = exc.update_error_dict(errors)
        if errors:
            raise ValidationError(errors)

    def clean(self):
        super().clean()
        if self.origin == self.Origin.EXPERIMENT and self.dsc_id is None:
            raise ValidationError("An experimental value must point to its DSC measurement.")
        cls = self.gfa_class if self.gfa_class in rules.GFA_CLASSES else None
        problems = rules.dmax_problems(cls, self.dmax_mm, self.dmax_kind or rules.DMAX_POINT)
        if problems:
            raise ValidationError({"dmax_mm": problems})

    @property
    def dmax_display(self):
        return format_dmax(self.dmax_mm, self.dmax_kind)

    @property
    def counts(self):
        """In the alloy's means and the training rows: not retracted, and not in an unresolved
        conflict (lab.services.COUNTED_VALUES is the same rule as a query)."""
        if self.retracted_at is not None:
            return False
        return not (conflicts_leave_means() and self.conflict and not self.conflict_resolution)

    @property
    def conflict_unresolved(self):
        return self.conflict and not self.conflict_resolution and self.retracted_at is None

    @property
    def provenance(self):
        if self.origin == self.Origin.EXPERIMENT and self.dsc_id:
            # The method of each value (typed, or the trace's proposal accepted) is its provenance too.
            methods = self.dsc.methods_text
            return f"DSC of sample {self.dsc.sample.label}" + (f" ({methods})" if methods else "")
        if self.reference_id:
            # A table row of a reference (e.g. "…, cerebral GFA table, row 12") is named too.
            return f"{self.reference}, {self.source_label}" if self.source_label else str(self.reference)
        return self.source_label or "literature (source not given)"


class Correction(models.Model):
    """One correction, retraction or conflict resolution of a lab record: who, when, why, and
    each field's value before → after (in the unit shown on the pages).

    Kept beside simple-history (which records every save, whatever its path) because a
    correction needs what a history row cannot hold: the full reason (history's change reason
    is 100 characters), the action (a retraction is not a field diff), the version it made,
    and the alloy and sample it belongs to, so the alloy and sample pages list their records'
    corrections in one query.
    """

    class Action(models.TextChoices):
        CORRECT = "correct", "corrected"
        RETRACT = "retract", "retracted"
        RESOLVE = "resolve", "conflict resolved"

    class Record(models.TextChoices):
        SAMPLE = "sample", "sample"
        XRD = "xrd", "XRD"
        DSC = "dsc", "DSC"
        VALUE = "value", "property value"

    alloy = models.ForeignKey(Alloy, on_delete=models.CASCADE, related_name="corrections")
    sample = models.ForeignKey(Sample, null=True, blank=True, on_delete=models.CASCADE, related_name="corrections")
    record_type = models.CharField(max_length=8, choices=Record.choices)
    record_id = models.PositiveIntegerField()
    action = models.CharField(max_length=8, choices=Action.choices)
    changes = models.JSONField(default=list, blank=True, help_text='[{"field", "label", "before", "after", "unit"}]')
    reason = models.TextField()
    version = models.PositiveIntegerField(help_text="The record's version after this change")
    by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-at", "-pk"]
        indexes = [models.Index(fields=["record_type", "record_id"])]

    def __str__(self):
        return self.line

    @property
    def record_label(self):
        return f"{self.get_record_type_display()} #{self.record_id}"

    @property
    def change_text(self):
        """"Tg 978.0 → 705.0 K", several joined by ", "; for a retraction "retracted"."""
        parts = []
        for c in self.changes:
            kelvin = c.get("unit") == "K"  # temperatures by the one display rule (ml.rules.display_k)
            parts.append(f"{c.get('label') or c.get('field')} {_shown(c.get('before'), kelvin)} → {_shown(c.get('after'), kelvin)}"
                         + (f" {c['unit']}" if c.get("unit") else ""))
        if self.action != self.Action.CORRECT:
            parts.insert(0, self.get_action_display())
        return ", ".join(parts)

    @property
    def line(self):
        """"2026-12-01 14:02 · olga · Tg 978.0 → 705.0 K · reason: typed in °C" (UTC as the site shows it)."""
        from django.utils import timezone

        when = timezone.localtime(self.at).strftime("%Y-%m-%d %H:%M")
        who = self.by.get_username() if self.by_id else "—"
        return f"{when} · {who} · {self.change_text} · reason: {self.reason}"


def _shown(value, kelvin=False):
    if value is None or value == "":
        return "∅"
    if kelvin and isinstance(value, (int, float)) and not isinstance(value, bool):
        return rules.display_k(value) or str(value)
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


class AlloyImport(Job):
    """An import of a literature table started from the web; runs as a Celery job (core.jobs)."""

    job_task_name = "lab.run_alloy_import"
    job_api_name = "imports"
    job_time_limit_setting = "GLASSLOOP_IMPORT_MAX_SECONDS"
    job_read_roles = job_control_roles = (EXPERIMENTER,)

    upload = models.FileField(upload_to="imports/%Y/%m/")
    original_name = models.CharField(max_length=255)
    dry_run = models.BooleanField(default=False)
    counts = models.JSONField(default=dict, blank=True)
    report = models.JSONField(default=list, blank=True, help_text="One entry per row: outcome and reason")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"Import of {self.original_name} ({self.get_status_display()})"

    def job_label(self):
        return f"import {self.pk} ({self.original_name})"

    def reset_for_retry(self):
        super().reset_for_retry()
        self.counts, self.report = {}, []


from .models_imports import *  # noqa: E402,F401,F403  (ImportRow: the rows of an import report)
