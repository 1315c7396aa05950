"""The kernel ridge on Magpie statistics (KernelRidgeBlock with ``magpie_table``) and the
forward model's Magpie kernel-ridge block (``magpie_krr``, state format 6)."""

import numpy as np
import pytest

from ml.dataprep import prepare
from ml.forward import ForwardModel, KernelRidgeBlock
from ml.magpie import magpie_features, magpie_table
from tests.ml.fixtures import synthetic_rows

SMALL = dict(n_members=2, n_estimators=40, seed=0, conformal_folds=0)
VOCAB = ["Cu", "Zr", "Al", "Ni", "Ti"]


@pytest.fixture(scope="module")
def data():
    return prepare(synthetic_rows(60))


def test_magpie_kernel_ridge_leave_one_out_equals_refitting_without_the_row():
    rng = np.random.default_rng(3)
    X = rng.dirichlet(np.ones(5), size=25)
    table = magpie_table(VOCAB)
    T = np.column_stack([X @ rng.normal(size=5), X[:, 0] ** 2 + 0.05 * rng.normal(size=25)])
    blk = KernelRidgeBlock(ells=(0.5, 2.0), lams=(0.01, 0.1), magpie_table=table).fit(X, T)
    # the kernel compares standardised Magpie statistics: RMS difference in standard deviations
    Z = magpie_features(X, table)
    sd = Z.std(axis=0)
    Z = (Z - Z.mean(axis=0)) / (np.where(sd > 0, sd, 1.0) * np.sqrt(Z.shape[1]))
    D = np.sqrt(((Z[:, None] - Z[None]) ** 2).sum(2))
    loo = blk.train_predictions()
    for i in (0, 11, 24):
        keep = np.arange(25) != i
        for j in range(2):
            Y = (T[keep, j] - blk.mu_[j]) / blk.sd_[j]
            a = np.linalg.solve(np.exp(-D[keep][:, keep] / blk.ell_[j]) + blk.lam_[j] * np.eye(24), Y)
            np.testing.assert_allclose(loo[i, j], np.exp(-D[i, keep] / blk.ell_[j]) @ a * blk.sd_[j] + blk.mu_[j],
                                       rtol=1e-6, atol=1e-8)
    # it is not the fraction-space kernel ridge
    assert not np.allclose(loo, KernelRidgeBlock(ells=(0.5, 2.0), lams=(0.01, 0.1)).fit(X, T).train_predictions())
    again = KernelRidgeBlock.from_state(blk.state(), blk.arrays("k"), "k")
    Q = rng.dirichlet(np.ones(5), size=6)
    np.testing.assert_allclose(again.predict(Q), blk.predict(Q), rtol=1e-5)


def test_magpie_table_must_match_the_fraction_columns():
    X = np.random.default_rng(0).dirichlet(np.ones(5), size=10)
    with pytest.raises(ValueError, match="magpie_table"):
        KernelRidgeBlock(magpie_table=magpie_table(VOCAB[:4])).fit(X, X[:, :1])


def test_forward_model_magpie_kernel_ridge_block_adds_five_columns_and_survives_save_load(data, tmp_path):
    comps, y, q = data.compositions[:50], data.y[:50], data.compositions[50:]
    on = ForwardModel(**SMALL, magpie_krr=True).fit(comps, y)
    off = ForwardModel(**SMALL, magpie_krr=False).fit(comps, y)
    width = lambda m: m.features_.transform_fractions(m.features_.fractions(q)).shape[1]  # noqa: E731
    assert width(on) - width(off) == 5
    # the fraction kernel ridge stays the last five columns (the blend reads them there)
    F = on.features_.transform_fractions(on.features_.fractions(q))
    np.testing.assert_allclose(F[:, -5:], on.features_.krr_.predict(on.features_.fractions(q)), rtol=1e-5)
    state = on.save(str(tmp_path))
    loaded = ForwardModel.load(str(tmp_path), state)
    assert loaded.magpie_krr is True
    np.testing.assert_allclose(loaded.predict(q)["tl_k"], on.predict(q)["tl_k"], rtol=1e-5)


def test_kernel_mix_is_chosen_on_inner_folds_and_used_by_the_blend(data, tmp_path):
    comps, y, q = data.compositions[:50], data.y[:50], data.compositions[50:]
    # blend weight 0 on the temperatures: Tg is the kernel-ridge prediction alone, here the
    # Magpie kernel ridge alone (mix 1.0, the only choice offered)
    m = ForwardModel(**{**SMALL, "conformal_folds": 3}, blend_grid=(0.0,), kernel_mix_grid=(1.0,)).fit(comps, y)
    assert m.kernel_mix() == 1.0 and m.calibration_report_["blend"]["kernel_mix_magpie"] == 1.0
    X = m.features_.fractions(q)
    np.testing.assert_allclose(m.predict(q)["tg_k"], m.features_.magpie_krr_.predict(X)[:, 0], rtol=1e-5)
    # from a grid, the mix with the lowest inner loss is the one kept, and it survives save/load
    g = ForwardModel(**{**SMALL, "conformal_folds": 3}, kernel_mix_grid=(0.0, 0.5, 1.0)).fit(comps, y)
    assert g.kernel_mix() in (0.0, 0.5, 1.0)
    loaded = ForwardModel.load(str(tmp_path), g.save(str(tmp_path)))
    assert loaded.kernel_mix() == g.kernel_mix()
    np.testing.assert_allclose(loaded.predict(q)["tl_k"], g.predict(q)["tl_k"], rtol=1e-5)
    # without inner folds the fraction kernel ridge alone is used
    assert ForwardModel(**SMALL).fit(comps, y).kernel_mix() == 0.0
    with pytest.raises(ValueError, match="kernel_mix_grid"):
        ForwardModel(**SMALL, kernel_mix_grid=(1.5,)).fit(comps, y)


def test_format_5_state_loads_without_the_magpie_kernel_ridge(data, tmp_path):
    comps, y, q = data.compositions[:50], data.y[:50], data.compositions[50:]
    m = ForwardModel(**SMALL, magpie_krr=False).fit(comps, y)
    state = m.save(str(tmp_path))
    old = {**state, "format": 5, "config": {k: v for k, v in state["config"].items()
                                           if k not in ("magpie_krr", "kernel_mix_grid")}}
    old.pop("kernel_mix_fitted")
    loaded = ForwardModel.load(str(tmp_path), old)
    assert loaded.magpie_krr is False and loaded.kernel_mix() == 0.0
    np.testing.assert_allclose(loaded.predict(q)["tg_k"], m.predict(q)["tg_k"], rtol=1e-6)
