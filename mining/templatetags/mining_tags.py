import re

from django import template
from django.utils.html import escape
from django.utils.safestring import mark_safe

from mining.validation import formula_parts

register = template.Library()


def _number_texts(record):
    out = set()
    for info in (record.original_values or {}).values():
        if isinstance(info, dict) and isinstance(info.get("value"), (int, float)):
            out.add(f"{info['value']:g}")
    for name in ("tg_k", "tx_k", "tl_k", "dmax_mm", "heating_rate_k_min"):
        value = getattr(record, name)
        if value is not None:
            out.add(f"{value:g}")
    for formula in (record.derived or {}).values():  # a derived value's parts are in the text
        out.update(f"{v:g}" for v, _ in formula_parts(formula))
    return out


@register.filter
def highlight(record):
    """The record's snippet, escaped, with its composition and values in <mark>."""
    text = escape(record.snippet or "")
    terms = [re.escape(escape(record.composition_raw))] if record.composition_raw else []
    terms += [rf"(?<![\d.]){re.escape(n)}(?:\.0+)?(?![\d])" for n in sorted(_number_texts(record), key=len, reverse=True)]
    if not terms:
        return mark_safe(text)
    return mark_safe(re.sub("|".join(f"(?:{t})" for t in terms), lambda m: f"<mark>{m.group()}</mark>", text))


@register.filter
def kfmt(value):
    return "—" if value is None else f"{value:g}"


@register.filter
def snippet_text(record, text):
    """``text`` (a snippet or a passage of the source), escaped, with the record's values marked."""
    class _View:
        snippet = text
        composition_raw = record.composition_raw
        original_values, derived = record.original_values, record.derived
        tg_k, tx_k, tl_k, dmax_mm, heating_rate_k_min = (record.tg_k, record.tx_k, record.tl_k, record.dmax_mm,
                                                         record.heating_rate_k_min)
    return highlight(_View)
