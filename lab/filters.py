"""The lab API's filters (``?elements=Zr,Cu&tg_min=600``), applied by ``lab.selectors`` so the
API and the web pages' searches agree."""

from django import forms
from django.db.models import Q
from django_filters import rest_framework as filters

from ml.rules import ElementListError, parse_element_list

from . import selectors
from .models import GFA_CLASS_CHOICES, Alloy, DSCMeasurement, PropertyValue, Sample, XRDMeasurement, analysed


class FloatFilter(filters.NumberFilter):
    field_class = forms.FloatField  # finite floats (NumberFilter takes Decimals)


class ElementsField(forms.CharField):
    """Element symbols, case-insensitive, comma- or space-separated → a tuple of symbols
    (ml.rules.parse_element_list, as the web pages' searches and the design forms read them)."""

    def clean(self, value):
        value = super().clean(value)
        try:
            return parse_element_list(value)
        except ElementListError as exc:
            raise forms.ValidationError(str(exc)) from exc


class ElementsFilter(filters.CharFilter):
    field_class = ElementsField


class AlloyFilterSet(filters.FilterSet):
    """The alloy list's filters; they are applied by ``lab.selectors.alloy_list`` (the web page's
    search), so both always agree. Property ranges apply to the mean over all sources."""

    elements = ElementsFilter(method="by_selector", help_text="Comma-separated symbols; the alloy contains ALL of them: Zr,Cu")
    base_element = filters.CharFilter(method="by_selector", help_text="The element with the largest fraction: Zr")
    q = filters.CharFilter(method="by_selector", help_text="Text in the formula or the name")
    tg_min = FloatFilter(method="by_selector", help_text="Mean Tg ≥ (K)")
    tg_max = FloatFilter(method="by_selector", help_text="Mean Tg ≤ (K)")
    tx_min = FloatFilter(method="by_selector", help_text="Mean Tx ≥ (K)")
    tx_max = FloatFilter(method="by_selector", help_text="Mean Tx ≤ (K)")
    tl_min = FloatFilter(method="by_selector", help_text="Mean Tl ≥ (K)")
    tl_max = FloatFilter(method="by_selector", help_text="Mean Tl ≤ (K)")
    trg_min = FloatFilter(method="by_selector", help_text="Trg = Tg/Tl ≥")
    gamma_min = FloatFilter(method="by_selector", help_text="γ = Tx/(Tg+Tl) ≥")
    gfa_class = filters.ChoiceFilter(
        method="by_selector", choices=[*GFA_CLASS_CHOICES, (selectors.GFA_UNKNOWN, "unknown")],
        help_text="The alloy's GFA class (this lab's castings outweigh the literature); unknown: none known",
    )
    has_dmax = filters.BooleanFilter(method="by_selector", help_text="A Dmax is known (reported, or a casting's lower bound)")
    has_conflicts = filters.BooleanFilter(
        method="by_selector", help_text="Some sources disagree (temperatures by more than 10 K, or GFA), as the alloy list page's filter",
    )

    class Meta:
        model = Alloy
        fields = []

    def by_selector(self, queryset, name, value):
        return queryset  # all of them at once in filter_queryset

    def filter_queryset(self, queryset):
        data = self.form.cleaned_data
        wanted = selectors.AlloyFilters(
            elements=data.get("elements") or (),
            base_element=(data.get("base_element") or "").strip(),
            text=(data.get("q") or "").strip(),
            **{name: data.get(name) for name in ("tg_min", "tg_max", "tx_min", "tx_max", "tl_min", "tl_max", "trg_min", "gamma_min")},
            gfa_class=data.get("gfa_class") or "",
            has_dmax=data.get("has_dmax"),
            has_conflict=data.get("has_conflicts"),
        )
        if wanted == selectors.AlloyFilters():
            return queryset
        # The view lists selectors.alloys_with_properties(); alloy_list filters exactly those
        # (the view applies filters to lists only, see AlloyViewSet.filter_queryset).
        return selectors.alloy_list(wanted)


class SampleFilterSet(filters.FilterSet):
    q = filters.CharFilter(method="by_text", help_text="Text in the label, the formula or the alloy's name")

    class Meta:
        model = Sample
        fields = ["alloy", "method"]

    def by_text(self, queryset, name, value):
        return queryset.filter(pk__in=selectors.sample_list(text=value).values("pk")) if value.strip() else queryset


class XRDFilterSet(filters.FilterSet):
    alloy = filters.NumberFilter(field_name="sample__alloy", help_text="Alloy id")
    verdict = filters.ChoiceFilter(choices=XRDMeasurement.Verdict.choices, method="by_verdict", help_text="Override if any, else computed")

    class Meta:
        model = XRDMeasurement
        fields = ["sample", "computed_verdict", "analysis_status"]

    def by_verdict(self, queryset, name, value):
        # only analysed patterns have a verdict (a pending one is neither)
        return queryset.filter(analysed(XRDMeasurement)).filter(Q(override_verdict=value) | Q(override_verdict="", computed_verdict=value))


class DSCFilterSet(filters.FilterSet):
    alloy = filters.NumberFilter(field_name="sample__alloy", help_text="Alloy id")
    tg_min = FloatFilter(field_name="tg_k", lookup_expr="gte")
    tg_max = FloatFilter(field_name="tg_k", lookup_expr="lte")

    class Meta:
        model = DSCMeasurement
        fields = ["sample"]


class PropertyValueFilterSet(filters.FilterSet):
    tg_min = FloatFilter(field_name="tg_k", lookup_expr="gte")
    tg_max = FloatFilter(field_name="tg_k", lookup_expr="lte")
    tx_min = FloatFilter(field_name="tx_k", lookup_expr="gte")
    tx_max = FloatFilter(field_name="tx_k", lookup_expr="lte")
    tl_min = FloatFilter(field_name="tl_k", lookup_expr="gte")
    tl_max = FloatFilter(field_name="tl_k", lookup_expr="lte")

    has_dmax = filters.BooleanFilter(field_name="dmax_mm", lookup_expr="isnull", exclude=True, help_text="Gives a Dmax")

    class Meta:
        model = PropertyValue
        fields = ["alloy", "origin", "conflict", "reference", "gfa_class", "dmax_kind"]
