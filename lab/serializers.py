"""The lab API's serializers: the shape of each request and response (``lab.api`` uses them)."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core import jobs
from core.api import FastRepresentation, IdentityLink
from core.api_jobs import job_links

from . import selectors
from .models import (
    CU_KALPHA_WAVELENGTH_A,
    DSC_ACCEPTABLE,
    DMAX_KIND_CHOICES,
    Alloy,
    Correction,
    DSCMeasurement,
    PropertyValue,
    Reference,
    Sample,
    TemperatureUnit,
    XRDMeasurement,
    to_kelvin,
)


class ReferenceSerializer(FastRepresentation, serializers.ModelSerializer):
    text = serializers.CharField(source="__str__", read_only=True)

    class Meta:
        model = Reference
        fields = ["id", "doi", "authors", "year", "title", "journal", "label", "text"]


class PropertyValueSerializer(FastRepresentation, serializers.ModelSerializer):
    """Tg/Tx/Tl (K) of an alloy from one source, with where it came from."""

    formula = serializers.CharField(source="alloy.formula", read_only=True)
    provenance = serializers.CharField(read_only=True, help_text="The source in words: a DSC scan here or a reference")
    sample = serializers.SerializerMethodField(help_text="The sample whose DSC scan gave an experimental value")
    reference = ReferenceSerializer(read_only=True)
    trg = serializers.FloatField(source="reduced_glass_transition", read_only=True, allow_null=True, help_text="Tg/Tl")
    gamma = serializers.FloatField(read_only=True, allow_null=True, help_text="Tx/(Tg+Tl)")
    dtx_k = serializers.FloatField(source="supercooled_liquid_region_k", read_only=True, allow_null=True, help_text="Tx−Tg (K)")
    counts = serializers.BooleanField(read_only=True, help_text="In the alloy's means and the training data: not retracted, not in an unresolved conflict")

    class Meta:
        model = PropertyValue
        fields = [
            "id", "alloy", "formula", "origin", "tg_k", "tx_k", "tl_k", "trg", "gamma", "dtx_k",
            "gfa_class", "dmax_mm", "dmax_kind",
            "heating_rate_k_min", "conflict", "provenance", "dsc", "sample", "reference", "source_label",
            "note", "conflict_resolution", "counts", "version", "corrected_at", "retracted_at", "retraction_reason", "created_at",
        ]  # fmt: skip
        read_only_fields = ["counts", "conflict_resolution", "version", "corrected_at", "retracted_at", "retraction_reason"]

    @extend_schema_field(
        {"type": "object", "nullable": True, "properties": {"id": {"type": "integer"}, "label": {"type": "string"}}}
    )
    def get_sample(self, value):
        if value.dsc_id is None:
            return None
        return {"id": value.dsc.sample_id, "label": value.dsc.sample.label}


class AlloySerializer(FastRepresentation, serializers.ModelSerializer):
    """An alloy with the mean of its property values over all sources (K) and derived criteria."""

    url = IdentityLink(view_name="alloy-detail")
    elements = serializers.ListField(child=serializers.CharField(), read_only=True, help_text="By descending fraction")
    atomic_percent = serializers.SerializerMethodField(help_text="Element → at.%, by descending fraction")
    n_samples = serializers.IntegerField(read_only=True)
    n_values = serializers.IntegerField(read_only=True, help_text="Property values (all sources)")
    tg_mean_k = serializers.FloatField(read_only=True, allow_null=True)
    tx_mean_k = serializers.FloatField(read_only=True, allow_null=True)
    tl_mean_k = serializers.FloatField(read_only=True, allow_null=True)
    trg = serializers.FloatField(read_only=True, allow_null=True, help_text="Tg/Tl of the means")
    gamma = serializers.FloatField(read_only=True, allow_null=True, help_text="Tx/(Tg+Tl) of the means")
    dtx_k = serializers.FloatField(read_only=True, allow_null=True, help_text="Tx−Tg of the means (K)")
    has_conflict = serializers.BooleanField(
        read_only=True, help_text="Some sources disagree: temperatures by more than 10 K, or the glass-forming ability"
    )
    gfa_class = serializers.CharField(read_only=True, help_text="bmg / ribbon / crystal, or \"\" when unknown; this lab's castings outweigh the literature")
    dmax_mm = serializers.FloatField(read_only=True, allow_null=True, help_text="Best known Dmax (mm): the largest reported one or the thickest amorphous casting")
    dmax_is_bound = serializers.BooleanField(read_only=True, help_text="dmax_mm is a lower bound (Dmax ≥ it, from a casting)")
    gfa_conflict = serializers.BooleanField(read_only=True, help_text="Sources disagree on the GFA class or Dmax")
    gfa_conflict_reason = serializers.CharField(read_only=True)

    class Meta:
        model = Alloy
        fields = [
            "id", "url", "formula", "composition_key", "name", "base_element", "n_elements", "elements",
            "atomic_percent", "n_samples", "n_values", "tg_mean_k", "tx_mean_k", "tl_mean_k", "trg", "gamma",
            "dtx_k", "has_conflict", "gfa_class", "dmax_mm", "dmax_is_bound", "gfa_conflict", "gfa_conflict_reason",
            "created_at",
        ]  # fmt: skip

    @extend_schema_field({"type": "object", "additionalProperties": {"type": "number"}})
    def get_atomic_percent(self, alloy):
        return {el: round(pct, 2) for el, pct in selectors.composition_table(alloy)}


class SampleBriefSerializer(FastRepresentation, serializers.ModelSerializer):
    class Meta:
        model = Sample
        fields = ["id", "label", "method", "diameter_mm", "cast_on"]


class AlloyDetailSerializer(AlloySerializer):
    property_values = PropertyValueSerializer(many=True, read_only=True)
    samples = SampleBriefSerializer(many=True, read_only=True)
    castings = serializers.SerializerMethodField(
        help_text="What each cast sample's latest XRD says: amorphous → Dmax ≥ its diameter, crystalline → Dmax below it"
    )

    class Meta(AlloySerializer.Meta):
        fields = AlloySerializer.Meta.fields + ["property_values", "samples", "castings"]

    @extend_schema_field({"type": "array", "items": {"type": "object", "properties": {
        "sample": {"type": "integer"}, "label": {"type": "string"}, "xrd": {"type": "integer"},
        "verdict": {"type": "string"}, "diameter_mm": {"type": "number", "nullable": True},
        "gfa_class": {"type": "string", "nullable": True}, "dmax_kind": {"type": "string"},
        "dmax_mm": {"type": "number", "nullable": True}, "text": {"type": "string"}}}})
    def get_castings(self, alloy):
        samples = list(alloy.samples.all())  # the API's retrieve prefetches them with their XRDs
        if samples and not hasattr(samples[0], "xrds"):
            samples = selectors.samples_with_measurements(Sample.objects.filter(alloy=alloy).order_by("-created_at", "-pk"))
        return [
            {"sample": c.sample.pk, "label": c.sample.label, "xrd": c.xrd.pk, "verdict": c.xrd.verdict,
             "diameter_mm": c.sample.diameter_mm, "gfa_class": c.gfa_class, "dmax_kind": c.kind, "dmax_mm": c.bound_mm,
             "text": c.text}
            for c in selectors.casting_evidence(samples)
        ]


class AlloyCreateSerializer(serializers.Serializer):
    composition = serializers.CharField(
        max_length=255, help_text="Atomic per cent or fractions, groups allowed: Zr42Ti14Cu12Ni10Be22, (Cu50Zr40Al10)95Si5"
    )
    name = serializers.CharField(max_length=120, required=False, allow_blank=True, default="", help_text="e.g. Vitreloy 1")


class SampleSerializer(FastRepresentation, serializers.ModelSerializer):
    url = IdentityLink(view_name="sample-detail")
    formula = serializers.CharField(source="alloy.formula", read_only=True)
    operator = serializers.SlugRelatedField(slug_field="username", read_only=True)
    xrd_measurements = serializers.SerializerMethodField(help_text="XRD ids, newest first")
    dsc_measurements = serializers.SerializerMethodField(help_text="DSC ids, newest first")
    latest_verdict = serializers.SerializerMethodField(
        help_text="Verdict of the newest analysed XRD (amorphous/crystalline); null when none is analysed yet")

    class Meta:
        model = Sample
        fields = [
            "id", "url", "label", "alloy", "formula", "method", "diameter_mm", "cast_on", "operator", "notes",
            "xrd_measurements", "dsc_measurements", "latest_verdict", "version", "corrected_at", "retracted_at", "retraction_reason", "created_at",
        ]  # fmt: skip
        read_only_fields = ["version", "corrected_at", "retracted_at", "retraction_reason"]

    @extend_schema_field({"type": "array", "items": {"type": "integer"}})
    def get_xrd_measurements(self, sample):
        return [x.pk for x in sample.xrds]

    @extend_schema_field({"type": "array", "items": {"type": "integer"}})
    def get_dsc_measurements(self, sample):
        return [d.pk for d in sample.dscs]

    @extend_schema_field({"type": "string", "nullable": True, "enum": [*XRDMeasurement.Verdict.values, None]})
    def get_latest_verdict(self, sample):
        analysed = next((x for x in sample.xrds if x.is_analysed), None)  # a pending pattern says nothing
        return analysed.verdict if analysed is not None else None


class SampleCreateSerializer(serializers.Serializer):
    """A new sample of an alloy given by its composition (created if new) or its id."""

    composition = serializers.CharField(max_length=255, required=False, help_text="Give this or alloy")
    alloy = serializers.PrimaryKeyRelatedField(queryset=Alloy.objects.all(), required=False, help_text="Give this or composition")
    alloy_name = serializers.CharField(max_length=120, required=False, allow_blank=True, default="")
    label = serializers.CharField(max_length=64, help_text="Unique; as written on the sample")
    method = serializers.ChoiceField(choices=Sample.Method.choices, default=Sample.Method.ARC_SUCTION)
    diameter_mm = serializers.FloatField(required=False, allow_null=True, help_text="0–100 mm")
    cast_on = serializers.DateField(required=False, allow_null=True)
    notes = serializers.CharField(required=False, allow_blank=True, default="")

    def validate(self, attrs):
        if not attrs.get("composition") and not attrs.get("alloy"):
            raise serializers.ValidationError({"composition": "Give the composition or the id of an existing alloy."})
        if attrs.get("composition") and attrs.get("alloy"):
            raise serializers.ValidationError({"alloy": "Give the composition or the alloy, not both."})
        return attrs


class XRDMeasurementSerializer(serializers.ModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name="xrd-measurement-detail")
    sample_label = serializers.CharField(source="sample.label", read_only=True)
    alloy = serializers.IntegerField(source="sample.alloy_id", read_only=True)
    formula = serializers.CharField(source="sample.alloy.formula", read_only=True)
    verdict = serializers.SerializerMethodField(help_text="The override if any, else the computed verdict; null until analysed")
    is_amorphous = serializers.SerializerMethodField(help_text="null until the pattern is analysed (never read as crystalline)")
    analysis_state = serializers.CharField(source="analysis_state_display", read_only=True,
                                           help_text='"Analysed", "Analysing the pattern…" or "Analysis failed: <why>"')
    analysis_job = serializers.SerializerMethodField(help_text="The job analysing the pattern on the worker (poll status_url), or null")
    operator = serializers.SlugRelatedField(slug_field="username", read_only=True)
    pattern_url = serializers.HyperlinkedIdentityField(view_name="xrd-measurement-pattern", help_text="The pattern file as uploaded")

    class Meta:
        model = XRDMeasurement
        fields = [
            "id", "url", "sample", "sample_label", "alloy", "formula", "wavelength_a", "peak_q_inv_a",
            "peak_two_theta_deg", "fwhm_inv_a", "computed_verdict", "verdict_reason", "override_verdict",
            "override_reason", "verdict", "is_amorphous", "analysis_status", "analysis_state", "analysis_job",
            "fwhm_two_theta_deg", "fwhm_wavelength", "analysis", "measured_on", "operator", "pattern_url", "version", "corrected_at", "retracted_at", "retraction_reason",
            "created_at",
        ]  # fmt: skip
        read_only_fields = fields

    fwhm_two_theta_deg = serializers.FloatField(read_only=True, allow_null=True,
                                                help_text="FWHM in degrees 2θ at the pattern's wavelength (see fwhm_wavelength)")
    fwhm_wavelength = serializers.SerializerMethodField(help_text='"1.5406 Å (Cu Kα)" or "0.7107 Å (as recorded)"')

    def get_fwhm_wavelength(self, xrd) -> str:
        return f"{xrd.wavelength_a:g} Å ({xrd.wavelength_source})"

    @extend_schema_field({"type": "string", "nullable": True, "description": "amorphous or crystalline"})
    def get_verdict(self, xrd):
        return xrd.verdict or None

    @extend_schema_field({"type": "boolean", "nullable": True})
    def get_is_amorphous(self, xrd):
        return xrd.is_amorphous if xrd.is_analysed else None

    @extend_schema_field({"type": "object", "nullable": True, "additionalProperties": True})
    def get_analysis_job(self, xrd):
        job = xrd.analysis_job
        if job is None:
            return None
        return {**jobs.status_payload(job), "kind": type(job).job_api_name, **job_links(job, self.context)}


class XRDAcceptedSerializer(XRDMeasurementSerializer):
    """The answer to an upload (202): the measurement, pending, with where to follow its analysis."""

    progress_url = serializers.URLField(read_only=True, help_text="GET: the analysis job's status (core.api_jobs)")

    class Meta(XRDMeasurementSerializer.Meta):
        fields = XRDMeasurementSerializer.Meta.fields + ["progress_url"]
        read_only_fields = fields


class XRDUploadSerializer(serializers.Serializer):
    sample = serializers.PrimaryKeyRelatedField(queryset=Sample.objects.all())
    # Oversized and unreadable files are refused by the service, with the web form's message.
    xrd_file = serializers.FileField(help_text="Two columns: 2θ (°), intensity. .xy, .csv or .txt")
    wavelength_a = serializers.FloatField(default=CU_KALPHA_WAVELENGTH_A, help_text="Å; Cu Kα is 1.5406")
    measured_on = serializers.DateField(required=False, allow_null=True)


class VerdictOverrideSerializer(serializers.Serializer):
    verdict = serializers.ChoiceField(
        choices=[("", "Computed (clear the override)"), *XRDMeasurement.Verdict.choices],
        allow_blank=True,
        help_text='"" clears the override',
    )
    reason = serializers.CharField(allow_blank=True, help_text="Required: why the verdict is overridden")


class DSCProposalSerializer(serializers.Serializer):
    """One of the trace's proposals beside the recorded value."""

    key = serializers.CharField(help_text="tg_k, tx_k, melting_onset_k, tl_k or heating_rate_k_min")
    field = serializers.CharField(help_text="The record's field it is accepted into (\"\": none, e.g. the melting onset)")
    label = serializers.CharField()
    value = serializers.FloatField(allow_null=True, help_text="Proposed value (K, or K/min); null: not found")
    unit = serializers.CharField()
    method = serializers.CharField(help_text="How the trace gave it, e.g. the tangent construction")
    reason = serializers.CharField(help_text="Why it was not found (empty when found)")
    recorded = serializers.FloatField(allow_null=True)
    recorded_method = serializers.CharField()
    acceptable = serializers.BooleanField(help_text="Found, and not the value already recorded")


class DSCMeasurementSerializer(serializers.ModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name="dsc-measurement-detail")
    sample_label = serializers.CharField(source="sample.label", read_only=True)
    alloy = serializers.IntegerField(source="sample.alloy_id", read_only=True)
    formula = serializers.CharField(source="sample.alloy.formula", read_only=True)
    trg = serializers.FloatField(source="reduced_glass_transition", read_only=True, allow_null=True, help_text="Tg/Tl")
    gamma = serializers.FloatField(read_only=True, allow_null=True, help_text="Tx/(Tg+Tl)")
    dtx_k = serializers.FloatField(source="supercooled_liquid_region_k", read_only=True, allow_null=True, help_text="Tx−Tg (K)")
    has_curve = serializers.SerializerMethodField()
    property_value = serializers.PrimaryKeyRelatedField(read_only=True, help_text="The experimental property value it gave")
    operator = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = DSCMeasurement
        fields = [
            "id", "url", "sample", "sample_label", "alloy", "formula", "tg_k", "tx_k", "tl_k", "trg", "gamma",
            "dtx_k", "heating_rate_k_min", "curve_temperature_unit", "has_curve", "value_methods", "proposals",
            "property_value", "measured_on", "operator", "version", "corrected_at", "retracted_at", "retraction_reason",
            "created_at",
        ]  # fmt: skip
        read_only_fields = fields

    value_methods = serializers.SerializerMethodField(
        help_text='How each recorded value came: {"tg_k": "typed" | "accepted the trace\'s proposal (tangent onset)", ...}')
    proposals = DSCProposalSerializer(many=True, read_only=True,
                                      help_text="The trace's proposals, analysed once when the curve was stored (empty without a curve)")

    def get_has_curve(self, dsc) -> bool:
        return bool(dsc.curve)

    def get_value_methods(self, dsc) -> dict:
        return {f: dsc.method_of(f) for f in ("tg_k", "tx_k", "tl_k", "heating_rate_k_min") if getattr(dsc, f) is not None}


class AcceptProposalsSerializer(serializers.Serializer):
    fields = serializers.ListField(
        child=serializers.ChoiceField(choices=[(f, f) for f in DSC_ACCEPTABLE]), required=False, allow_empty=True,
        help_text="Which proposals to accept (tg_k, tx_k, tl_k, heating_rate_k_min); all that differ when left out",
    )
    version = serializers.IntegerField(required=False, allow_null=True, help_text="The version you read; refused (409) if it changed since")


class DSCCreateSerializer(serializers.Serializer):
    sample = serializers.PrimaryKeyRelatedField(queryset=Sample.objects.all())
    # Tg and Tx are checked by the service (ml.rules: Tg < Tx < Tl, 200–2500 K, ΔTx ≤ 250 K), with the web form's messages.
    tg_k = serializers.FloatField(required=False, allow_null=True, help_text="K; required")
    tx_k = serializers.FloatField(required=False, allow_null=True, help_text="K; required")
    tl_k = serializers.FloatField(required=False, allow_null=True, help_text="K")
    heating_rate_k_min = serializers.FloatField(default=20.0)
    curve_file = serializers.FileField(required=False, allow_null=True, help_text="Two columns: temperature, heat flow")
    curve_unit = serializers.ChoiceField(choices=TemperatureUnit.choices, default=TemperatureUnit.KELVIN, help_text="Unit of the curve's temperature column")
    measured_on = serializers.DateField(required=False, allow_null=True)




# ------------------------------------------------------------------ corrections


class CorrectionSerializer(serializers.ModelSerializer):
    """One correction, retraction or conflict resolution: who, when, why, before → after."""

    by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    line = serializers.CharField(read_only=True, help_text='"2026-12-01 14:02 · olga · Tg 978.0 → 705.0 K · reason: typed in °C"')

    class Meta:
        model = Correction
        fields = ["id", "record_type", "record_id", "action", "changes", "reason", "version", "by", "at", "line"]
        read_only_fields = fields


class RetractSerializer(serializers.Serializer):
    reason = serializers.CharField(allow_blank=True, help_text="Required: why the record is retracted")
    version = serializers.IntegerField(required=False, allow_null=True, help_text="The version you read; refused (409) if it changed since")


class _CorrectionBase(serializers.Serializer):
    reason = serializers.CharField(allow_blank=True, help_text="Required: why")
    version = serializers.IntegerField(required=False, allow_null=True, help_text="The version you read; refused (409) if it changed since")


class _TemperatureCorrection(_CorrectionBase):
    tg_k = serializers.FloatField(required=False, allow_null=True, help_text="In temperature_unit (K unless said)")
    tx_k = serializers.FloatField(required=False, allow_null=True, help_text="In temperature_unit")
    tl_k = serializers.FloatField(required=False, allow_null=True, help_text="In temperature_unit")
    temperature_unit = serializers.ChoiceField(choices=TemperatureUnit.choices, default=TemperatureUnit.KELVIN,
                                               help_text="Unit of tg_k, tx_k, tl_k as sent: K or C")
    heating_rate_k_min = serializers.FloatField(required=False)
    confirm_units = serializers.BooleanField(default=False, help_text="Save although the values look typed in the other unit")

    def changes(self):
        """The fields given, temperatures in K (ml.rules.to_kelvin)."""
        data = dict(self.validated_data)
        unit = data.pop("temperature_unit", TemperatureUnit.KELVIN)
        for name in ("reason", "version", "confirm_units"):
            data.pop(name, None)
        for name in ("tg_k", "tx_k", "tl_k"):
            if name in data:
                data[name] = to_kelvin(data[name], unit)
        return data, unit


class DSCCorrectionSerializer(_TemperatureCorrection):
    measured_on = serializers.DateField(required=False, allow_null=True)


class PropertyValueCorrectionSerializer(_TemperatureCorrection):
    gfa_class = serializers.CharField(required=False, allow_blank=True, help_text="bmg / ribbon / crystal or \"\"")
    dmax_mm = serializers.FloatField(required=False, allow_null=True)
    dmax_kind = serializers.ChoiceField(choices=DMAX_KIND_CHOICES, required=False)
    note = serializers.CharField(required=False, allow_blank=True)


class SampleCorrectionSerializer(_CorrectionBase):
    label = serializers.CharField(max_length=64, required=False)
    method = serializers.ChoiceField(choices=Sample.Method.choices, required=False)
    diameter_mm = serializers.FloatField(required=False, allow_null=True)
    cast_on = serializers.DateField(required=False, allow_null=True)
    notes = serializers.CharField(required=False, allow_blank=True)

    def changes(self):
        return {k: v for k, v in self.validated_data.items() if k not in ("reason", "version")}


class ConflictResolutionSerializer(serializers.Serializer):
    how = serializers.ChoiceField(choices=[("keep_one", "keep this value, retract those it conflicts with"),
                                           ("keep_all", "keep it and those it conflicts with"),
                                           ("retract", "retract this value")])
    reason = serializers.CharField(allow_blank=True)
    version = serializers.IntegerField(required=False, allow_null=True)
