"""bench/forward_noise_floor.py: how far reports of one alloy disagree, on tables made here."""

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "forward_noise_floor.py"
HEADER = "composition,Tg_K,Tx_K,Tl_K\n"


def run(tmp_path, thermal: str, gfa: str) -> dict:
    (tmp_path / "thermal.csv").write_text(HEADER + thermal)
    (tmp_path / "gfa.csv").write_text("composition,gfa_class,dmax_mm,Tg_K,Tx_K,Tl_K\n" + gfa)
    out = subprocess.run([sys.executable, str(BENCH), "--data", str(tmp_path / "thermal.csv"),
                          "--gfa", str(tmp_path / "gfa.csv")], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_repeats_and_the_second_table_are_compared_pair_by_pair(tmp_path):
    thermal = ("Cu50Zr50,700,750,1200\nCu50Zr50,700,750,1200\nZr50Cu50,710,770,1230\n"  # one copy, one other report
               "Cu46Zr46Al8,720,800,1160\n")
    gfa = "Cu46Zr46Al8,BMG,2,720,800,1200\nPd40Ni40P20,BMG,25,580,670,990\n"  # the Pd alloy is not in the thermal table
    report = run(tmp_path, thermal, gfa)
    repeats = report["thermal_table_repeats"]
    assert repeats["keys_repeated"] == 1
    assert repeats["all_pairs"]["pairs"] == 3
    assert repeats["not_identical"]["pairs"] == 2
    assert repeats["not_identical"]["Tl_K"] == {"mean_abs_K": 30.0, "median_abs_K": 30.0}
    assert repeats["all_pairs"]["Tg_K"]["mean_abs_K"] == round(20 / 3, 2)
    both = report["gfa_table_vs_thermal_table"]
    assert both["alloys_in_both"] == 1
    assert both["not_identical"]["Tl_K"]["mean_abs_K"] == 40.0


def test_a_missing_table_is_named(tmp_path):
    out = subprocess.run([sys.executable, str(BENCH), "--data", str(tmp_path / "none.csv")],
                         capture_output=True, text=True)
    assert out.returncode == 2
    assert "none.csv" in json.loads(out.stdout)["error"]
