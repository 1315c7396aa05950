"""design.generation on its own: constraints, dedupe, novelty, thresholds, the acquisition formula.

The sampler and predictor here are small deterministic functions (not the ML models), so each
rule can be checked exactly; the real models run in test_loop.py.
"""

import numpy as np
import pytest

from design import generation
from design.generation import DesignSpec, acquisition, constraint_mask, draw_conditions, generate
from ml.composition import parse_composition

POOL = [
    "Zr60Cu20Al10Ni10", "Zr57Cu28Al10Ni5", "Zr50Cu40Al10", "Zr65Cu15Al10Ni10", "Zr45Cu45Al10",
    "Cu50Zr40Al10", "Zr60Cu20Al10Be10", "Zr52Cu28Al10Ni5Ti5", "Zr70Cu10Al10Ni10", "Zr58Cu22Al12Ni8",
    "Zr62Cu18Al12Ni8", "Zr54Cu26Al12Ni8",
]


def fake_sample(conditions, seed):
    rng = np.random.default_rng(seed)
    return [parse_composition(POOL[i]) for i in rng.integers(0, len(POOL), len(conditions))]


def fake_predict(comps):
    """Tg grows with Al and Ni, falls with Zr; std grows with Ni (a made-up smooth law)."""
    zr = np.array([c.get("Zr", 0) for c in comps])
    al = np.array([c.get("Al", 0) for c in comps])
    ni = np.array([c.get("Ni", 0) for c in comps])
    tg = 700 + 400 * al + 300 * ni - 100 * zr
    tx = tg + 60
    tl = 1150 - 200 * al + 0 * ni
    return {
        "tg_k": tg, "tg_k_std": 5 + 50 * ni, "tx_k": tx, "tx_k_std": np.full(len(comps), 5.0),
        "tl_k": tl, "tl_k_std": np.full(len(comps), 5.0), "trg": tg / tl, "gamma": tx / (tg + tl),
        "delta_tx_k": tx - tg, "p_glass": np.clip(zr, 0, 1),
    }


TRAIN_Y = np.array([[680, 750, 1120], [700, 770, 1130], [660, 720, 1110], [720, 790, 1150], [690, 760, 1125]], dtype=float)
KNOWN = [dict(parse_composition("Zr60Cu20Al10Ni10"))]


def run(spec, **kw):
    return generate(spec, sample=fake_sample, predict=fake_predict, train_y=TRAIN_Y, known=KNOWN,
                    known_keys={parse_composition("Zr60Cu20Al10Ni10").key}, seed=0, **kw)


def test_constraints_dedupe_and_thresholds():
    spec = DesignSpec(targets={"tg_k": {"min": 600}}, base_element="Zr", forbidden_elements=("Be",), max_elements=4,
                      element_ranges={"Zr": (50, 65)}, min_p_glass=0.52, min_novelty=0.02, batch_size=20, n_draws=400)
    result = run(spec)
    formulas = {p.composition.formula for p in result.picks}
    assert formulas  # something passes
    for p in result.picks:
        c = p.composition
        assert c.base_element == "Zr" and "Be" not in c and len(c) <= 4
        assert 0.50 <= c["Zr"] <= 0.65
        assert p.predictions["p_glass"] >= 0.52
        assert p.nearest_distance >= 0.02
    assert "Zr60Cu20Al10Ni10" not in formulas  # known alloy
    assert "Cu50Zr40Al10" not in formulas and "Zr52Cu28Al10Ni5Ti5" not in formulas  # base, element count
    assert len(formulas) == len(result.picks)
    c = result.counts
    assert c["draws"] == 400 and c["unique"] <= len(POOL)
    assert c["meet_element_constraints"] <= c["unique"] and c["novel"] <= c["not_known_or_proposed"]


def test_earlier_candidates_are_not_proposed_again():
    spec = DesignSpec(targets={"tg_k": {"min": 600}}, min_p_glass=0.0, min_novelty=0.0, batch_size=50, n_draws=400)
    earlier = {parse_composition(f).key for f in POOL[1:6]}
    result = run(spec, earlier_keys=earlier)
    assert not {p.composition.key for p in result.picks} & earlier


def test_targets_drop_what_misses_on_the_mean_prediction_with_kappa_zero():
    spec = DesignSpec(targets={"tg_k": {"min": 700}, "trg": {"max": 0.65}}, min_p_glass=0.0, min_novelty=0.0,
                      batch_size=50, n_draws=400, kappa=0.0)
    pred_all = fake_predict([parse_composition(f) for f in POOL])
    result = run(spec)
    for p in result.picks:
        assert p.predictions["tg_k"] >= 700 and p.predictions["trg"] <= 0.65
    expected = {POOL[i] for i in range(len(POOL)) if pred_all["tg_k"][i] >= 700 and pred_all["trg"][i] <= 0.65}
    picked = {p.composition.formula for p in result.picks}
    assert picked <= {parse_composition(f).formula for f in expected}


def test_targets_drop_what_misses_even_optimistically():
    """κ = 1: a miss within one σ is kept (the model is unsure), a miss beyond it is dropped."""
    spec = DesignSpec(targets={"tg_k": {"min": 700}}, min_p_glass=0.0, min_novelty=0.0, batch_size=50, n_draws=400, kappa=1.0)
    comps = [parse_composition(f) for f in POOL]
    pred = fake_predict(comps)
    result = run(spec)
    picked = {p.composition.formula for p in result.picks}
    for c, mu, sd in zip(comps, pred["tg_k"], pred["tg_k_std"]):
        if mu + sd < 700:
            assert c.formula not in picked
    assert any(p.predictions["tg_k"] < 700 for p in result.picks)  # an optimistic one made it
    assert result.counts["meet_targets"] >= result.counts["meet_targets_on_mean"]


def test_acquisition_formula():
    pred = {"tg_k": np.array([700.0, 700.0, 650.0]), "tg_k_std": np.array([0.0, 10.0, 0.0])}
    scales = {"tg_k": 20.0}
    score, margins = acquisition(pred, {"tg_k": {"min": 690}}, scales, np.array([0.1, 0.1, 0.5]), kappa=1.0, novelty_weight=2.0)
    # m = (μ + κσ − min)/s; A = tanh(m) + λ·min(d, 0.15)
    assert margins["tg_k"] == pytest.approx([0.5, 1.0, -2.0])
    assert score == pytest.approx([np.tanh(0.5) + 0.2, np.tanh(1.0) + 0.2, np.tanh(-2.0) + 0.3])
    # a maximum counts from the other side: (max − (μ − κσ))/s
    _, m = acquisition({"trg": np.array([0.60]), "trg_std": np.array([0.01])}, {"trg": {"max": 0.62}}, {"trg": 0.02},
                       np.array([0.0]), kappa=2.0, novelty_weight=0.0)
    assert m["trg"] == pytest.approx([2.0])  # (0.62 − 0.58)/0.02


def test_ranking_follows_the_score_and_batch_is_diverse():
    spec = DesignSpec(targets={"tg_k": {"min": 600}}, min_p_glass=0.0, min_novelty=0.0, batch_size=50, n_draws=400)
    result = run(spec)
    scores = [p.score for p in result.picks]
    assert scores == sorted(scores, reverse=True)
    X = generation.fractions_matrix([p.composition for p in result.picks], sorted({e for f in POOL for e in parse_composition(f)}))
    for i in range(len(X)):
        for j in range(i):
            assert np.abs(X[i] - X[j]).sum() >= generation.BATCH_MIN_SEPARATION


def test_conditions_lie_in_the_target_region():
    rng = np.random.default_rng(0)
    cond, inside = draw_conditions(TRAIN_Y, {"tg_k": {"min": 700}, "trg": {"min": 0.6}}, 500, rng)
    assert inside and cond.shape == (500, 3)
    assert (cond[:, 0] >= 700).all() and (cond[:, 0] / cond[:, 2] >= 0.6).all()
    assert ((cond[:, 0] < cond[:, 1]) & (cond[:, 1] < cond[:, 2])).all()
    # A region beyond the data: the closest draws are used, and it says so.
    cond, inside = draw_conditions(TRAIN_Y, {"tg_k": {"min": 5000}}, 100, rng)
    assert not inside and len(cond) == 100


def test_constraint_mask_allowed_elements_and_ranges():
    comps = [parse_composition(f) for f in ("Zr60Cu20Al10Ni10", "Zr60Cu30Al10", "Zr40Cu40Al20")]
    spec = DesignSpec(targets={"tg_k": {"min": 1}}, allowed_elements=("Zr", "Cu", "Al"), element_ranges={"Al": (5, 15)})
    assert constraint_mask(comps, spec).tolist() == [False, True, False]


def test_short_batch_filled_with_marked_near_misses_only_when_asked():
    spec = DesignSpec(targets={"tg_k": {"min": 740}}, min_p_glass=0.0, min_novelty=0.0, batch_size=6, n_draws=400, kappa=0.0)
    strict = run(spec)
    spec.fill_with_near_misses = True
    filled = run(spec)
    met = [p for p in filled.picks if not p.terms.get("near_miss")]
    near = [p for p in filled.picks if p.terms.get("near_miss")]
    assert len(filled.picks) > len(strict.picks) and near
    assert {p.composition.key for p in met} == {p.composition.key for p in strict.picks}
    assert all(p.predictions["tg_k"] < 740 for p in near) and all(p.predictions["tg_k"] >= 740 for p in met)
    assert filled.picks[: len(met)] == met  # the ones that meet the target come first
    assert filled.counts["near_misses"] == len(near)
