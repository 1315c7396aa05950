"""Distribution and model metrics against known cases."""

import json
import math

import numpy as np
import pytest

from ml.metrics import (
    PCAMap,
    classification_metrics,
    js_divergence,
    kl_divergence,
    nearest_distances,
    regression_metrics,
    wasserstein,
)


@pytest.fixture(scope="module")
def sets():
    rng = np.random.default_rng(0)
    P = rng.dirichlet(np.ones(5), size=300)
    Q = rng.dirichlet(np.ones(5) * 3, size=250)
    return P, Q


# ---------------------------------------------------------------------------------------
# Wasserstein


def test_identical_sets_have_zero_distance(sets):
    P, _ = sets
    assert wasserstein(P, P) == pytest.approx(0.0, abs=1e-12)
    assert wasserstein(P, P[::-1].copy()) == pytest.approx(0.0, abs=1e-12)  # order-free


@pytest.mark.parametrize("shift", [0.1, 0.7, 3.0])
def test_translated_1d_sets_move_by_the_shift(shift):
    x = np.random.default_rng(1).normal(size=200)
    assert wasserstein(x, x + shift) == pytest.approx(shift, rel=1e-9)


def test_translated_nd_sets_move_by_the_shift_norm(sets):
    P, _ = sets
    v = np.array([0.03, -0.04, 0.0, 0.0, 0.0])  # |v| = 0.05
    assert wasserstein(P, P + v) == pytest.approx(0.05, rel=1e-9)


def test_unequal_sizes_and_known_two_point_case():
    # mass 1/2 at 0 and 1/2 at 2 vs all mass at 1: every unit moves distance 1
    assert wasserstein([[0.0], [2.0]], [[1.0], [1.0], [1.0]]) == pytest.approx(1.0)


def test_sinkhorn_path_close_to_exact():
    rng = np.random.default_rng(2)
    A = rng.dirichlet(np.ones(6), size=600)
    B = rng.dirichlet(np.ones(6) * 2, size=500)
    exact = wasserstein(A, B)
    approx = wasserstein(A, B, exact_max=100)  # forces Sinkhorn
    assert exact > 0.05
    assert approx == pytest.approx(exact, rel=0.05)
    assert approx >= exact * 0.999  # entropic plan cost over-estimates


def test_sinkhorn_subsampling_is_deterministic():
    rng = np.random.default_rng(3)
    A = rng.dirichlet(np.ones(4), size=400)
    B = rng.dirichlet(np.ones(4) * 2, size=400)
    kw = dict(exact_max=50, sinkhorn_max=150)
    assert wasserstein(A, B, seed=5, **kw) == wasserstein(A, B, seed=5, **kw)


def test_wasserstein_rejects_bad_input():
    with pytest.raises(ValueError, match="different dimensions"):
        wasserstein(np.zeros((3, 2)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="empty"):
        wasserstein(np.zeros((0, 2)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="NaN"):
        wasserstein([[np.nan, 0.0]], [[0.0, 0.0]])


# ---------------------------------------------------------------------------------------
# KL / JS


@pytest.mark.parametrize("method", ["kde", "hist"])
def test_identical_sets_have_zero_divergence(sets, method):
    P, _ = sets
    assert kl_divergence(P, P, method=method) == pytest.approx(0.0, abs=1e-12)
    assert js_divergence(P, P, method=method) == pytest.approx(0.0, abs=1e-12)


def test_js_symmetric_bounded_and_grows_with_separation(sets):
    P, Q = sets
    js_pq, js_qp = js_divergence(P, Q), js_divergence(Q, P)
    assert js_pq == pytest.approx(js_qp, rel=1e-9)
    assert 0 < js_pq < math.log(2)
    x = np.random.default_rng(4).normal(size=(300, 2))
    near = js_divergence(x, x + [0.5, 0.0])
    far = js_divergence(x, x + [50.0, 0.0])
    assert 0 < near < far <= math.log(2)
    assert far == pytest.approx(math.log(2), rel=1e-3)  # disjoint supports


def test_kl_positive_and_asymmetric(sets):
    P, Q = sets
    kl_pq, kl_qp = kl_divergence(P, Q), kl_divergence(Q, P)
    assert kl_pq > 0 and kl_qp > 0
    assert kl_pq != pytest.approx(kl_qp, rel=1e-3)


def test_kde_degenerate_points_do_not_crash():
    P = np.tile([[0.5, 0.5, 0.0]], (10, 1))  # a single point repeated
    Q = np.array([[0.5, 0.5, 0.0], [0.4, 0.5, 0.1]])
    assert math.isfinite(js_divergence(P, Q))
    assert js_divergence(P, P) == pytest.approx(0.0, abs=1e-12)


# ---------------------------------------------------------------------------------------
# PCA map


def test_pca_map_projection_density_and_roundtrip(sets):
    P, Q = sets
    pmap = PCAMap().fit(P)
    Z = pmap.transform(Q)
    assert Z.shape == (len(Q), 2)
    # projection of the reference set is centred, axes ordered by variance
    Zp = pmap.transform(P)
    np.testing.assert_allclose(Zp.mean(axis=0), 0.0, atol=1e-12)
    assert Zp[:, 0].var() >= Zp[:, 1].var()
    xx, yy, zz = pmap.density(Q, grid_size=60)
    assert xx.shape == yy.shape == zz.shape == (60, 60)
    assert np.all(zz >= 0)
    cell = (xx[0, 1] - xx[0, 0]) * (yy[1, 0] - yy[0, 0])
    assert 0.5 < zz.sum() * cell <= 1.01  # most of the mass inside the padded reference box
    again = PCAMap.from_dict(json.loads(json.dumps(pmap.to_dict())))
    np.testing.assert_allclose(again.transform(Q), Z)


def test_pca_map_density_falls_back_on_degenerate_points():
    pmap = PCAMap().fit(np.random.default_rng(5).normal(size=(50, 3)))
    xx, yy, zz = pmap.density(np.zeros((2, 3)), grid_size=20)
    assert zz.shape == (20, 20) and np.all(np.isfinite(zz)) and zz.max() > 0


def test_pca_map_scaling_and_errors():
    X = np.column_stack([np.linspace(0, 1, 20), np.linspace(0, 1000, 20) ** 0.5])
    assert PCAMap(scale="minmax").fit(X).transform(X).shape == (20, 2)
    with pytest.raises(ValueError, match="scale"):
        PCAMap(scale="log")
    with pytest.raises(RuntimeError, match="not fitted"):
        PCAMap().transform(X)
    with pytest.raises(ValueError, match="columns"):
        PCAMap().fit(X).transform(np.zeros((2, 3)))


# ---------------------------------------------------------------------------------------
# supervised metrics


def test_regression_metrics_known_values():
    m = regression_metrics([100.0, 200.0, 300.0, 400.0], [110.0, 190.0, 330.0, 400.0])
    assert m["mae"] == pytest.approx(12.5)
    assert m["rmse"] == pytest.approx(math.sqrt((100 + 100 + 900) / 4))
    assert m["mape"] == pytest.approx(100 * (0.1 + 0.05 + 0.1 + 0) / 4)  # per cent
    assert m["r2"] == pytest.approx(1 - 1100 / 50000)
    assert m["n"] == 4
    assert regression_metrics([1, 2, 3], [1, 2, 3])["r2"] == 1.0
    with pytest.raises(ValueError, match="differ in length"):
        regression_metrics([1, 2], [1])


def test_classification_metrics_known_values():
    y = [1, 1, 1, 0, 0, 0, 1, 0]
    p = [1, 1, 0, 0, 1, 0, 1, 0]
    m = classification_metrics(y, p)
    assert (m["tp"], m["fp"], m["fn"], m["tn"]) == (3, 1, 1, 3)
    assert m["precision"] == pytest.approx(0.75)
    assert m["recall"] == pytest.approx(0.75)
    assert m["f1"] == pytest.approx(0.75)
    assert m["accuracy"] == pytest.approx(0.75)
    none = classification_metrics([0, 0], [0, 0])
    assert none["precision"] == none["recall"] == none["f1"] == 0.0 and none["accuracy"] == 1.0


# ---------------------------------------------------------------------------------------
# nearest neighbours


@pytest.mark.parametrize("metric,p", [("l1", 1), ("l2", 2)])
def test_nearest_distances_match_brute_force(metric, p):
    rng = np.random.default_rng(6)
    R = rng.dirichlet(np.ones(7), size=300)
    Q = np.vstack([rng.dirichlet(np.ones(7), size=500), R[:5]])  # includes exact matches
    dist, idx = nearest_distances(Q, R, metric=metric, chunk_bytes=50_000)  # forces chunking
    full = np.linalg.norm(Q[:, None, :] - R[None, :, :], ord=p, axis=2)
    np.testing.assert_array_equal(idx, full.argmin(axis=1))
    np.testing.assert_allclose(dist, full.min(axis=1), atol=1e-12)
    np.testing.assert_allclose(dist[-5:], 0.0, atol=1e-12)
    assert list(idx[-5:]) == [0, 1, 2, 3, 4]


def test_nearest_distances_l1_is_novelty_scale():
    # moving 2.5 at.% from Cu to Al gives L1 distance 0.05
    ref = np.array([[0.08, 0.46, 0.46]])
    q = np.array([[0.105, 0.435, 0.46]])
    dist, idx = nearest_distances(q, ref)
    assert dist[0] == pytest.approx(0.05) and idx[0] == 0
    with pytest.raises(ValueError, match="metric"):
        nearest_distances(q, ref, metric="cosine")
