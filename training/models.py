"""Trained model versions and the training runs that produce them (Django glue of ml/).

One ``ModelVersion`` is one bundle — forward model, GFA surrogate and CGAN trained together on
one data snapshot — in a directory under ``settings.MODEL_ARTEFACT_ROOT``. Exactly one version
is active at a time (a partial unique constraint), so generation always knows which models to
use. A ``TrainingRun`` is one attempt to train a bundle; at most one non-failed run exists per
data snapshot, so concurrent triggers on the same data coalesce into one run.
"""

from pathlib import Path

from django.conf import settings
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from core.jobs import Job
from core.roles import APPROVER


class TrainingRun(Job):
    """One training of forward model + surrogate + CGAN on one data snapshot (a job: core.jobs)."""

    job_task_name = "ml.train_model_version"
    job_api_name = "training-runs"
    job_control_roles = (APPROVER,)

    class Trigger(models.TextChoices):
        MANUAL = "manual", "Manual"
        LOOP = "loop", "Design loop (new lab results)"
        SCHEDULE = "schedule", "Schedule"
        BOOTSTRAP = "bootstrap", "Bootstrap (first model)"

    trigger = models.CharField(max_length=16, choices=Trigger.choices, default=Trigger.MANUAL)
    snapshot_hash = models.CharField(max_length=64, help_text="sha256 of the training rows")
    snapshot_path = models.CharField(max_length=500, help_text="CSV of the training rows, relative to MODEL_ARTEFACT_ROOT")
    data_size = models.PositiveIntegerField(default=0, help_text="Rows in the snapshot")
    n_lab_results = models.PositiveIntegerField(default=0, help_text="Lab samples with an XRD verdict in the snapshot")
    snapshot_taken_at = models.DateTimeField()
    epochs = models.PositiveIntegerField(default=300)
    seed = models.PositiveIntegerField(default=0)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # Live progress, written by the worker.
    phase = models.CharField(max_length=64, blank=True)
    epoch = models.PositiveIntegerField(default=0)
    total_epochs = models.PositiveIntegerField(default=0)
    curves = models.JSONField(default=list, blank=True, help_text="[{epoch, d_loss, g_loss, val_w}] per epoch")
    log = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # Concurrent triggers on one snapshot coalesce: a second live or done run cannot exist.
            models.UniqueConstraint(
                fields=["snapshot_hash"], condition=~Q(status__in=["failed", "cancelled"]),
                name="one_live_training_run_per_snapshot",
            ),
        ]

    def __str__(self):
        return f"Training run {self.pk} ({self.get_status_display()})"

    def job_label(self):
        return f"training run {self.pk}"

    def reset_for_retry(self):
        super().reset_for_retry()
        self.phase, self.epoch, self.curves = "", 0, []

    @property
    def duration_s(self):
        if self.started_at is None:
            return None
        from django.utils import timezone

        end = self.finished_at or timezone.now()
        return (end - self.started_at).total_seconds()

    @property
    def progress_fraction(self):
        if self.status == self.Status.DONE:
            return 1.0
        if not self.total_epochs:
            return 0.0
        return min(1.0, self.epoch / self.total_epochs)


class ModelVersion(models.Model):
    """A trained bundle (forward model, surrogate, CGAN) with its validation metrics."""

    class Status(models.TextChoices):
        CANDIDATE = "candidate", "Candidate"
        ACTIVE = "active", "Active"
        RETIRED = "retired", "Retired"

    training_run = models.OneToOneField(TrainingRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="model_version")
    artefact_dir = models.CharField(max_length=500, help_text="Bundle directory, relative to MODEL_ARTEFACT_ROOT")
    snapshot_hash = models.CharField(max_length=64)
    data_size = models.PositiveIntegerField(default=0, help_text="Rows in the training snapshot")
    n_lab_results = models.PositiveIntegerField(default=0)
    snapshot_taken_at = models.DateTimeField()
    metrics = models.JSONField(default=dict, blank=True, help_text="Validation metrics on the fixed split")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.CANDIDATE)
    status_reason = models.TextField(blank=True, help_text="Why it was (not) promoted or retired")
    created_at = models.DateTimeField(auto_now_add=True)
    activated_at = models.DateTimeField(null=True, blank=True)
    retired_at = models.DateTimeField(null=True, blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["status"], condition=Q(status="active"), name="one_active_model_version"),
        ]

    def __str__(self):
        return f"Model v{self.pk} ({self.get_status_display()})"

    @property
    def path(self) -> Path:
        return Path(settings.MODEL_ARTEFACT_ROOT) / self.artefact_dir

    def metric(self, name):
        """A metric by dotted name, e.g. ``forward.mae_mean_K``; None if absent."""
        value = self.metrics or {}
        for part in name.split("."):
            if not isinstance(value, dict) or part not in value:
                return None
            value = value[part]
        return value
