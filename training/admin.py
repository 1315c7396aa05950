from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from .models import ModelVersion, TrainingRun


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    list_display = ("pk", "trigger", "status", "phase", "epoch", "total_epochs", "data_size", "created_at", "finished_at")
    list_filter = ("status", "trigger")
    readonly_fields = ("snapshot_hash", "snapshot_path", "curves", "log", "heartbeat_at", "started_at", "finished_at")


@admin.register(ModelVersion)
class ModelVersionAdmin(SimpleHistoryAdmin):
    list_display = ("pk", "status", "data_size", "n_lab_results", "created_at", "activated_at", "retired_at")
    list_filter = ("status",)
    # Activation goes through training.services.activate_version (one active at a time, with a reason).
    readonly_fields = ("status", "artefact_dir", "snapshot_hash", "metrics", "training_run")
