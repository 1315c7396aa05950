"""django-import-export resources: the export of property values and the admin import.

The admin import of a literature table goes through ``lab.importing.import_alloys``, so it
has exactly the semantics of ``manage.py import_alloys`` (created / merged / conflict /
refused with the parser's reason, one transaction).
"""

from import_export import fields, resources
from import_export.results import Error, Result, RowResult

from core.exports import NeutralisedExportMixin

from .importing import OUTCOME_CREATED, OUTCOME_REFUSED, import_alloys
from .models import Alloy, PropertyValue
from .tables import ImportFileError, check_columns, normalise_header


def _rounded(value, digits):
    return None if value is None else round(value, digits)


class PropertyValueResource(NeutralisedExportMixin, resources.ModelResource):
    """One row per property value with its alloy and provenance (the CSV/XLSX export)."""

    formula = fields.Field(attribute="alloy__formula", column_name="formula")
    composition_key = fields.Field(attribute="alloy__composition_key", column_name="composition_key")
    name = fields.Field(attribute="alloy__name", column_name="name")
    base_element = fields.Field(attribute="alloy__base_element", column_name="base_element")
    tg_k = fields.Field(attribute="tg_k", column_name="Tg_K")
    tx_k = fields.Field(attribute="tx_k", column_name="Tx_K")
    tl_k = fields.Field(attribute="tl_k", column_name="Tl_K")
    trg = fields.Field(column_name="Trg")
    gamma = fields.Field(column_name="gamma")
    dtx_k = fields.Field(column_name="dTx_K")
    gfa_class = fields.Field(attribute="gfa_class", column_name="gfa_class")
    dmax_mm = fields.Field(attribute="dmax_mm", column_name="dmax_mm")
    dmax_kind = fields.Field(column_name="dmax_kind")
    origin = fields.Field(attribute="origin", column_name="origin")
    source = fields.Field(column_name="source")
    doi = fields.Field(column_name="doi")
    heating_rate = fields.Field(attribute="heating_rate_k_min", column_name="heating_rate_K_min")
    conflict = fields.Field(attribute="conflict", column_name="conflict")

    class Meta:
        model = PropertyValue
        fields = (
            "formula", "composition_key", "name", "base_element", "tg_k", "tx_k", "tl_k", "trg", "gamma",
            "dtx_k", "gfa_class", "dmax_mm", "dmax_kind", "origin", "source", "doi", "heating_rate", "conflict",
        )
        export_order = fields

    def filter_export(self, queryset, **kwargs):
        return queryset.select_related("alloy", "reference", "dsc__sample")

    def dehydrate_trg(self, value):
        return _rounded(value.reduced_glass_transition, 4)

    def dehydrate_gamma(self, value):
        return _rounded(value.gamma, 4)

    def dehydrate_dtx_k(self, value):
        return _rounded(value.supercooled_liquid_region_k, 2)

    def dehydrate_dmax_kind(self, value):
        return value.dmax_kind if value.dmax_mm is not None else ""

    def dehydrate_source(self, value):
        return value.provenance

    def dehydrate_doi(self, value):
        return value.reference.doi if value.reference_id and value.reference.doi else ""

    def dehydrate_conflict(self, value):
        return "yes" if value.conflict else ""


class AlloyResource(NeutralisedExportMixin, resources.ModelResource):
    """Alloys for the admin export (import goes through LiteratureTableResource)."""

    class Meta:
        model = Alloy
        fields = ("id", "formula", "composition_key", "name", "base_element", "n_elements", "created_at")
        export_order = fields


class LiteratureTableResource(NeutralisedExportMixin, resources.ModelResource):
    """Admin import of a table with composition, Tg_K, Tx_K, Tl_K (+ source/doi).

    ``import_data`` hands the whole table to the import service and shows its per-row
    report; refused rows are listed as skipped with the reason (the parser's message).
    """

    composition = fields.Field(column_name="composition")
    tg_k = fields.Field(column_name="Tg_K")
    tx_k = fields.Field(column_name="Tx_K")
    tl_k = fields.Field(column_name="Tl_K")
    source = fields.Field(column_name="source")
    doi = fields.Field(column_name="doi")

    class Meta:
        model = Alloy
        fields = ("composition", "tg_k", "tx_k", "tl_k", "source", "doi")
        name = "Literature table (composition, Tg_K, Tx_K, Tl_K, source, doi)"

    def import_data(self, dataset, dry_run=False, raise_errors=False, use_transactions=None,
                    collect_failed_rows=False, rollback_on_validation_errors=False, **kwargs):
        result = Result()
        result.diff_headers = ["line", "composition", "outcome", "reason"]
        headers = [normalise_header(h) for h in (dataset.headers or [])]
        file_name = kwargs.get("file_name") or "admin import"
        try:
            check_columns(headers, file_name)
            rows = [dict(zip(headers, values)) for values in dataset]
            report = import_alloys(rows, user=kwargs.get("user"), dry_run=dry_run, source_label=str(file_name))
        except ImportFileError as exc:
            if raise_errors:
                raise
            result.append_base_error(Error(exc))
            return result
        instances = Alloy.objects.in_bulk([r["alloy_id"] for r in report.rows if r["alloy_id"]])
        for entry in report.rows:
            row_result = RowResult()
            if entry["outcome"] == OUTCOME_REFUSED:
                row_result.import_type = RowResult.IMPORT_TYPE_SKIP
            elif entry["outcome"] == OUTCOME_CREATED:
                row_result.import_type = RowResult.IMPORT_TYPE_NEW
            else:
                row_result.import_type = RowResult.IMPORT_TYPE_UPDATE
            row_result.diff = [entry["line"], entry["composition"], entry["outcome"], entry["reason"]]
            instance = instances.get(entry["alloy_id"])
            row_result.instance = instance
            row_result.add_instance_info(instance)
            result.increment_row_result_total(row_result)
            result.append_row_result(row_result)
        return result
