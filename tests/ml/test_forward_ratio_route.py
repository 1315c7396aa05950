"""The forward model's options tried for Tl and Trg (state format 7, all off by default): Trg and
γ partly from the ratios of the returned temperatures (``ratio_grid``, weights chosen on inner
folds), the kernel-ridge route columns (``krr_routes``), heads stacked on out-of-fold Tg, Tx
(``stacked_heads``) and the GFA-neighbour block (``gfa_knn_k``); older states load with none."""

import numpy as np
import pytest

from ml.dataprep import prepare
from ml.forward import ForwardModel, StackedFeatures
from tests.ml.fixtures import synthetic_rows

SMALL = dict(n_members=2, n_estimators=40, seed=0, conformal_folds=0)


@pytest.fixture(scope="module")
def data():
    return prepare(synthetic_rows(60))


def test_ratio_weight_zero_returns_the_ratio_of_each_members_temperatures(data):
    comps, y, q = data.compositions[:50], data.y[:50], data.compositions[50:]
    m = ForwardModel(**SMALL).fit(comps, y)
    assert m.ratio_weights() == (1.0, 1.0)  # without inner folds: the heads alone
    P, K, xm = m._member_predictions(m.features_.fractions(q))
    w = m.blend_weights()
    heads = m._combine(P, K, xm, w, None, (1.0, 1.0))[0]
    route = m._combine(P, K, xm, w, None, (0.0, 0.0))[0]
    half = m._combine(P, K, xm, w, None, (0.5, 0.5))[0]
    np.testing.assert_allclose(heads[:3], route[:3])  # the temperatures do not move
    # member by member: Trg = Tg / Tl, γ = Tx / (Tg + Tl) of that member's final temperatures
    members = np.stack([m._combine(P[i:i + 1], K, xm, w, None, (1.0, 1.0))[0] for i in range(len(P))])
    np.testing.assert_allclose(route[3], np.mean(members[:, 0] / members[:, 2], axis=0), rtol=1e-10)
    np.testing.assert_allclose(route[4], np.mean(members[:, 1] / (members[:, 0] + members[:, 2]), axis=0),
                               rtol=1e-10)
    np.testing.assert_allclose(half[3:], 0.5 * heads[3:] + 0.5 * route[3:])
    assert not np.allclose(heads[3], route[3])


def test_ratio_weights_are_chosen_on_inner_folds_by_squared_error_and_saved(data, tmp_path):
    comps, y, q = data.compositions, data.y, data.compositions[:5]
    grid = (1.0, 0.5, 0.0)
    m = ForwardModel(**{**SMALL, "conformal_folds": 3}, ratio_grid=grid).fit(comps, y)
    at, ag = m.ratio_weights()
    rep = m.calibration_report_["blend"]["ratio_route"]
    assert (rep["trg_head_weight"], rep["gamma_head_weight"]) == (at, ag) and at in grid and ag in grid
    # the choice is never worse on the inner folds than the heads alone
    assert rep["inner_r2_trg_gamma"][0] >= rep["inner_r2_trg_gamma_heads_alone"][0]
    assert rep["inner_r2_trg_gamma"][1] >= rep["inner_r2_trg_gamma_heads_alone"][1]
    loaded = ForwardModel.load(str(tmp_path), m.save(str(tmp_path)))
    assert loaded.ratio_weights() == (at, ag)
    np.testing.assert_allclose(loaded.predict(q)["trg"], m.predict(q)["trg"], rtol=1e-6)
    # an empty grid keeps the heads alone
    off = ForwardModel(**{**SMALL, "conformal_folds": 3}, ratio_grid=()).fit(comps, y)
    assert off.ratio_weights() == (1.0, 1.0)


def test_format_6_state_loads_with_none_of_the_options(data, tmp_path):
    comps, y, q = data.compositions[:50], data.y[:50], data.compositions[50:]
    m = ForwardModel(**SMALL, ratio_grid=()).fit(comps, y)
    state = m.save(str(tmp_path))
    old = {k: v for k, v in state.items() if k != "ratio_fitted"}
    old["format"] = 6
    new_params = ("ratio_grid", "krr_routes", "stacked_heads", "stack_folds", "gfa_knn_k")
    old["config"] = {k: v for k, v in state["config"].items() if k not in new_params}
    old["features"] = {k: v for k, v in state["features"].items() if k not in ("krr_routes", "gfa_knn_k")}
    loaded = ForwardModel.load(str(tmp_path), old)
    assert loaded.ratio_grid == () and loaded.krr_routes is False and loaded.ratio_weights() == (1.0, 1.0)
    assert loaded.stacked_heads == () and loaded.gfa_knn_k == 0 and loaded.features_.gfa_ is None
    np.testing.assert_allclose(loaded.predict(q)["trg"], m.predict(q)["trg"], rtol=1e-6)


def test_kernel_ridge_routes_by_hand():
    K = np.array([[600.0, 700.0, 1000.0, 0.6, 0.4375]])
    R = StackedFeatures._routes([K])
    np.testing.assert_allclose(R, [[1000.0, 700.0 / 0.4375 - 600.0, 100.0]])


def test_kernel_ridge_routes_add_their_columns_before_the_kernel_ridge_and_survive_save_load(data, tmp_path):
    comps, y, q = data.compositions[:50], data.y[:50], data.compositions[50:]
    on = ForwardModel(**SMALL, krr_routes=True).fit(comps, y)
    off = ForwardModel(**SMALL).fit(comps, y)
    X = on.features_.fractions(q)
    F_on, F_off = on.features_.transform_fractions(X), off.features_.transform_fractions(X)
    assert F_on.shape[1] - F_off.shape[1] == 6  # three routes from each of the two kernel ridges
    np.testing.assert_allclose(F_on[:, -5:], F_off[:, -5:], rtol=1e-6)  # the blend reads the last five
    # training rows: the routes come from the leave-one-out kernel-ridge predictions
    Ftr = on.features_.train_features()
    np.testing.assert_allclose(Ftr[:, -5 - 5 - 6:-10][:, :3], StackedFeatures._routes([Ftr[:, -5:]]))
    loaded = ForwardModel.load(str(tmp_path), on.save(str(tmp_path)))
    assert loaded.krr_routes is True
    np.testing.assert_allclose(loaded.predict(q)["tl_k"], on.predict(q)["tl_k"], rtol=1e-5)


def test_ratio_grid_is_validated(data):
    with pytest.raises(ValueError, match="ratio_grid"):
        ForwardModel(**SMALL, ratio_grid=(1.5,)).fit(data.compositions[:50], data.y[:50])


def test_stacked_tl_head_reads_out_of_fold_tg_tx_in_fit_and_the_members_tg_tx_at_prediction(data, tmp_path):
    comps, y, q = data.compositions[:50], data.y[:50], data.compositions[50:]
    m = ForwardModel(**SMALL, ratio_grid=(), stacked_heads=("tl_k",)).fit(comps, y)
    plain = ForwardModel(**SMALL, ratio_grid=()).fit(comps, y)
    X = m.features_.fractions(q)
    F = m.features_.transform_fractions(X)
    tl = m.trained_heads.index("tl_k")
    assert m.members_[0][tl].num_features() == F.shape[1] + 2  # Tg, Tx appended
    assert m.members_[0][0].num_features() == F.shape[1]  # the Tg head itself is not stacked
    # at prediction the extra inputs are the members' mean Tg, Tx heads (K)
    P, _, xm = m._member_predictions(X)
    S = np.column_stack([xm[0], xm[1]])
    z = m.members_[0][tl].inplace_predict(np.hstack([F, S]))
    np.testing.assert_allclose(P[0, tl], z * m.t_std_[tl] + m.t_mean_[tl], rtol=1e-5)
    # the other heads are those of the plain model (same seeds, same features)
    np.testing.assert_allclose(m.predict(q)["tg_k"], plain.predict(q)["tg_k"])
    # out of fold in fit: a row's Tg input does not move when its own Tg (and its fold's) does
    from ml.dataprep import grouped_kfold

    Ftr = m.features_.train_features()
    T = np.column_stack([y, y[:, 1] - y[:, 0]])
    _, te = grouped_kfold([c.key for c in comps], m.stack_folds, m.seed + 7)[0]
    moved = T.copy()
    moved[te, 0] += 100.0
    S_tr, S_moved = (m._stack_inputs_oof(Ftr, t, comps, None) for t in (T, moved))
    np.testing.assert_allclose(S_moved[te], S_tr[te])
    assert np.mean(S_moved[:, 0] - S_tr[:, 0]) > 1.0  # the other folds' models saw the change
    loaded = ForwardModel.load(str(tmp_path), m.save(str(tmp_path)))
    assert loaded.stacked_heads == ("tl_k",)
    np.testing.assert_allclose(loaded.predict(q)["tl_k"], m.predict(q)["tl_k"], rtol=1e-5)


def test_stacked_heads_are_validated(data):
    with pytest.raises(ValueError, match="stacked_heads"):
        ForwardModel(**SMALL, stacked_heads=("tg_k",)).fit(data.compositions[:50], data.y[:50])


# ---- the GFA-neighbour block (what the GFA table says near an alloy)

def _gfa_table():
    from ml.gfa import prepare_gfa

    rows = [("Cu50Zr50", "BMG", 2.0), ("Cu60Zr40", "Ribbon", 0.15), ("Cu70Zr30", "Crystal", 0),
            ("Cu45Zr45Al10", "BMG", 5.0), ("Ni50Zr50", "Crystal", 0), ("Cu55Zr45", "BMG", "")]
    return prepare_gfa([{"composition": c, "gfa_class": k, "dmax_mm": d} for c, k, d in rows])


def test_gfa_neighbour_block_by_hand_and_never_reads_the_alloys_own_entry():
    from ml.descriptors import fractions_matrix
    from ml.forward import GfaNeighbourBlock, gfa_reference_targets

    g = _gfa_table()
    vocab = ["Al", "Cu", "Ni", "Zr"]
    T = gfa_reference_targets(g)
    order = {k: i for i, k in enumerate(g.keys)}
    cu50 = T[order[[k for k in g.keys if k.startswith("Cu50")][0]]]
    assert list(cu50[:2]) == [1.0, 1.0] and cu50[2] == pytest.approx(np.log10(2.0))
    X = fractions_matrix(g.compositions, vocab)
    # Cu50Zr50 itself: its own BMG entry is left out; the nearest is Cu55Zr45 (L1 0.1, BMG, no
    # Dmax); the only known Dmax (the codes 0 and 0.15 mm are no Dmax) is Cu45Zr45Al10's 5 mm
    q = fractions_matrix([{"Cu": 0.5, "Zr": 0.5}], vocab)
    glass, bmg, log_dmax, d_near, d_mean = GfaNeighbourBlock(k=1).fit(X, T).transform(q)[0]
    assert (glass, bmg) == (1.0, 1.0)
    assert log_dmax == pytest.approx(np.log10(5.0))
    assert d_near == pytest.approx(0.1, abs=1e-6) and d_mean == pytest.approx(0.1, abs=1e-6)
    blk = GfaNeighbourBlock(k=2).fit(X, T)
    # a crystal-side query: Cu65Zr35 sits between the ribbon (0.1) and the crystal (0.1)
    glass, bmg = blk.transform(fractions_matrix([{"Cu": 0.65, "Zr": 0.35}], vocab))[0, :2]
    assert glass == pytest.approx(0.5) and bmg == pytest.approx(0.0)


def test_forward_model_gfa_block_columns_leave_out_and_save_load(data, tmp_path):
    g = _gfa_table()
    comps, y, q = data.compositions[:50], data.y[:50], data.compositions[50:]
    on = ForwardModel(**SMALL, ratio_grid=(), gfa_knn_k=3).fit(comps, y, gfa_reference=g)
    off = ForwardModel(**SMALL, ratio_grid=(), gfa_knn_k=3).fit(comps, y)  # no table: no block
    X = on.features_.fractions(q)
    assert on.features_.transform_fractions(X).shape[1] - off.features_.transform_fractions(X).shape[1] == 5
    assert off.features_.gfa_ is None
    loaded = ForwardModel.load(str(tmp_path), on.save(str(tmp_path)))
    assert loaded.features_.gfa_ is not None
    np.testing.assert_allclose(loaded.predict(q)["tl_k"], on.predict(q)["tl_k"], rtol=1e-5)
    with pytest.raises(ValueError, match="gfa_knn_k"):
        ForwardModel(**SMALL, gfa_knn_k=-1).fit(comps, y, gfa_reference=g)
