"""Where the literature data set lives. It is for tests and benchmarks only and is never
committed: it is read from ../shared at run time."""

import os
from pathlib import Path

DEFAULT_LITERATURE_DATASET = Path(__file__).resolve().parents[2] / "shared" / "data" / "bmg_literature_dev.csv"
DEFAULT_GFA_DATASET = Path(__file__).resolve().parents[2] / "shared" / "data" / "gfa_dev.csv"


def literature_dataset_path(explicit=None) -> Path:
    """``explicit`` (a command-line option), else $GLASSLOOP_DATASET, else ../shared/data/bmg_literature_dev.csv."""
    return Path(explicit or os.environ.get("GLASSLOOP_DATASET") or DEFAULT_LITERATURE_DATASET)


def gfa_dataset_path(explicit=None) -> Path:
    """``explicit`` (a command-line option), else $GLASSLOOP_GFA_DATASET, else ../shared/data/gfa_dev.csv."""
    return Path(explicit or os.environ.get("GLASSLOOP_GFA_DATASET") or DEFAULT_GFA_DATASET)
