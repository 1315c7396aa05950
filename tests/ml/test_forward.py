import numpy as np
import pytest

from ml.composition import parse_composition
from ml.dataprep import prepare
from ml.forward import ForwardModel, KnnBlock
from tests.ml.fixtures import synthetic_rows

# conformal_folds=0: no inner calibration fits (fast; the blend weights given are used as set);
# the calibration has its own tests below
SMALL = dict(n_members=2, n_estimators=40, seed=0, conformal_folds=0)


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


def test_l1_distances_match_brute_force():
    from ml.forward import l1_distances

    rng = np.random.default_rng(1)
    X = rng.dirichlet(np.ones(7) * 0.4, size=30)
    Q = rng.dirichlet(np.ones(7), size=12)
    np.testing.assert_allclose(l1_distances(Q, X), np.abs(Q[:, None] - X[None]).sum(2), atol=1e-9)


def test_kernel_ridge_leave_one_out_equals_refitting_without_the_row():
    from ml.forward import KernelRidgeBlock

    rng = np.random.default_rng(2)
    X = rng.dirichlet(np.ones(5), size=25)
    T = np.column_stack([X @ rng.normal(size=5), X[:, 0] ** 2 + 0.05 * rng.normal(size=25)])
    blk = KernelRidgeBlock(ells=(0.3, 1.0), lams=(0.01, 0.1)).fit(X, T)
    assert set(blk.ell_) <= {0.3, 1.0} and set(blk.lam_) <= {0.01, 0.1}
    loo = blk.train_predictions()
    for i in (0, 7, 24):
        keep = np.arange(25) != i
        for j in range(2):
            # refit on the other rows with the chosen (ℓ, λ) and the SAME standardisation
            Y = (T[keep, j] - blk.mu_[j]) / blk.sd_[j]
            K = np.exp(-np.abs(X[keep][:, None] - X[keep][None]).sum(2) / blk.ell_[j])
            a = np.linalg.solve(K + blk.lam_[j] * np.eye(24), Y)
            k_i = np.exp(-np.abs(X[i] - X[keep]).sum(1) / blk.ell_[j])
            np.testing.assert_allclose(loo[i, j], k_i @ a * blk.sd_[j] + blk.mu_[j], rtol=1e-6, atol=1e-8)
    # on the training rows themselves (not leave-one-out) the fit is closer than the LOO one
    fitted = blk.predict(X)
    assert np.abs(fitted - T).mean() < np.abs(loo - T).mean()


def test_blend_weights_mix_xgboost_and_kernel_ridge(data):
    comps, y = data.compositions[:50], data.y[:50]
    xgb_only = ForwardModel(**SMALL, blend_temperatures=1.0, blend_ratios=1.0).fit(comps, y)
    krr_only = ForwardModel(**SMALL, blend_temperatures=0.0, blend_ratios=0.0).fit(comps, y)
    half = ForwardModel(**SMALL, blend_temperatures=0.5, blend_ratios=0.5).fit(comps, y)
    q = data.compositions[50:]
    a, b, c = xgb_only.predict(q), krr_only.predict(q), half.predict(q)
    K = krr_only.features_.transform_fractions(krr_only.features_.fractions(q))[:, -5:]
    np.testing.assert_allclose(b["tg_k"], K[:, 0])  # weight 0: the kernel-ridge prediction
    np.testing.assert_allclose(c["tg_k"], 0.5 * a["tg_k"] + 0.5 * b["tg_k"])
    assert not np.allclose(a["tg_k"], b["tg_k"])
    # the spread includes the disagreement between the two blended models
    assert np.all(c["tg_std"] >= 0.5 * np.abs(a["tg_k"] - b["tg_k"]) - 1e-9)
    bad = ForwardModel(blend_ratios=1.5)  # parameters are checked by fit, not __init__
    with pytest.raises(ValueError, match="blend"):
        bad.fit(comps, y)


def test_old_forward_state_is_refused_with_a_reason(model, tmp_path):
    state = model.save(str(tmp_path))
    old = dict(state)
    old.pop("format")
    with pytest.raises(ValueError, match="format 1 is not supported"):
        ForwardModel.load(str(tmp_path), old)


def test_composite_estimates_average_two_routes(data, tmp_path):
    comps, y = data.compositions[:50], data.y[:50]
    kw = {**SMALL, "n_members": 1}
    direct = ForwardModel(**kw, composite=False).fit(comps, y)
    comp = ForwardModel(**kw, composite=True).fit(comps, y)
    assert len(comp.members_[0]) == 6 and len(direct.members_[0]) == 5
    q = data.compositions[50:]
    a, b = direct.predict(q), comp.predict(q)
    for key in ("tg_k", "trg", "gamma"):  # unchanged heads
        np.testing.assert_allclose(a[key], b[key])
    np.testing.assert_allclose(b["tl_k"], 0.5 * a["tl_k"] + 0.5 * a["tg_k"] / a["trg"])
    assert not np.allclose(a["tx_k"], b["tx_k"])
    loaded = ForwardModel.load(str(tmp_path), comp.save(str(tmp_path)))
    np.testing.assert_allclose(loaded.predict(q)["tx_k"], b["tx_k"], rtol=1e-6)


def test_knn_block_from_shared_distances_matches_its_own_search():
    from ml.forward import l1_distances

    rng = np.random.default_rng(3)
    X = rng.dirichlet(np.ones(8) * 0.5, size=50)
    Q = rng.dirichlet(np.ones(8) * 0.5, size=20)
    blk = KnnBlock(4).fit(X, rng.normal(size=(50, 3)))
    np.testing.assert_allclose(blk.transform(Q, distances=l1_distances(Q, X, np.float32)), blk.transform(Q),
                               rtol=1e-4, atol=1e-5)


def test_tx_heads_use_a_robust_loss_and_resist_one_gross_error(data):
    """One Tx typo (+300 K) in training: the pseudo-Huber Tx/ΔTx heads move much less than
    squared-error heads would."""
    import json

    y = data.y[:50].copy()
    y[7, 1] += 300.0  # Tx of one alloy badly extracted
    y[7, 2] += 300.0  # keep Tg < Tx < Tl
    kw = dict(SMALL, krr=False, composite=True)
    robust = ForwardModel(**kw).fit(data.compositions[:50], y)
    plain = ForwardModel(**kw, robust_heads=()).fit(data.compositions[:50], y)
    heads = robust.trained_heads
    objective = {h: json.loads(robust.members_[0][j].save_config())["learner"]["objective"]["name"]
                 for j, h in enumerate(heads)}
    assert objective["tx_k"] == objective["dtx_k"] == "reg:pseudohubererror"
    assert objective["tg_k"] == "reg:squarederror"
    clean = ForwardModel(**kw).fit(data.compositions[:50], data.y[:50])
    q = [data.compositions[7]]
    shift_robust = abs(robust.predict(q)["tx_k"][0] - clean.predict(q)["tx_k"][0])
    shift_plain = abs(plain.predict(q)["tx_k"][0] - clean.predict(q)["tx_k"][0])
    assert shift_robust < 0.5 * shift_plain


def _melting_scaled_rows(formulas):
    """Made-up alloys whose temperatures are fixed fractions of the mean melting point."""
    from ml.elements import element_table

    rows = []
    for f in formulas:
        c = parse_composition(f)
        tm = element_table(list(c))["melting_t_k"] @ np.array(list(c.values()))
        rows.append({"composition": f, "Tg_K": 0.45 * tm, "Tx_K": 0.5 * tm, "Tl_K": 0.8 * tm})
    return rows


def test_relative_member_carries_temperatures_beyond_the_training_melting_points():
    """Trees cannot extrapolate a raw target past the training range; a member that learns
    T / T̄m (a constant here) can."""
    train = [f"Cu{cu}Zr{zr}Al{100 - cu - zr}" for cu in range(30, 61, 3) for zr in range(25, 61 - cu + 25, 4)
             if 100 - cu - zr >= 5]
    data = prepare(_melting_scaled_rows(train))
    query = prepare(_melting_scaled_rows(["Zr40Nb30Al10Cu20", "Zr35Nb40Cu25"]))
    kw = dict(n_members=1, n_estimators=60, seed=0, krr=False, blend_temperatures=1.0, composite=False,
              conformal_folds=0)
    raw = ForwardModel(**kw, relative_members=()).fit(data.compositions, data.y)
    rel = ForwardModel(**kw, relative_members=(0,)).fit(data.compositions, data.y)
    assert query.y[:, 0].min() > data.y[:, 0].max()  # the queries melt higher than any training alloy
    err_raw = np.abs(raw.predict(query.compositions)["tg_k"] - query.y[:, 0])
    err_rel = np.abs(rel.predict(query.compositions)["tg_k"] - query.y[:, 0])
    assert np.all(err_rel < 2.0) and np.all(err_raw > 20.0)


def test_format_2_state_loads_with_raw_members_only(data, tmp_path):
    comps, y = data.compositions[:50], data.y[:50]
    model = ForwardModel(**SMALL, relative_members=()).fit(comps, y)
    state = model.save(str(tmp_path))
    old = {k: v for k, v in state.items() if k not in ("t_rel_mean", "t_rel_std", "melting_k")}
    old["format"] = 2
    old["config"] = {k: v for k, v in state["config"].items() if k != "relative_members"}
    loaded = ForwardModel.load(str(tmp_path), old)
    assert loaded.relative_members == ()
    q = data.compositions[50:]
    np.testing.assert_allclose(loaded.predict(q)["tl_k"], model.predict(q)["tl_k"], rtol=1e-6)


def test_kernel_ridge_relative_columns_learn_the_ratio_to_the_mean_melting_point():
    from ml.forward import KernelRidgeBlock

    rng = np.random.default_rng(4)
    melting_k = np.array([900.0, 1400.0, 2100.0, 2700.0])
    X = rng.dirichlet(np.ones(4), size=40)
    X[:, 3] = 0.0  # the highest-melting element never occurs in training
    X /= X.sum(1, keepdims=True)
    T = np.column_stack([0.5 * X @ melting_k, X[:, 0]])  # a temperature and a plain column
    rel = KernelRidgeBlock(melting_k=melting_k, relative_columns=(0,)).fit(X, T)
    raw = KernelRidgeBlock().fit(X, T)
    Q = np.array([[0.1, 0.2, 0.2, 0.5]])
    truth = 0.5 * Q @ melting_k
    assert abs(rel.predict(Q)[0, 0] - truth[0]) < 1.0
    assert abs(raw.predict(Q)[0, 0] - truth[0]) > 50.0
    np.testing.assert_allclose(rel.predict(Q)[:, 1], raw.predict(Q)[:, 1])  # other columns as before
    np.testing.assert_allclose(rel.train_predictions()[:, 0], T[:, 0], rtol=1e-3)  # LOO in kelvin
    state = rel.state()
    again = KernelRidgeBlock.from_state(state, rel.arrays("k"), "k")
    np.testing.assert_allclose(again.predict(Q), rel.predict(Q))
    bad = KernelRidgeBlock(relative_columns=(0,))  # checked by fit, not __init__
    with pytest.raises(ValueError, match="melting_k"):
        bad.fit(X, T)


def test_loaded_model_has_the_saved_params_and_clones(model, data, tmp_path):
    import json

    from sklearn.base import clone

    state = json.loads(json.dumps(model.save(str(tmp_path))))  # as stored in metadata.json: lists
    assert state["format"] == ForwardModel.STATE_FORMAT == 6
    assert state["config"] == json.loads(json.dumps(model.get_params(deep=False)))
    loaded = ForwardModel.load(str(tmp_path), state)
    assert loaded.get_params() == model.get_params()  # tuples again, not JSON lists
    assert loaded.robust_heads == ("tx_k", "dtx_k") and loaded.relative_members == (1,)
    refit = clone(loaded).fit(data.compositions[:50], data.y[:50])
    np.testing.assert_array_equal(refit.predict(data.compositions[50:])["tg_k"],
                                  model.predict(data.compositions[50:])["tg_k"])
    with pytest.raises(ValueError, match="format 9 is not supported"):
        ForwardModel.load(str(tmp_path), {**state, "format": 9})
    with pytest.raises(ValueError, match="unknown parameter.*wobble"):
        ForwardModel.load(str(tmp_path), {**state, "config": {**state["config"], "wobble": 1}})


# ---- calibrated 80 % intervals (split-conformal on inner grouped folds)

NOISE_K = 8.0


@pytest.fixture(scope="module")
def noisy():
    """Synthetic alloys whose Tg/Tx/Tl carry known Gaussian noise (σ = 8 K): the ensemble
    spread cannot know it; a calibrated interval must."""
    rows = synthetic_rows(330, seed=1)
    rng = np.random.default_rng(5)
    for r in rows:
        for c in ("Tg_K", "Tx_K", "Tl_K"):
            r[c] = round(r[c] + rng.normal(0, NOISE_K), 1)
    data = prepare(rows)
    from ml.dataprep import grouped_kfold

    tr, te = grouped_kfold(data.keys, 3, seed=0)[0]  # held-out alloys (groups by composition key)
    model = ForwardModel(n_members=2, n_estimators=30, seed=0).fit([data.compositions[i] for i in tr], data.y[tr])
    return data, tr, te, model


def test_intervals_cover_held_out_alloys_at_about_80_percent(noisy):
    data, tr, te, model = noisy
    out = model.predict([data.compositions[i] for i in te])
    assert len(te) >= 100
    for j, h in enumerate(("tg", "tx", "tl")):
        y = data.y[te, j]
        cover = np.mean((out[f"{h}_low"] <= y) & (y <= out[f"{h}_high"]))
        assert 0.7 <= cover <= 0.9, (h, cover)
        # the raw ensemble spread would claim far less: ±1.28 σ covers much less than 80 %
        naive = np.mean(np.abs(out[f"{h}_k"] - y) <= 1.2816 * out[f"{h}_std"])
        assert naive < 0.6, (h, naive)
    for h in ("trg", "gamma"):
        assert np.all(out[f"{h}_high"] > out[f"{h}_low"])
    rep = model.calibration_report_
    assert rep["inner_folds"] == 5 and rep["n_out_of_fold"] == len(tr)
    assert rep["conformal"]["tg_k"]["mode"] in ("absolute", "normalized")
    assert rep["blend"]["blend_temperatures"] in model.blend_grid


def test_intervals_bracket_the_prediction_and_survive_save_load(noisy, tmp_path):
    data, tr, te, model = noisy
    q = [data.compositions[i] for i in te[:20]]
    out = model.predict(q)
    for h in ("tg", "tx", "tl", "trg", "gamma"):
        mean = out[f"{h}_k" if h in ("tg", "tx", "tl") else h]
        assert np.all(out[f"{h}_low"] < mean) and np.all(mean < out[f"{h}_high"])
    import json

    state = json.loads(json.dumps(model.save(str(tmp_path))))
    loaded = ForwardModel.load(str(tmp_path), state)
    again = loaded.predict(q)
    for key in out:
        np.testing.assert_allclose(again[key], out[key], rtol=1e-6)
    assert loaded.calibration_report_["conformal"]["tl_k"]["n"] == len(tr)


def test_format_3_state_loads_and_reports_no_interval(noisy, tmp_path):
    data, tr, te, model = noisy
    state = model.save(str(tmp_path))
    old = {k: v for k, v in state.items() if k not in ("calibration", "calibration_report", "blend_fitted")}
    old["format"] = 3
    old["config"] = {k: v for k, v in state["config"].items()
                     if k not in ("conformal_folds", "interval_coverage", "conformal_mode", "blend_grid")}
    loaded = ForwardModel.load(str(tmp_path), old)
    out = loaded.predict([data.compositions[i] for i in te[:5]])
    assert np.all(np.isfinite(out["tg_k"]))
    for h in ("tg", "tx", "tl", "trg", "gamma"):
        assert np.all(np.isnan(out[f"{h}_low"])) and np.all(np.isnan(out[f"{h}_high"]))


def test_no_calibration_without_inner_folds(model, data):
    out = model.predict(data.compositions[50:])  # SMALL: conformal_folds=0
    assert np.all(np.isnan(out["tg_low"])) and model.calibration_ is None
    with pytest.raises(ValueError, match="conformal_folds"):
        ForwardModel(conformal_folds=1).fit(data.compositions[:50], data.y[:50])
    with pytest.raises(ValueError, match="conformal_mode"):
        ForwardModel(conformal_mode="wide").fit(data.compositions[:50], data.y[:50])


def test_magpie_block_adds_features_and_survives_save_load(data, tmp_path):
    from ml.magpie import MAGPIE_PROPERTIES, MAGPIE_STATS

    comps, y = data.compositions[:50], data.y[:50]
    with_m = ForwardModel(**SMALL).fit(comps, y)
    without = ForwardModel(**SMALL, magpie=False).fit(comps, y)
    q = data.compositions[50:]
    n_extra = with_m.features_.transform_fractions(with_m.features_.fractions(q)).shape[1] - \
        without.features_.transform_fractions(without.features_.fractions(q)).shape[1]
    assert n_extra == len(MAGPIE_PROPERTIES) * len(MAGPIE_STATS)
    state = with_m.save(str(tmp_path))
    loaded = ForwardModel.load(str(tmp_path), state)
    np.testing.assert_allclose(loaded.predict(q)["tg_k"], with_m.predict(q)["tg_k"], rtol=1e-6)
    # a state written before the parameter existed has no Magpie block
    old = {**state, "config": {k: v for k, v in state["config"].items() if k != "magpie"}}
    assert ForwardModel.load(str(tmp_path), old).magpie is False
