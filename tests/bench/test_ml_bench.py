"""The benchmark's F1 ceiling: thresholding a Trg estimate can only be as good as that estimate."""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from ml_bench import f1_of_noisy_trg, r2_needed_for_f1  # noqa: E402


def trg_values(n=400, seed=3):
    # made-up Trg values spread around the 0.60 label cut, as in a literature table
    return np.random.default_rng(seed).normal(0.58, 0.04, n)


def test_exact_trg_gives_perfect_f1():
    assert f1_of_noisy_trg(trg_values(), 1.0) == 1.0


def test_f1_falls_as_the_trg_estimate_gets_worse():
    trg = trg_values()
    f1 = [f1_of_noisy_trg(trg, r2, reps=40) for r2 in (0.99, 0.9, 0.8, 0.5)]
    assert f1 == sorted(f1, reverse=True)
    assert f1[-1] < 0.8 < f1[0]


def test_r2_needed_is_where_the_ceiling_reaches_the_goal():
    trg = trg_values()
    needed = r2_needed_for_f1(trg, 0.92)
    assert 0.8 < needed < 0.999
    assert f1_of_noisy_trg(trg, needed + 0.01, reps=50) >= 0.91
    assert f1_of_noisy_trg(trg, needed - 0.1, reps=50) < 0.92


# ---- the nested forward protocol, the plain baselines and the coverage on a tiny synthetic table

def test_magpie_statistics_by_hand():
    from ml_bench import magpie_features

    table = np.array([[1.0, 10.0], [3.0, 30.0], [5.0, 50.0]])  # 3 elements × 2 properties
    X = np.array([[0.5, 0.5, 0.0], [0.25, 0.0, 0.75]])
    F = magpie_features(X, table, stats=("mean", "avg_dev", "min", "max", "range", "mode"))
    assert F.shape == (2, 12)
    np.testing.assert_allclose(F[0, :2], [2.0, 20.0])  # mean
    np.testing.assert_allclose(F[0, 2:4], [1.0, 10.0])  # mean absolute deviation
    np.testing.assert_allclose(F[1, 4:6], [1.0, 10.0])  # min over the present elements only
    np.testing.assert_allclose(F[1, 6:8], [5.0, 50.0])  # max
    np.testing.assert_allclose(F[1, 8:10], [4.0, 40.0])  # range
    np.testing.assert_allclose(F[1, 10:12], [5.0, 50.0])  # mode: the most abundant element's value


def test_magpie_table_reads_matminer_data():
    from ml_bench import MAGPIE_PROPERTIES, magpie_table

    t = magpie_table(["Cu", "Zr"])
    assert t.shape == (2, len(MAGPIE_PROPERTIES))
    assert t[0, MAGPIE_PROPERTIES.index("Number")] == 29 and t[1, MAGPIE_PROPERTIES.index("Number")] == 40
    assert abs(t[0, MAGPIE_PROPERTIES.index("MeltingT")] - 1357.77) < 1


def test_nested_forward_baselines_and_coverage_on_a_tiny_table():
    from ml_bench import (HEADLINE, baseline_features, baseline_oof, coverage, forward_goals, nested_forward,
                          outer_scores)

    from ml.dataprep import grouped_kfold, prepare
    from ml.forward import targets_from_y
    from tests.ml.fixtures import synthetic_rows

    data = prepare(synthetic_rows(80))
    folds = grouped_kfold(data.keys, 3, 0)[:2]
    te = np.concatenate([t for _, t in folds])
    res = nested_forward(data, folds, 0, {"n_estimators": 30, "n_members": 1, "conformal_folds": 3})
    T = targets_from_y(data.y)
    rest = np.setdiff1d(np.arange(len(data)), te)  # the third fold is never a test part here
    assert np.all(np.isfinite(res["P"][te])) and rest.size and np.all(np.isnan(res["P"][rest]))
    assert np.all(res["L"][te] < res["P"][te]) and np.all(res["P"][te] < res["H"][te])
    assert [c["fold"] for c in res["choices"]] == [0, 1]
    assert res["choices"][0]["conformal_mode"]["tg_k"] in ("absolute", "normalized")
    cov = coverage(T[te], res["L"][te], res["H"][te])
    assert set(cov) == set(HEADLINE) and all(0 <= v["coverage"] <= 1 for v in cov.values())
    scores = outer_scores(T[te], res["P"][te])
    goals = forward_goals(scores, cov)
    assert "Tg_K_coverage_in_0.75_0.85" in goals and "Tl_mae_le_19" in goals and "f1_ge_0.92" not in goals
    feats = baseline_features(data.compositions)
    assert set(feats) == {"xgb_fractions", "xgb_alloygan_style", "xgb_magpie"}
    assert feats["xgb_magpie"].shape == (len(data), 22 * 6) and feats["xgb_alloygan_style"].shape[1] == \
        feats["xgb_fractions"].shape[1] + 8
    PB = baseline_oof(feats["xgb_fractions"], T, folds, 0, n_estimators=30)
    assert np.all(np.isfinite(PB[te]))
    # a baseline that learns something beats predicting the training mean on Tg
    assert scores["Tg_K"] < np.abs(T[te, 0] - T[:, 0].mean()).mean()


def test_extra_rows_never_share_a_key_with_the_evaluated_table(tmp_path):
    from ml_bench import extra_thermal_rows

    from ml.dataprep import prepare
    from tests.ml.fixtures import synthetic_rows, write_csv

    rows = synthetic_rows(40)
    data = prepare(rows[:30])
    gfa = [{**r, "gfa_class": "BMG", "dmax_mm": 2} for r in rows[20:]]  # 10 shared, 10 new alloys
    gfa.append({"composition": "Cu50Zr50", "gfa_class": "Crystal", "dmax_mm": 0, "Tg_K": "", "Tx_K": "", "Tl_K": ""})
    write_csv(tmp_path / "gfa.csv", gfa)
    extra, info = extra_thermal_rows(str(tmp_path / "gfa.csv"), data)
    assert info["alloys_added"] == 10 and info["alloys_also_in_thermal_table_dropped"] == 10
    assert not set(extra.keys) & set(data.keys)
