"""Rows built in Python (review queue, sample list, alloy list) give exactly the HTML of the
per-row templates they replaced (kept here as the reference), on records that exercise every
branch: derived values, source passages, flags, reviewers, overridden XRDs, DSC values, casting
dates, missing operators, Dmax bounds, conflicts, text that must be escaped."""

import datetime
import re

import pytest
from django.template import Context, Template
from django.template.defaultfilters import floatformat
from django.test import RequestFactory

from core.links import pk_url
from lab.forms import AlloySearchForm
from lab.models import Alloy, DSCMeasurement, Sample, XRDMeasurement
from lab.services import get_or_create_alloy
from lab.templatetags.lab_rows import floatformat_2
from lab import selectors as lab_selectors
from mining import selectors as mining_selectors
from mining import services as mining_services
from mining.models import ExtractedRecord

REVIEW_ROWS_BEFORE = """{% load mining_tags %}{% with here=request.get_full_path %}{% for r in page %}{% with url=r.get_absolute_url %}
<tr class="qrow" data-edit="{{ url }}" tabindex="-1">
<td><a href="{{ url }}">{{ r.pk }}</a><br><span class="muted">{{ r.batch.name }}</span></td>
<td>{{ r.composition_raw }}<br><span class="muted">→ {{ r.composition_formula|default:"(unparseable)" }}</span></td>
<td class="num">{{ r.tg_k|kelvin }}{% if r.derived.tg %}<br><small class="derived" title="{{ r.derived.tg }}">derived</small>{% endif %}</td>
<td class="num">{{ r.tx_k|kelvin }}{% if r.derived.tx %}<br><small class="derived" title="{{ r.derived.tx }}">derived</small>{% endif %}</td>
<td class="num">{{ r.tl_k|kelvin }}{% if r.derived.tl %}<br><small class="derived" title="{{ r.derived.tl }}">derived</small>{% endif %}</td>
<td class="snippet"><small>{{ r|highlight }}</small>
{% for prop, how in r.derived.items %}<br><small class="muted">{{ how }}</small>{% endfor %}
{% if r.more_snippets %}<br><small class="muted">+ {{ r.more_snippets|length }} more passage{{ r.more_snippets|length|pluralize }}</small>{% endif %}
{% if r.source_context %}<details class="source-context"><summary><small>source around it</small></summary><small>…{{ r.source_context.0 }}<mark>{{ r.source_context.1 }}</mark>{{ r.source_context.2 }}…</small></details>{% elif r.source_id %}<br><small class="muted">(not found in the source text)</small>{% endif %}</td>
<td>{% for f in r.flags %}<span class="badge warn" title="{{ f.reason }}">{{ f.flag }}</span><br><small class="muted">{{ f.reason }}</small><br>{% empty %}<span class="badge ok">clean</span><br>{% endfor %}
{% if r.status == "pending" %}{% if r.bulk_blockers %}<small class="not-bulk">Not approved by “approve clean”: {{ r.bulk_blockers|join:"; " }}.</small>{% else %}<small class="bulk-ok">Approved by “approve clean”.</small>{% endif %}{% endif %}</td>
<td>{{ r.get_status_display }}{% if r.reviewer %}<br><small>{{ r.reviewer }}</small>{% endif %}</td>
<td>{% if can_review and r.status == "pending" %}
<form method="post" action="{% url 'mining:record_approve' r.pk %}" class="inline js-approve">{% csrf_token %}<input type="hidden" name="next" value="{{ here }}"><button>Approve</button></form>
<form method="post" action="{% url 'mining:record_reject' r.pk %}" class="inline js-reject">{% csrf_token %}<input type="hidden" name="next" value="{{ here }}"><input name="reason" required placeholder="reason to reject" size="14"><button class="danger">Reject</button></form>
{% endif %}</td>
</tr>
{% endwith %}{% empty %}<tr><td colspan="9" class="muted">Nothing to review with these filters.</td></tr>
{% endfor %}{% endwith %}"""

SAMPLE_ROWS_BEFORE = """  {% for s in samples %}
  {% with x=s.xrds.0 d=s.dscs.0 %}
  <tr>
    <td><a href="{% url 'lab:sample_detail' s.pk %}">{{ s.label }}</a></td>
    <td><a href="{% url 'lab:alloy_detail' s.alloy_id %}">{{ s.alloy.formula }}</a></td>
    <td>{{ s.get_method_display }}</td>
    <td class="num">{{ s.diameter_mm|floatformat:"-2"|default:"—" }}</td>
    <td>{{ s.cast_on|date:"Y-m-d"|default:"—" }}</td>
    <td>{{ s.operator.username|default:"—" }}</td>
    <td>{% if x %}{% include "lab/_verdict.html" %}{% else %}<span class="muted">none</span>{% endif %}</td>
    {% include "lab/_temps_cells.html" with t=d %}
  </tr>
  {% endwith %}
  {% empty %}
  <tr><td colspan="13" class="muted">No samples{% if q %} match “{{ q }}”{% endif %}.</td></tr>
  {% endfor %}"""

ALLOY_ROWS_BEFORE = """  {% for a in alloys %}
  <tr>
    <td><a href="{% url 'lab:alloy_detail' a.pk %}">{{ a.formula }}</a></td>
    <td>{{ a.name }}</td>
    <td>{{ a.base_element }}</td>
    <td class="num">{{ a.n_elements }}</td>
    <td class="num">{{ a.n_samples }}</td>
    <td class="num">{{ a.tg_mean_k|kelvin }}</td>
    <td class="num">{{ a.tx_mean_k|kelvin }}</td>
    <td class="num">{{ a.tl_mean_k|kelvin }}</td>
    <td class="num">{{ a.trg|fixed:3 }}</td>
    <td class="num">{{ a.gamma|fixed:3 }}</td>
    <td class="num">{{ a.dtx_k|kelvin }}</td>
    <td>{{ a.gfa_class|default:"—" }}</td>
    <td class="num">{% if a.dmax_mm is not None %}{% if a.dmax_is_bound %}≥ {% endif %}{{ a.dmax_mm|floatformat:"-2" }}{% else %}—{% endif %}</td>
    <td class="num">{{ a.n_values }}{% if a.has_conflict %} <span class="badge warn" title="{% if a.gfa_conflict %}{{ a.gfa_conflict_reason }}{% else %}Sources disagree by more than 10 K{% endif %}">conflict</span>{% endif %}</td>
  </tr>
  {% empty %}
  <tr><td colspan="14" class="muted">No alloy matches.</td></tr>
  {% endfor %}"""


CANDIDATE_ROWS_BEFORE = """{% load humanize %}  {% for c in candidates %}
  <tr id="candidate-{{ c.pk }}">
    <td><a href="{{ c.get_absolute_url }}">{{ c.label }}</a><br><span class="muted">r{{ c.generation_round.number }}·{{ c.rank }}</span></td>
    <td>{{ c.formula }}{% if c.score_terms.near_miss %} <span class="badge warn" title="misses a target even optimistically; proposed to fill the batch">near miss</span>{% endif %}</td>
    <td class="num">{{ c.tg_k_pred|kelvin:0 }}{% if c.tg_k_low is not None and c.tg_k_high is not None %}<br><span class="muted" title="80 % interval">{{ c.tg_k_low|kelvin:0 }}–{{ c.tg_k_high|kelvin:0 }}</span>{% elif c.tg_k_std is not None %} ± {{ c.tg_k_std|kelvin:0 }}{% endif %}</td>
    <td class="num">{{ c.tx_k_pred|kelvin:0 }}{% if c.tx_k_low is not None and c.tx_k_high is not None %}<br><span class="muted" title="80 % interval">{{ c.tx_k_low|kelvin:0 }}–{{ c.tx_k_high|kelvin:0 }}</span>{% elif c.tx_k_std is not None %} ± {{ c.tx_k_std|kelvin:0 }}{% endif %}</td>
    <td class="num">{{ c.tl_k_pred|kelvin:0 }}{% if c.tl_k_low is not None and c.tl_k_high is not None %}<br><span class="muted" title="80 % interval">{{ c.tl_k_low|kelvin:0 }}–{{ c.tl_k_high|kelvin:0 }}</span>{% elif c.tl_k_std is not None %} ± {{ c.tl_k_std|kelvin:0 }}{% endif %}</td>
    <td class="num">{{ c.trg_pred|floatformat:3 }}</td>
    <td class="num">{{ c.gamma_pred|floatformat:3 }}</td>
    <td class="num">{% include "design/_value.html" with value=c.p_glass digits=2 %}</td>
    <td class="num">{% include "design/_value.html" with value=c.p_bmg digits=2 %}</td>
    <td class="num">{% include "design/_dmax.html" with c=c short=True %}</td>
    <td>{% if c.nearest_known_alloy_id %}<a href="{% url 'lab:alloy_detail' c.nearest_known_alloy_id %}">{{ c.nearest_known_formula }}</a>{% else %}{{ c.nearest_known_formula|default:"—" }}{% endif %} ({{ c.nearest_distance|floatformat:3 }})</td>
    <td class="num">{{ c.acquisition_score|floatformat:2 }}</td>
    <td><span class="badge {% if c.status == 'validated' %}ok{% elif c.status == 'failed' or c.status == 'rejected' or c.status == 'missed_targets' %}bad{% elif c.status != 'proposed' %}warn{% endif %}">{{ c.get_status_display }}</span>
      {% if c.sample_id %}<span class="validation-parts">{% for p in c.validation_parts %}<br><span class="badge {{ p.badge }} part-{{ p.name }}">{{ p.text }}</span>{% endfor %}</span>{% endif %}
      {% if c.sample_id %}<br><a href="{% url 'lab:sample_detail' c.sample_id %}">{{ c.sample.label }}</a>{% endif %}</td>
    <td>
      {% if c.status == "proposed" and can_approve %}
      <form method="post" action="{% url 'design:candidate_approve' c.pk %}" class="inline">{% csrf_token %}<input type="hidden" name="next" value="{{ request.get_full_path }}"><button type="submit">Approve</button></form>
      <a href="{{ c.get_absolute_url }}#decide">Reject…</a>
      {% elif c.status == "approved_for_synthesis" and can_synthesise %}
      <form method="post" action="{% url 'design:candidate_start' c.pk %}" class="inline">{% csrf_token %}<input type="hidden" name="next" value="{{ request.get_full_path }}"><button type="submit" class="secondary">Start synthesis</button></form>
      {% endif %}
    </td>
  </tr>
  {% empty %}
  <tr><td colspan="14" class="muted">No candidates yet.</td></tr>
  {% endfor %}"""


CAMPAIGN_ROWS_BEFORE = """  {% for c in campaigns %}
  <tr>
    <td><a href="{{ c.get_absolute_url }}">{{ c.name }}</a></td>
    <td>{{ c.owner.username|default:"—" }}</td>
    <td>{% for name, label, unit, lo, hi in c.target_items %}{{ label }}{% if lo is not None and hi is not None %} {{ lo }}–{{ hi }}{% elif lo is not None %} ≥ {{ lo }}{% else %} ≤ {{ hi }}{% endif %}{% if unit %} {{ unit }}{% endif %}{% if not forloop.last %}; {% endif %}{% endfor %}{% if c.min_p_bmg %}; P(BMG) ≥ {{ c.min_p_bmg }}{% endif %}</td>
    <td class="num">{{ c.n_candidates }}</td>
    <td class="num">{{ c.n_validated }}</td>
    <td class="num">{{ c.n_failed }}</td>
    <td><span class="badge">{{ c.get_status_display }}</span></td>
    <td>{{ c.created_at|date:"Y-m-d" }}</td>
  </tr>
  {% empty %}
  <tr><td colspan="8" class="muted">No campaign yet.</td></tr>
  {% endfor %}"""


def _render(source, **context):
    return Template(source).render(Context(context))


@pytest.mark.parametrize("value", [None, 0.0, 1.0, 3, 1.5, 2.25, 2.255, 2.675, 0.125, 0.005, 12.999, 1e-7, 1234.5, 7.1049999])
def test_floatformat_2_is_floatformat_minus_2(value):
    expected = (floatformat(value, "-2") if value is not None else "") or "—"
    assert floatformat_2(value) == expected


def test_pk_url_is_reverse():
    from django.urls import reverse

    for pk in (1, 42, 10**9):
        assert pk_url("lab:alloy_detail")(pk) == reverse("lab:alloy_detail", args=[pk])
        assert pk_url("mining:record_reject")(pk) == reverse("mining:record_reject", args=[pk])


@pytest.mark.django_db
@pytest.mark.parametrize("can_review", [True, False])
def test_review_rows_match_the_template_they_replaced(can_review, reviewer):
    text = ("Introduction about glasses. " * 5 + "The Zr57Cu28Al10Ni5 alloy has Tg = 680 K and ΔTx = 85 K; Tl = 1118 K. "
            + "Later <we> discuss & more. " * 5)
    source = mining_services.create_source(text=text, doi="10.1000/rows.1")
    batch = mining_services.create_batch(name="rows <b>", sources=[source], extractor="rules", enqueue=False)
    ExtractedRecord.objects.create(
        batch=batch, source=source, fingerprint="a", composition_raw="Zr57Cu28Al10Ni5", tg_k=680, tx_k=765, tl_k=1118.25,
        derived={"tx": "Tx = Tg + ΔTx = 680 K + 85 K", "tl": "Tl <x> & y"},
        snippet="The Zr57Cu28Al10Ni5 alloy has Tg = 680 K and ΔTx = 85 K; Tl = 1118 K.", more_snippets=["one", "two"],
    )
    ExtractedRecord.objects.create(batch=batch, source=source, fingerprint="b", composition_raw="Cu50Hf50 <i>", tg_k=680,
                                   snippet="Not in the text at all.", more_snippets=["only"])
    ExtractedRecord.objects.create(batch=batch, fingerprint="c", composition_raw="Qq12", tg_k=None, tx_k=700.05,
                                   snippet="Qq12 has Tx = 700.05 K", status="approved", reviewer=reviewer)
    mining_services.validate_batch(batch.pk)
    records = mining_selectors.attach_source_context(mining_selectors.review_queue(batch_id=batch.pk, status=None))
    assert any(r.flags for r in records) and any(r.source_context for r in records)
    request = RequestFactory().get("/mining/review/", {"batch": batch.pk, "q": "<&>"})
    context = {"page": records, "can_review": can_review, "request": request, "csrf_token": "tok<en>"}
    expected = _render(REVIEW_ROWS_BEFORE, **context)
    assert _render("{% load mining_tags %}{% review_rows page can_review %}", **context) == expected
    assert ("js-approve" in expected) is can_review
    empty = {**context, "page": []}
    assert _render("{% load mining_tags %}{% review_rows page can_review %}", **empty) == _render(REVIEW_ROWS_BEFORE, **empty)


@pytest.mark.django_db
def test_sample_rows_match_the_template_they_replaced(experimenter):
    alloy, _ = get_or_create_alloy("Zr55Cu30Al10Ni5")
    plain = Sample.objects.create(alloy=alloy, label="S<1>&", diameter_mm=2.0)
    cast = Sample.objects.create(alloy=alloy, label="S2", diameter_mm=1.255, operator=experimenter,
                                 cast_on=datetime.date(2026, 3, 4), method=Sample.Method.COPPER_MOLD)
    XRDMeasurement.objects.create(sample=cast, pattern="xrd/a.xy", computed_verdict="crystalline",
                                  override_verdict="amorphous", override_reason="peaks <are> & artefacts")
    XRDMeasurement.objects.create(sample=plain, pattern="xrd/b.xy", computed_verdict="amorphous")
    DSCMeasurement.objects.create(sample=cast, tg_k=623.15, tx_k=700.05, tl_k=1100.0)
    DSCMeasurement.objects.create(sample=plain, tg_k=650.0, tx_k=None, tl_k=None)
    Sample.objects.create(alloy=alloy, label="S3", diameter_mm=None)
    samples = list(lab_selectors.sample_list())
    for q in ("", "a <q>"):
        expected = _render(SAMPLE_ROWS_BEFORE, samples=samples, q=q)
        assert _render("{% load lab_rows %}  {% sample_rows samples q %}", samples=samples, q=q) == expected
        assert _render("{% load lab_rows %}  {% sample_rows samples q %}", samples=[], q=q) == _render(SAMPLE_ROWS_BEFORE, samples=[], q=q)


@pytest.mark.django_db
def test_alloy_rows_match_the_template_they_replaced():
    a, _ = get_or_create_alloy("Zr55Cu30Al10Ni5")
    b, _ = get_or_create_alloy("Cu50Zr50")
    Alloy.objects.filter(pk=a.pk).update(name="Vit <1>", tg_mean_k=623.15, tx_mean_k=700.0, tl_mean_k=1100.05, trg=0.5665,
                                         gamma=0.4, dtx_k=76.85, gfa_class="bmg", dmax_mm=5.0, dmax_is_bound=True,
                                         has_conflict=True, gfa_conflict=True, gfa_conflict_reason="Dmax 5 <vs> 2 mm", n_values=3)
    Alloy.objects.filter(pk=b.pk).update(dmax_mm=1.255, has_conflict=True, n_samples=2)
    alloys = list(Alloy.objects.order_by("formula"))
    expected = _render(ALLOY_ROWS_BEFORE, alloys=alloys)
    assert _render("{% load lab_rows %}  {% alloy_rows alloys %}", alloys=alloys) == expected
    assert _render("{% load lab_rows %}  {% alloy_rows alloys %}", alloys=[]) == _render(ALLOY_ROWS_BEFORE, alloys=[])


@pytest.mark.parametrize("data", [None, {}, {"elements": "Zr Cu", "tg_min": "600"}, {"elements": "Zr Xx", "tg_max": "abc"},
                                  {"base_element": "Zr Cu", "gfa_class": "nope", "q": "<b>"}])
def test_search_form_field_groups_are_as_field_group(data):
    for _ in range(2):  # the second time from the cache
        form = AlloySearchForm(data)
        if form.is_bound:
            form.is_valid()
        groups = form.field_groups()
        assert groups == {name: form[name].as_field_group() for name in form.fields}
    if data and "tg_max" in data:
        assert re.search(r"errorlist", groups["tg_max"])


@pytest.mark.django_db
@pytest.mark.parametrize("can_approve, can_synthesise", [(True, True), (False, True), (True, False), (False, False)])
def test_candidate_rows_match_the_template_they_replaced(can_approve, can_synthesise, approver):
    from design import selectors as design_selectors
    from design.models import NO_GFA_MODEL, Candidate
    from tests.design.test_approval import make_candidate

    from design.services import create_campaign

    campaign = create_campaign(owner=approver, name="Rows <campaign>", targets={"tg_k": {"min": 680}, "dmax_mm": {"min": 2}})
    plain = make_candidate(campaign)  # ensemble spread, no P(BMG), no Dmax
    rich = make_candidate(campaign, formula="Cu50Zr45Al5", number=2)
    alloy, _ = get_or_create_alloy("Cu46Zr46Al8")
    sample = Sample.objects.create(alloy=alloy, label="C-2 <rod>", diameter_mm=3.0)
    Candidate.objects.filter(pk=rich.pk).update(
        tg_k_low=690.25, tg_k_high=712.5, tx_k_low=760, tx_k_high=781, tl_k_std=None, tl_k_low=None, p_bmg=0.455, p_glass=0.125,
        dmax_mm_pred=4.25, dmax_low_mm=1.05, dmax_high_mm=9.95, score_terms={"near_miss": True}, nearest_known_alloy=alloy,
        nearest_known_formula="Cu46Zr46Al8 <x>", nearest_distance=0.0625, acquisition_score=-0.005, status="approved_for_synthesis",
        sample=sample, xrd_verdict="amorphous", tg_k_measured=700.0, trg_pred=0.6255, gamma_pred=0.0005,
    )
    make_candidate(campaign, formula="Zr60Cu30Al10", number=3)
    other = Sample.objects.create(alloy=alloy, label="C-3", diameter_mm=None)
    Candidate.objects.filter(campaign=campaign, number=3).update(status="validated", sample=other, dmax_mm_pred=2.0)
    make_candidate(campaign, formula="Zr50Cu40Al10", number=4)
    Candidate.objects.filter(campaign=campaign, number=4).update(status="missed_targets", tg_k_std=None)
    candidates = list(design_selectors.campaign_candidates(campaign))
    request = RequestFactory().get(f"/design/{campaign.pk}/", {"sort": "rank", "q": "<&>"})
    context = {"candidates": candidates, "request": request, "csrf_token": "tok<en>", "can_approve": can_approve,
               "can_synthesise": can_synthesise, "no_gfa_model": NO_GFA_MODEL}
    expected = _render(CANDIDATE_ROWS_BEFORE, **context)
    assert "validation-parts" in expected and "near miss" in expected and plain.label in expected
    assert _render("{% load design_rows %}  {% candidate_rows candidates %}", **context) == expected
    empty = {**context, "candidates": []}
    assert _render("{% load design_rows %}  {% candidate_rows candidates %}", **empty) == _render(CANDIDATE_ROWS_BEFORE, **empty)


def test_quick_floatformat_is_floatformat():
    import random

    from core.templatetags.formatting import quick_floatformat

    rng = random.Random(16)
    values = [None, 0, 0.0, -0.0, 1, -1, 3.0, 2.5, -2.5, 0.125, 2.675, 1.005, 0.0049999, 1e-9, -1e-9, 1e20, 123456.789,
              float("nan"), float("inf"), 1234567]
    values += [rng.uniform(-1000, 1000) for _ in range(300)] + [round(rng.uniform(-10, 10), rng.randint(0, 4)) for _ in range(300)]
    for value in values:
        for arg in (-3, -2, -1, 0, 1, 2, 3):
            assert quick_floatformat(value, arg) == floatformat(value, arg), (value, arg)


@pytest.mark.django_db
def test_campaign_rows_match_the_template_they_replaced(approver):
    from design import selectors as design_selectors
    from design.services import create_campaign
    from tests.design.test_approval import make_candidate

    first = create_campaign(owner=approver, name="Zr <high Tg>", targets={"tg_k": {"min": 680, "max": 720.5}, "trg": {"min": 0.58}},
                            min_p_bmg=0.25)
    create_campaign(owner=approver, name="Cu", targets={"dmax_mm": {"min": 2}, "gamma": {"max": 0.45}, "delta_tx_k": {"min": 60.0}})
    make_candidate(first)
    campaigns = list(design_selectors.campaign_list().order_by("pk"))
    expected = _render(CAMPAIGN_ROWS_BEFORE, campaigns=campaigns)
    assert "P(BMG)" in expected and "Zr &lt;high Tg&gt;" in expected
    assert _render("{% load design_rows %}  {% campaign_rows campaigns %}", campaigns=campaigns) == expected
    assert _render("{% load design_rows %}  {% campaign_rows campaigns %}", campaigns=[]) == _render(CAMPAIGN_ROWS_BEFORE, campaigns=[])


@pytest.mark.django_db
def test_queue_filter_fields_are_the_form_loop():
    from mining.forms import QueueFilterForm

    source = mining_services.create_source(text="Zr55Cu30Al10Ni5 has Tg = 680 K.", doi="10.1000/rows.2")
    batch = mining_services.create_batch(name="filters <b>", sources=[source], extractor="rules", enqueue=False)
    loop = ('{% for field in form %}<span class="filter-field">{{ field.label_tag }} {{ field }}'
            "</span>{% endfor %}")
    for data in (None, {"status": "pending"}, {"batch": str(batch.pk), "flag": "none"}, {"batch": "999999", "element": "Xx Yy"},
                 {"batch": "abc", "status": "nope"}):
        for _ in range(2):  # the second time from the cache
            form = QueueFilterForm(data)
            if form.is_bound:
                form.is_valid()
            assert _render("{% load mining_tags %}{% filter_fields form %}", form=form) == _render(loop, form=form)
    mining_services.create_batch(name="a second batch", sources=[source], extractor="rules", enqueue=False)
    form = QueueFilterForm({"status": "pending"})
    form.is_valid()
    assert "a second batch" in _render("{% load mining_tags %}{% filter_fields form %}", form=form)  # new choices, new HTML


ORDERS = ("formula", "base", "samples", "tg", "tx", "tl", "trg", "gamma", "dtx", "dmax")


@pytest.mark.parametrize("query", [
    "", "page=3", "order=tg", "elements=Zr+Cu&tg_min=600&page=2&order=gamma", "q=a%26b%3Dc&q=%C3%A9&page=",
    "order=tg&order=tx&elements=Fe",
])
def test_order_links_are_querystring_with_page_removed(query):
    from django.template import RequestContext

    request = RequestFactory().get(f"/lab/alloys/?{query}")
    before = Template("".join(f"<a href=\"{{% querystring order='{o}' page=None %}}\">" for o in ORDERS))
    now = Template("{% load lab_rows %}{% order_links " + " ".join(f"'{o}'" for o in ORDERS) + " as links %}"
                   + "".join(f"<a href=\"{{{{ links.{o} }}}}\">" for o in ORDERS))
    expected = before.render(RequestContext(request))
    assert now.render(RequestContext(request)) == expected
    assert "page=" not in expected and expected.count("order=") == len(ORDERS)
