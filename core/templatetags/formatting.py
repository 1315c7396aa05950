"""Number formatting for long tables (a builtin: no {% load %} needed).

``floatformat`` goes through Decimal and localisation and costs ~60 µs a call; a 50-row
alloy list makes 300 of them. ``fixed`` does the same job for floats with one format call.
"""

import math
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, getcontext
from decimal import Context as DecimalContext

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


def quick_floatformat(value, arg=-1):
    """What ``{{ value|floatformat:arg }}`` shows for a number or None (integer ``arg``; no
    grouping, as this site's locale writes numbers), for rows built in Python: the same
    Decimal rounding (halves up), without the per-call localisation lookups."""
    if value is None:
        return ""
    try:
        d = Decimal(str(value))
    except InvalidOperation:
        try:
            d = Decimal(str(float(value)))
        except (ValueError, InvalidOperation, TypeError):
            return ""
    p = int(arg)
    if not d.is_finite():
        return str(value)
    m = int(d) - d
    if not m and p <= 0:
        return "%d" % int(d)
    exp = Decimal(1).scaleb(-abs(p))
    tupl = d.as_tuple()
    units = len(tupl[1]) + (-tupl[2] if m else tupl[2])
    prec = max(getcontext().prec, abs(p) + units + 1)
    rounded = d.quantize(exp, ROUND_HALF_UP, DecimalContext(prec=prec))
    text = f"{rounded:f}"
    if text.startswith("-") and not rounded:
        text = text[1:]  # -0.000 reads 0.000, as floatformat writes it
    return text
