"""Model directory format and compatibility checks.

A bundle directory holds ``metadata.json`` (format version, library versions, seeds,
descriptor set, training-data hash and size, cleaning report, metrics, component states,
file list) next to the weights: XGBoost boosters (``*.ubj``, ``save_model``), the CGAN
generator (``cgan.pt``, a torch ``state_dict``) and numpy arrays (``*.npz``: k-NN reference
tables, training fractions for novelty checks).

:func:`read_metadata` refuses, with an :class:`ArtefactError` saying what is wrong, a
missing directory, a missing/unreadable ``metadata.json``, another format version, a
different major version of numpy / torch / xgboost / scikit-learn, or a listed file that is
absent.
"""

from __future__ import annotations

import json
import os
import platform
from typing import Any

FORMAT = "glassloop.ml-bundle"
FORMAT_VERSION = 1
METADATA_FILE = "metadata.json"
CHECKED_LIBRARIES = ("numpy", "torch", "xgboost", "scikit-learn")


class ArtefactError(RuntimeError):
    """A model directory cannot be used; the message says why."""


def library_versions() -> dict[str, str]:
    import imblearn
    import numpy
    import sklearn
    import torch
    import xgboost

    return {"python": platform.python_version(), "numpy": numpy.__version__, "torch": torch.__version__,
            "xgboost": xgboost.__version__, "scikit-learn": sklearn.__version__,
            "imbalanced-learn": imblearn.__version__}


def _major(version: str) -> str:
    return str(version).split(".")[0]


def write_metadata(directory: str, metadata: dict[str, Any]) -> None:
    meta = dict(metadata)
    meta["format"] = FORMAT
    meta["format_version"] = FORMAT_VERSION
    meta["libraries"] = library_versions()
    path = os.path.join(directory, METADATA_FILE)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(meta, fh, indent=2, sort_keys=True, allow_nan=False)
    os.replace(tmp, path)


def read_metadata(directory: str) -> dict[str, Any]:
    if not directory or not os.path.isdir(directory):
        raise ArtefactError(f"model directory not found: {directory}")
    path = os.path.join(directory, METADATA_FILE)
    if not os.path.isfile(path):
        raise ArtefactError(f"{directory} is not a model directory: {METADATA_FILE} is missing")
    try:
        with open(path, encoding="utf-8") as fh:
            meta = json.load(fh)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtefactError(f"{path} is unreadable: {exc}") from None
    if not isinstance(meta, dict):
        raise ArtefactError(f"{path} does not hold a JSON object")
    if meta.get("format") != FORMAT:
        raise ArtefactError(f"{path}: format is {meta.get('format')!r}, expected {FORMAT!r}")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ArtefactError(
            f"{path}: format version {meta.get('format_version')!r} is not supported (this code reads {FORMAT_VERSION})")
    saved = meta.get("libraries") or {}
    current = library_versions()
    problems = []
    for lib in CHECKED_LIBRARIES:
        if lib not in saved:
            problems.append(f"{lib} version not recorded")
        elif _major(saved[lib]) != _major(current[lib]):
            problems.append(f"{lib} {saved[lib]} (saved) vs {current[lib]} (installed)")
    if problems:
        raise ArtefactError(f"{path}: incompatible libraries: {'; '.join(problems)}")
    for key in ("files", "components"):
        if key not in meta:
            raise ArtefactError(f"{path}: field {key!r} is missing")
    missing = [f for f in meta["files"] if not os.path.isfile(os.path.join(directory, f))]
    if missing:
        raise ArtefactError(f"{directory}: missing model file(s): {', '.join(missing)}")
    return meta
