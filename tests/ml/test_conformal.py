import numpy as np
import pytest

from ml.conformal import ConformalCalibrator, conformal_quantile, interval_score


def test_conformal_quantile_is_the_finite_sample_rank():
    s = np.arange(1, 10, dtype=float)  # n = 9: ⌈10 · 0.8⌉ = 8th smallest
    assert conformal_quantile(s, 0.8) == 8.0
    assert conformal_quantile(s[:3], 0.8) == np.inf  # ⌈4 · 0.8⌉ = 4 > 3
    assert conformal_quantile(np.array([np.nan, 1.0, 2.0, 3.0, 4.0]), 0.5) == 3.0


def test_interval_score_penalises_misses():
    y = np.array([0.0, 5.0])
    assert interval_score(y, np.array([-1, -1]), np.array([1, 1]), 0.8) == pytest.approx(2 + 0.5 * 10 * 4)


def _hetero(n, seed):
    rng = np.random.default_rng(seed)
    sigma = rng.uniform(0.5, 5.0, n)  # an informative spread
    return rng.normal(0, sigma), sigma


def test_normalised_mode_chosen_when_sigma_is_informative_and_covers():
    r, s = _hetero(1000, 0)
    cal = ConformalCalibrator(0.8, names=["t"]).fit(r, s, np.arange(1000) % 5)
    assert cal.modes_ == ["normalized"]
    ev = cal.report_["t"]["inner_leave_one_fold_out"]
    assert ev["normalized"]["interval_score"] < ev["absolute"]["interval_score"]
    r2, s2 = _hetero(4000, 1)
    low, high = cal.interval("t", np.zeros(4000), s2)
    assert 0.77 <= np.mean((low <= r2) & (r2 <= high)) <= 0.83


def test_absolute_mode_chosen_when_sigma_is_noise_and_covers():
    rng = np.random.default_rng(2)
    r = rng.normal(0, 3.0, 1000)
    s = rng.uniform(0.1, 2.0, 1000)  # unrelated to the error
    cal = ConformalCalibrator(0.8, names=["t"]).fit(r, s, np.arange(1000) % 5)
    assert cal.modes_ == ["absolute"]
    test = rng.normal(0, 3.0, 4000)
    low, high = cal.interval(0, np.zeros(4000), rng.uniform(0.1, 2.0, 4000))
    assert 0.77 <= np.mean((low <= test) & (test <= high)) <= 0.83
    assert np.allclose(high - low, high[0] - low[0])  # constant width


def test_fixed_mode_state_round_trip_and_bad_arguments():
    r, s = _hetero(200, 3)
    cal = ConformalCalibrator(0.8, mode="absolute", names=["a", "b"]).fit(np.column_stack([r, 2 * r]),
                                                                          np.column_stack([s, s]), np.arange(200) % 4)
    assert cal.modes_ == ["absolute", "absolute"]
    again = ConformalCalibrator.from_state(cal.state())
    for j in (0, 1):
        np.testing.assert_allclose(again.interval(j, np.ones(3), np.ones(3)), cal.interval(j, np.ones(3), np.ones(3)))
    with pytest.raises(ValueError, match="coverage"):
        ConformalCalibrator(1.2)
    with pytest.raises(ValueError, match="mode"):
        ConformalCalibrator(0.8, mode="wide")
