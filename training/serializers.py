"""The training API's serializers (``training.api`` uses them): model versions with their
validation metrics, training runs with their progress and job URLs."""

from drf_spectacular.utils import extend_schema_field, inline_serializer
from rest_framework import serializers

from core.api_jobs import job_links as core_job_links

from .models import ModelVersion, TrainingRun


# Public name -> dotted path in ModelVersion.metrics (services.validation_metrics' shape).
VALIDATION_METRICS = {
    "n": "validation.n",
    "forward_mae_k": "validation.forward.mean_mae_k",
    "tg_mae_k": "validation.forward.tg_k_mae",
    "tx_mae_k": "validation.forward.tx_k_mae",
    "tl_mae_k": "validation.forward.tl_k_mae",
    "glass_roc_auc": "validation.gfa.glass.roc_auc",
    "glass_f1": "validation.gfa.glass.f1",
    "bmg_roc_auc": "validation.gfa.bmg.roc_auc",
    "bmg_f1": "validation.gfa.bmg.f1",
    "dmax_mae_log10_mm": "validation.gfa.dmax.mae_log10_mm",
    "dmax_coverage_80": "validation.gfa.dmax.coverage_80",
}
ValidationSerializer = inline_serializer(
    "ModelValidation",
    fields={
        name: (serializers.IntegerField(allow_null=True) if name == "n" else serializers.FloatField(allow_null=True))
        for name in VALIDATION_METRICS
    },
)


def job_links(run, context):
    """The run's job URLs (core.api_jobs): progress (the page's poll), cancel and retry."""
    links = core_job_links(run, context)
    return {"progress_url": links["status_url"], "cancel_url": links["cancel_url"], "retry_url": links["retry_url"]}


class ModelVersionSerializer(serializers.ModelSerializer):
    name = serializers.CharField(source="__str__", read_only=True)
    status_display = serializers.CharField(source="get_status_display", read_only=True)
    reason = serializers.CharField(source="status_reason", read_only=True, help_text="Why it was (not) promoted or retired")
    training_run = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)
    validation = serializers.SerializerMethodField(
        help_text="On the fixed validation split: forward MAE (K, mean of Tg/Tx/Tl and each), glass-vs-crystal "
        "and BMG-vs-rest ROC-AUC and F1, Dmax MAE (log10 mm) and 80 % interval coverage; null where unknown"
    )

    class Meta:
        model = ModelVersion
        fields = [
            "id", "name", "status", "status_display", "reason", "validation", "training_run", "data_size",
            "n_lab_results", "snapshot_hash", "snapshot_taken_at", "created_at", "activated_at", "retired_at", "metrics",
        ]
        read_only_fields = fields
        extra_kwargs = {"metrics": {"help_text": "Every stored metric: validation, fit, the active version's at promotion"}}

    @extend_schema_field(ValidationSerializer)
    def get_validation(self, version):
        return {name: version.metric(path) for name, path in VALIDATION_METRICS.items()}


# One serializer for lists and details: two components with the same "status" choices would
# leave drf-spectacular no single name for their enum (a hashed name and a warning).
ModelVersionDetailSerializer = ModelVersionSerializer


class ActivateSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=1000, help_text="Why, for the history (optional)")


VersionBriefSerializer = inline_serializer(
    "ModelVersionBrief",
    fields={"id": serializers.IntegerField(), "status": serializers.CharField(), "reason": serializers.CharField()},
)


class TrainingRunSerializer(serializers.ModelSerializer):
    status_display = serializers.CharField(source="get_status_display", read_only=True)
    progress = serializers.SerializerMethodField(help_text="0–1, as the progress URL gives it")
    requested_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    error = serializers.CharField(read_only=True, help_text="One plain sentence when it failed (never a traceback)")
    finished = serializers.BooleanField(source="is_finished", read_only=True)
    can_cancel = serializers.BooleanField(read_only=True)
    can_retry = serializers.BooleanField(read_only=True)
    duration_s = serializers.FloatField(read_only=True, allow_null=True)
    model_version = serializers.SerializerMethodField(help_text="The version it produced (null until done)")
    url = serializers.HyperlinkedIdentityField(view_name="training-run-detail", read_only=True)
    progress_url = serializers.SerializerMethodField()
    cancel_url = serializers.SerializerMethodField()
    retry_url = serializers.SerializerMethodField()

    class Meta:
        model = TrainingRun
        fields = [
            "id", "url", "status", "status_display", "trigger", "phase", "progress", "epoch", "total_epochs", "error",
            "finished", "can_cancel", "can_retry", "model_version", "data_size", "n_lab_results", "snapshot_hash",
            "epochs", "seed", "requested_by", "created_at", "queued_at", "started_at", "finished_at", "duration_s",
            "progress_url", "cancel_url", "retry_url",
        ]
        read_only_fields = fields

    def get_progress(self, run) -> float:
        return round(run.progress, 4)

    @extend_schema_field(VersionBriefSerializer)
    def get_model_version(self, run):
        try:
            version = run.model_version
        except ModelVersion.DoesNotExist:
            return None
        return {"id": version.pk, "status": version.status, "reason": version.status_reason}

    def _links(self, run):
        return job_links(run, self.context)

    def get_progress_url(self, run) -> str:
        return self._links(run)["progress_url"]

    def get_cancel_url(self, run) -> str:
        return self._links(run)["cancel_url"]

    def get_retry_url(self, run) -> str:
        return self._links(run)["retry_url"]


class TrainingRunDetailSerializer(TrainingRunSerializer):
    curves = serializers.JSONField(read_only=True, help_text="[{epoch, d_loss, g_loss, val_w}] per epoch")

    class Meta(TrainingRunSerializer.Meta):
        fields = TrainingRunSerializer.Meta.fields + ["curves", "log"]
        read_only_fields = fields


class RetrainSerializer(serializers.Serializer):
    """The page's "Retrain now" takes nothing: the current data, the configured epochs."""


RetrainResponseSerializer = inline_serializer(
    "RetrainAnswer",
    fields={
        "run": TrainingRunSerializer(),
        "outcome": serializers.CharField(help_text="The page's message"),
        "progress_url": serializers.CharField(),
    },
)
ActivateResponseSerializer = inline_serializer(
    "ActivateAnswer",
    fields={"version": ModelVersionDetailSerializer(), "outcome": serializers.CharField(help_text="The page's message")},
)
