"""Django admin for every lab record, with history (simple_history) and export.

Tables are imported on the lab's import page (/lab/imports/: an AlloyImport, parsed on the
worker with the upload limits, issue 16), never in an admin request: the alloy list's Import
button links there, and the old admin import address redirects there without reading a file.
"""

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.shortcuts import redirect
from django.urls import path
from import_export.admin import ExportMixin
from simple_history.admin import SimpleHistoryAdmin

from .models import Alloy, AlloyImport, Correction, DSCMeasurement, PropertyValue, Reference, Sample, XRDMeasurement
from .resources import AlloyResource, PropertyValueResource


class CorrectionAdminForm(forms.ModelForm):
    correction_reason = forms.CharField(
        label="Reason for this change", required=False, widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Required when changing a record: it goes into the record's history with your name.",
    )

    def clean(self):
        data = super().clean()
        if self.instance.pk is not None:
            if self.instance.retracted_at is not None:
                raise ValidationError("This record is retracted; a retracted record cannot be edited.")
            if self.has_changed() and not (data.get("correction_reason") or "").strip():
                self.add_error("correction_reason", "Say why: a reason is required for an admin edit.")
        return data


class CorrectionAdminMixin:
    """Admin edits of samples, XRD/DSC measurements and property values are corrections
    (lab.services.record_admin_edit): a reason, a Correction with before → after, the
    summaries refreshed. Nothing is hard-deleted: retract on the lab pages instead."""

    form = CorrectionAdminForm
    readonly_fields = ("version", "corrected_at", "retracted_at", "retracted_by", "retraction_reason")

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        from .services import record_admin_edit

        if not change:
            return super().save_model(request, obj, form, change)
        fields = [f for f in form.changed_data if f != "correction_reason"]
        if fields:
            record_admin_edit(obj=obj, user=request.user, reason=form.cleaned_data.get("correction_reason"), fields=fields)


@admin.register(Correction)
class CorrectionAdmin(admin.ModelAdmin):
    list_display = ("at", "by", "record_type", "record_id", "action", "change_text", "reason")
    list_filter = ("record_type", "action")
    search_fields = ("reason",)
    raw_id_fields = ("alloy", "sample")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class PropertyValueInline(admin.TabularInline):
    model = PropertyValue
    extra = 0
    fields = ("origin", "tg_k", "tx_k", "tl_k", "gfa_class", "dmax_mm", "dmax_kind", "heating_rate_k_min", "reference",
              "source_label", "conflict")
    raw_id_fields = ("reference",)
    show_change_link = True
    can_delete = False

    def has_change_permission(self, request, obj=None):  # edited on its own page (a correction, with a reason)
        return False


@admin.register(Alloy)
class AlloyAdmin(ExportMixin, SimpleHistoryAdmin):
    resource_classes = [AlloyResource]
    # The change list's Export button (import_export's) and an Import link to the lab's page.
    import_export_change_list_template = "admin/lab/alloy/change_list_export.html"
    list_display = ("formula", "name", "base_element", "n_elements", "gfa_class", "dmax_mm", "created_by", "created_at")
    list_filter = ("base_element", "n_elements", "gfa_class", "gfa_conflict")
    search_fields = ("formula", "composition_key", "name")
    readonly_fields = ("composition_key", "formula", "fractions", "base_element", "n_elements", "created_by", "created_at")
    inlines = [PropertyValueInline]

    def get_urls(self):
        # Before the admin's own: "import/" would otherwise be read as an alloy's id.
        info = self.opts.app_label, self.opts.model_name
        return [path("import/", self.admin_site.admin_view(self.import_view), name="%s_%s_import" % info),
                *super().get_urls()]

    def import_view(self, request):
        """Old links and forms to the admin's import land on the lab's import page; a posted file is not read."""
        return redirect("lab:import_list")


@admin.register(Reference)
class ReferenceAdmin(SimpleHistoryAdmin):
    list_display = ("__str__", "doi", "year", "journal")
    list_filter = ("year",)
    search_fields = ("doi", "authors", "title", "journal", "label")


@admin.register(Sample)
class SampleAdmin(CorrectionAdminMixin, SimpleHistoryAdmin):
    list_display = ("label", "alloy", "method", "diameter_mm", "cast_on", "operator")
    list_filter = ("method", "cast_on")
    search_fields = ("label", "alloy__formula", "alloy__name", "notes")
    raw_id_fields = ("alloy",)
    date_hierarchy = "cast_on"


@admin.register(XRDMeasurement)
class XRDMeasurementAdmin(CorrectionAdminMixin, SimpleHistoryAdmin):
    list_display = ("sample", "analysis_status", "computed_verdict", "override_verdict", "peak_q_inv_a", "fwhm_inv_a", "measured_on")
    list_filter = ("analysis_status", "computed_verdict", "override_verdict")
    search_fields = ("sample__label", "sample__alloy__formula")
    raw_id_fields = ("sample",)
    readonly_fields = ("analysis_status",)  # the worker's (XRDAnalysis), not typed

    # A cast sample's latest XRD is GFA evidence of its alloy (lab.services.write_gfa_summaries):
    # an edit refreshes the summaries through record_admin_edit, a new one here.
    def save_model(self, request, obj, form, change):
        from .services import refresh_alloy_summaries

        super().save_model(request, obj, form, change)
        if not change:
            refresh_alloy_summaries([obj.sample.alloy_id])


@admin.register(DSCMeasurement)
class DSCMeasurementAdmin(CorrectionAdminMixin, SimpleHistoryAdmin):
    list_display = ("sample", "tg_k", "tx_k", "tl_k", "heating_rate_k_min", "measured_on")
    list_filter = ("heating_rate_k_min",)
    search_fields = ("sample__label", "sample__alloy__formula")
    raw_id_fields = ("sample",)


@admin.register(PropertyValue)
class PropertyValueAdmin(CorrectionAdminMixin, ExportMixin, SimpleHistoryAdmin):
    resource_classes = [PropertyValueResource]
    list_display = ("alloy", "origin", "tg_k", "tx_k", "tl_k", "gfa_class", "dmax_mm", "reference", "source_label", "conflict")
    list_filter = ("origin", "conflict", "gfa_class", "dmax_kind", "alloy__base_element")
    search_fields = ("alloy__formula", "alloy__name", "reference__doi", "reference__authors", "source_label")
    raw_id_fields = ("alloy", "dsc", "reference")
    list_select_related = ("alloy", "reference")


@admin.register(AlloyImport)
class AlloyImportAdmin(admin.ModelAdmin):
    list_display = ("original_name", "status", "dry_run", "created_by", "created_at", "finished_at")
    list_filter = ("status", "dry_run")
    search_fields = ("original_name", "error")
    readonly_fields = ("counts", "report", "error", "created_at", "finished_at")
