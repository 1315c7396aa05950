"""End to end through ``python -m ml`` (subprocesses) plus bundle load checks."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from ml.artefacts import ArtefactError
from ml.pipeline import load_bundle
from tests.ml.fixtures import synthetic_gfa_rows, synthetic_rows, write_csv

REPO = Path(__file__).resolve().parents[2]


def run(*args):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "ml", "-q", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("ml")
    rows = synthetic_rows(60)
    rows.append({"composition": "Zr50Cu40Qq10", "Tg_K": 700, "Tx_K": 760, "Tl_K": 1100})  # refused
    rows.append({"composition": "Zr52Cu38Al10", "Tg_K": 760, "Tx_K": 700, "Tl_K": 1100})  # order
    for r in rows:
        r["source"] = "fixture"  # extra column ignored
    write_csv(d / "train.csv", rows)
    write_csv(d / "gfa.csv", synthetic_gfa_rows())
    res = run("fit", "--data", str(d / "train.csv"), "--gfa-data", str(d / "gfa.csv"), "--out", str(d / "model"),
              "--epochs", "6", "--seed", "1")
    assert res.returncode == 0, res.stderr
    assert "1 refused" in res.stdout and "1 dropped" in res.stdout
    assert "Tg_K: MAE" in res.stdout and "glass vs crystal: ROC-AUC" in res.stdout
    return d


@pytest.mark.slow
def test_fit_writes_a_complete_bundle(model_dir):
    meta = json.loads((model_dir / "model" / "metadata.json").read_text())
    assert meta["training_data"]["n_alloys"] == 60
    assert len(meta["training_data"]["sha256"]) == 64
    assert meta["cleaning_report"]["rows_refused"] == 1
    assert meta["descriptor_set_gan"] == "D1" and meta["seed"] == 1
    assert {"numpy", "torch", "xgboost", "scikit-learn"} <= set(meta["libraries"])
    for f in meta["files"]:
        assert (model_dir / "model" / f).is_file()
    b = load_bundle(str(model_dir / "model"))
    assert set(b.metadata["metrics"]) >= {"Tg_K", "Tx_K", "Tl_K", "Trg", "gamma", "gfa", "cgan"}
    assert b.gfa is not None and meta["components"]["gfa"]


@pytest.mark.slow
def test_predict_keeps_every_row_and_reports_refusals(model_dir):
    inp = model_dir / "in.csv"
    pd.DataFrame({"id": ["a", "b", "c"], "composition": ["Zr50Cu40Al10", "Zr50Cu40Xx10", "Cu45Zr45Al10"],
                  "note": ["x", "y", "z"]}).to_csv(inp, index=False)
    res = run("predict", "--model", str(model_dir / "model"), "--input", str(inp), "--output", str(model_dir / "p.csv"))
    assert res.returncode == 0, res.stderr
    out = pd.read_csv(model_dir / "p.csv", dtype=str, keep_default_na=False)
    assert list(out["id"]) == ["a", "b", "c"] and list(out["note"]) == ["x", "y", "z"]
    for col in ("Tg_pred_K", "Tg_pred_std_K", "Tx_pred_K", "Tl_pred_K", "Trg_pred", "gamma_pred", "p_glass", "p_bmg",
                "dmax_pred_mm", "dmax_low_mm", "dmax_high_mm", "error"):
        assert col in out.columns
    assert "Xx" in out.loc[1, "error"] and out.loc[1, "Tg_pred_K"] == "" and out.loc[1, "p_bmg"] == ""
    assert out.loc[0, "error"] == "" and 400 < float(out.loc[0, "Tg_pred_K"]) < 1000
    assert 0 <= float(out.loc[2, "p_glass"]) <= 1 and 0 <= float(out.loc[2, "p_bmg"]) <= 1
    low, mid, high = (float(out.loc[0, c]) for c in ("dmax_low_mm", "dmax_pred_mm", "dmax_high_mm"))
    assert 0 < low <= mid <= high
    # calibrated 80 % intervals of the forward model bracket each temperature
    for t in ("Tg", "Tx", "Tl"):
        lo, mid, hi = (float(out.loc[0, c]) for c in (f"{t}_low_K", f"{t}_pred_K", f"{t}_high_K"))
        assert lo < mid < hi, t
    assert out.loc[1, "Tg_low_K"] == "" and out.loc[1, "Tl_high_K"] == ""


@pytest.mark.slow
def test_generate_single_target_and_targets_csv(model_dir):
    res = run("generate", "--model", str(model_dir / "model"), "--target", "Tg=660,Tx=720,Tl=1110", "-n", "4",
              "--output", str(model_dir / "g.csv"), "--seed", "2")
    assert res.returncode == 0, res.stderr
    g = pd.read_csv(model_dir / "g.csv")
    assert 1 <= len(g) <= 4
    assert {"composition", "Tg_pred_K", "Tx_pred_K", "Tl_pred_K", "p_glass", "p_bmg", "dmax_pred_mm", "dmax_low_mm",
            "dmax_high_mm", "nearest_training_alloy", "nearest_distance_l1"} <= set(g.columns)
    assert g["p_bmg"].between(0, 1).all() and (g["dmax_low_mm"] <= g["dmax_high_mm"]).all()
    for t in ("Tg", "Tx", "Tl"):
        assert (g[f"{t}_low_K"] < g[f"{t}_pred_K"]).all() and (g[f"{t}_pred_K"] < g[f"{t}_high_K"]).all(), t
    assert g["composition"].is_unique and (g["nearest_distance_l1"] > 0.05).all()
    tcsv = model_dir / "targets.csv"
    pd.DataFrame({"id": ["t1", "t2"], "Tg_K": [650, 670], "Tx_K": [710, 730], "Tl_K": [1100, 1120]}).to_csv(tcsv, index=False)
    res = run("generate", "--model", str(model_dir / "model"), "--targets", str(tcsv), "-n", "3",
              "--output", str(model_dir / "g2.csv"))
    assert res.returncode == 0, res.stderr
    g2 = pd.read_csv(model_dir / "g2.csv")
    assert set(g2["id"]) <= {"t1", "t2"} and len(g2) >= 2
    # same seed, same output
    run("generate", "--model", str(model_dir / "model"), "--target", "Tg=660,Tx=720,Tl=1110", "-n", "4",
        "--output", str(model_dir / "g3.csv"), "--seed", "2")
    assert (model_dir / "g.csv").read_text() == (model_dir / "g3.csv").read_text()


@pytest.mark.slow
def test_bad_input_gives_one_line_and_nonzero_exit(model_dir, tmp_path):
    model = str(model_dir / "model")
    (tmp_path / "nocol.csv").write_text("composition,Tg_K\nHf50Cu50,700\n")
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "in_nocomp.csv").write_text("id,formula\n1,Hf50Cu50\n")
    cases = [
        (("fit", "--data", str(tmp_path / "nocol.csv"), "--out", str(tmp_path / "m")), "missing column"),
        (("fit", "--data", str(tmp_path / "empty.csv"), "--out", str(tmp_path / "m")), "empty"),
        (("predict", "--model", model, "--input", str(tmp_path / "in_nocomp.csv"), "--output", str(tmp_path / "o.csv")),
         "missing column"),
        (("predict", "--model", str(tmp_path / "nowhere"), "--input", str(tmp_path / "in_nocomp.csv"),
          "--output", str(tmp_path / "o.csv")), "model directory not found"),
        (("generate", "--model", model, "--target", "Tg=680;Tx=760", "-n", "2", "--output", str(tmp_path / "o.csv")),
         "target"),
    ]
    for args, expected in cases:
        res = run(*args)
        assert res.returncode != 0
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:") and expected in lines[0], res.stderr
        assert "Traceback" not in res.stderr


@pytest.mark.slow
def test_tampered_or_incomplete_bundle_is_refused(model_dir, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(model_dir / "model", copy)
    meta_path = copy / "metadata.json"
    meta = json.loads(meta_path.read_text())
    meta["format_version"] = 99
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ArtefactError, match="format version 99"):
        load_bundle(str(copy))
    meta["format_version"] = 1
    meta["libraries"]["torch"] = "1.0.0"
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ArtefactError, match="torch 1.0.0"):
        load_bundle(str(copy))
    meta["libraries"] = json.loads((model_dir / "model" / "metadata.json").read_text())["libraries"]
    meta_path.write_text(json.dumps(meta))
    load_bundle(str(copy))  # restored: loads
    (copy / "cgan.pt").unlink()
    with pytest.raises(ArtefactError, match="cgan.pt"):
        load_bundle(str(copy))
    meta_path.write_text("{not json")
    with pytest.raises(ArtefactError, match="unreadable"):
        load_bundle(str(copy))
    with pytest.raises(ArtefactError, match="not found"):
        load_bundle(str(tmp_path / "missing"))


@pytest.mark.slow
def test_bundle_with_older_component_states_loads_and_unknown_formats_are_refused(model_dir, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(model_dir / "model", copy)
    meta_path = copy / "metadata.json"
    meta = json.loads(meta_path.read_text())
    new = load_bundle(str(copy))
    texts = new.reference.formulas[:5]
    expected, _ = new.predict_texts(texts)
    samples = new.cgan.sample_fractions(5, [[660.0, 720.0, 1110.0]], seed=3)
    # the CGAN state as the code before the scikit-learn conventions wrote it (format 1)
    cg = meta["components"]["cgan"]
    assert cg["format"] == 2 and cg["config"]["vocabulary"] == meta["vocabulary"]
    old = dict(meta, components=dict(meta["components"], cgan={
        **{k: v for k, v in cg.items() if k != "format"},
        "config": {k: v for k, v in cg["config"].items() if k != "vocabulary"}}))
    meta_path.write_text(json.dumps(old))
    b = load_bundle(str(copy))
    got, _ = b.predict_texts(texts)
    for k in expected:
        assert list(got[k]) == list(expected[k]), k
    assert (b.cgan.sample_fractions(5, [[660.0, 720.0, 1110.0]], seed=3) == samples).all()
    for component, fmt, message in (("cgan", 99, "GAN state format 99 is not supported"),
                                    ("forward", 1, "forward model state format 1 is not supported")):
        bad = json.loads(json.dumps(meta))
        bad["components"][component]["format"] = fmt
        meta_path.write_text(json.dumps(bad))
        with pytest.raises(ArtefactError, match=message):
            load_bundle(str(copy))


@pytest.mark.slow
def test_fit_without_crystals_says_why_and_predicts_no_gfa(tmp_path):
    """A GFA table holding no crystal fits no glass-vs-crystal model; fit says so in one line and
    predict leaves the GFA columns empty rather than guess."""
    write_csv(tmp_path / "train.csv", synthetic_rows(30))
    write_csv(tmp_path / "gfa.csv", [r for r in synthetic_gfa_rows() if r["gfa_class"] != "Crystal"])
    res = run("fit", "--data", str(tmp_path / "train.csv"), "--gfa-data", str(tmp_path / "gfa.csv"),
              "--out", str(tmp_path / "m"), "--epochs", "3")
    assert res.returncode == 0, res.stderr
    assert "GFA model: not fitted" in res.stdout and "no crystalline alloy" in res.stdout
    pd.DataFrame({"composition": ["Zr50Cu40Al10"]}).to_csv(tmp_path / "in.csv", index=False)
    res = run("predict", "--model", str(tmp_path / "m"), "--input", str(tmp_path / "in.csv"), "--output",
              str(tmp_path / "p.csv"))
    assert res.returncode == 0, res.stderr
    out = pd.read_csv(tmp_path / "p.csv", dtype=str, keep_default_na=False)
    assert out.loc[0, "Tg_pred_K"] != "" and out.loc[0, "p_glass"] == "" and out.loc[0, "dmax_pred_mm"] == ""
