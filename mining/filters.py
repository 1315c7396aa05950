"""The mining API's filters. The review queue's (batch, status, flag, element) are applied by
``mining.selectors.review_queue``, the page's own query, so the API and the page agree."""

from django.db.models import Q
from django_filters import rest_framework as filters

from core.jobs import JobStatus
from lab.filters import ElementsFilter

from . import selectors
from .models import ExtractedRecord, ExtractionBatch, LiteratureSource
from .validation import ALL_FLAGS

NO_FLAG = "none"


class RecordFilterSet(filters.FilterSet):
    batch = filters.NumberFilter(method="by_queue", help_text="Batch id")
    status = filters.ChoiceFilter(choices=ExtractedRecord.Status.choices, method="by_queue", help_text="Any when not given")
    flag = filters.ChoiceFilter(
        choices=[(NO_FLAG, "clean (no flag)"), *((f, f) for f in ALL_FLAGS)], method="by_queue",
        help_text="Records with this flag (ungrounded, conflict, duplicate, …); none: clean records",
    )
    elements = ElementsFilter(method="by_queue", help_text="Comma-separated symbols; the parsed composition holds ALL of them: Zr,Cu")
    q = filters.CharFilter(method="by_text", help_text="Text in the composition as written, as parsed or as corrected")
    source = filters.NumberFilter(field_name="source", help_text="Source id")

    class Meta:
        model = ExtractedRecord
        fields = []

    def by_queue(self, queryset, name, value):
        return queryset  # all of them at once in filter_queryset

    def by_text(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(
            Q(composition_raw__icontains=value) | Q(composition_formula__icontains=value) | Q(composition_edited__icontains=value)
        )

    def filter_queryset(self, queryset):
        data = self.form.cleaned_data
        elements = data.get("elements") or ()
        if data.get("batch") or data.get("status") or data.get("flag") or elements:
            queue = selectors.review_queue(
                batch_id=data.get("batch"), status=data.get("status") or None, flag=data.get("flag") or None,
                element=elements[0] if elements else None,
            )
            for element in elements[1:]:
                queue = queue.filter(elements_index__contains=f"|{element}|")
            queryset = queryset.filter(pk__in=queue.values("pk"))
        return super().filter_queryset(queryset)


class BatchFilterSet(filters.FilterSet):
    status = filters.ChoiceFilter(choices=JobStatus.choices)
    q = filters.CharFilter(field_name="name", lookup_expr="icontains", help_text="Text in the name")

    class Meta:
        model = ExtractionBatch
        fields = ["extractor"]


class SourceFilterSet(filters.FilterSet):
    q = filters.CharFilter(method="by_text", help_text="Text in the title, authors, journal, DOI or file name")
    has_doi = filters.BooleanFilter(field_name="doi", lookup_expr="isnull", exclude=True)

    class Meta:
        model = LiteratureSource
        fields = ["year", "doi"]

    def by_text(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(
            Q(title__icontains=value) | Q(authors__icontains=value) | Q(journal__icontains=value)
            | Q(doi__icontains=value) | Q(original_name__icontains=value)
        )
