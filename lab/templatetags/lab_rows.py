"""Rows of the busiest lab lists built in Python, as their templates wrote them.

The sample list's 50 rows each rendered two includes, two ``{% url %}`` and a
``floatformat`` (~60 µs a call: Decimal and localisation); together most of the page's time.
The rows here give the same HTML with the same filters (``kelvin``, ``fixed``) and links
reversed once per page (``core.links.pk_url``).
"""

from django import template
from django.utils.html import conditional_escape as esc
from django.utils.safestring import mark_safe

from core.links import pk_url
from core.templatetags.formatting import fixed, kelvin, quick_floatformat

register = template.Library()


def floatformat_2(value):
    """``value|floatformat:"-2"|default:"—"``: two decimals, none for a whole number, halves up;
    "—" when unknown."""
    return quick_floatformat(value, -2) or "—"


def temps_cells(t):
    """``lab/_temps_cells.html`` for a DSCMeasurement or PropertyValue (None: all "—")."""
    if t is None:
        return '<td class="num">—</td>' * 6
    return (f'<td class="num">{kelvin(t.tg_k)}</td><td class="num">{kelvin(t.tx_k)}</td><td class="num">{kelvin(t.tl_k)}</td>'
            f'<td class="num">{fixed(t.reduced_glass_transition, 3)}</td><td class="num">{fixed(t.gamma, 3)}</td>'
            f'<td class="num">{kelvin(t.supercooled_liquid_region_k)}</td>')


def verdict_badge(x):
    """``lab/_verdict.html``: an XRD's verdict badge ("analysing…" or "analysis failed" until
    its pattern is analysed: never a verdict it does not have)."""
    if not x.is_analysed:
        state = x.analysis_state_display
        if state.startswith("Analysis failed"):
            return f'<span class="badge bad" title="{esc(state)}">analysis failed</span>'
        return '<span class="badge pending" title="Analysing the pattern…">analysing…</span>'
    verdict = x.verdict
    html = f'<span class="badge {esc(verdict)}">{esc(verdict or "?")}</span>'
    if x.override_verdict:
        html += (f' <span class="badge warn" title="{esc(x.override_reason)}">'
                 f'overridden (computed: {esc(x.computed_verdict)})</span>')
    return html


@register.simple_tag
def sample_rows(samples, q=""):
    """The sample list's table body rows (``samples`` from ``lab.selectors.sample_list``)."""
    samples = list(samples)
    if not samples:
        match = f" match “{esc(q)}”" if q else ""
        return mark_safe(f'\n  <tr><td colspan="13" class="muted">No samples{match}.</td></tr>\n  ')
    sample_url = pk_url("lab:sample_detail")
    alloy_url = pk_url("lab:alloy_detail")
    out = []
    for s in samples:
        x = s.xrds[0] if s.xrds else None
        d = s.dscs[0] if s.dscs else None
        cast = f"{s.cast_on.year:04d}-{s.cast_on.month:02d}-{s.cast_on.day:02d}" if s.cast_on else "—"
        operator = (s.operator.username if s.operator_id and s.operator else "") or "—"
        verdict = verdict_badge(x) + "\n" if x else '<span class="muted">none</span>'
        out.append(
            "\n  \n  <tr>\n"
            f'    <td><a href="{sample_url(s.pk)}">{esc(s.label)}</a></td>\n'
            f'    <td><a href="{alloy_url(s.alloy_id)}">{esc(s.alloy.formula)}</a></td>\n'
            f"    <td>{esc(s.get_method_display())}</td>\n"
            f'    <td class="num">{floatformat_2(s.diameter_mm)}</td>\n'
            f"    <td>{cast}</td>\n"
            f"    <td>{esc(operator)}</td>\n"
            f"    <td>{verdict}</td>\n"
            f"    \n{temps_cells(d)}\n\n"
            "  </tr>\n  \n  "
        )
    return mark_safe("".join(out))


@register.simple_tag
def alloy_rows(alloys):
    """The alloy list's table body rows (``alloys`` from ``lab.selectors.alloy_list``)."""
    alloys = list(alloys)
    if not alloys:
        return mark_safe('\n  <tr><td colspan="14" class="muted">No alloy matches.</td></tr>\n  ')
    alloy_url = pk_url("lab:alloy_detail")
    out = []
    for a in alloys:
        if a.dmax_mm is not None:
            dmax = ("≥ " if a.dmax_is_bound else "") + floatformat_2(a.dmax_mm)
        else:
            dmax = "—"
        conflict = ""
        if a.has_conflict:
            why = esc(a.gfa_conflict_reason) if a.gfa_conflict else "Sources disagree by more than 10 K"
            conflict = f' <span class="badge warn" title="{why}">conflict</span>'
        out.append(
            "\n  <tr>\n"
            f'    <td><a href="{alloy_url(a.pk)}">{esc(a.formula)}</a></td>\n'
            f"    <td>{esc(a.name)}</td>\n"
            f"    <td>{esc(a.base_element)}</td>\n"
            f'    <td class="num">{a.n_elements}</td>\n'
            f'    <td class="num">{a.n_samples}</td>\n'
            f'    <td class="num">{kelvin(a.tg_mean_k)}</td>\n'
            f'    <td class="num">{kelvin(a.tx_mean_k)}</td>\n'
            f'    <td class="num">{kelvin(a.tl_mean_k)}</td>\n'
            f'    <td class="num">{fixed(a.trg, 3)}</td>\n'
            f'    <td class="num">{fixed(a.gamma, 3)}</td>\n'
            f'    <td class="num">{kelvin(a.dtx_k)}</td>\n'
            f"    <td>{esc(a.gfa_class or '—')}</td>\n"
            f'    <td class="num">{dmax}</td>\n'
            f'    <td class="num">{a.n_values}{conflict}</td>\n'
            "  </tr>\n  "
        )
    return mark_safe("".join(out))


@register.simple_tag(takes_context=True)
def order_links(context, *orders):
    """{order: link} for the alloy list's column headers: what ``{% querystring order=<order>
    page=None %}`` writes for each, from one copy of the query instead of one each (a copy is
    a deepcopy of the QueryDict: eleven of them were ~8 % of the page)."""
    query = context.request.GET
    params = query.copy()
    params.pop("page", None)
    links = {}
    for order in orders:
        params["order"] = order
        links[order] = f"?{params.urlencode()}"
    return links
