"""Campaigns that ask for glass formation and castability: P(glass), P(BMG), Dmax targets.

The GFA surrogate's contract (training.bundles.predict gives p_glass, p_bmg, dmax_mm,
dmax_low_mm, dmax_high_mm; training.bundles.contributions gives the top features) is faked
here, so each rule is checked exactly and without training a model.
"""

import math
from types import SimpleNamespace

import numpy as np
import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from design import generation, services
from design.forms import CampaignForm
from design.generation import Z80, DesignSpec, dmax_margin
from design.models import NO_GFA_MODEL, Candidate, DesignCampaign, GenerationRound
from ml.composition import parse_composition
from ml.rules import DMAX_MAX_MM
from training.models import ModelVersion

from .test_approval import make_candidate
from .test_generation import KNOWN, TRAIN_Y, fake_predict, fake_sample
from .test_views import FORM

# ------------------------------------------------------------------ fakes of the GFA contract

# Dmax (mm) per formula; the rest get 3.5 mm (80 % interval 2–6 mm).
DMAX = {"Zr50Cu40Al10": (20.0, 12.0, 30.0), "Zr54Cu26Al12Ni8": (3.1, 2.0, 4.0)}


def gfa_predict(comps):
    """fake_predict plus the GFA keys: P(BMG) grows with Ni (below 0.5 without Ni)."""
    out = fake_predict(comps)
    ni = np.array([c.get("Ni", 0) for c in comps])
    out["p_glass"] = np.full(len(comps), 0.9)
    out["p_bmg"] = 0.2 + 6 * ni
    d = np.array([DMAX.get(c.formula, (3.5, 2.0, 6.0)) for c in comps])
    out["dmax_mm"], out["dmax_low_mm"], out["dmax_high_mm"] = d[:, 0], d[:, 1], d[:, 2]
    return out


def old_bundle_predict(comps):
    """A bundle without a GFA model after the change: P(glass) NaN, no other GFA key at all."""
    out = fake_predict(comps)
    out["p_glass"] = np.full(len(comps), np.nan)
    return out


def fake_contributions(bundle, comps, top=5):
    return [
        {"p_glass": [["mean_atomic_radius", 0.21], ["delta_electronegativity", -0.08]],
         "p_bmg": [["Trg_pred", 0.3], ["mixing_enthalpy", -0.12], ["broken", float("nan")]],
         "dmax_mm": [["Zr_fraction", 1.4]]}
        for _ in comps
    ]


def recording(predict):
    seen = []

    def wrapped(comps):
        seen.append(list(comps))
        return predict(comps)

    return wrapped, seen


def gen(spec, predict):
    return generation.generate(spec, sample=fake_sample, predict=predict, train_y=TRAIN_Y, known=KNOWN,
                               known_keys={parse_composition("Zr60Cu20Al10Ni10").key}, seed=0)


# ------------------------------------------------------------------ form and model bounds


def test_form_shows_every_gfa_error_at_once(experimenter_client):
    bad = {"min_p_glass": "1.5", "min_p_bmg": "-0.1", "dmax_mm_min": "0", "dmax_mm_max": "250"}
    response = experimenter_client.post(reverse("design:campaign_create"), {**FORM, **bad})
    assert response.status_code == 200
    page = response.content.decode()
    assert page.count("A probability between 0 and 1.") == 2  # P(glass) and P(BMG), both
    assert "Dmax must be above 0 mm (got 0 mm)." in page
    assert f"Dmax must be at most {DMAX_MAX_MM:g} mm" in page and "(got 250 mm)" in page
    assert not DesignCampaign.objects.exists()


def test_form_errors_are_on_their_fields():
    form = CampaignForm(data={**FORM, "tg_k_min": "", "trg_min": "", "min_p_bmg": "2", "dmax_mm_min": "-3"})
    assert not form.is_valid()
    assert set(form.errors) == {"min_p_bmg", "dmax_mm_min"}  # no "state a target": the Dmax one was refused
    form = CampaignForm(data={**FORM, "dmax_mm_min": "5", "dmax_mm_max": "2"})
    assert not form.is_valid()
    assert "must be below the maximum" in str(form.errors)


@pytest.mark.parametrize("value, ok", [("0.001", True), (f"{DMAX_MAX_MM:g}", True), ("200.5", False), ("0", False)])
def test_dmax_bounds_are_those_of_ml_rules(value, ok):
    form = CampaignForm(data={**FORM, "dmax_mm_min": value})
    assert form.is_valid() is ok, form.errors


def test_campaign_with_gfa_targets_through_the_form(experimenter_client):
    response = experimenter_client.post(
        reverse("design:campaign_create"), {**FORM, "min_p_bmg": "0.4", "dmax_mm_min": "3", "tg_k_min": "", "trg_min": ""}
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    c = DesignCampaign.objects.get()
    assert c.targets == {"dmax_mm": {"min": 3.0}}  # Dmax alone is a target
    assert c.min_p_bmg == 0.4
    page = experimenter_client.get(c.get_absolute_url()).content.decode()
    assert "Dmax: ≥ 3.0 mm" in page and "P(BMG) ≥ 0.4" in page


def test_form_without_p_bmg_means_no_threshold():
    form = CampaignForm(data=FORM)
    assert form.is_valid(), form.errors
    assert form.campaign_fields()["min_p_bmg"] == 0.0


def test_model_validation_lists_every_problem(campaign_factory):
    with pytest.raises(ValidationError) as exc:
        campaign_factory(targets={"dmax_mm": {"min": 0, "max": 500}}, min_p_bmg=1.2, min_p_glass=-1)
    errors = exc.value.message_dict
    assert len(errors["targets"]) == 2 and "above 0 mm" in errors["targets"][0] and "at most 200 mm" in errors["targets"][1]
    assert errors["min_p_bmg"] and errors["min_p_glass"]


# ------------------------------------------------------------------ ranking and filters


def test_candidate_below_min_p_bmg_is_dropped_and_counted():
    spec = DesignSpec(targets={"tg_k": {"min": 600}}, min_p_glass=0.0, min_p_bmg=0.5, min_novelty=0.0,
                      batch_size=50, n_draws=400)
    predict, seen = recording(gfa_predict)
    result = gen(spec, predict)
    scored = seen[0]
    low = [c for c in scored if 0.2 + 6 * c.get("Ni", 0) < 0.5]
    assert low  # the pool has Ni-free alloys
    assert result.counts["removed_by_p_bmg"] == len(low)
    assert result.counts["removed_by_p_glass"] == 0 and result.counts["gfa_unknown"] == 0
    picked = {p.composition.key for p in result.picks}
    assert picked and not picked & {c.key for c in low}
    assert all(p.predictions["p_bmg"] >= 0.5 for p in result.picks)
    assert not result.notes
    # Without the threshold they come back.
    spec.min_p_bmg = 0.0
    again = gen(spec, gfa_predict)
    assert again.counts["removed_by_p_bmg"] == 0 and {c.key for c in low} & {p.composition.key for p in again.picks}


def test_p_glass_filter_counts_what_it_removed():
    spec = DesignSpec(targets={"tg_k": {"min": 600}}, min_p_glass=0.55, min_novelty=0.0, batch_size=50, n_draws=400)
    predict, seen = recording(fake_predict)  # p_glass = Zr fraction
    result = gen(spec, predict)
    assert result.counts["removed_by_p_glass"] == sum(1 for c in seen[0] if c.get("Zr", 0) < 0.55) > 0


def test_dmax_target_changes_the_ranking():
    spec = DesignSpec(targets={"tg_k": {"min": 690}}, min_p_glass=0.0, min_novelty=0.0, batch_size=50, n_draws=400,
                      kappa=0.0, novelty_weight=0.0)
    plain = [p.composition.formula for p in gen(spec, gfa_predict).picks]
    assert plain.index("Zr54Cu26Al12Ni8") < plain.index("Zr50Cu40Al10")  # Tg margin 0.9 vs 0
    spec.targets = {"tg_k": {"min": 690}, "dmax_mm": {"min": 3.0}}
    result = gen(spec, gfa_predict)
    ranked = [p.composition.formula for p in result.picks]
    assert ranked.index("Zr50Cu40Al10") < ranked.index("Zr54Cu26Al12Ni8")  # 20 mm beats 3.1 mm
    top = result.picks[ranked.index("Zr50Cu40Al10")]
    assert top.terms["margin_dmax_mm"] == pytest.approx(math.log10(20 / 3) / 0.5)
    assert top.score == pytest.approx(np.tanh(0.0) + np.tanh(math.log10(20 / 3) / 0.5))


def test_dmax_target_uses_the_interval():
    """The optimistic Dmax is the median moved κ/1.2816 of the way (in log) to the interval's end."""
    pred = {"dmax_mm": np.array([2.5, 2.5, 2.5, np.nan]), "dmax_low_mm": np.array([1.0, 2.4, 1.0, np.nan]),
            "dmax_high_mm": np.array([8.0, 2.6, 8.0, np.nan])}
    m = dmax_margin(pred, {"min": 3.0}, 4, kappa=1.0)
    assert m[0] == pytest.approx((math.log10(2.5) + math.log10(8 / 2.5) / Z80 - math.log10(3)) / 0.5)
    assert m[0] > 0 > m[1]  # a wide interval reaches 3 mm, a narrow one does not
    assert np.isnan(m[3])  # unknown stays unknown
    assert dmax_margin(pred, {"min": 3.0}, 4, kappa=0.0)[0] < 0  # κ = 0: the median must meet it
    assert dmax_margin(pred, {"min": 3.0}, 4, kappa=Z80)[0] == pytest.approx((math.log10(8) - math.log10(3)) / 0.5)
    # A maximum counts from the low end.
    assert dmax_margin(pred, {"max": 2.0}, 4, kappa=Z80)[0] == pytest.approx((math.log10(2) - math.log10(1)) / 0.5)


def test_dmax_miss_is_dropped_and_counted_a_wide_interval_kept():
    wide, narrow = "Zr57Cu28Al10Ni5", "Zr65Cu15Al10Ni10"
    table = {wide: (2.5, 1.0, 8.0), narrow: (2.5, 2.4, 2.6)}

    def predict(comps):
        out = gfa_predict(comps)
        for i, c in enumerate(comps):
            out["dmax_mm"][i], out["dmax_low_mm"][i], out["dmax_high_mm"][i] = table.get(c.formula, (5.0, 4.0, 7.0))
        return out

    spec = DesignSpec(targets={"dmax_mm": {"min": 3.0}}, min_p_glass=0.0, min_novelty=0.0, batch_size=50,
                      n_draws=400, kappa=1.0)
    result = gen(spec, predict)
    picked = {p.composition.formula for p in result.picks}
    assert wide in picked and narrow not in picked
    assert result.counts["removed_by_dmax"] == 1
    assert result.counts["meet_targets_on_mean"] == result.counts["meet_targets"] - 1  # the wide one, optimistically


def test_a_dmax_only_campaign_runs():
    """Dmax alone is a target: it does not condition the CGAN, it filters and ranks."""
    spec = DesignSpec(targets={"dmax_mm": {"min": 10}}, min_p_glass=0.0, min_novelty=0.0, batch_size=50, n_draws=400,
                      kappa=0.0)
    result = gen(spec, gfa_predict)
    assert [p.composition.formula for p in result.picks] == ["Zr50Cu40Al10"]  # the only one at 20 mm
    cond, inside = generation.draw_conditions(TRAIN_Y, spec.targets, 10, np.random.default_rng(0))
    assert inside and cond.shape == (10, 3)


def test_without_a_gfa_model_the_filters_are_noted_not_silent():
    spec = DesignSpec(targets={"tg_k": {"min": 600}, "dmax_mm": {"min": 3.0}}, min_p_glass=0.5, min_p_bmg=0.3,
                      min_novelty=0.0, batch_size=50, n_draws=400)
    predict, seen = recording(old_bundle_predict)
    result = gen(spec, predict)
    assert result.picks  # not everything dropped
    assert len(result.picks) == result.counts["meet_all"] == result.counts["scored"] == len(seen[0])
    assert result.counts["gfa_unknown"] == len(seen[0])
    assert result.counts["removed_by_p_glass"] == result.counts["removed_by_p_bmg"] == result.counts["removed_by_dmax"] == 0
    (note,) = result.notes
    assert "Not checked: P(glass) ≥ 0.5, P(BMG) ≥ 0.3 and the Dmax target" in note
    assert "no glass-forming-ability prediction for any draw" in note
    assert all(math.isnan(p.predictions["p_glass"]) for p in result.picks)
    assert all("margin_dmax_mm" not in p.terms for p in result.picks)


def test_no_note_when_the_campaign_asks_nothing_of_the_gfa_model():
    spec = DesignSpec(targets={"tg_k": {"min": 600}}, min_p_glass=0.0, min_novelty=0.0, batch_size=5, n_draws=400)
    assert not gen(spec, old_bundle_predict).notes


# ------------------------------------------------------------------ the round through the services


@pytest.fixture
def fake_model(monkeypatch, db):
    """An active version whose 'bundle' is the fakes above (training.bundles' functions patched)."""
    from training import bundles, snapshots

    version = ModelVersion.objects.create(artefact_dir="none", snapshot_hash="0" * 64, snapshot_taken_at=timezone.now(),
                                          status=ModelVersion.Status.ACTIVE)
    state = SimpleNamespace(predict=gfa_predict)
    monkeypatch.setattr(bundles, "active_version_and_bundle", lambda: (version, object()))
    monkeypatch.setattr(bundles, "training_compositions", lambda bundle: [parse_composition("Zr60Cu20Al10Ni10")])
    monkeypatch.setattr(bundles, "sample", lambda bundle, conditions, seed: fake_sample(conditions, seed))
    monkeypatch.setattr(bundles, "predict", lambda bundle, comps: state.predict(comps))
    monkeypatch.setattr(bundles, "contributions", fake_contributions, raising=False)
    monkeypatch.setattr(snapshots, "version_training_data", lambda v: SimpleNamespace(y=TRAIN_Y, compositions=None))
    return state


def _round(campaign):
    r = services.run_generation(services.create_round(campaign).pk, seed=1)
    assert r.status == GenerationRound.Status.DONE, r.error
    return r


def test_round_stores_gfa_predictions_and_contributions(fake_model, campaign_factory):
    campaign = campaign_factory(targets={"tg_k": {"min": 600}, "dmax_mm": {"min": 3}}, min_p_bmg=0.5, min_novelty=0.0)
    r = _round(campaign)
    stored = list(r.candidates.all())
    assert stored
    for c in stored:
        assert c.p_glass == 0.9 and c.p_bmg >= 0.5
        assert c.dmax_mm_pred is not None and c.dmax_low_mm <= c.dmax_mm_pred <= c.dmax_high_mm
        assert c.contributions["p_bmg"] == [["Trg_pred", 0.3], ["mixing_enthalpy", -0.12]]  # NaN left out
    assert r.counts["removed_by_p_bmg"] > 0 and "notes" not in r.counts
    assert "not applied" not in r.message


def test_round_without_gfa_model_says_so(fake_model, campaign_factory, monkeypatch):
    from training import bundles

    fake_model.predict = old_bundle_predict
    monkeypatch.setattr(bundles, "contributions", lambda bundle, comps, top=5: [{} for _ in comps])
    campaign = campaign_factory(targets={"tg_k": {"min": 600}, "dmax_mm": {"min": 3}}, min_p_glass=0.5, min_novelty=0.0)
    r = _round(campaign)
    assert r.candidates.exists()
    assert all(c.p_glass is None and c.p_bmg is None and c.dmax_mm_pred is None and c.contributions == {}
               for c in r.candidates.all())
    assert "filters not applied: the model has no glass-forming-ability prediction" in r.message
    assert len(r.message) <= 255
    assert "Not checked: P(glass) ≥ 0.5 and the Dmax target" in r.counts["notes"][0]


def test_round_without_the_contributions_function(fake_model, campaign_factory, monkeypatch):
    from training import bundles

    monkeypatch.delattr(bundles, "contributions", raising=False)
    r = _round(campaign_factory(min_novelty=0.0, targets={"tg_k": {"min": 600}}))
    assert r.candidates.exists() and all(c.contributions == {} for c in r.candidates.all())


def test_campaign_page_notes_the_unchecked_filters(fake_model, campaign_factory, approver_client):
    fake_model.predict = old_bundle_predict
    campaign = campaign_factory(min_p_glass=0.5, min_novelty=0.0, targets={"tg_k": {"min": 600}})
    _round(campaign)
    page = approver_client.get(campaign.get_absolute_url()).content.decode()
    assert "Not checked: P(glass) ≥ 0.5" in page and 'id="gfa-filter-counts"' in page
    assert f'title="Unknown: {NO_GFA_MODEL}"' in page


# ------------------------------------------------------------------ pages


def test_candidate_page_shows_gfa_values_and_why(campaign_factory, approver_client):
    c = make_candidate(campaign_factory())
    Candidate.objects.filter(pk=c.pk).update(
        p_glass=0.93, p_bmg=0.71, dmax_mm_pred=3.2, dmax_low_mm=1.1, dmax_high_mm=7.5,
        contributions={"p_bmg": [["mixing_enthalpy", -0.12], ["Trg_pred", 0.3]], "dmax_mm": [["Zr_fraction", 1.4]]},
    )
    page = approver_client.get(c.get_absolute_url()).content.decode()
    assert "Dmax 3.2 mm (80 % interval 1.1–7.5 mm)" in page
    assert "0.93" in page and "0.71" in page and "P(BMG) (rod ≥ 1 mm)" in page
    why = page[page.index('id="why"'):page.index('id="comparison"')]
    assert why.index("Trg_pred") < why.index("mixing_enthalpy")  # largest first
    assert "<code>Trg_pred</code> raises P(BMG) by 0.300" in why
    assert "<code>mixing_enthalpy</code> lowers P(BMG) by 0.120" in why
    assert "<code>Zr_fraction</code> raises Dmax by 1.400" in why
    assert 'id="why-p_bmg"' in why and 'id="why-dmax_mm"' in why and "<rect" in why
    campaign_page = approver_client.get(c.campaign.get_absolute_url()).content.decode()
    assert ">P(BMG)</a>" in campaign_page and ">Dmax (mm)</a>" in campaign_page
    row = campaign_page[campaign_page.index(f'id="candidate-{c.pk}"'):]
    assert "0.71" in row and "3.2" in row and "1.1–7.5" in row


def test_candidate_page_without_gfa_model(campaign_factory, approver_client):
    c = make_candidate(campaign_factory())
    Candidate.objects.filter(pk=c.pk).update(p_glass=None)
    page = approver_client.get(c.get_absolute_url()).content.decode()
    assert f'title="Unknown: {NO_GFA_MODEL}">—</span>' in page
    assert f'title="Dmax unknown: {NO_GFA_MODEL}">—</span>' in page
    assert f"No contributions: {NO_GFA_MODEL}." in page
    campaign_page = approver_client.get(c.campaign.get_absolute_url()).content.decode()
    assert campaign_page.count(f'title="Unknown: {NO_GFA_MODEL}"') >= 2  # P(glass) and P(BMG) cells


def test_contribution_labels_are_escaped(campaign_factory, approver_client):
    c = make_candidate(campaign_factory())
    Candidate.objects.filter(pk=c.pk).update(contributions={"p_glass": [["<script>x</script>", 0.2]]})
    page = approver_client.get(c.get_absolute_url()).content.decode()
    assert "<script>x</script>" not in page and "&lt;script&gt;x&lt;/script&gt;" in page


def test_sort_by_p_bmg_puts_unknown_last(campaign_factory, approver_client):
    campaign = campaign_factory()
    a = make_candidate(campaign, "Zr55Cu25Al12Ni8", 1)
    b = make_candidate(campaign, "Zr60Cu20Al12Ni8", 2)
    d = make_candidate(campaign, "Zr58Cu22Al12Ni8", 3)
    Candidate.objects.filter(pk=a.pk).update(p_bmg=0.2, dmax_mm_pred=1.0)
    Candidate.objects.filter(pk=b.pk).update(p_bmg=0.8, dmax_mm_pred=9.0)
    for sort in ("p_bmg", "dmax"):
        page = approver_client.get(campaign.get_absolute_url() + f"?sort={sort}").content.decode()
        assert page.index(f'id="candidate-{b.pk}"') < page.index(f'id="candidate-{a.pk}"') < page.index(f'id="candidate-{d.pk}"')


def test_approval_notes_carry_the_gfa_prediction(campaign_factory, approver):
    c = make_candidate(campaign_factory())
    Candidate.objects.filter(pk=c.pk).update(p_bmg=0.71, dmax_mm_pred=3.2, dmax_low_mm=1.1, dmax_high_mm=7.5)
    c = services.approve_candidate(Candidate.objects.get(pk=c.pk), user=approver)
    assert "P(glass) 0.90, P(BMG) 0.71, Dmax 3.2 mm (80 % interval 1.1–7.5 mm)" in c.sample.notes
    # and a candidate without any GFA value approves too
    other = make_candidate(c.campaign, "Zr60Cu20Al12Ni8", 2)
    Candidate.objects.filter(pk=other.pk).update(p_glass=None)
    assert "P(glass)" not in services.approve_candidate(Candidate.objects.get(pk=other.pk), user=approver).sample.notes
