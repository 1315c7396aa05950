"""Django admin for every lab record, with history (simple_history) and import/export."""

from django.contrib import admin
from import_export.admin import ExportMixin, ImportExportModelAdmin
from simple_history.admin import SimpleHistoryAdmin

from .models import Alloy, AlloyImport, DSCMeasurement, PropertyValue, Reference, Sample, XRDMeasurement
from .resources import AlloyResource, LiteratureTableResource, PropertyValueResource


class PropertyValueInline(admin.TabularInline):
    model = PropertyValue
    extra = 0
    fields = ("origin", "tg_k", "tx_k", "tl_k", "gfa_class", "dmax_mm", "dmax_kind", "heating_rate_k_min", "reference",
              "source_label", "conflict")
    raw_id_fields = ("reference",)
    show_change_link = True


@admin.register(Alloy)
class AlloyAdmin(ImportExportModelAdmin, SimpleHistoryAdmin):
    # Import goes through the import service (same outcomes as manage.py import_alloys).
    resource_classes = [LiteratureTableResource]
    list_display = ("formula", "name", "base_element", "n_elements", "gfa_class", "dmax_mm", "created_by", "created_at")
    list_filter = ("base_element", "n_elements", "gfa_class", "gfa_conflict")
    search_fields = ("formula", "composition_key", "name")
    readonly_fields = ("composition_key", "formula", "fractions", "base_element", "n_elements", "created_by", "created_at")
    inlines = [PropertyValueInline]

    def get_import_resource_classes(self, request):
        return [LiteratureTableResource]

    def get_export_resource_classes(self, request):
        return [AlloyResource]


@admin.register(Reference)
class ReferenceAdmin(SimpleHistoryAdmin):
    list_display = ("__str__", "doi", "year", "journal")
    list_filter = ("year",)
    search_fields = ("doi", "authors", "title", "journal", "label")


@admin.register(Sample)
class SampleAdmin(SimpleHistoryAdmin):
    list_display = ("label", "alloy", "method", "diameter_mm", "cast_on", "operator")
    list_filter = ("method", "cast_on")
    search_fields = ("label", "alloy__formula", "alloy__name", "notes")
    raw_id_fields = ("alloy",)
    date_hierarchy = "cast_on"


@admin.register(XRDMeasurement)
class XRDMeasurementAdmin(SimpleHistoryAdmin):
    list_display = ("sample", "computed_verdict", "override_verdict", "peak_q_inv_a", "fwhm_inv_a", "measured_on")
    list_filter = ("computed_verdict", "override_verdict")
    search_fields = ("sample__label", "sample__alloy__formula")
    raw_id_fields = ("sample",)

    # A cast sample's latest XRD is GFA evidence of its alloy (lab.services.write_gfa_summaries).
    def save_model(self, request, obj, form, change):
        from .services import refresh_alloy_summaries

        previous = XRDMeasurement.objects.filter(pk=obj.pk).values_list("sample__alloy_id", flat=True).first() if obj.pk else None
        super().save_model(request, obj, form, change)
        refresh_alloy_summaries([obj.sample.alloy_id, previous])

    def delete_model(self, request, obj):
        from .services import refresh_alloy_summaries

        alloy_id = obj.sample.alloy_id
        super().delete_model(request, obj)
        refresh_alloy_summaries([alloy_id])

    def delete_queryset(self, request, queryset):
        from .services import refresh_alloy_summaries

        alloy_ids = set(queryset.values_list("sample__alloy_id", flat=True))
        super().delete_queryset(request, queryset)
        refresh_alloy_summaries(alloy_ids)


@admin.register(DSCMeasurement)
class DSCMeasurementAdmin(SimpleHistoryAdmin):
    list_display = ("sample", "tg_k", "tx_k", "tl_k", "heating_rate_k_min", "measured_on")
    list_filter = ("heating_rate_k_min",)
    search_fields = ("sample__label", "sample__alloy__formula")
    raw_id_fields = ("sample",)


@admin.register(PropertyValue)
class PropertyValueAdmin(ExportMixin, SimpleHistoryAdmin):
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
