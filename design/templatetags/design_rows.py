"""The campaign page's candidate rows built in Python, as its template wrote them.

Thirty candidates, each with three includes, ~15 filters (``floatformat``: Decimal and
localisation each time), two or three ``{% url %}`` and a form, were most of the campaign
page's time. The same HTML with the same rules: ``kelvin``, ``floatformat`` rounding
(``core.templatetags.formatting.quick_floatformat``), links reversed once per page.
"""

from django import template
from django.template.defaultfilters import date as date_filter
from django.utils.formats import localize
from django.utils.html import conditional_escape as esc
from django.utils.safestring import mark_safe
from django.utils.timezone import template_localtime

from core.links import csrf_field, pk_url
from core.templatetags.formatting import kelvin, quick_floatformat as ff

from ..models import NO_GFA_MODEL, Candidate

register = template.Library()

_NEAR_MISS = ' <span class="badge warn" title="misses a target even optimistically; proposed to fill the batch">near miss</span>'


def _temperature(pred, low, high, std):
    html = kelvin(pred, 0)
    if low is not None and high is not None:
        html += f'<br><span class="muted" title="80 % interval">{kelvin(low, 0)}–{kelvin(high, 0)}</span>'
    elif std is not None:
        html += f" ± {kelvin(std, 0)}"
    return html


def _value(value, digits):
    """``design/_value.html``."""
    if value is None:
        return f'<span class="muted gfa-missing" title="Unknown: {esc(NO_GFA_MODEL)}">—</span>\n'
    return ff(value, digits) + "\n"


def _dmax_short(c):
    """``design/_dmax.html`` with short=True."""
    if c.dmax_mm_pred is None:
        return f'<span class="muted gfa-missing" title="Dmax unknown: {esc(NO_GFA_MODEL)}">—</span>\n'
    html = ff(c.dmax_mm_pred, 1)
    if c.dmax_low_mm is not None and c.dmax_high_mm is not None:
        html += f'<br><span class="muted" title="80 % interval">{ff(c.dmax_low_mm, 1)}–{ff(c.dmax_high_mm, 1)}</span>'
    return html + "\n"


def _badge(status):
    if status == "validated":
        return "ok"
    if status in ("failed", "rejected", "missed_targets"):
        return "bad"
    return "warn" if status != "proposed" else ""


@register.simple_tag(takes_context=True)
def candidate_rows(context, candidates):
    """The rows of the campaign page's candidate table (``design.selectors.campaign_candidates``)."""
    candidates = list(candidates)
    if not candidates:
        return mark_safe('\n  <tr><td colspan="14" class="muted">No candidates yet.</td></tr>\n  ')
    detail_url = pk_url("design:candidate_detail")
    approve_url = pk_url("design:candidate_approve")
    start_url = pk_url("design:candidate_start")
    alloy_url = pk_url("lab:alloy_detail")
    sample_url = pk_url("lab:sample_detail")
    request = context.get("request")
    here = esc(request.get_full_path()) if request is not None else ""
    csrf = csrf_field(context)
    can_approve, can_synthesise = context.get("can_approve"), context.get("can_synthesise")
    # get_status_display() rebuilds the choices' dict (and hashes them) for every row
    status_labels = dict(Candidate.Status.choices)
    out = []
    for c in candidates:
        url = esc(detail_url(c.pk))
        near = _NEAR_MISS if (c.score_terms or {}).get("near_miss") else ""
        if c.nearest_known_alloy_id:
            nearest = f'<a href="{alloy_url(c.nearest_known_alloy_id)}">{esc(c.nearest_known_formula)}</a>'
        else:
            nearest = esc(c.nearest_known_formula or "—")
        parts = sample = ""
        if c.sample_id:
            parts = "".join(f'<br><span class="badge {esc(p.badge)} part-{esc(p.name)}">{esc(p.text)}</span>'
                            for p in c.validation_parts())
            parts = f'<span class="validation-parts">{parts}</span>'
            sample = f'<br><a href="{sample_url(c.sample_id)}">{esc(c.sample.label)}</a>'
        actions = ""
        if c.status == "proposed" and can_approve:
            actions = (f'\n      <form method="post" action="{approve_url(c.pk)}" class="inline">{csrf}'
                       f'<input type="hidden" name="next" value="{here}"><button type="submit">Approve</button></form>\n'
                       f'      <a href="{url}#decide">Reject…</a>\n      ')
        elif c.status == "approved_for_synthesis" and can_synthesise:
            actions = (f'\n      <form method="post" action="{start_url(c.pk)}" class="inline">{csrf}'
                       f'<input type="hidden" name="next" value="{here}"><button type="submit" class="secondary">Start synthesis</button></form>\n      ')
        out.append(
            f'\n  <tr id="candidate-{c.pk}">\n'
            f'    <td><a href="{url}">{esc(c.label)}</a><br><span class="muted">r{c.round_number if c.generation_round_id else ""}·{c.rank}</span></td>\n'
            f"    <td>{esc(c.formula)}{near}</td>\n"
            f'    <td class="num">{_temperature(c.tg_k_pred, c.tg_k_low, c.tg_k_high, c.tg_k_std)}</td>\n'
            f'    <td class="num">{_temperature(c.tx_k_pred, c.tx_k_low, c.tx_k_high, c.tx_k_std)}</td>\n'
            f'    <td class="num">{_temperature(c.tl_k_pred, c.tl_k_low, c.tl_k_high, c.tl_k_std)}</td>\n'
            f'    <td class="num">{ff(c.trg_pred, 3)}</td>\n'
            f'    <td class="num">{ff(c.gamma_pred, 3)}</td>\n'
            f'    <td class="num">{_value(c.p_glass, 2)}</td>\n'
            f'    <td class="num">{_value(c.p_bmg, 2)}</td>\n'
            f'    <td class="num">{_dmax_short(c)}</td>\n'
            f"    <td>{nearest} ({ff(c.nearest_distance, 3)})</td>\n"
            f'    <td class="num">{ff(c.acquisition_score, 2)}</td>\n'
            f'    <td><span class="badge {_badge(c.status)}">{esc(status_labels.get(c.status, c.status))}</span>\n'
            f"      {parts}\n"
            f"      {sample}</td>\n"
            f"    <td>\n      {actions}\n    </td>\n"
            "  </tr>\n  "
        )
    return mark_safe("".join(out))


def _shown(value):
    """A value as ``{{ value }}`` shows it (localised, escaped)."""
    return esc(localize(value))


def _targets_text(c):
    parts = []
    for _name, label, unit, lo, hi in c.target_items():
        if lo is not None and hi is not None:
            text = f"{_shown(label)} {_shown(lo)}–{_shown(hi)}"
        elif lo is not None:
            text = f"{_shown(label)} ≥ {_shown(lo)}"
        else:
            text = f"{_shown(label)} ≤ {_shown(hi)}"
        parts.append(text + (f" {_shown(unit)}" if unit else ""))
    text = "; ".join(parts)
    if c.min_p_bmg:
        text += f"; P(BMG) ≥ {_shown(c.min_p_bmg)}"
    return text


@register.simple_tag
def campaign_rows(campaigns):
    """The rows of the campaign list (``design.selectors.campaign_list``)."""
    campaigns = list(campaigns)
    if not campaigns:
        return mark_safe('\n  <tr><td colspan="8" class="muted">No campaign yet.</td></tr>\n  ')
    detail_url = pk_url("design:campaign_detail")
    out = []
    for c in campaigns:
        owner = (c.owner.username if c.owner_id and c.owner else "") or "—"
        out.append(
            "\n  <tr>\n"
            f'    <td><a href="{detail_url(c.pk)}">{esc(c.name)}</a></td>\n'
            f"    <td>{esc(owner)}</td>\n"
            f"    <td>{_targets_text(c)}</td>\n"
            f'    <td class="num">{_shown(c.n_candidates)}</td>\n'
            f'    <td class="num">{_shown(c.n_validated)}</td>\n'
            f'    <td class="num">{_shown(c.n_failed)}</td>\n'
            f'    <td><span class="badge">{esc(c.get_status_display())}</span></td>\n'
            f"    <td>{esc(date_filter(template_localtime(c.created_at), 'Y-m-d'))}</td>\n"
            "  </tr>\n  "
        )
    return mark_safe("".join(out))
