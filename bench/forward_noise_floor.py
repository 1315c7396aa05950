"""How much do independent reports of one alloy's Tg, Tx, Tl disagree? Prints ONE JSON object.

    .venv/bin/python bench/forward_noise_floor.py [--data CSV] [--gfa CSV]

A forward model is scored against one reported value per alloy; where reports of the same
alloy differ, part of any model's error is the report's own. Two measures, aggregates only (no
rows of the thermal table are printed):

* ``thermal_table_repeats``: pairs of rows of the thermal table with the same composition key
  (after ml.dataprep's cleaning, unmerged): |difference| of Tg, Tx, Tl over all pairs and over
  the pairs that are not identical copies;
* ``gfa_table_vs_thermal_table``: alloys in both tables (the GFA table's rows with Tg, Tx and Tl,
  merged by key, against the thermal table's merged value): the same.

Data: --data, else $GLASSLOOP_DATASET, else ../shared/data/bmg_literature_dev.csv; --gfa, else
$GLASSLOOP_GFA_DATASET, else ../shared/data/gfa_dev.csv.

Measured 2026-12-01: 215 repeated keys, 242 pairs of which 32 not identical; those differ by a
mean 7.3 / 9.3 / 18.5 K (median 5 / 8 / 6 K) in Tg / Tx / Tl. 434 alloys in both tables, 50 not
identical: mean 12.1 / 13.9 / 25.0 K (median 0.8 / 1.9 / 1.0 K). A heavy tail: most reports agree,
a few differ by tens of K.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ml.datasets import gfa_dataset_path, literature_dataset_path  # noqa: E402
from ml.dataprep import DataError, TEMPERATURE_COLUMNS, prepare, read_csv  # noqa: E402

def spread(diffs: list[np.ndarray]) -> dict:
    """Mean and median |difference| per temperature over all pairs and the non-identical ones."""
    D = np.array(diffs, dtype=float).reshape(-1, 3)
    distinct = D[D.any(axis=1)]

    def stats(A):
        if not len(A):
            return {"pairs": 0}
        return {"pairs": int(len(A)), **{c: {"mean_abs_K": round(float(A[:, k].mean()), 2),
                                              "median_abs_K": round(float(np.median(A[:, k])), 2)}
                                         for k, c in enumerate(TEMPERATURE_COLUMNS)}}

    return {"all_pairs": stats(D), "not_identical": stats(distinct)}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data")
    ap.add_argument("--gfa")
    args = ap.parse_args()
    path = literature_dataset_path(args.data)
    gfa_path = gfa_dataset_path(args.gfa)
    for p in (path, gfa_path):
        if not p.is_file():
            print(json.dumps({"error": f"data set not found: {p}"}))
            return 2
    rows = prepare(read_csv(path), merge=False)
    by_key = defaultdict(list)
    for key, y in zip(rows.keys, rows.y):
        by_key[key].append(y)
    pairs = [np.abs(v[i] - v[j]) for v in by_key.values() for i in range(len(v)) for j in range(i + 1, len(v))]
    out = {"data": str(path), "thermal_table_repeats": {
        "keys_repeated": sum(len(v) > 1 for v in by_key.values()), **spread(pairs)}}

    import pandas as pd

    gfa = pd.read_csv(gfa_path)[["composition", "Tg_K", "Tx_K", "Tl_K"]].dropna()
    try:
        other = prepare(gfa)
    except DataError as exc:
        out["gfa_table_vs_thermal_table"] = {"skipped": str(exc)}
    else:
        merged = {key: np.mean(v, axis=0) for key, v in by_key.items()}
        both = [np.abs(merged[k] - y) for k, y in zip(other.keys, other.y) if k in merged]
        out["gfa_table_vs_thermal_table"] = {"gfa": str(gfa_path), "alloys_in_both": len(both), **spread(both)}
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
