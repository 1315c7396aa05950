import numpy as np
import pytest

from ml.composition import parse_composition
from ml.dataprep import prepare
from ml.forward import ForwardModel, KnnBlock
from tests.ml.fixtures import synthetic_rows

SMALL = dict(n_members=2, n_estimators=40, seed=0)


@pytest.fixture(scope="module")
def data():
    return prepare(synthetic_rows(60))


@pytest.fixture(scope="module")
def model(data):
    return ForwardModel(**SMALL).fit(data.compositions[:50], data.y[:50])


def test_predict_shapes_and_derived_quantities(model, data):
    out = model.predict(data.compositions[50:])
    for key in ("tg_k", "tg_std", "tx_k", "tx_std", "tl_k", "tl_std", "trg", "trg_std", "gamma", "gamma_std", "dtx_k"):
        assert out[key].shape == (10,)
        assert np.all(np.isfinite(out[key]))
    assert np.all(out["tg_std"] >= 0)
    np.testing.assert_allclose(out["dtx_k"], out["tx_k"] - out["tg_k"])
    # dedicated Trg / γ heads agree with the ratios of the temperature heads
    np.testing.assert_allclose(out["trg"], out["tg_k"] / out["tl_k"], atol=0.02)
    np.testing.assert_allclose(out["gamma"], out["tx_k"] / (out["tg_k"] + out["tl_k"]), atol=0.02)
    # learns the smooth fixture better than predicting the mean
    err = np.abs(out["tg_k"] - data.y[50:, 0]).mean()
    assert err < np.abs(data.y[50:, 0] - data.y[:50, 0].mean()).mean()


def test_same_seed_same_predictions_and_save_load(model, data, tmp_path):
    again = ForwardModel(**SMALL).fit(data.compositions[:50], data.y[:50])
    a = model.predict(data.compositions[50:])
    b = again.predict(data.compositions[50:])
    np.testing.assert_array_equal(a["tg_k"], b["tg_k"])
    state = model.save(str(tmp_path))
    loaded = ForwardModel.load(str(tmp_path), state)
    c = loaded.predict(data.compositions[50:])
    for key in a:
        np.testing.assert_allclose(a[key], c[key], rtol=1e-6)


def test_element_outside_descriptor_vocabulary_is_refused(model):
    with pytest.raises(ValueError, match="Te"):
        model.predict([parse_composition("Zr50Cu40Te10")])


def test_knn_block_matches_brute_force_l1():
    rng = np.random.default_rng(0)
    X = rng.dirichlet(np.ones(6) * 0.5, size=40)
    X[X < 0.05] = 0
    X /= X.sum(1, keepdims=True)
    Q = rng.dirichlet(np.ones(6), size=15)
    T = rng.normal(size=(40, 2))
    blk = KnnBlock(3).fit(X, T)
    D, I = blk._neighbours(Q, 3)
    brute = np.abs(Q[:, None, :] - X[None]).sum(2)
    np.testing.assert_allclose(D, np.sort(brute, axis=1)[:, :3], atol=1e-9)
    # leave-one-out on the training rows never returns the row itself
    D2, I2 = blk._neighbours(X, 4)
    assert np.all(I2[:, 0] == np.arange(40))
