import numpy as np
import pytest
from imblearn.over_sampling import SMOTE

from ml.dataprep import prepare
from ml.surrogate import GFASurrogate, cross_validate, labels_from_trg
from tests.ml.fixtures import synthetic_rows

SMALL = dict(n_estimators=30)


@pytest.fixture(scope="module")
def data():
    p = prepare(synthetic_rows(60))
    # an imbalanced label so SMOTE has work to do
    lab = (p.tg_k / p.tl_k >= np.quantile(p.tg_k / p.tl_k, 0.75)).astype(int)
    return p, lab


def test_labels_from_trg():
    np.testing.assert_array_equal(labels_from_trg([600, 700], [1000, 1100]), [1, 1])
    np.testing.assert_array_equal(labels_from_trg([590, 650], [1000, 1100]), [0, 0])


def test_smote_runs_inside_training_folds_only(data):
    p, lab = data
    res = cross_validate(p.compositions, lab, p.keys, n_splits=4, seed=0, **SMALL)
    assert np.all(np.isfinite(res["proba"]))
    for fold in res["folds"]:
        tr, va = fold["train_idx"], fold["validation_idx"]
        assert not set(tr) & set(va)
        y_tr = lab[tr]
        majority = max(np.sum(y_tr == 0), np.sum(y_tr == 1))
        # SMOTE balanced the TRAINING rows only: its input size is the fold's train size
        assert fold["n_resampled"] == 2 * majority
        assert fold["n_synthetic"] == 2 * majority - len(tr)
        assert fold["originals_are_train_rows"]
        assert fold["validation_rows_in_resampled"] == 0


def test_the_leak_check_detects_smote_before_splitting(data):
    """The same check on a leaky procedure (SMOTE on all rows, then split) fails."""
    p, lab = data
    model = GFASurrogate(seed=0, **SMALL).fit(p.compositions, lab)
    F = model.features_.train_features()
    Xr, _ = SMOTE(random_state=0).fit_resample(F, lab)
    va = np.arange(0, 60, 4)
    va_rows = {F[i].tobytes() for i in va}
    assert sum(row.tobytes() in va_rows for row in Xr) > 0


def test_fit_predict_proba_and_weighted_labels(data):
    p, lab = data
    m = GFASurrogate(seed=0, **SMALL).fit(p.compositions, lab)
    proba = m.predict_proba_glass(p.compositions)
    assert proba.shape == (60,) and np.all((proba >= 0) & (proba <= 1))
    assert m.used_smote_
    w = np.where(np.arange(60) < 10, 5.0, 1.0)  # e.g. lab XRD verdicts weigh more
    mw = GFASurrogate(seed=0, **SMALL).fit(p.compositions, lab, sample_weight=w)
    assert not mw.used_smote_
    assert mw.predict(p.compositions).shape == (60,)
    with pytest.raises(ValueError, match="both classes"):
        GFASurrogate().fit(p.compositions, np.ones(60, dtype=int))


def test_kernel_ridge_block_is_leave_one_out_and_survives_save_load(data, tmp_path):
    p, lab = data
    trg = p.tg_k / p.tl_k
    m = GFASurrogate(seed=0, **SMALL).fit(p.compositions, lab, trg=trg)
    plain = GFASurrogate(seed=0, krr=False, **SMALL).fit(p.compositions, lab, trg=trg)
    F, F0 = m.features_.train_features(), plain.features_.train_features()
    assert F.shape[1] == F0.shape[1] + 2  # kernel-ridge predictions of (label, Trg)
    # training rows carry leave-one-out predictions, not the (closer) in-sample fit
    X = m.features_.fractions(p.compositions)
    in_sample = m.features_.transform_fractions(X)[:, -2:]
    assert np.abs(in_sample[:, 1] - trg).mean() < np.abs(F[:, -1] - trg).mean()
    state = m.save(str(tmp_path))
    loaded = GFASurrogate.load(str(tmp_path), state)
    np.testing.assert_allclose(loaded.predict_proba_glass(p.compositions), m.predict_proba_glass(p.compositions),
                               rtol=1e-6)


def test_saved_config_is_get_params_and_unknown_parameters_are_refused(data, tmp_path):
    p, lab = data
    m = GFASurrogate(seed=0, krr=False, **SMALL).fit(p.compositions, lab)
    state = m.save(str(tmp_path))
    assert state["config"] == m.get_params(deep=False)
    loaded = GFASurrogate.load(str(tmp_path), state)
    assert loaded.get_params() == m.get_params()
    np.testing.assert_array_equal(loaded.predict(p.compositions), m.predict(p.compositions))
    assert loaded.score(p.compositions, lab) == m.score(p.compositions, lab)  # accuracy (ClassifierMixin)
    with pytest.raises(ValueError, match="unknown parameter.*wobble"):
        GFASurrogate.load(str(tmp_path), {**state, "config": {**state["config"], "wobble": 1}})
