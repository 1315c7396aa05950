"""Issue 15: the CGAN's GFA condition (class / Dmax columns, unknown temperatures masked), the
real-neighbour anchors, the vectorised chemistry guard and the grid fast path of to_compositions."""

import os

import numpy as np
import pytest

from ml.composition import Composition
from ml.gan import CGAN, GAN, GFA_CONDITION_COLUMNS, postprocess_fractions, to_compositions
from ml.inverse_design import TrainingReference, generate_fractions

VOCAB = ["Zr", "Cu", "Al", "Ni", "Pd", "P", "Fe", "B"]
TINY = dict(hidden=16, batch_size=16, noise_dim=4)


def table(seed=0):
    """40 rows with temperatures (Zr–Cu–Al–Ni) and 40 GFA-only rows (Pd–P BMGs, Fe–B crystals)."""
    rng = np.random.default_rng(seed)
    X = np.zeros((80, len(VOCAB)))
    X[:40, :4] = rng.dirichlet(np.ones(4), 40)
    X[40:60, 4:6] = rng.dirichlet(np.ones(2) * 3, 20)
    X[60:, 6:] = rng.dirichlet(np.ones(2) * 3, 20)
    X = postprocess_fractions(X)
    y = np.full((80, 3), np.nan)
    y[:40] = np.column_stack([600 + 100 * X[:40, 0], 700 + 100 * X[:40, 0], 1100 + 100 * X[:40, 1]])
    gfa = {"glass": np.r_[np.full(40, np.nan), np.ones(20), np.zeros(20)],
           "bmg": np.r_[np.full(40, np.nan), np.ones(20), np.zeros(20)],
           "dmax_mm": np.r_[np.full(40, np.nan), np.geomspace(1, 30, 20), np.full(20, np.nan)]}
    return X, y, gfa


@pytest.fixture(scope="module")
def gfa_cgan():
    X, y, gfa = table()
    return CGAN(vocabulary=VOCAB, epochs=4, seed=1, gfa_condition=True, **TINY).fit(X, y, gfa=gfa), (X, y, gfa)


def test_condition_matrix_masks_what_is_unknown(gfa_cgan):
    g, _ = gfa_cgan
    assert g.cond_dim == 3 + len(GFA_CONDITION_COLUMNS)
    C = g.condition_matrix(np.array([[650.0, 720.0, 1150.0], [np.nan, np.nan, np.nan]]))
    col = {name: 3 + j for j, name in enumerate(GFA_CONDITION_COLUMNS)}
    # a row with temperatures and nothing else: a glass of unknown castability
    assert C[0, col["thermal_known"]] == 1 and C[0, col["glass"]] == 1 and C[0, col["glass_known"]] == 1
    assert C[0, col["bmg_known"]] == 0 and C[0, col["dmax_known"]] == 0 and C[0, col["log_dmax"]] == 0
    # unknown temperatures: zeros (the training mean) and the mask off
    assert (C[1, :3] == 0).all() and C[1, col["thermal_known"]] == 0
    ask = g.condition_matrix(np.array([[650.0, 720.0, 1150.0, 1.0, 1.0, 10.0]]))
    assert ask[0, col["bmg"]] == 1 and ask[0, col["bmg_known"]] == 1 and ask[0, col["dmax_known"]] == 1
    expected = (np.log10(10.0) - g.dmax_log_mean_) / g.dmax_log_std_
    assert ask[0, col["log_dmax"]] == pytest.approx(expected)


def test_gfa_cgan_trains_on_rows_without_temperatures_and_round_trips(gfa_cgan, tmp_path):
    g, (X, y, gfa) = gfa_cgan
    ask = np.array([[650.0, 720.0, 1150.0, 1.0, 1.0, 5.0]])
    F = g.sample_fractions(6, ask, seed=2)
    assert F.shape == (6, len(VOCAB)) and np.allclose(F.sum(axis=1), 1)
    g.save(str(tmp_path / "c.pt"))
    again = GAN.from_state(g.state(), str(tmp_path / "c.pt"))
    assert again.gfa_condition and again.dmax_log_mean_ == pytest.approx(g.dmax_log_mean_)
    np.testing.assert_array_equal(again.raw_fractions(5, ask, seed=3), g.raw_fractions(5, ask, seed=3))
    # the GFA columns change what is drawn
    assert not np.array_equal(g.raw_fractions(5, ask[:, :3], seed=3), g.raw_fractions(5, ask, seed=3))


def test_plain_cgan_refuses_unknown_temperatures_and_ignores_gfa_columns():
    X, y, gfa = table()
    with pytest.raises(ValueError, match="finite"):
        CGAN(vocabulary=VOCAB, epochs=1, **TINY).fit(X, y)
    g = CGAN(vocabulary=VOCAB, epochs=2, seed=0, **TINY).fit(X[:40], y[:40])
    state = g.state()
    assert "gfa_cond" not in state and state["config"]["gfa_condition"] is False
    three = g.raw_fractions(4, [[650.0, 720.0, 1150.0]], seed=5)
    six = g.raw_fractions(4, [[650.0, 720.0, 1150.0, 1.0, 1.0, 8.0]], seed=5)
    np.testing.assert_array_equal(three, six)


def test_state_written_before_the_gfa_condition_loads(tmp_path):
    X, y, _ = table()
    g = CGAN(vocabulary=VOCAB, epochs=2, seed=0, **TINY).fit(X[:40], y[:40])
    g.save(str(tmp_path / "c.pt"))
    state = g.state()
    for key in ("gfa_condition", "thermal_share"):  # as the code before issue 15 wrote it
        del state["config"][key]
    old = GAN.from_state(state, str(tmp_path / "c.pt"))
    assert old.gfa_condition is False and old.cond_dim == 3
    np.testing.assert_array_equal(old.raw_fractions(3, [[650.0, 720.0, 1150.0]], seed=1),
                                  g.raw_fractions(3, [[650.0, 720.0, 1150.0]], seed=1))


def test_gfa_condition_batches_hold_the_thermal_share():
    """One epoch passes over the rows with temperatures once, whatever the size of the GFA table."""
    X, y, gfa = table()
    seen = []
    g = CGAN(vocabulary=VOCAB, epochs=1, seed=0, gfa_condition=True, thermal_share=0.5, **TINY)
    g.fit(X, y, gfa=gfa, callback=lambda *a: seen.append(a))
    assert len(seen) == 1
    with pytest.raises(ValueError, match="thermal_share"):
        CGAN(vocabulary=VOCAB, gfa_condition=True, thermal_share=0.0).fit(X, y, gfa=gfa)


# --------------------------------------------------------------------- guard, grid, anchors


def reference(seed=0, n=60, properties=True):
    rng = np.random.default_rng(seed)
    rows = np.zeros((n, len(VOCAB)))
    for i in range(n):
        fam = [0, 1, 2, 3] if i % 2 else [4, 5, 6, 7]
        k = rng.integers(2, 5)
        idx = rng.choice(fam, k, replace=False)
        rows[i, idx] = rng.dirichlet(np.ones(k))
    F = postprocess_fractions(rows)
    # the Pd–P–Fe–B family 500 K above the Zr–Cu–Al–Ni one: property neighbours share a family
    shift = 500.0 * (F[:, 4:].sum(axis=1) > 0)
    P = np.column_stack([600 + 200 * F[:, 0], 700 + 200 * F[:, 0] + 100 * F[:, 1], 1100 + 300 * F[:, 2]]) + shift[:, None] \
        if properties else None
    return TrainingReference(VOCAB, F, [str(i) for i in range(n)], properties=P)


def test_vectorised_guard_equals_the_row_by_row_guard():
    ref = reference()
    F = postprocess_fractions(np.random.default_rng(1).dirichlet(np.ones(len(VOCAB)) * 0.4, 2000))
    a, ca = ref.repair(F)
    b, cb = ref.repair_loop(F)
    assert ca.any() and not ca.all()
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ca, cb)
    assert ref.plausible(a[ca]).mean() > 0.9


def test_grid_rows_become_the_same_compositions_as_through_the_parser():
    F = postprocess_fractions(np.random.default_rng(2).dirichlet(np.ones(len(VOCAB)) * 0.5, 300))
    F[0] = 0
    F[0, :2] = [1 / 3, 2 / 3]  # off the grid: through from_fractions
    fast = to_compositions(F, VOCAB)
    slow = [Composition.from_fractions({VOCAB[j]: float(r[j]) for j in np.flatnonzero(r)}) for r in F]
    assert [(c.key, c.formula, dict(c)) for c in fast] == [(c.key, c.formula, dict(c)) for c in slow]


class Fixed:
    """A stand-in generator: every draw is the same composition (Zr50Cu50)."""

    conditional = True
    vocabulary_ = VOCAB

    def raw_fractions(self, n, conditions, seed=0, sharpen=None):
        row = np.zeros(len(VOCAB))
        row[0], row[1] = 0.5, 0.5
        return np.tile(row, (n, 1))


def test_anchors_pull_draws_towards_alloys_with_the_asked_properties():
    ref = reference()
    cond = np.tile(ref.properties[1], (50, 1))  # ask for the properties of training alloy 1 (Zr family)
    Z = (ref.properties - ref.properties.mean(0)) / (ref.properties.std(0) + 1e-9)
    near = np.argsort(((Z - Z[1]) ** 2).sum(axis=1))[:5]
    picked = ref.anchors(cond, np.random.default_rng(0))
    assert set(picked) <= set(near) and len(set(picked)) > 1  # one of the 5 nearest, at random
    F, stats = generate_fractions(Fixed(), ref, lambda m, r: cond[:m], 50, max_rounds=1, anchor=0.3)
    assert stats["anchor_mix"] == 0.3 and stats["anchored_draws"] == 50
    # every kept draw is 0.7 × one of the 5 nearest-property alloys + 0.3 × the network's draw
    mixes = postprocess_fractions(0.7 * ref.fractions[near] + 0.3 * Fixed().raw_fractions(5, None))
    assert len(F) > 1 and all(any(np.array_equal(row, m) for m in mixes) for row in F)
    F1, stats1 = generate_fractions(Fixed(), ref, lambda m, r: cond[:m], 50, max_rounds=1, anchor=1.0)
    assert stats1["anchor_mix"] is None and stats1["anchored_draws"] == 0
    # a reference without properties (an older bundle) samples unanchored
    old = reference(properties=False)
    _, stats2 = generate_fractions(Fixed(), old, lambda m, r: cond[:m], 50, max_rounds=1, anchor=0.3)
    assert stats2["anchor_mix"] is None


def test_generate_fractions_returns_the_condition_of_each_kept_row():
    ref = reference()
    cond = np.column_stack([np.linspace(600, 700, 40), np.linspace(700, 800, 40), np.full(40, 1200.0)])
    (F, C), _ = generate_fractions(Fixed(), ref, lambda m, r: cond[:m], 40, max_rounds=1, anchor=0.5,
                                   with_conditions=True)
    assert len(F) == len(C) and len(F) > 1
    assert all(any(np.array_equal(c, row) for row in cond) for c in C)


def test_gfa_condition_rows_leave_out_thermal_validation_and_unknown_elements():
    from ml.gfa import prepare_gfa
    from ml.pipeline import gfa_condition_rows

    rows = [
        {"composition": "Zr50Cu40Al10", "gfa_class": "BMG", "dmax_mm": "8"},
        {"composition": "Zr55Cu35Al10", "gfa_class": "BMG", "dmax_mm": ""},
        {"composition": "Cu60Zr40", "gfa_class": "Ribbon", "dmax_mm": "0.15"},
        {"composition": "Fe80B20", "gfa_class": "Crystal", "dmax_mm": "0"},
        {"composition": "Zr60Cu30Al10", "gfa_class": "BMG", "dmax_mm": "12"},  # a validation alloy
        {"composition": "Mg65Cu25Y10", "gfa_class": "BMG", "dmax_mm": "4"},  # Mg, Y outside the vocabulary
    ]
    data = prepare_gfa(rows)
    key = {c.formula: k for c, k in zip(data.compositions, data.keys)}
    vocab = ["Al", "B", "Cu", "Fe", "Zr"]
    out = gfa_condition_rows(data, [key["Zr50Cu40Al10"], "Zr45Cu45Al10"], vocab, exclude_keys=[key["Zr60Cu30Al10"]])
    assert list(out["thermal"]["bmg"][:1]) == [1.0] and out["thermal"]["dmax_mm"][0] == 8.0
    assert np.isnan(out["thermal"]["glass"][1])  # a thermal alloy the GFA table does not hold
    extra = sorted(Composition.from_fractions(dict(zip(vocab, r))).formula for r in out["fractions"])
    assert extra == ["Cu60Zr40", "Fe80B20", "Zr55Cu35Al10"]
    # Dmax only where measured as a point; the source's codes (0, 0.15 mm) are not values
    assert np.isnan(out["extra"]["dmax_mm"]).all()
    assert sorted(out["extra"]["glass"].tolist()) == [0.0, 1.0, 1.0]


def test_a_bulk_glass_ask_anchors_on_known_bmgs_with_the_asked_dmax():
    ref = reference(n=60)
    m = len(ref.fractions)
    bmg = np.where(np.arange(m) % 3 == 0, 1.0, np.where(np.arange(m) % 3 == 1, 0.0, np.nan))
    dmax = np.where(bmg == 1, np.linspace(1, 20, m), np.nan)
    lab = TrainingReference(VOCAB, ref.fractions, ref.formulas, properties=ref.properties, bmg=bmg, dmax_mm=dmax)
    cond = np.tile(ref.properties[1], (200, 1))
    rng = np.random.default_rng(0)
    plain = lab.anchors(cond, rng)
    assert not (bmg[plain] == 1).all()  # no ask: any alloy with the right temperatures
    ask = np.column_stack([cond, np.ones(200), np.ones(200), np.full(200, 5.0)])
    got = lab.anchors(ask, rng)
    assert (bmg[got] == 1).all() and (dmax[got] >= 5.0).all()
    # too few known BMGs reach the asked Dmax: the known BMGs; too few BMGs: everything
    deep = np.column_stack([cond, np.ones(200), np.ones(200), np.full(200, 19.5)])
    assert set(lab.anchor_pool(deep)) == set(np.flatnonzero(bmg == 1))
    few = TrainingReference(VOCAB, ref.fractions, ref.formulas, properties=ref.properties,
                            bmg=np.where(np.arange(m) < 3, 1.0, 0.0), dmax_mm=None)
    assert len(few.anchor_pool(ask)) == m
