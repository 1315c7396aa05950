import numpy as np
import pytest

from ml.composition import parse_composition
from ml.dataprep import grouped_split, prepare
from ml.gan import CGAN, GAN, fractions_matrix, postprocess_fractions
from tests.ml.fixtures import synthetic_rows

TINY = dict(hidden=32, batch_size=16, noise_dim=8)


@pytest.fixture(scope="module")
def data():
    p = prepare(synthetic_rows(60))
    vocab = sorted({e for c in p.compositions for e in c})
    X = fractions_matrix(p.compositions, vocab)
    tr, va = grouped_split(p.keys, 0.25, seed=0)
    return p, vocab, X, tr, va


@pytest.fixture(scope="module")
def cgan(data):
    p, vocab, X, tr, va = data
    g = CGAN(vocabulary=vocab, epochs=12, seed=3, val_every=4, **TINY)
    g.fit(X[tr], p.y[tr], validation=(X[va], p.y[va]))
    return g


def assert_valid(comps, F):
    for c, row in zip(comps, F):
        again = parse_composition(c.formula)  # round-trips through the parser
        assert again.key == c.key
        assert abs(sum(c.values()) - 1) < 1e-9
        assert min(c.values()) >= 0.005 - 1e-12
        for x in c.values():
            assert abs(x * 1000 - round(x * 1000)) < 1e-6  # 0.1 at.% grid
        assert abs(row.sum() - 1) < 1e-9


@pytest.mark.slow
def test_cgan_samples_are_valid_and_reproducible(cgan, data):
    p = data[0]
    cond = p.y[:5]
    F = cgan.sample_fractions(5, cond, seed=11)
    comps = cgan.sample(5, cond, seed=11)
    assert_valid(comps, F)
    again = cgan.sample(5, cond, seed=11)
    assert [c.formula for c in comps] == [c.formula for c in again]
    other = cgan.sample_fractions(5, cond, seed=12)
    assert not np.array_equal(F, other)


@pytest.mark.slow
def test_same_seed_same_training(data):
    p, vocab, X, tr, va = data
    a = CGAN(vocabulary=vocab, epochs=3, seed=5, **TINY).fit(X[tr], p.y[tr])
    b = CGAN(vocabulary=vocab, epochs=3, seed=5, **TINY).fit(X[tr], p.y[tr])
    np.testing.assert_array_equal(a.raw_fractions(8, p.y[:1], seed=1), b.raw_fractions(8, p.y[:1], seed=1))


@pytest.mark.slow
def test_callback_and_early_stopping_restore_best(data):
    p, vocab, X, tr, va = data
    calls = []
    g = CGAN(vocabulary=vocab, epochs=200, seed=0, val_every=1, patience=2, **TINY)
    g.fit(X[tr], p.y[tr], validation=(X[va], p.y[va]), callback=lambda *a: calls.append(a))
    h = g.history_
    assert h.stopped_early and h.epochs < 200
    assert [c[0] for c in calls] == list(range(1, h.epochs + 1))
    assert all(c[3] is not None for c in calls)  # val W every epoch here
    assert all(np.isfinite(c[1]) and np.isfinite(c[2]) for c in calls)
    best = min(c[3] for c in calls)
    assert h.best_val_wasserstein == pytest.approx(best)
    # the restored weights are the best ones: recomputing gives the best distance again
    assert g.validation_wasserstein(X[va], p.y[va], seed=g.seed + 7) == pytest.approx(best)


@pytest.mark.slow
@pytest.mark.parametrize("descriptors", ["CD1", "CD2"])
def test_descriptor_sets_for_the_discriminator(data, descriptors):
    p, vocab, X, tr, va = data
    g = CGAN(vocabulary=vocab, epochs=2, seed=0, descriptor_set=descriptors, **TINY).fit(X[tr], p.y[tr])
    assert_valid(g.sample(4, p.y[:1], seed=0), g.sample_fractions(4, p.y[:1], seed=0))


def test_unconditional_gan_and_condition_errors(data):
    p, vocab, X, tr, va = data
    g = GAN(vocabulary=vocab, epochs=2, seed=0, **TINY).fit(X[tr])
    assert len(g.sample(3, seed=0)) == 3
    c = CGAN(vocabulary=vocab, epochs=1, seed=0, condition="TrgGamma", **TINY).fit(X[tr], p.y[tr])
    assert len(c.sample(3, p.y[:1], seed=0)) == 3  # Tg, Tx, Tl converted to Trg, γ
    with pytest.raises(ValueError, match="conditions"):
        c.sample(3, seed=0)
    with pytest.raises(ValueError, match="conditions"):
        CGAN(vocabulary=vocab, epochs=1).fit(X[tr])
    with pytest.raises(ValueError, match="descriptor set"):
        CGAN(vocabulary=vocab, descriptor_set="D9").fit(X[tr], p.y[tr])  # checked by fit, not __init__


def test_postprocess_drops_tiny_amounts_and_rounds_exactly():
    F = np.array([[0.6004, 0.3951, 0.004, 0.0005], [0.333333, 0.333333, 0.333334, 0.0]])
    out = postprocess_fractions(F)
    np.testing.assert_allclose(out.sum(1), 1.0)
    assert out[0, 2] == 0 and out[0, 3] == 0
    assert np.all(np.abs(out * 1000 - np.round(out * 1000)) < 1e-9)
    assert sorted(np.round(out[1] * 1000)) == [0, 333, 333, 334]


def test_save_and_restore_sampler(cgan, data, tmp_path):
    p = data[0]
    path = str(tmp_path / "g.pt")
    cgan.save(path)
    again = GAN.from_state(cgan.state(), path)
    assert isinstance(again, CGAN)
    np.testing.assert_array_equal(cgan.sample_fractions(6, p.y[:1], seed=2), again.sample_fractions(6, p.y[:1], seed=2))


def test_ema_sampler_and_validation_sample_count(data):
    p, vocab, X, tr, va = data
    plain = CGAN(vocabulary=vocab, epochs=3, seed=5, ema=0.0, **TINY).fit(X[tr], p.y[tr])
    ema = CGAN(vocabulary=vocab, epochs=3, seed=5, ema=0.9, **TINY).fit(X[tr], p.y[tr])
    # same seed and data: only the sampler's weights (moving average) differ
    assert not np.allclose(plain.raw_fractions(8, p.y[:1], seed=1), ema.raw_fractions(8, p.y[:1], seed=1))
    assert all(not q.requires_grad for q in ema.generator_.parameters())
    assert ema.state()["config"]["ema"] == 0.9
    with pytest.raises(ValueError, match="ema"):
        CGAN(vocabulary=vocab, ema=1.0).fit(X[tr], p.y[tr])
    g = CGAN(vocabulary=vocab, epochs=1, seed=0, val_samples=3, **TINY).fit(X[tr], p.y[tr])
    n_va = len(va)
    assert g.validation_wasserstein(X[va], p.y[va], seed=1) == pytest.approx(
        g.validation_wasserstein(X[va], p.y[va], seed=1, n=3 * n_va))
    assert g.validation_wasserstein(X[va], p.y[va], seed=1) != pytest.approx(
        g.validation_wasserstein(X[va], p.y[va], seed=1, n=n_va))


def test_state_config_is_get_params_with_the_vocabulary_and_format_1_still_loads(cgan, data, tmp_path):
    p, vocab = data[0], data[1]
    path = str(tmp_path / "g.pt")
    cgan.save(path)
    state = cgan.state()
    assert state["format"] == GAN.STATE_FORMAT == 2
    assert state["config"] == {"class": "CGAN", **cgan.get_params(deep=False)}
    assert state["config"]["vocabulary"] == vocab
    expected = cgan.sample_fractions(6, p.y[:1], seed=2)
    # format 1 (before the estimators followed scikit-learn): no "format", config without vocabulary
    old = {**state, "config": {k: v for k, v in state["config"].items() if k != "vocabulary"}}
    old.pop("format")
    again = GAN.from_state(old, path)
    assert isinstance(again, CGAN) and again.vocabulary == vocab == again.vocabulary_
    np.testing.assert_array_equal(again.sample_fractions(6, p.y[:1], seed=2), expected)
    assert again.get_params() == cgan.get_params()
    with pytest.raises(ValueError, match="GAN state format 7 is not supported"):
        GAN.from_state({**state, "format": 7}, path)
    with pytest.raises(ValueError, match="unknown parameter.*wobble"):
        GAN.from_state({**state, "config": {**state["config"], "wobble": 1}}, path)


def test_unfitted_gan_cannot_be_saved_or_sampled():
    g = CGAN()
    with pytest.raises(RuntimeError, match="not fitted"):
        g.state()
    with pytest.raises(RuntimeError, match="not fitted"):
        g.sample(2, np.array([[650.0, 720.0, 1100.0]]))
