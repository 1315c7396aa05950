from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from .models import Candidate, CandidateEvent, DesignCampaign, GenerationRound


@admin.register(DesignCampaign)
class DesignCampaignAdmin(SimpleHistoryAdmin):
    list_display = ("name", "owner", "status", "batch_size", "created_at")
    list_filter = ("status",)


@admin.register(GenerationRound)
class GenerationRoundAdmin(admin.ModelAdmin):
    list_display = ("campaign", "number", "status", "model_version", "created_at", "finished_at")
    list_filter = ("status",)


class CandidateEventInline(admin.TabularInline):
    model = CandidateEvent
    extra = 0
    readonly_fields = ("from_status", "to_status", "user", "note", "created_at")
    can_delete = False


@admin.register(Candidate)
class CandidateAdmin(SimpleHistoryAdmin):
    list_display = ("__str__", "campaign", "status", "p_glass", "acquisition_score", "nearest_distance")
    list_filter = ("status", "campaign")
    search_fields = ("formula", "composition_key")
    # Status changes go through design.services (row lock, events, sample creation).
    readonly_fields = ("status", "sample", "alloy", "model_version")
    inlines = [CandidateEventInline]
