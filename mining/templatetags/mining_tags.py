import re

from django import template
from django.utils.html import conditional_escape as esc
from django.utils.html import escape
from django.utils.safestring import mark_safe

from core.links import csrf_field, pk_url
from core.templatetags.formatting import kelvin
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


@register.simple_tag(takes_context=True)
def review_rows(context, records, can_review):
    """The review queue's rows, as the per-row template wrote them, built in Python: the
    queue's 50 rows with their filters, links and two forms each were most of the page's
    time (~160 ``{% url %}`` and thousands of variable lookups per page)."""
    records = list(records)
    if not records:
        return mark_safe('<tr><td colspan="9" class="muted">Nothing to review with these filters.</td></tr>\n')
    detail_url = pk_url("mining:record_detail")
    approve_url = pk_url("mining:record_approve")
    reject_url = pk_url("mining:record_reject")
    here = esc(context["request"].get_full_path())
    csrf = csrf_field(context)
    out = []
    for r in records:
        url = esc(detail_url(r.pk))
        derived = r.derived or {}
        temps = "".join(
            f'<td class="num">{esc(kelvin(value))}'
            + (f'<br><small class="derived" title="{esc(derived[key])}">derived</small>' if derived.get(key) else "")
            + "</td>\n"
            for key, value in (("tg", r.tg_k), ("tx", r.tx_k), ("tl", r.tl_k))
        )
        hows = "".join(f'<br><small class="muted">{esc(how)}</small>' for how in derived.values())
        more = ""
        if r.more_snippets:
            n = len(r.more_snippets)
            more = f'<br><small class="muted">+ {n} more passage{"" if n == 1 else "s"}</small>'
        if r.source_context:
            before, passage, after = r.source_context
            source = (f'<details class="source-context"><summary><small>source around it</small></summary>'
                      f'<small>…{esc(before)}<mark>{esc(passage)}</mark>{esc(after)}…</small></details>')
        elif r.source_id:
            source = '<br><small class="muted">(not found in the source text)</small>'
        else:
            source = ""
        flags = "".join(
            f'<span class="badge warn" title="{esc(f.get("reason", ""))}">{esc(f.get("flag", ""))}</span>'
            f'<br><small class="muted">{esc(f.get("reason", ""))}</small><br>'
            for f in r.flags
        ) if r.flags else '<span class="badge ok">clean</span><br>'
        pending = r.status == "pending"
        bulk = ""
        if pending:
            if r.bulk_blockers:
                bulk = f'<small class="not-bulk">Not approved by “approve clean”: {"; ".join(esc(b) for b in r.bulk_blockers)}.</small>'
            else:
                bulk = '<small class="bulk-ok">Approved by “approve clean”.</small>'
        reviewer = f"<br><small>{esc(r.reviewer)}</small>" if r.reviewer else ""
        actions = ""
        if can_review and pending:
            actions = (
                f'\n<form method="post" action="{esc(approve_url(r.pk))}" class="inline js-approve">{csrf}'
                f'<input type="hidden" name="next" value="{here}"><button>Approve</button></form>\n'
                f'<form method="post" action="{esc(reject_url(r.pk))}" class="inline js-reject">{csrf}'
                f'<input type="hidden" name="next" value="{here}"><input name="reason" required placeholder="reason to reject" size="14">'
                f'<button class="danger">Reject</button></form>\n'
            )
        out.append(
            f'\n<tr class="qrow" data-edit="{url}" tabindex="-1">\n'
            f'<td><a href="{url}">{r.pk}</a><br><span class="muted">{esc(r.batch.name)}</span></td>\n'
            f'<td>{esc(r.composition_raw)}<br><span class="muted">→ {esc(r.composition_formula or "(unparseable)")}</span></td>\n'
            f"{temps}"
            f'<td class="snippet"><small>{highlight(r)}</small>\n{hows}\n{more}\n{source}</td>\n'
            f"<td>{flags}\n{bulk}</td>\n"
            f"<td>{esc(r.get_status_display())}{reviewer}</td>\n"
            f"<td>{actions}</td>\n"
            "</tr>\n"
        )
    return mark_safe("".join(out))


# (field name, language, bound?, shown value, errors, choices) -> "label widget" HTML
_FIELD_HTML = {}
_FIELD_HTML_MAX = 1000


@register.simple_tag
def filter_fields(form):
    """The queue's filter form as ``{% for field in form %}<span …>{{ field.label_tag }} {{ field }}</span>{% endfor %}``
    wrote it; each field's HTML is kept for the same value, errors and choices (four widget
    templates a page, with the same few filters over and over)."""
    from django.utils.translation import get_language

    language = get_language()
    errors = form.errors if form.is_bound else {}
    out = []
    for bound in form:
        choices = getattr(bound.field, "choices", None)
        if choices is not None:  # read once (a query for a model's choices), for the key and the widget
            choices = list(choices)
            bound.field.widget.choices = choices
        key = (bound.name, language, form.is_bound, repr(bound.value()), tuple(errors.get(bound.name) or ()),
               tuple((str(v), str(label)) for v, label in choices) if choices is not None else None)
        html = _FIELD_HTML.get(key)
        if html is None:
            html = f"{bound.label_tag()} {bound}"
            if len(_FIELD_HTML) >= _FIELD_HTML_MAX:
                _FIELD_HTML.clear()
            _FIELD_HTML[key] = html
        out.append(f'<span class="filter-field">{html}</span>')
    return mark_safe("".join(out))
