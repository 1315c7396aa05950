"""The one rule for every exported cell (CSV and XLSX): no formula injection.

A spreadsheet program reads a cell whose text starts with ``=``, ``+``, ``-``, ``@``, a tab or
a carriage return as a formula (OWASP "CSV injection"). Every exporter passes its cells
through :func:`neutralise_cell`, which puts a ``'`` in front of such text, so the cell shows
the text as written and XLSX writers store it as text (openpyxl only makes a formula of a
string starting with ``=``).

Numbers stay numbers: an int, float or Decimal is returned unchanged, and so is text that
is only a number (``-12.5``, ``+1e3``, as a CSV writer's caller may format one), which a
spreadsheet reads as that number and never as a formula.

Used by ``lab.resources`` (the alloy export and the admin exports, through
:class:`NeutralisedExportMixin`), ``lab.views_imports.export_alloys`` and
``mining``'s ``run_batch --export``.
"""

import numbers
import re

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def neutralise_cell(value):
    """``value`` made safe for a spreadsheet: text that could be a formula gets a leading ``'``."""
    if not isinstance(value, str) or not value.startswith(FORMULA_PREFIXES):
        return value
    if _NUMBER.fullmatch(value):
        return value
    return "'" + value


def neutralise_row(values):
    """A row (list or tuple of cells) with each cell neutralised."""
    return [neutralise_cell(v) for v in values]


class NeutralisedExportMixin:
    """For django-import-export resources: every exported field goes through neutralise_cell.

    Put it first: ``class R(NeutralisedExportMixin, resources.ModelResource)``.

    In a binary format (XLSX: django-import-export passes ``force_native_type``) a field whose
    value is a number is written as that number, not as the text the default widget makes of it.
    """

    def export_field(self, field, instance, **kwargs):
        value = super().export_field(field, instance, **kwargs)
        if kwargs.get("force_native_type") and isinstance(value, str) and field.attribute and not self._dehydrated(field):
            native = field.get_value(instance)
            if isinstance(native, numbers.Number) and not isinstance(native, bool):
                return native
        return neutralise_cell(value)

    def _dehydrated(self, field):
        method = field.get_dehydrate_method(self.get_field_name(field))
        return callable(method) or hasattr(self, method)
