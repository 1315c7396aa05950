"""django-import-export resources: the exports of property values and alloys (the lab's export
and the admin's). Tables are imported on the lab's import page, on the worker (lab.importing).
"""

from import_export import fields, resources

from core.exports import NeutralisedExportMixin

from .models import Alloy, PropertyValue


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
    """Alloys for the admin export."""

    class Meta:
        model = Alloy
        fields = ("id", "formula", "composition_key", "name", "base_element", "n_elements", "created_at")
        export_order = fields
