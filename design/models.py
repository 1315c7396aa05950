"""Design campaigns, their generation rounds and the candidates they propose.

A campaign states what alloy the lab wants (target ranges, element constraints, thresholds);
each generation round samples the active model bundle and stores its best batch as
candidates; approved candidates become lab samples, and their XRD/DSC results close the loop.
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.urls import reverse
from simple_history.models import HistoricalRecords

from core.jobs import Job
from core.roles import APPROVER, EXPERIMENTER

from ml.composition import CompositionError, parse_composition
from ml.rules import BMG_MIN_DMAX_MM, DMAX_MAX_MM, DTX_MAX_K, T_MAX_K, T_MIN_K

from . import generation

# Target properties a campaign may constrain: name -> (label, unit). The thermal ones steer
# the CGAN's conditions; Dmax (critical casting diameter) comes from the GFA surrogate.
TARGET_PROPERTIES = {
    "tg_k": ("Tg", "K"),
    "tx_k": ("Tx", "K"),
    "tl_k": ("Tl", "K"),
    "trg": ("Trg = Tg/Tl", ""),
    "gamma": ("γ = Tx/(Tg+Tl)", ""),
    "delta_tx_k": ("ΔTx = Tx − Tg", "K"),
    "dmax_mm": ("Dmax", "mm"),
}
DMAX_TARGET = generation.DMAX_TARGET
P_BMG_LABEL = f"P(BMG) (rod ≥ {BMG_MIN_DMAX_MM:g} mm)"
NO_GFA_MODEL = "the model version that proposed it has no glass-forming-ability (GFA) model"
# What the stored Tg/Tx/Tl "_std" is: the forward ensemble's spread, not a calibrated interval
# (on unseen alloys it is about a quarter of the real error; issue 15). Pages show it only for
# candidates of models without calibrated intervals (tg_k_low … tl_k_high).
INTERVAL_LABEL = "ensemble spread σ"
INTERVAL_NOTE = "± the spread σ of the forward model's ensemble, not a calibrated interval: the real error is larger"
GFA_LABELS = {"p_glass": "P(glass)", "p_bmg": "P(BMG)", "dmax_mm": "Dmax"}


def dmax_bound_problem(value):
    """Why a Dmax bound (mm) cannot be a target, or None: 0 < d ≤ ml.rules.DMAX_MAX_MM."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        return "must be a number"
    if value <= 0:
        return f"must be above 0 mm (got {value:g} mm)"
    if value > DMAX_MAX_MM:
        return f"must be at most {DMAX_MAX_MM:g} mm, thicker than any glass ever cast (got {value:g} mm)"
    return None


TEMPERATURE_TARGETS = ("tg_k", "tx_k", "tl_k")
RATIO_TARGETS = ("trg", "gamma")


def target_bound_problem(name, value):
    """Why ``value`` cannot bound target ``name`` physically, or None: Tg/Tx/Tl within
    ml.rules' T_MIN_K–T_MAX_K, 0 < Trg < 1, 0 < γ < 1, 0 < ΔTx ≤ ml.rules.DTX_MAX_K, Dmax 0 < d ≤
    ml.rules.DMAX_MAX_MM (the words of ``dmax_bound_problem``)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        return "must be a number"
    label = TARGET_PROPERTIES[name][0].split(" ")[0] if name in TARGET_PROPERTIES else name
    if name in TEMPERATURE_TARGETS and not T_MIN_K <= value <= T_MAX_K:
        hint = " (was it entered in °C?)" if value < T_MIN_K else ""
        return f"{label} must be between {T_MIN_K:g} and {T_MAX_K:g} K (got {value:g} K){hint}"
    if name in RATIO_TARGETS and not 0 < value < 1:
        return f"{label} must be above 0 and below 1 (got {value:g})"
    if name == "delta_tx_k" and not 0 < value <= DTX_MAX_K:
        return f"ΔTx must be above 0 K and at most {DTX_MAX_K:g} K (got {value:g} K)"
    if name == "dmax_mm":
        why = dmax_bound_problem(value)
        return f"Dmax {why}" if why else None
    return None


def probability_problem(value):
    """Why a probability threshold cannot be used, or None (0 ≤ p ≤ 1)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        return "A probability between 0 and 1."
    if not 0 <= value <= 1:
        return f"A probability between 0 and 1 (got {value:g})."
    return None


def target_problems(targets):
    """Every reason the targets cannot be used (empty list: they can).

    Targets: {property: {"min": x?, "max": y?}} with known properties, numbers, min < max,
    each bound physical (``target_bound_problem``).
    """
    if not isinstance(targets, dict) or not targets:
        return ["State at least one target (a minimum or a range)."]
    problems = []
    for name, bounds in targets.items():
        if name not in TARGET_PROPERTIES:
            problems.append(f"Unknown target property {name!r}; known: {', '.join(TARGET_PROPERTIES)}.")
            continue
        if not isinstance(bounds, dict) or not ({"min", "max"} & set(bounds)):
            problems.append(f"{name}: give a minimum, a maximum or both.")
            continue
        unknown = set(bounds) - {"min", "max"}
        if unknown:
            problems.append(f"{name}: only \"min\" and \"max\" (got {', '.join(sorted(map(str, unknown)))}).")
        lo, hi = bounds.get("min"), bounds.get("max")
        if any(v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or v != v) for v in (lo, hi)):
            problems.append(f"{name}: bounds must be numbers.")
            continue
        if name == DMAX_TARGET:
            for key, v in (("minimum", lo), ("maximum", hi)):
                why = dmax_bound_problem(v)
                if why:
                    problems.append(f"{name}: the {key} Dmax {why}.")
        else:
            for key, v in (("minimum", lo), ("maximum", hi)):
                why = target_bound_problem(name, v)
                if why:
                    problems.append(f"{name}: the {key} {why}.")
        if lo is not None and hi is not None and not lo < hi:
            problems.append(f"{name}: the minimum ({lo:g}) must be below the maximum ({hi:g}).")
    return problems


def validate_targets(targets):
    """ValidationError on "targets" with every problem of ``target_problems`` at once."""
    problems = target_problems(targets)
    if problems:
        raise ValidationError({"targets": problems})


class DesignCampaign(models.Model):
    """What the lab wants: target properties, element constraints, thresholds, batch size."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        CLOSED = "closed", "Closed"

    name = models.CharField(max_length=200)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="design_campaigns")
    description = models.TextField(blank=True)
    targets = models.JSONField(help_text='{"tg_k": {"min": 700}, "trg": {"min": 0.62}, ...}')
    base_element = models.CharField(max_length=3, blank=True, help_text="Required base (largest-fraction) element")
    allowed_elements = models.JSONField(default=list, blank=True, help_text="Only these elements (empty: any the model knows)")
    forbidden_elements = models.JSONField(default=list, blank=True)
    max_elements = models.PositiveSmallIntegerField(default=6)
    element_ranges = models.JSONField(default=dict, blank=True, help_text='{"Zr": [40, 70]} in at.%')
    min_p_glass = models.FloatField("minimum P(glass-forming)", default=0.5)
    min_p_bmg = models.FloatField(
        "minimum P(BMG)", default=0.0,
        help_text=f"Probability of casting a glassy rod of at least {BMG_MIN_DMAX_MM:g} mm (0: no threshold)",
    )
    min_novelty = models.FloatField("minimum novelty (L1 distance)", default=0.05, help_text="0.05 = 2.5 at.% moved")
    batch_size = models.PositiveSmallIntegerField(default=10)
    n_draws = models.PositiveIntegerField("CGAN draws per round", default=10000)
    kappa = models.FloatField("κ (exploration)", default=1.0)
    novelty_weight = models.FloatField("λ (novelty weight)", default=1.0)
    fill_with_near_misses = models.BooleanField(
        "fill short batches with near misses", default=False,
        help_text="When fewer candidates meet every target, complete the batch with the closest misses (marked).",
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("design:campaign_detail", args=[self.pk])

    def clean(self):
        """Every problem at once, each on the field it concerns."""
        super().clean()
        from ml.composition import ELEMENTS

        errors = {}

        def add(field, message):
            errors.setdefault(field, []).append(message)

        for message in target_problems(self.targets):
            add("targets", message)
        for field in ("allowed_elements", "forbidden_elements"):
            unknown = [e for e in getattr(self, field) or [] if e not in ELEMENTS]
            if unknown:
                add(field, f"Unknown element symbol(s): {', '.join(unknown)}.")
        if self.base_element and self.base_element not in ELEMENTS:
            add("base_element", f"Unknown element symbol {self.base_element!r}.")
        clash = set(self.allowed_elements or []) & set(self.forbidden_elements or [])
        if clash:
            add("forbidden_elements", f"Both allowed and forbidden: {', '.join(sorted(clash))}.")
        if self.base_element and self.base_element in (self.forbidden_elements or []):
            add("base_element", "The base element is forbidden.")
        if self.allowed_elements and self.base_element and self.base_element not in self.allowed_elements:
            add("base_element", "The base element is not among the allowed elements.")
        if self.max_elements is None or not (2 <= self.max_elements <= 10):
            add("max_elements", "Between 2 and 10 elements.")
        for el, bounds in (self.element_ranges or {}).items():
            if el not in ELEMENTS:
                add("element_ranges", f"Unknown element symbol {el!r}.")
            elif not (isinstance(bounds, (list, tuple)) and len(bounds) == 2 and 0 <= bounds[0] < bounds[1] <= 100):
                add("element_ranges", f"{el}: give [min, max] at.% with 0 ≤ min < max ≤ 100.")
        for field in ("min_p_glass", "min_p_bmg"):
            why = probability_problem(getattr(self, field))
            if why:
                add(field, why)
        if self.min_novelty is None or not (0 <= self.min_novelty < 2):
            add("min_novelty", "An L1 distance between 0 and 2.")
        if self.batch_size is None or not (1 <= self.batch_size <= 200):
            add("batch_size", "Between 1 and 200 candidates.")
        if self.n_draws is None or not (100 <= self.n_draws <= 200_000):
            add("n_draws", "Between 100 and 200,000 draws.")
        if errors:
            raise ValidationError(errors)

    def target_items(self):
        """[(name, label, unit, min, max)] in a fixed order, for display."""
        out = []
        for name, (label, unit) in TARGET_PROPERTIES.items():
            if name in (self.targets or {}):
                b = self.targets[name]
                out.append((name, label, unit, b.get("min"), b.get("max")))
        return out


class GenerationRound(Job):
    """One generation of candidates for a campaign (a job: core.jobs)."""

    job_task_name = "design.generate_candidates"
    job_api_name = "generation-rounds"
    job_control_roles = (EXPERIMENTER, APPROVER)

    campaign = models.ForeignKey(DesignCampaign, on_delete=models.CASCADE, related_name="rounds")
    number = models.PositiveIntegerField(help_text="Loop iteration within the campaign, from 1")
    model_version = models.ForeignKey("ml.ModelVersion", null=True, on_delete=models.PROTECT, related_name="generation_rounds")
    counts = models.JSONField(default=dict, blank=True, help_text="Draws kept or dropped at each filter")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["campaign", "number"]
        constraints = [models.UniqueConstraint(fields=["campaign", "number"], name="one_round_number_per_campaign")]

    def __str__(self):
        return f"{self.campaign} · round {self.number}"

    def job_label(self):
        return f"round {self.number} of {self.campaign}"

    def reset_for_retry(self):
        super().reset_for_retry()
        self.counts = {}


class Candidate(models.Model):
    """A proposed composition with its predictions, and its way through the lab."""

    class Status(models.TextChoices):
        PROPOSED = "proposed", "Proposed"
        APPROVED = "approved_for_synthesis", "Approved for synthesis"
        IN_SYNTHESIS = "in_synthesis", "In synthesis"
        VALIDATED = "validated", "Validated: glass and thermal targets"
        MISSED_TARGETS = "missed_targets", "Glass, misses thermal targets"
        FAILED = "failed", "Failed: crystalline"
        REJECTED = "rejected", "Rejected"

    campaign = models.ForeignKey(DesignCampaign, on_delete=models.CASCADE, related_name="candidates")
    generation_round = models.ForeignKey(GenerationRound, on_delete=models.CASCADE, related_name="candidates")
    number = models.PositiveIntegerField(help_text="Number within the campaign; the sample label is C<campaign>-<number>")
    rank = models.PositiveIntegerField(help_text="Rank by acquisition score within its round, from 1")
    composition_key = models.CharField(max_length=255)
    formula = models.CharField(max_length=255)
    fractions = models.JSONField()
    alloy = models.ForeignKey("lab.Alloy", null=True, blank=True, on_delete=models.PROTECT, related_name="design_candidates")
    sample = models.OneToOneField("lab.Sample", null=True, blank=True, on_delete=models.SET_NULL, related_name="design_candidate")
    model_version = models.ForeignKey("ml.ModelVersion", on_delete=models.PROTECT, related_name="candidates")
    # Predictions of the model version that proposed it.
    tg_k_pred = models.FloatField()
    tg_k_std = models.FloatField(null=True, blank=True)
    tx_k_pred = models.FloatField()
    tx_k_std = models.FloatField(null=True, blank=True)
    tl_k_pred = models.FloatField()
    tl_k_std = models.FloatField(null=True, blank=True)
    # Calibrated 80 % intervals (split-conformal on held-out alloys); None from older models.
    tg_k_low = models.FloatField("Tg, 80 % interval low (K)", null=True, blank=True)
    tg_k_high = models.FloatField("Tg, 80 % interval high (K)", null=True, blank=True)
    tx_k_low = models.FloatField("Tx, 80 % interval low (K)", null=True, blank=True)
    tx_k_high = models.FloatField("Tx, 80 % interval high (K)", null=True, blank=True)
    tl_k_low = models.FloatField("Tl, 80 % interval low (K)", null=True, blank=True)
    tl_k_high = models.FloatField("Tl, 80 % interval high (K)", null=True, blank=True)
    trg_pred = models.FloatField()
    gamma_pred = models.FloatField()
    delta_tx_k_pred = models.FloatField()
    # Glass-forming ability (GFA surrogate); None when the model has no GFA model.
    p_glass = models.FloatField("P(glass-forming)", null=True, blank=True)
    p_bmg = models.FloatField(P_BMG_LABEL, null=True, blank=True)
    dmax_mm_pred = models.FloatField("predicted Dmax (mm)", null=True, blank=True)
    dmax_low_mm = models.FloatField("Dmax, 80 % interval low (mm)", null=True, blank=True)
    dmax_high_mm = models.FloatField("Dmax, 80 % interval high (mm)", null=True, blank=True)
    contributions = models.JSONField(
        default=dict, blank=True,
        help_text='Top feature contributions per prediction: {"p_glass": [[feature, value], ...], "p_bmg": ..., "dmax_mm": ...}',
    )
    nearest_known_formula = models.CharField(max_length=255, blank=True)
    nearest_known_alloy = models.ForeignKey("lab.Alloy", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    nearest_distance = models.FloatField(help_text="L1 distance on atomic fractions to the nearest known alloy")
    acquisition_score = models.FloatField()
    score_terms = models.JSONField(default=dict, blank=True, help_text="Per-target margins and the novelty term")
    status = models.CharField(max_length=32, choices=Status.choices, default=Status.PROPOSED, db_index=True)
    # Measured values, copied from the sample's XRD/DSC when they arrive.
    xrd_verdict = models.CharField(max_length=16, blank=True)
    tg_k_measured = models.FloatField(null=True, blank=True)
    tx_k_measured = models.FloatField(null=True, blank=True)
    tl_k_measured = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["campaign", "generation_round", "rank"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "composition_key"], name="one_candidate_per_alloy_per_campaign"),
            models.UniqueConstraint(fields=["campaign", "number"], name="one_candidate_number_per_campaign"),
        ]

    def __str__(self):
        return f"C{self.campaign_id}-{self.number} {self.formula}"

    def get_absolute_url(self):
        return reverse("design:candidate_detail", args=[self.pk])

    @property
    def label(self):
        return f"C{self.campaign_id}-{self.number}"

    def clean(self):
        super().clean()
        try:
            comp = parse_composition(self.formula)
        except CompositionError as exc:
            raise ValidationError({"formula": str(exc)}) from exc
        if comp.key != self.composition_key:
            raise ValidationError({"composition_key": "The key does not match the formula."})

    # The two parts of validation (design/validation.py); the sample's rod diameter comes from
    # the sample (select_related("sample", "campaign") on lists).
    def glass_part(self):
        from .validation import glass_part

        diameter = self.sample.diameter_mm if self.sample_id and self.sample is not None else None
        return glass_part(self.xrd_verdict, diameter, self.campaign.targets)

    def thermal_part(self):
        from .validation import thermal_part

        return thermal_part(self.tg_k_measured, self.tx_k_measured, self.tl_k_measured, self.campaign.targets)

    def validation_parts(self):
        return [self.glass_part(), self.thermal_part()]

    @property
    def measured_trg(self):
        if self.tg_k_measured and self.tl_k_measured:
            return self.tg_k_measured / self.tl_k_measured
        return None

    @property
    def measured_gamma(self):
        if self.tg_k_measured and self.tx_k_measured and self.tl_k_measured:
            return self.tx_k_measured / (self.tg_k_measured + self.tl_k_measured)
        return None

    def predicted_vs_measured(self):
        """Rows (quantity, predicted, measured, relative error %) as in Table 1 of AlloyGAN."""
        rows = []
        pairs = [
            ("Tg (K)", self.tg_k_pred, self.tg_k_measured),
            ("Tx (K)", self.tx_k_pred, self.tx_k_measured),
            ("Tl (K)", self.tl_k_pred, self.tl_k_measured),
            ("Trg", self.trg_pred, self.measured_trg),
            ("γ", self.gamma_pred, self.measured_gamma),
        ]
        for name, pred, meas in pairs:
            err = None if meas in (None, 0) or pred is None else 100.0 * abs(pred - meas) / abs(meas)
            rows.append((name, pred, meas, err))
        return rows


class CandidateEvent(models.Model):
    """One step of a candidate: who moved it from which status to which, when, and why."""

    candidate = models.ForeignKey(Candidate, on_delete=models.CASCADE, related_name="events")
    from_status = models.CharField(max_length=32, blank=True)
    to_status = models.CharField(max_length=32, choices=Candidate.Status.choices)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self):
        return f"{self.candidate.label}: {self.from_status_display or '—'} → {self.get_to_status_display()}"

    @property
    def from_status_display(self):
        return status_label(self.from_status)


def status_label(status):
    """The readable name of a candidate status slug ("" stays "")."""
    return dict(Candidate.Status.choices).get(status, status)
