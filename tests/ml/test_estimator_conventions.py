"""The estimators follow scikit-learn's conventions (``sklearn.base.BaseEstimator``).

``__init__`` only stores its arguments (no validation, no conversion, no derived state), so
``get_params`` / ``set_params`` / :func:`sklearn.base.clone` work; parameters are checked by
``fit``; fitted attributes end with ``_`` and exist only after ``fit``. Small synthetic fixtures
and few trees / epochs keep the module fast.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest
from sklearn.base import BaseEstimator, clone, is_classifier
from sklearn.exceptions import NotFittedError

from ml.dataprep import prepare
from ml.forward import (
    ForwardModel,
    KernelRidgeBlock,
    KnnBlock,
    StackedFeatures,
    targets_from_y,
)
from ml.gan import CGAN, GAN, fractions_matrix
from ml.surrogate import GFASurrogate
from tests.ml.fixtures import synthetic_rows

TINY_GAN = {"hidden": 16, "batch_size": 16, "noise_dim": 4, "epochs": 2}


@pytest.fixture(scope="module")
def data():
    p = prepare(synthetic_rows(40, seed=4))
    vocab = sorted({e for c in p.compositions for e in c})
    X = fractions_matrix(p.compositions, vocab)
    trg = p.tg_k / p.tl_k
    labels = (trg >= np.quantile(trg, 0.7)).astype(int)
    return {"p": p, "vocab": vocab, "X": X, "labels": labels, "trg": trg}


# Each case: a factory for an unfitted estimator, how to fit it on the fixture, how to get an
# array of predictions from the fitted one, and the fitted attributes it must then have.
def _fit_forward(est, d):
    return est.fit(d["p"].compositions[:32], d["p"].y[:32])


def _predict_forward(est, d):
    out = est.predict(d["p"].compositions[32:])
    return np.column_stack([out[k] for k in sorted(out)])


def _fit_surrogate(est, d):
    return est.fit(d["p"].compositions, d["labels"], trg=d["trg"])


def _predict_surrogate(est, d):
    return est.predict_proba_glass(d["p"].compositions)


def _fit_gan(est, d):
    return est.fit(d["X"][:32])


def _fit_cgan(est, d):
    return est.fit(d["X"][:32], d["p"].y[:32])


def _predict_gan(est, d):
    return est.raw_fractions(6, d["p"].y[:1] if est.conditional else None, seed=1)


def _fit_knn(est, d):
    return est.fit(d["X"], targets_from_y(d["p"].y))


def _predict_knn(est, d):
    return est.transform(d["X"][:5])


def _fit_krr(est, d):
    return est.fit(d["X"], targets_from_y(d["p"].y))


def _predict_krr(est, d):
    return est.predict(d["X"][:5])


def _fit_stacked(est, d):
    return est.fit(d["p"].compositions, targets_from_y(d["p"].y))


def _predict_stacked(est, d):
    return est.transform_fractions(est.fractions(d["p"].compositions[:5]))


CASES = {
    "ForwardModel": (lambda d: ForwardModel(n_members=2, n_estimators=15, seed=3), _fit_forward, _predict_forward,
                     ("features_", "members_", "t_mean_", "t_std_", "t_rel_mean_", "t_rel_std_", "melting_k_",
                      "n_train_")),
    "GFASurrogate": (lambda d: GFASurrogate(n_estimators=15, seed=3), _fit_surrogate, _predict_surrogate,
                     ("features_", "classifier_", "pipeline_", "used_smote_", "n_train_", "classes_")),
    "GAN": (lambda d: GAN(vocabulary=d["vocab"], seed=3, **TINY_GAN), _fit_gan, _predict_gan,
            ("vocabulary_", "generator_", "cond_mean_", "cond_std_", "history_")),
    "CGAN": (lambda d: CGAN(vocabulary=d["vocab"], seed=3, **TINY_GAN), _fit_cgan, _predict_gan,
             ("vocabulary_", "generator_", "cond_mean_", "cond_std_", "history_")),
    "KnnBlock": (lambda d: KnnBlock(k=3), _fit_knn, _predict_knn, ("X_", "T_")),
    "KernelRidgeBlock": (lambda d: KernelRidgeBlock(ells=(0.5, 1.0), lams=(0.03,)), _fit_krr, _predict_krr,
                         ("ell_", "lam_", "alpha_", "X_", "mu_", "sd_", "loo_error_", "train_predictions_",
                          "melting_k_", "relative_columns_")),
    "StackedFeatures": (lambda d: StackedFeatures("D1D2D3", knn_k=3, krr=True, krr_relative_columns=(0, 1)),
                        _fit_stacked, _predict_stacked,
                        ("featurizer_", "vocabulary_", "knn_", "krr_", "train_features_")),
}
NAMES = sorted(CASES)


def fitted_attributes(est) -> list[str]:
    """scikit-learn's rule (``check_is_fitted``): instance attributes ending with ``_``."""
    return sorted(k for k in vars(est) if k.endswith("_") and not k.startswith("__"))


def assert_same_params(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k, v in a.items():
        if isinstance(v, np.ndarray) or isinstance(b[k], np.ndarray):
            np.testing.assert_array_equal(v, b[k], err_msg=k)
        else:
            assert v == b[k], k


@pytest.fixture(scope="module")
def fitted(data):
    """One fitted estimator per case (shared by the tests that only read it)."""
    return {name: CASES[name][1](CASES[name][0](data), data) for name in NAMES}


@pytest.mark.parametrize("name", NAMES)
def test_is_a_scikit_learn_estimator_whose_params_are_the_init_arguments(name, data):
    est = CASES[name][0](data)
    assert isinstance(est, BaseEstimator)
    init_args = [p for p in inspect.signature(type(est).__init__).parameters if p != "self"]
    assert sorted(est.get_params(deep=False)) == sorted(init_args)
    if hasattr(est, "get_config"):
        assert est.get_config() == est.get_params(deep=False)


def test_gan_config_includes_the_vocabulary(data):
    g = CGAN(vocabulary=data["vocab"], **TINY_GAN)
    assert g.get_config()["vocabulary"] is data["vocab"]
    assert GAN().get_params()["vocabulary"] is None
    assert is_classifier(GFASurrogate()) and not is_classifier(ForwardModel())


@pytest.mark.parametrize("name", NAMES)
def test_fitted_attributes_exist_only_after_fit(name, data, fitted):
    make, _, _, expected = CASES[name]
    est = make(data)
    assert fitted_attributes(est) == []
    for attr in expected:
        assert not hasattr(est, attr), attr
    assert set(expected) <= set(fitted_attributes(fitted[name]))


@pytest.mark.parametrize("name", ["ForwardModel", "GFASurrogate", "GAN", "CGAN"])
def test_predicting_before_fit_is_refused(name, data):
    make, _, predict, _ = CASES[name]
    error = RuntimeError if "GAN" in name else NotFittedError
    with pytest.raises(error, match="not fitted"):
        predict(make(data), data)


@pytest.mark.parametrize("name", NAMES)
def test_clone_gives_an_unfitted_estimator_with_equal_params(name, data, fitted):
    est = fitted[name]
    copy = clone(est)  # sklearn's clone checks each parameter passes __init__ unchanged
    assert type(copy) is type(est) and copy is not est
    assert fitted_attributes(copy) == []
    assert_same_params(copy.get_params(), est.get_params())


@pytest.mark.parametrize("name", NAMES)
def test_set_params_get_params_round_trip(name, data):
    est = CASES[name][0](data)
    params = est.get_params(deep=False)
    again = type(est)(**params)
    assert_same_params(again.get_params(), params)
    assert est.set_params(**params) is est
    assert_same_params(est.get_params(), params)
    with pytest.raises(ValueError, match="Invalid parameter"):
        est.set_params(no_such_parameter=1)


def test_set_params_changes_what_fit_uses(data):
    est = ForwardModel(n_members=1, n_estimators=15, seed=0, krr=False, composite=False)
    assert est.set_params(n_estimators=5, seed=4) is est
    assert est.get_params()["n_estimators"] == 5
    _fit_forward(est, data)
    assert est.members_[0][0].num_boosted_rounds() == 5
    g = CGAN(vocabulary=data["vocab"], **TINY_GAN).set_params(epochs=1)
    assert _fit_cgan(g, data).history_.epochs == 1


def test_init_stores_its_arguments_unchanged(data):
    heads, members, vocab = ["tx_k"], [0], list(data["vocab"])
    est = ForwardModel(robust_heads=heads, relative_members=members, huber_slope=1, relative_krr=0)
    assert est.robust_heads is heads and est.relative_members is members
    assert est.huber_slope == 1 and type(est.huber_slope) is int and est.relative_krr == 0
    ells, melting = [0.5], np.array([1000.0, 2000.0])
    krr = KernelRidgeBlock(ells=ells, melting_k=melting, relative_columns=[0])
    assert krr.ells is ells and krr.melting_k is melting and krr.relative_columns == [0]
    g = CGAN(vocabulary=vocab, ema=0, val_samples=3)
    assert g.vocabulary is vocab and type(g.ema) is int
    cols = [0, 1]
    assert StackedFeatures(krr_relative_columns=cols).krr_relative_columns is cols


BAD_PARAMS = [
    ("ForwardModel", {"blend_ratios": 1.5}, "blend weights"),
    ("ForwardModel", {"n_members": 0}, "n_members"),
    ("ForwardModel", {"robust_heads": ("tx",)}, "robust head"),
    ("ForwardModel", {"relative_members": (-1,)}, "relative_members"),
    ("ForwardModel", {"descriptor_set": "D9"}, "descriptor set"),
    ("GFASurrogate", {"threshold": 1.5}, "threshold"),
    ("GFASurrogate", {"smote_k": 0}, "smote_k"),
    ("GAN", {"descriptor_set": "D9"}, "descriptor set"),
    ("GAN", {"loss": "mse"}, "loss"),
    ("GAN", {"ema": 1.0}, "ema"),
    ("GAN", {"val_samples": 0}, "val_samples"),
    ("CGAN", {"condition": "Tg"}, "condition"),
    ("CGAN", {"batch_size": 0}, "batch_size"),
    ("CGAN", {"vocabulary": "ZrCuAl"}, "vocabulary"),
    ("KnnBlock", {"k": 0}, "k must be"),
    ("KernelRidgeBlock", {"relative_columns": (0,)}, "melting_k"),
    ("KernelRidgeBlock", {"ells": ()}, "ells"),
    ("StackedFeatures", {"knn_k": -1}, "knn_k"),
]


@pytest.mark.parametrize("name,bad,message", BAD_PARAMS, ids=[f"{n}-{next(iter(b))}" for n, b, _ in BAD_PARAMS])
def test_a_bad_parameter_is_refused_by_fit_not_by_init(name, bad, message, data):
    make, fit, _, _ = CASES[name]
    est = make(data).set_params(**bad)  # set_params and construction accept anything
    assert all(est.get_params()[k] is v for k, v in bad.items())
    assert clone(est).get_params()[next(iter(bad))] == bad[next(iter(bad))]
    with pytest.raises(ValueError, match=message):
        fit(est, data)
    assert fitted_attributes(est) == []  # refused before anything was fitted


@pytest.mark.parametrize("name", NAMES)
def test_clone_and_fit_reproduce_the_predictions(name, data, fitted):
    _, fit, predict, _ = CASES[name]
    est = fitted[name]
    again = fit(clone(est), data)
    np.testing.assert_array_equal(predict(again, data), predict(est, data))


@pytest.mark.parametrize("name", ["ForwardModel", "GFASurrogate", "CGAN"])
def test_a_clone_with_another_seed_differs(name, data, fitted):
    _, fit, predict, _ = CASES[name]
    est = fitted[name]
    other = fit(clone(est).set_params(seed=est.seed + 1), data)
    assert not np.array_equal(predict(other, data), predict(est, data))


def test_refitting_uses_the_params_not_the_previous_fit(data):
    """A GAN without a vocabulary infers it in each fit (it is no longer written back into the
    parameters), so a refit on other compositions gets their elements."""
    p = data["p"]
    g = GAN(seed=0, **TINY_GAN).fit(p.compositions[:20])
    assert g.vocabulary is None and g.vocabulary_ == sorted({e for c in p.compositions[:20] for e in c})
    no_ti = [c for c in p.compositions if "Ti" not in c]
    g.fit(no_ti)
    assert g.vocabulary is None and "Ti" not in g.vocabulary_


def test_the_surrogate_works_in_scikit_learn_model_selection(data):
    from sklearn.model_selection import GridSearchCV, StratifiedKFold

    p, labels = data["p"], data["labels"]
    search = GridSearchCV(GFASurrogate(n_estimators=10, knn_k=3, krr=False, seed=0), {"max_depth": [2, 3]},
                          cv=StratifiedKFold(2, shuffle=True, random_state=0), error_score="raise")
    search.fit(p.compositions, labels)
    assert search.best_params_["max_depth"] in (2, 3)
    assert search.best_estimator_.n_train_ == len(labels)
    assert 0.0 <= search.score(p.compositions, labels) <= 1.0
