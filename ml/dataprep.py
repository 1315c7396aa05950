"""Data preparation shared by every fit: parse, check, merge duplicates, split by alloy.

`prepare` turns raw rows (``composition, Tg_K, Tx_K, Tl_K``; extra columns ignored, an
optional ``label``/``weight`` pair is carried for lab XRD verdicts) into one row per alloy:

* every composition goes through :func:`ml.composition.parse_composition`; a refused row is
  counted and reported with the parser's reason, never guessed;
* rows with a missing/non-numeric temperature, outside 200–2500 K, violating Tg < Tx < Tl,
  or with a supercooled-liquid region ΔTx = Tx − Tg wider than 250 K (the widest reported for
  metallic glasses are ~130 K) are dropped and reported. The limits and the messages are
  ``ml.rules``' (``temperature_problems``): the same rule refuses a lab value and blocks the
  approval of a mined record;
* rows that look reported in °C are dropped and reported: Tg, Tx and Tl are *all*
  273 ± 80 K below the median of at least 3 close alloys of the table (L1 distance on atomic
  fractions < 0.15, i.e. at most 7.5 at.% moved). Neighbours rather than a per-family floor
  (which ``mining.validation`` uses to flag for a reviewer) because a floor cannot tell a
  Cu–Zr glass in °C from a genuine low-Tg Cu–Mg–Ca one; a consistent 273 K step against
  near-identical alloys can. The rows are dropped, not converted: the unit is a guess;
* rows sharing a composition key (same alloy written differently) are merged: mean values,
  and the spread (max − min per property) is reported.

Splits are grouped by composition key so the same alloy never sits on both sides. After
merging each key is one row, but the grouping stays explicit so callers that pass
unmerged rows (e.g. lab samples with repeats) stay safe.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from ml.composition import Composition, CompositionError, parse_composition
from ml.descriptors import fractions_matrix, l1_distances
from ml.rules import C_TO_K, DTX, ORDER, RANGE, temperature_problems

REQUIRED_COLUMNS = ("composition", "Tg_K", "Tx_K", "Tl_K")
TEMPERATURE_COLUMNS = ("Tg_K", "Tx_K", "Tl_K")
# Report category of each kind of temperature problem (ml.rules), counted in report["reasons"].
PROBLEM_CATEGORIES = {RANGE: "temperature out of range", ORDER: "Tg < Tx < Tl violated", DTX: "ΔTx implausibly wide"}
# °C check (see the module docstring): neighbourhood, evidence needed, tolerance on the step.
CELSIUS_RADIUS_L1 = 0.15
CELSIUS_MIN_NEIGHBOURS = 3
CELSIUS_TOLERANCE_K = 80.0
# Examples kept in the JSON report per category (the counts are always complete).
MAX_EXAMPLES = 20


class DataError(ValueError):
    """The input table cannot be used at all (missing columns, nothing left after cleaning)."""


@dataclass
class PreparedData:
    """One row per alloy (composition key), ready for fitting."""

    compositions: list[Composition]
    keys: list[str]
    y: np.ndarray  # (n, 3) Tg, Tx, Tl in K (means over merged duplicates)
    report: dict[str, Any]
    labels: np.ndarray | None = None  # optional explicit GFA labels (1 = amorphous)
    weights: np.ndarray | None = None  # optional sample weights for those labels
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def tg_k(self) -> np.ndarray:
        return self.y[:, 0]

    @property
    def tx_k(self) -> np.ndarray:
        return self.y[:, 1]

    @property
    def tl_k(self) -> np.ndarray:
        return self.y[:, 2]

    def subset(self, idx: Sequence[int] | np.ndarray) -> "PreparedData":
        idx = np.asarray(idx, dtype=int)
        return PreparedData(
            compositions=[self.compositions[i] for i in idx],
            keys=[self.keys[i] for i in idx],
            y=self.y[idx],
            report=self.report,
            labels=None if self.labels is None else self.labels[idx],
            weights=None if self.weights is None else self.weights[idx],
            meta=dict(self.meta),
        )


MIN_ALLOYS = 10  # fewer alloys with Tg, Tx and Tl than this: nothing to learn or validate on


class TooFewAlloysError(ValueError):
    """A thermal table with fewer than MIN_ALLOYS usable alloys after cleaning (a fit refuses it)."""

    def __init__(self, n_alloys: int, needed: int = MIN_ALLOYS):
        self.n_alloys, self.needed = n_alloys, needed
        super().__init__(f"only {n_alloys} usable alloys after cleaning; need at least {needed} to fit")


def _rows_from(df_or_rows: Any) -> tuple[list[dict], list[str]]:
    """Accept a pandas DataFrame, a list of dicts, or an iterable of mappings."""
    if hasattr(df_or_rows, "to_dict") and hasattr(df_or_rows, "columns"):
        columns = [str(c) for c in df_or_rows.columns]
        rows = df_or_rows.to_dict(orient="records")
        return rows, columns
    rows = [dict(r) for r in df_or_rows]
    columns: list[str] = []
    for r in rows:
        for c in r:
            if c not in columns:
                columns.append(str(c))
    return rows, columns


def _number(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = value.strip()
        if not value:
            return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def prepare(df_or_rows: Any, *, require_temperatures: bool = True, merge: bool = True) -> PreparedData:
    """Clean and merge a literature/lab table; see the module docstring.

    Optional columns: ``label`` (1 amorphous / 0 crystalline) and ``weight``. With
    ``require_temperatures=False`` rows without temperatures are kept when they carry a
    label (lab XRD verdicts without DSC); their y is NaN. ``merge=False`` keeps one entry per
    clean row (keys repeat; the report is the same) — for measuring what splitting rows
    rather than alloys does, never for fitting.
    """
    rows, columns = _rows_from(df_or_rows)
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise DataError(f"missing column(s): {', '.join(missing)} (need {', '.join(REQUIRED_COLUMNS)})")
    if not rows:
        raise DataError("no data rows")

    refused: list[dict] = []
    dropped: list[dict] = []
    reasons: Counter = Counter()
    groups: dict[str, list[tuple[int, Composition, np.ndarray, float | None, float]]] = defaultdict(list)
    has_labels = "label" in columns

    for i, row in enumerate(rows):
        text = row.get("composition")
        text = "" if text is None or (isinstance(text, float) and math.isnan(text)) else str(text)
        try:
            comp = parse_composition(text)
        except CompositionError as exc:
            reason = str(exc)
            refused.append({"row": i, "composition": text, "reason": reason})
            reasons["unparseable composition"] += 1
            continue
        temps = [_number(row.get(c)) for c in TEMPERATURE_COLUMNS]
        label = _number(row.get("label")) if has_labels else None
        weight = _number(row.get("weight")) if "weight" in columns else None
        if any(t is None for t in temps):
            if not require_temperatures and label is not None:
                groups[comp.key].append((i, comp, np.full(3, np.nan), label, weight or 1.0))
                continue
            bad = [c for c, t in zip(TEMPERATURE_COLUMNS, temps) if t is None]
            dropped.append({"row": i, "composition": text, "reason": f"missing or non-numeric {', '.join(bad)}"})
            reasons["missing temperature"] += 1
            continue
        tg, tx, tl = temps
        problems = temperature_problems(tg, tx, tl)
        if problems:  # counted under the first (range before order before ΔTx)
            dropped.append({"row": i, "composition": text, "reason": " ".join(p.message for p in problems)})
            reasons[PROBLEM_CATEGORIES[problems[0].kind]] += 1
            continue
        groups[comp.key].append((i, comp, np.array([tg, tx, tl], dtype=float), label, weight or 1.0))

    # The °C check compares rows with each other, so it runs once all rows are read.
    checked = [m for members in groups.values() for m in members if np.isfinite(m[2]).all()]
    suspicions = _celsius_suspicions([m[1] for m in checked], np.array([m[2] for m in checked]).reshape(-1, 3))
    in_celsius = {m[0] for m, reason in zip(checked, suspicions) if reason}
    for m, reason in zip(checked, suspicions):
        if reason:
            dropped.append({"row": m[0], "composition": str(rows[m[0]].get("composition")), "reason": reason})
            reasons["temperatures look like °C"] += 1
    if in_celsius:
        groups = {key: kept for key, members in groups.items() if (kept := [m for m in members if m[0] not in in_celsius])}
        dropped.sort(key=lambda d: d["row"])

    if not groups:
        raise DataError(
            f"no usable rows: {len(rows)} read, {len(refused)} refused, {len(dropped)} dropped"
        )

    keys = sorted(groups)
    compositions: list[Composition] = []
    y = np.empty((len(keys), 3))
    labels = np.full(len(keys), np.nan) if has_labels else None
    weights = np.ones(len(keys)) if has_labels else None
    merged: list[dict] = []
    spreads = np.zeros((len(keys), 3))
    for j, key in enumerate(keys):
        members = groups[key]
        compositions.append(members[0][1])
        values = np.array([m[2] for m in members])
        with np.errstate(all="ignore"):
            finite = ~np.isnan(values).any(axis=1)
            y[j] = values[finite].mean(axis=0) if finite.any() else np.nan
            if finite.sum() > 1:
                spreads[j] = values[finite].max(axis=0) - values[finite].min(axis=0)
        if labels is not None:
            labs = [m[3] for m in members if m[3] is not None]
            if labs:
                # Several verdicts for one alloy: the majority wins, weight adds up.
                labels[j] = float(np.mean(labs) >= 0.5)
                weights[j] = float(sum(m[4] for m in members if m[3] is not None))
        if len(members) > 1:
            merged.append(
                {"key": key, "rows": [m[0] for m in members], "n": len(members),
                 "spread_K": {c: round(float(s), 3) for c, s in zip(TEMPERATURE_COLUMNS, spreads[j])}}
            )

    merged.sort(key=lambda m: -max(m["spread_K"].values()))
    n_dupe_rows = sum(m["n"] for m in merged)
    report = {
        "rows_in": len(rows),
        "rows_refused": len(refused),
        "rows_dropped": len(dropped),
        "rows_used": sum(len(g) for g in groups.values()),
        "alloys": len(keys),
        "duplicate_keys": len(merged),
        "duplicate_rows": n_dupe_rows,
        "reasons": dict(reasons),
        "max_spread_K": {c: round(float(spreads[:, k].max()), 3) for k, c in enumerate(TEMPERATURE_COLUMNS)},
        "refused": refused[:MAX_EXAMPLES],
        "dropped": dropped[:MAX_EXAMPLES],
        "merged": merged[:MAX_EXAMPLES],
    }
    if labels is not None:
        report["labelled_alloys"] = int(np.isfinite(labels).sum())
    if not merge:
        rows_kept = sorted((m for members in groups.values() for m in members), key=lambda m: m[0])
        return PreparedData(
            compositions=[m[1] for m in rows_kept], keys=[m[1].key for m in rows_kept],
            y=np.array([m[2] for m in rows_kept]).reshape(-1, 3), report=report,
            labels=None if labels is None else np.array([np.nan if m[3] is None else m[3] for m in rows_kept]),
            weights=None if weights is None else np.array([m[4] for m in rows_kept]))
    return PreparedData(compositions=compositions, keys=keys, y=y, report=report,
                        labels=labels, weights=weights)


def _celsius_suspicions(compositions: Sequence[Composition], y: np.ndarray) -> list[str | None]:
    """For each row, a reason when Tg, Tx and Tl all sit 273 ± 80 K below the median of its
    close alloys (see the module docstring), else None. Chunked: memory stays O(chunk · n)."""
    out: list[str | None] = [None] * len(compositions)
    if len(compositions) <= CELSIUS_MIN_NEIGHBOURS:
        return out
    X = fractions_matrix(compositions, sorted({el for comp in compositions for el in comp}))
    for s in range(0, len(X), 500):
        D = l1_distances(X[s:s + 500], X)
        for r, dist in enumerate(D):
            i = s + r
            dist[i] = np.inf  # the row itself is no evidence
            near = np.flatnonzero(dist < CELSIUS_RADIUS_L1)
            if len(near) < CELSIUS_MIN_NEIGHBOURS:
                continue
            step = np.median(y[near], axis=0) - y[i]
            if np.all(np.abs(step - C_TO_K) <= CELSIUS_TOLERANCE_K):
                out[i] = (f"Tg, Tx, Tl are {step[0]:.0f} / {step[1]:.0f} / {step[2]:.0f} K below the median of "
                          f"{len(near)} close alloys (L1 < {CELSIUS_RADIUS_L1:g}): reported in °C?")
    return out


def summarize_report(report: Mapping[str, Any]) -> str:
    """A few human lines for the CLI."""
    lines = [
        f"data: {report['rows_in']} rows read, {report['rows_refused']} refused, "
        f"{report['rows_dropped']} dropped, {report['alloys']} alloys "
        f"({report['duplicate_keys']} keys merged from {report['duplicate_rows']} rows)",
    ]
    for reason, n in sorted(report.get("reasons", {}).items(), key=lambda kv: (-kv[1], kv[0])):
        lines.append(f"  {n:5d} × {reason}")
    spread = report.get("max_spread_K", {})
    if spread:
        lines.append("  max spread among merged duplicates: "
                     + ", ".join(f"{k} {v:g} K" for k, v in spread.items()))
    for kind in ("refused", "dropped"):
        items = report.get(kind, [])
        for item in items[:5]:
            lines.append(f"  {kind} row {item['row']}: {item['composition']!r}: {item['reason']}")
        if len(items) > 5:
            lines.append(f"  ... and {report[f'rows_{kind}'] - 5} more {kind} rows")
    return "\n".join(lines)


def _group_ids(keys: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    uniq = sorted(set(keys))
    index = {k: i for i, k in enumerate(uniq)}
    return np.array([index[k] for k in keys], dtype=int), uniq


def grouped_kfold(keys: Sequence[str], n_splits: int = 5, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """K folds over composition keys (rows of one key stay together), shuffled by seed.

    Groups are dealt round-robin after a seeded permutation, so fold sizes differ by at
    most one group.
    """
    gid, uniq = _group_ids(keys)
    if n_splits < 2 or n_splits > len(uniq):
        raise ValueError(f"n_splits={n_splits} needs 2 ≤ n_splits ≤ number of alloys ({len(uniq)})")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(uniq))
    fold_of_group = np.empty(len(uniq), dtype=int)
    fold_of_group[order] = np.arange(len(uniq)) % n_splits
    fold = fold_of_group[gid]
    all_idx = np.arange(len(keys))
    return [(all_idx[fold != f], all_idx[fold == f]) for f in range(n_splits)]


def grouped_split(keys: Sequence[str], test_size: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """One train/test split over composition keys."""
    gid, uniq = _group_ids(keys)
    if len(uniq) < 2:
        raise ValueError("need at least two distinct alloys to split")
    rng = np.random.default_rng(seed)
    n_test = min(len(uniq) - 1, max(1, int(round(test_size * len(uniq)))))
    test_groups = np.zeros(len(uniq), dtype=bool)
    test_groups[rng.permutation(len(uniq))[:n_test]] = True
    is_test = test_groups[gid]
    all_idx = np.arange(len(keys))
    return all_idx[~is_test], all_idx[is_test]


def data_hash(prepared: PreparedData) -> str:
    """sha256 over the canonical cleaned data (sorted keys, values rounded to 1e-6 K)."""
    records = []
    for i in np.argsort(prepared.keys, kind="stable"):
        rec = [prepared.keys[i]] + [None if not np.isfinite(v) else round(float(v), 6) for v in prepared.y[i]]
        if prepared.labels is not None:
            lab = prepared.labels[i]
            rec += [None if not np.isfinite(lab) else float(lab), round(float(prepared.weights[i]), 6)]
        records.append(rec)
    blob = json.dumps(records, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def read_csv(path: str):
    """Read a CSV as strings (no type guessing); clear errors for empty/unreadable files."""
    import pandas as pd

    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise DataError(f"file not found: {path}") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"empty file: {path}") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {path} as CSV: {exc}".splitlines()[0]) from None
    df.columns = [str(c).strip() for c in df.columns]
    return df

