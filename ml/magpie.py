"""Magpie composition statistics (Ward et al. 2016) from matminer's shipped element tables.

:func:`magpie_table` reads the element data (22 properties of matminer's "magpie" preset) for
a vocabulary; :func:`magpie_features` gives, per property, the fraction-weighted mean, the mean
absolute deviation, min, max, range and mode (the most abundant element's value) over the
elements present. Used by the forward model's optional Magpie block and by the benchmark's
plain baselines.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

__all__ = ["MAGPIE_PROPERTIES", "MAGPIE_STATS", "magpie_table", "magpie_features"]

MAGPIE_STATS = ("mean", "avg_dev", "min", "max", "range", "mode")
MAGPIE_PROPERTIES = ("Number", "MendeleevNumber", "AtomicWeight", "MeltingT", "Column", "Row", "CovalentRadius",
                     "Electronegativity", "NsValence", "NpValence", "NdValence", "NfValence", "NValence",
                     "NsUnfilled", "NpUnfilled", "NdUnfilled", "NfUnfilled", "NUnfilled", "GSvolume_pa",
                     "GSbandgap", "GSmagmom", "SpaceGroupNumber")


def magpie_table(vocabulary: Sequence[str], properties: Sequence[str] = MAGPIE_PROPERTIES) -> np.ndarray:
    """(len(vocabulary), len(properties)) Magpie element data from matminer's shipped tables
    (missing values -> the property's mean over the vocabulary)."""
    import matminer.utils.data_files as files

    from ml.elements import ELEMENTS

    z = {s: i for i, s in enumerate(ELEMENTS)}
    base = Path(files.__file__).parent / "magpie_elementdata"
    out = np.empty((len(vocabulary), len(properties)))
    for j, prop in enumerate(properties):
        lines = (base / f"{prop}.table").read_text().split("\n")
        vals = []
        for el in vocabulary:
            try:
                vals.append(float(lines[z[el]].split()[0]))
            except (IndexError, ValueError):
                vals.append(np.nan)
        col = np.array(vals)
        out[:, j] = np.where(np.isfinite(col), col, np.nanmean(col) if np.isfinite(col).any() else 0.0)
    return out


def magpie_features(X_frac: np.ndarray, table: np.ndarray, stats: Sequence[str] = MAGPIE_STATS) -> np.ndarray:
    """Magpie composition statistics of each property column of ``table`` over the elements
    present (fraction-weighted mean and mean absolute deviation; min, max, range; mode = the
    value of the most abundant element)."""
    X = np.asarray(X_frac, dtype=float)
    X = X / X.sum(axis=1, keepdims=True)
    present = X > 0
    mean = X @ table
    cols = []
    for st in stats:
        if st == "mean":
            cols.append(mean)
        elif st == "avg_dev":
            cols.append(np.einsum("nk,nkp->np", X, np.abs(table[None] - mean[:, None])))
        elif st == "std":
            cols.append(np.sqrt(np.einsum("nk,nkp->np", X, (table[None] - mean[:, None]) ** 2)))
        elif st in ("min", "max", "range"):
            lo = np.where(present[:, :, None], table[None], np.inf).min(axis=1)
            hi = np.where(present[:, :, None], table[None], -np.inf).max(axis=1)
            cols.append({"min": lo, "max": hi, "range": hi - lo}[st])
        elif st == "mode":
            cols.append(table[np.argmax(X, axis=1)])
        else:
            raise ValueError(f"unknown Magpie statistic {st!r}")
    return np.hstack(cols)
