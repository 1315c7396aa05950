"""Data snapshots (the training rows at one moment, hashed) and the fixed validation split.

Fixed validation split: a literature alloy is held out from every training when
sha256(composition key) falls in the lowest ``VALIDATION_SHARE`` of the hash range, so the
split never changes as data grows and no version ever trains on a validation alloy. Lab
results (this lab's own castings) are always trained on: the loop must learn from them.
"""

from __future__ import annotations

import csv
import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from django.utils import timezone

from . import selectors
from .bundles import artefact_root

VALIDATION_SHARE = 0.15


def is_validation_key(key: str) -> bool:
    h = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16)
    return h < VALIDATION_SHARE * 0x1_0000_0000


def split_rows(rows):
    """(train_rows, validation_rows): literature alloys in the fixed validation split are held out."""
    from ml.composition import CompositionError, parse_composition

    train, validation = [], []
    for r in rows:
        if r.get("origin") == "literature":
            try:
                key = parse_composition(r["composition"]).key
            except CompositionError:
                train.append(r)  # dataprep refuses and reports it
                continue
            if is_validation_key(key):
                validation.append(r)
                continue
        train.append(r)
    return train, validation


def write_rows_csv(rows, path: Path):
    """Write rows atomically (tmp file + rename) so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(selectors.SNAPSHOT_COLUMNS), extrasaction="ignore")
        writer.writeheader()
        for r in rows:
            writer.writerow({c: r.get(c, "") for c in selectors.SNAPSHOT_COLUMNS})
    os.replace(tmp, path)


def read_rows_csv(path: Path):
    with open(path, newline="") as fh:
        return [dict(r) for r in csv.DictReader(fh)]


def _cell(value):
    """A CSV cell as text; an empty cell (NaN once read) is ""."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return str(value).strip()


def _gfa_cells(r, line, path):
    """gfa_class, dmax_mm, dmax_kind of an outside row by ml.rules (class by name, the source's
    "no Dmax" codes dropped); DataError naming the line for a class or Dmax the rules refuse."""
    from ml import rules
    from ml.dataprep import DataError

    kind = _cell(r.get("dmax_kind")) or rules.DMAX_POINT
    try:
        cls = rules.gfa_class(_cell(r.get("gfa_class")))
        dmax = _cell(r.get("dmax_mm"))
        if dmax and rules.coded_dmax(cls, dmax):
            dmax = ""
        problems = rules.dmax_problems(cls, dmax or None, kind)
        if problems:
            raise rules.GFAValueError("; ".join(problems))
    except rules.GFAValueError as exc:
        raise DataError(f"{path}, line {line}: {exc}") from None
    return cls or "", dmax, kind if dmax else ""


def rows_from_csv(path):
    """Rows of an outside CSV (columns composition, Tg_K, Tx_K, Tl_K; optional gfa_class,
    dmax_mm, dmax_kind, label, weight) as literature rows."""
    from ml.dataprep import DataError, read_csv

    df = read_csv(str(path))
    missing = [c for c in ("composition", "Tg_K", "Tx_K", "Tl_K") if c not in df.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}")
    rows = []
    for i, r in enumerate(df.to_dict(orient="records")):
        gfa_class, dmax_mm, dmax_kind = _gfa_cells(r, i + 2, path)
        rows.append(
            {"composition": r["composition"], "Tg_K": r["Tg_K"], "Tx_K": r["Tx_K"], "Tl_K": r["Tl_K"],
             "gfa_class": gfa_class, "dmax_mm": dmax_mm, "dmax_kind": dmax_kind,
             "label": r.get("label", ""), "weight": r.get("weight", ""), "origin": "literature"}
        )
    rows.sort(key=lambda r: tuple(str(r[c]) for c in selectors.SNAPSHOT_COLUMNS))
    return rows


@dataclass
class Snapshot:
    rows: list
    hash: str
    taken_at: object
    n_lab_results: int


def take_snapshot(csv_path=None) -> Snapshot:
    taken_at = timezone.now()
    if csv_path:
        rows = rows_from_csv(csv_path)
        n_lab = 0
    else:
        rows = selectors.training_rows()
        n_lab = sum(1 for r in rows if r["origin"] == "xrd")
    return Snapshot(rows=rows, hash=selectors.snapshot_hash(rows), taken_at=taken_at, n_lab_results=n_lab)


def snapshot_path(snapshot_hash: str) -> Path:
    return artefact_root() / "snapshots" / f"{snapshot_hash}.csv"


def version_training_data(version):
    """The cleaned rows (ml.dataprep.PreparedData) the version was trained on: compositions and
    (n, 3) Tg, Tx, Tl, for drawing conditions and scaling margins."""
    from ml.dataprep import prepare

    rows = read_rows_csv(artefact_root() / version.training_run.snapshot_path) if version.training_run else []
    train_rows, _ = split_rows(rows)
    return prepare([r for r in train_rows if r.get("origin") != "xrd"])
