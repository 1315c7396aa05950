"""The forward model's liquidus block (ml.descriptors.liquidus_features) and the composite
Tx/Tl weights chosen on inner folds (state format 5); older states load without either."""

import numpy as np
import pytest

from ml.descriptors import LIQUIDUS_NAMES, liquidus_features
from ml.dataprep import prepare
from ml.forward import ForwardModel
from tests.ml.fixtures import synthetic_rows

SMALL = dict(n_members=2, n_estimators=40, seed=0, conformal_folds=0)


@pytest.fixture(scope="module")
def data():
    return prepare(synthetic_rows(60))


def test_liquidus_of_a_pure_element_is_its_melting_point():
    L, names = liquidus_features(np.array([[1.0, 0.0]]), ["Cu", "Zr"], np.array([1358.0, 2128.0]), np.zeros((2, 2)))
    assert names == list(LIQUIDUS_NAMES)
    row = dict(zip(names, L[0]))
    assert row["liq_ideal_k"] == pytest.approx(1358.0)
    assert row["liq_regular_k"] == pytest.approx(1358.0)
    assert row["liq_ideal_over_tm"] == pytest.approx(1.0)
    assert row["liq_regular_gap_k"] == 0.0


def test_binary_liquidus_by_hand():
    tm = np.array([1000.0, 2000.0])
    X = np.array([[0.5, 0.5]])
    # ideal: T_i = Tm_i / (1 − ln c_i), the higher branch is the liquidus
    ideal = 2000.0 / (1.0 + np.log(2.0))
    row = dict(zip(LIQUIDUS_NAMES, liquidus_features(X, ["A", "B"], tm, np.zeros((2, 2)))[0][0]))
    assert row["liq_ideal_k"] == pytest.approx(ideal)
    assert row["liq_regular_k"] == pytest.approx(ideal)  # no mixing enthalpy: regular = ideal
    assert row["liq_regular_gap_k"] == pytest.approx(ideal - 1000.0 / (1.0 + np.log(2.0)))
    assert row["liq_regular_over_tm"] == pytest.approx(ideal / 1500.0)
    # ΔH_AB = −5 kJ/mol: Ω = −20 kJ/mol, μ_B^ex = Ω c_A − Ω c_A c_B = −5 kJ/mol
    R = 8.314462618
    H = np.array([[0.0, -5.0], [-5.0, 0.0]])
    reg = dict(zip(LIQUIDUS_NAMES, liquidus_features(X, ["A", "B"], tm, H)[0][0]))
    assert reg["liq_regular_k"] == pytest.approx((R * 2000.0 - 5000.0) / (R * (1.0 + np.log(2.0))))
    assert reg["liq_regular_k"] < row["liq_regular_k"]  # attraction in the liquid lowers the liquidus
    assert reg["liq_ideal_k"] == pytest.approx(ideal)


def test_liquidus_block_adds_its_columns_and_survives_save_load(data, tmp_path):
    comps, y, q = data.compositions[:50], data.y[:50], data.compositions[50:]
    with_l = ForwardModel(**SMALL, liquidus=True).fit(comps, y)
    without = ForwardModel(**SMALL).fit(comps, y)  # off by default (not adopted on the dev split)
    width = [m.features_.transform_fractions(m.features_.fractions(q)).shape[1] for m in (with_l, without)]
    assert width[0] - width[1] == len(LIQUIDUS_NAMES)
    loaded = ForwardModel.load(str(tmp_path), with_l.save(str(tmp_path)))
    assert loaded.liquidus is True
    np.testing.assert_allclose(loaded.predict(q)["tl_k"], with_l.predict(q)["tl_k"], rtol=1e-6)


def test_format_4_state_loads_without_liquidus_block_and_with_fixed_composite(data, tmp_path):
    comps, y, q = data.compositions[:50], data.y[:50], data.compositions[50:]
    model = ForwardModel(**SMALL, liquidus=False, composite_grid=()).fit(comps, y)
    state = model.save(str(tmp_path))
    old = {k: v for k, v in state.items() if k != "composite_fitted"}
    old["format"] = 4
    old["config"] = {k: v for k, v in state["config"].items() if k not in ("liquidus", "composite_grid")}
    old["features"] = {k: v for k, v in state["features"].items() if k != "liquidus"}
    loaded = ForwardModel.load(str(tmp_path), old)
    assert loaded.liquidus is False and loaded.composite_grid == ()
    assert loaded.composite_weights() == (0.5, 0.5)
    np.testing.assert_allclose(loaded.predict(q)["tl_k"], model.predict(q)["tl_k"], rtol=1e-6)


def test_composite_weights_are_chosen_on_inner_folds_and_saved(data, tmp_path):
    comps, y, q = data.compositions, data.y, data.compositions[:5]
    grid = (0.0, 1.0)
    model = ForwardModel(**{**SMALL, "conformal_folds": 3}, composite_grid=grid).fit(comps, y)
    wx, wl = model.composite_weights()
    assert wx in grid and wl in grid
    rep = model.calibration_report_["blend"]["composite"]
    assert (rep["tx_direct_weight"], rep["tl_direct_weight"]) == (wx, wl)
    loaded = ForwardModel.load(str(tmp_path), model.save(str(tmp_path)))
    assert loaded.composite_weights() == (wx, wl)
    np.testing.assert_allclose(loaded.predict(q)["tl_k"], model.predict(q)["tl_k"], rtol=1e-6)
    # a weight of 1 returns the direct head only, 0 the second route only
    P, K, xm = model._member_predictions(model.features_.fractions(q))
    w = model.blend_weights()
    direct = model._combine(P, K, xm, w, (1.0, 1.0))[0]
    route = model._combine(P, K, xm, w, (0.0, 0.0))[0]
    half = model._combine(P, K, xm, w, (0.5, 0.5))[0]
    np.testing.assert_allclose(half[1:3], 0.5 * direct[1:3] + 0.5 * route[1:3])
    np.testing.assert_allclose(direct[0], route[0])  # Tg is not a composite


def test_composite_grid_is_validated(data):
    with pytest.raises(ValueError, match="composite_grid"):
        ForwardModel(**SMALL, composite_grid=(1.5,)).fit(data.compositions[:50], data.y[:50])
