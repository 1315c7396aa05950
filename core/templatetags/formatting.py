"""Number formatting for long tables (a builtin: no {% load %} needed).

``floatformat`` goes through Decimal and localisation and costs ~60 µs a call; a 50-row
alloy list makes 300 of them. ``fixed`` does the same job for floats with one format call.
"""

import math

from django import template

from ml.rules import display_k

register = template.Library()


@register.filter
def fixed(value, digits=1):
    """``{{ x|fixed:3 }}``: x with that many decimals, or "—" when unknown."""
    if value is None or value == "":
        return "—"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "—"
    if not math.isfinite(number):
        return "—"
    return f"{number:.{int(digits)}f}"


@register.filter
def kelvin(value, decimals=None):
    """``{{ t|kelvin }}``: a temperature (K) by the one display rule (``ml.rules.display_k``,
    0.1 K, halves up), or "—" when unknown. No unit is added: templates write " K"."""
    text = display_k(value) if decimals is None else display_k(value, int(decimals))
    return "—" if text is None else text
