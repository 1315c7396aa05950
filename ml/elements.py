"""Element property table for the descriptors, read once from matminer's shipped data files.

Pure Python, no Django. The files are read directly from the ``matminer.utils.data_files``
package directory (importing ``matminer.utils.data`` itself pulls in pymatgen and every
table, ~1.5 s; we only need a few columns). Tables are cached per process.

Sources (all shipped with matminer 0.10):

=====================  ==============================================================
property               source
=====================  ==============================================================
``radius_pm``          Magpie ``MiracleRadius`` — radii assessed for metallic-glass
                       structures (Miracle et al., Int. Mater. Rev. 55 (2010) 218,
                       doi:10.1179/095066010X12646898728200), pm. Chosen over
                       pymatgen's ``Element.metallic_radius`` (Goldschmidt CN12)
                       because the latter has no value for B, C, Si, P, Ge, Sn, Pb —
                       the metalloids BMGs rely on — and mixing two radius sources in
                       one size-mismatch sum would bias δ.
``melting_t_k``        Magpie ``MeltingT`` (K).
``electronegativity``  Magpie ``Electronegativity`` (Pauling scale).
``vec``                Magpie ``NValence`` (s+p+d+f valence electrons; note that p-block
                       elements after the d-block count their full d10 shell,
                       e.g. Ga 13, Ge 14, Sn 14).
``bulk_modulus_gpa``   Magpie ``BulkModulus`` (GPa); Magpie has no value for Zr, Ga,
                       In, Ge, Sr, Tc, Os, ... — for those we fall back to the bulk
                       modulus column of matminer's ``Miedema.csv`` (labelled
                       ``compressibility`` there but holding B in GPa: Cu 131, Al 72,
                       Zr 83.3). Fallbacks are reported by :func:`element_data_notes`.
``cohesive_energy_ev`` ``cohesive_energies.json`` (Kittel, eV/atom) as used by
                       matminer's ``CohesiveEnergyData``.
=====================  ==============================================================

Binary mixing enthalpies: ``MiedemaLiquidDeltaHf.tsv`` — the Takeuchi & Inoue (Mater. Trans.
46 (2005) 2817) tabulation of Miedema's ΔH^mix_AB for the equiatomic liquid, the table used
by matminer's ``MixingEnthalpy`` (kJ/mol; Cu–Zr = −23). Pairs absent from the table (all
pairs with S, for instance) are returned as 0 by :func:`mixing_enthalpy_matrix` and listed
by :func:`missing_mixing_pairs` so callers can record them.

No value is ever imputed silently with a table mean (matminer's ``impute_nan=True``
default does that); an element without data raises :class:`UnknownElementError`.
"""

from __future__ import annotations

import csv
import json
import math
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

from ml.composition import ELEMENTS

__all__ = [
    "UnknownElementError",
    "PROPERTY_NAMES",
    "element_table",
    "element_data_notes",
    "mixing_enthalpy_matrix",
    "missing_mixing_pairs",
    "cohesive_energies",
    "data_source_versions",
    "atomic_weights",
]

# Periodic table symbols in Z order (Z = index + 1): the one table, ml.composition.ELEMENTS
# (so we need neither pymatgen nor matminer's Python modules to map symbol -> line number).
_SYMBOLS = ELEMENTS
_Z = {s: i + 1 for i, s in enumerate(_SYMBOLS)}

# property name -> Magpie table file
_MAGPIE_FILES = {
    "radius_pm": "MiracleRadius",
    "melting_t_k": "MeltingT",
    "electronegativity": "Electronegativity",
    "vec": "NValence",
    "bulk_modulus_gpa": "BulkModulus",
}
PROPERTY_NAMES = (
    "radius_pm",
    "melting_t_k",
    "electronegativity",
    "vec",
    "bulk_modulus_gpa",
    "cohesive_energy_ev",
)


class UnknownElementError(ValueError):
    """An element is not a real symbol, or the element data lack a property for it."""

    def __init__(self, missing: dict[str, list[str]]):
        # missing: element -> list of property names (or ["not an element symbol"])
        self.missing = {k: list(v) for k, v in missing.items()}
        parts = [f"{el} (no {', '.join(props)})" for el, props in sorted(self.missing.items())]
        super().__init__("element data missing for: " + "; ".join(parts))


def _data_dir() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("matminer")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("matminer is required for element data (pip install matminer)")
    return Path(list(spec.submodule_search_locations)[0]) / "utils" / "data_files"


def _read_magpie(name: str) -> dict[str, float]:
    path = _data_dir() / "magpie_elementdata" / f"{name}.table"
    out: dict[str, float] = {}
    with open(path) as fh:
        for z, line in enumerate(fh, start=1):
            if z > len(_SYMBOLS):
                break
            try:
                value = float(line.split()[0])
            except (ValueError, IndexError):
                continue  # "NA", "Missing", blank
            if math.isfinite(value):
                out[_SYMBOLS[z - 1]] = value
    return out


@lru_cache(maxsize=1)
def _raw_tables() -> dict[str, dict[str, float]]:
    tables = {prop: _read_magpie(fname) for prop, fname in _MAGPIE_FILES.items()}
    with open(_data_dir() / "cohesive_energies.json") as fh:
        tables["cohesive_energy_ev"] = {
            k: float(v) for k, v in json.load(fh).items() if v is not None and math.isfinite(float(v))
        }
    # Miedema.csv: bulk modulus fallback (column "compressibility" holds B in GPa)
    miedema_b: dict[str, float] = {}
    with open(_data_dir() / "Miedema.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            try:
                value = float(row["compressibility"])
            except (KeyError, ValueError):
                continue
            if math.isfinite(value) and value > 0:
                miedema_b[row["element"]] = value
    tables["_bulk_modulus_miedema"] = miedema_b
    return tables


@lru_cache(maxsize=1)
def _mixing_table() -> dict[tuple[str, str], float]:
    out: dict[tuple[str, str], float] = {}
    with open(_data_dir() / "MiedemaLiquidDeltaHf.tsv") as fh:
        next(fh)  # header: elem_A elem_B delta_Hf
        for line in fh:
            parts = line.split()
            if len(parts) != 3:
                continue
            a, b, value = parts
            try:
                v = float(value)
            except ValueError:
                continue
            if math.isfinite(v):
                out[tuple(sorted((a, b)))] = v
    return out


def _lookup(symbol: str) -> tuple[dict[str, float], list[str], list[str]]:
    """Return (values, missing property names, notes) for one element."""
    tables = _raw_tables()
    values: dict[str, float] = {}
    missing: list[str] = []
    notes: list[str] = []
    for prop in PROPERTY_NAMES:
        v = tables[prop].get(symbol)
        if v is None and prop == "bulk_modulus_gpa":
            v = tables["_bulk_modulus_miedema"].get(symbol)
            if v is not None:
                notes.append(f"{symbol}: bulk modulus {v:g} GPa from Miedema.csv (absent from Magpie)")
        if v is None:
            missing.append(prop)
        else:
            values[prop] = v
    return values, missing, notes


def _check_symbols(symbols: Sequence[str]) -> None:
    bad = {s: ["not an element symbol"] for s in symbols if s not in _Z}
    if bad:
        raise UnknownElementError(bad)


def element_table(symbols: Sequence[str]) -> dict[str, np.ndarray]:
    """Property name -> float vector aligned with ``symbols`` (see module docstring for units).

    Raises :class:`UnknownElementError` naming every element without a value for some
    property (after the documented bulk-modulus fallback).
    """
    symbols = list(symbols)
    _check_symbols(symbols)
    out = {prop: np.empty(len(symbols), dtype=float) for prop in PROPERTY_NAMES}
    missing: dict[str, list[str]] = {}
    for i, s in enumerate(symbols):
        values, miss, _ = _lookup(s)
        if miss:
            missing[s] = miss
            continue
        for prop in PROPERTY_NAMES:
            out[prop][i] = values[prop]
    if missing:
        raise UnknownElementError(missing)
    return out


def element_data_notes(symbols: Sequence[str]) -> list[str]:
    """Human-readable notes on fallbacks used for these elements (empty when none)."""
    notes: list[str] = []
    for s in symbols:
        if s in _Z:
            notes.extend(_lookup(s)[2])
    return notes


def mixing_enthalpy_matrix(symbols: Sequence[str]) -> np.ndarray:
    """(k, k) Takeuchi–Inoue/Miedema binary ΔH^mix_AB in kJ/mol, symmetric, 0 on the diagonal.

    Pairs missing from the table are 0 (see :func:`missing_mixing_pairs`).
    """
    symbols = list(symbols)
    _check_symbols(symbols)
    table = _mixing_table()
    k = len(symbols)
    h = np.zeros((k, k), dtype=float)
    for i in range(k):
        for j in range(i + 1, k):
            v = table.get(tuple(sorted((symbols[i], symbols[j]))))
            if v is not None:
                h[i, j] = h[j, i] = v
    return h


def missing_mixing_pairs(symbols: Sequence[str]) -> list[tuple[str, str]]:
    """Unlike pairs of ``symbols`` without a tabulated ΔH_AB (treated as 0)."""
    symbols = list(symbols)
    table = _mixing_table()
    return [
        (a, b)
        for i, a in enumerate(symbols)
        for b in symbols[i + 1 :]
        if a != b and tuple(sorted((a, b))) not in table
    ]


def cohesive_energies(symbols: Sequence[str]) -> np.ndarray:
    """Cohesive energies in eV/atom (Kittel, via matminer's ``cohesive_energies.json``)."""
    return element_table(symbols)["cohesive_energy_ev"]


def data_source_versions() -> dict[str, str]:
    """Versions of the libraries whose data files are used (for model artefacts)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return {"matminer": version("matminer")}
    except PackageNotFoundError:  # pragma: no cover
        return {"matminer": "unknown"}


@lru_cache(maxsize=1)
def _atomic_weights() -> dict[str, float]:
    return _read_magpie("AtomicWeight")


def atomic_weights(symbols: Sequence[str]) -> np.ndarray:
    """Standard atomic weights (g/mol; Magpie ``AtomicWeight``, IUPAC values)."""
    table = _atomic_weights()
    missing = [s for s in symbols if s not in table]
    if missing:
        raise UnknownElementError({s: ["atomic weight"] for s in missing})
    return np.array([table[s] for s in symbols], dtype=float)
