"""The GFA benchmark's functions on a tiny synthetic table (made-up alloys, not the shared file)."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import gfa_bench  # noqa: E402
from ml.gfa import prepare_gfa  # noqa: E402
from tests.ml.fixtures import write_csv  # noqa: E402
from tests.ml.test_gfa import synthetic_gfa_rows  # noqa: E402


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    path = tmp_path_factory.mktemp("gfa") / "gfa_tiny.csv"
    write_csv(path, synthetic_gfa_rows(10, seed=1), ["composition", "gfa_class", "dmax_mm"])
    return path


def test_scores_on_perfect_and_useless_predictions():
    d = prepare_gfa(synthetic_gfa_rows(6, seed=2))
    good = gfa_bench.scores(d, d.glass, np.nan_to_num(d.bmg), 0.5, 0.5,
                            np.where(np.isfinite(d.dmax_low_mm), d.dmax_low_mm, 1.0),
                            np.full(len(d), 0.01), np.full(len(d), 500.0))
    assert good["glass_auc"] == good["glass_f1"] == good["bmg_auc"] == good["bmg_f1"] == 1.0
    assert good["dmax_mae_log10"] == 0.0 and good["dmax_coverage"] == 1.0
    assert good["n_dmax_scored"] == int(gfa_bench.bmg_points(d).sum()) > 0
    flat = gfa_bench.scores(d, np.full(len(d), 0.3), np.full(len(d), 0.3), 0.5, 0.5)
    assert flat["glass_auc"] == 0.5 and flat["glass_f1"] == 0.0


def test_goals_say_met_or_missed():
    g = gfa_bench.goals({"glass_auc": 0.99, "glass_f1": 0.9, "bmg_auc": 0.985, "bmg_f1": 0.95,
                         "dmax_mae_log10": 0.25, "dmax_coverage": 0.8}, {"fit_s": 12.0})
    assert g["glass_auc"]["met"] and not g["glass_f1"]["met"] and not g["dmax_mae_log10"]["met"]
    assert g["dmax_coverage"]["met"] and g["fit_s"]["met"]


def test_outer_folds_hold_out_whole_systems_and_choose_on_inner_folds(table):
    d = gfa_bench.load(table)
    res = gfa_bench.outer_cv(d, n_splits=3, candidates=({}, {"knn_k": 0}), base=gfa_bench.QUICK)
    assert len(res["folds"]) == 3 and sum(f["n_test"] for f in res["folds"]) == len(d)
    for f in res["folds"]:
        best = max(f["candidates"], key=lambda c: c["inner_score"])
        assert f["chosen"] == best["config"]
        assert all(np.isfinite(c["inner_score"]) for c in f["candidates"])
    assert 0.5 < res["pooled"]["glass_auc"] <= 1.0
    assert 0.0 <= res["pooled"]["dmax_coverage"] <= 1.0


def test_the_quick_bench_runs_end_to_end_and_prints_json(table, capsys):
    assert gfa_bench.main(["--data", str(table), "--quick", "--folds", "3"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["baselines"]) == {"xgb_fractions", "xgb_magpie", "median_dmax"}
    assert out["full_fit"]["fit_s"] > 0 and out["full_fit"]["peak_mb"] > 0
    assert {"glass_auc", "bmg_f1", "dmax_mae_log10", "dmax_coverage", "fit_s"} <= set(out["goals"])
    assert out["data"]["rows_in"] == 120


def test_a_missing_data_file_is_a_clear_message(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("GLASSLOOP_GFA_DATASET", raising=False)
    assert gfa_bench.main(["--data", str(tmp_path / "nope.csv")]) == 2
    assert "data file not found" in capsys.readouterr().out
    monkeypatch.setenv("GLASSLOOP_GFA_DATASET", str(tmp_path / "x.csv"))
    assert gfa_bench.data_path() == tmp_path / "x.csv"


def test_the_shared_table_prepares_cleanly():
    path = gfa_bench.data_path()
    if not path.exists():
        pytest.skip(f"shared GFA table not found at {path} (set GLASSLOOP_GFA_DATASET to run this test)")
    d = gfa_bench.load(path)
    r = d.report
    assert r["rows_used"] + r["rows_refused"] == r["rows_in"] and r["rows_refused"] < 0.02 * r["rows_in"]
    assert min(r["counts"][c] for c in ("bmg", "ribbon", "crystal")) > 0
    assert all(f["reason"] for f in r["flagged"])
