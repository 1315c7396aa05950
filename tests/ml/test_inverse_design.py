import numpy as np
import pytest

from ml.inverse_design import TargetError, TrainingReference, make_target, parse_target, relative_errors

VOCAB = ["Al", "B", "Cu", "Fe", "Ni", "Si", "Ti", "Zr", "Co", "Nb"]


def frac(**kw):
    row = np.zeros(len(VOCAB))
    for el, x in kw.items():
        row[VOCAB.index(el)] = x / 100
    return row


@pytest.fixture
def ref():
    X = np.vstack([frac(Zr=50, Cu=40, Al=10), frac(Fe=80, B=20), frac(Zr=60, Cu=25, Al=10, Ni=5)])
    return TrainingReference(VOCAB, X, ["Zr50Cu40Al10", "Fe80B20", "Zr60Cu25Al10Ni5"])


def test_plausibility_rules(ref):
    F = np.vstack([
        frac(Zr=55, Cu=35, Al=10),          # pairs seen together: plausible
        frac(Zr=50, Fe=50),                 # Zr–Fe never together in training
        frac(Zr=55, Cu=35, Al=8, Fe=2),     # Fe minor (< 5 at.%): pairs of MAJOR elements only
        frac(Zr=100),                       # one element
        frac(Zr=30, Cu=20, Al=10, Ni=10, Fe=8, B=8, Si=6, Ti=5, Co=3),  # 9 elements
    ])
    np.testing.assert_array_equal(ref.plausible(F), [True, False, True, False, False])


def test_nearest_and_novelty_threshold(ref):
    F = np.vstack([frac(Zr=50, Cu=40, Al=10), frac(Zr=51, Cu=39, Al=10), frac(Zr=53, Cu=37, Al=10)])
    dist, idx = ref.nearest(F)
    np.testing.assert_allclose(dist, [0.0, 0.02, 0.06], atol=1e-12)
    assert list(idx) == [0, 0, 0]
    assert list(dist > 0.05) == [False, False, True]


def test_parse_target_and_errors():
    t = parse_target("Tg=680, Tx=760,Tl=1120")
    np.testing.assert_allclose(t.midpoints(), [680, 760, 1120])
    r = parse_target("tg=650-700,Tx=760,Tl_K=1120")
    assert r.values["Tg"] == (650.0, 700.0)
    for bad in ["", "Tg=680,Tx=760", "Tg=abc,Tx=1,Tl=2", "Tg=680;Tx=760;Tl=1120", "Tg=800,Tx=760,Tl=1120",
                "Tg=680,Tg=690,Tx=760,Tl=1120"]:
        with pytest.raises(TargetError):
            parse_target(bad)
    with pytest.raises(TargetError):
        make_target({"Tg": 10, "Tx": 20, "Tl": 30})


def test_relative_errors_values_and_ranges():
    t = make_target({"Tg": (650, 700), "Tx": 760, "Tl": 1120})
    pred = {"tg_k": np.array([640.0, 680.0]), "tx_k": np.array([760.0, 798.0]), "tl_k": np.array([1120.0, 1064.0])}
    err = relative_errors(pred, t)
    np.testing.assert_allclose(err, [[10 / 650, 0, 0], [0, 0.05, 0.05]])


def test_chemistry_guard_drops_unseen_major_pairs_and_excess_elements(ref):
    F = np.vstack([
        frac(Zr=55, Cu=35, Al=10),                      # already plausible: untouched
        frac(Zr=50, Cu=30, Fe=20),                      # Fe never with Zr: Fe dropped
        frac(Zr=30, Cu=20, Al=10, Ni=10, Si=8, Ti=8, Co=6, Nb=5, B=3),  # 9 elements, unseen pairs
        frac(Zr=60, Fe=40),                             # only Zr is left: not repairable
        frac(Zr=55, Cu=37, Fe=4.6, Al=3.4),             # Fe minor (< 5 at.%): kept
    ])
    G, changed = ref.repair(F)
    assert list(changed) == [False, True, True, True, False]
    np.testing.assert_array_equal(G[0], F[0])
    np.testing.assert_array_equal(G[4], F[4])
    np.testing.assert_allclose(G[1], frac(Zr=62.5, Cu=37.5))  # renormalised over what is kept
    assert ref.plausible(G[:3]).all()
    assert not ref.plausible(G[3:4]).any()  # one element: discarded by the sampler
    assert np.allclose(G.sum(axis=1), 1.0)
    # nothing is ever added: the guard only removes elements
    assert not ((G > 0) & (F == 0)).any()


class _StubGenerator:
    """Emits a fixed cycle of rows, so the top-up rounds can be checked exactly."""

    conditional = False

    def __init__(self, rows):
        self.rows = np.vstack(rows)
        self.vocabulary_ = VOCAB
        self.calls = 0

    def raw_fractions(self, n, conditions=None, seed=0, sharpen=None):
        self.calls += 1
        start = self.calls * 7
        return self.rows[(np.arange(n) + start) % len(self.rows)]


def test_generate_fractions_tops_up_to_distinct_guarded_rows(ref):
    from ml.inverse_design import generate_fractions

    rows = [frac(Zr=50 + i, Cu=40 - i, Al=10) for i in range(30)] + [frac(Zr=60, Fe=40)] * 10
    gen = _StubGenerator(rows)
    F, stats = generate_fractions(gen, ref, lambda m, rnd: None, 25, seed=0)
    assert len(F) == 25
    assert len(np.unique(np.rint(F * 1000), axis=0)) == 25
    assert ref.plausible(F).all()
    assert gen.calls >= 2  # the first 25 draws held repeats and unrepairable rows
    assert stats["draws"] > 25 and stats["network_plausible"] < 1.0
    # a generator with fewer distinct outputs than asked stops after max_rounds, short
    gen = _StubGenerator(rows[:5])
    F, stats = generate_fractions(gen, ref, lambda m, rnd: None, 25, seed=0, max_rounds=3)
    assert len(F) == 5 and gen.calls == 3 and stats["distinct"] == 5
