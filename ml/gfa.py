"""Glass-forming-ability (GFA) surrogate: P(glass), P(BMG) and the critical casting diameter Dmax.

Pure science, no Django. The class names, Dmax limits, Dmax kinds and what one cast rod says
are ``ml.rules``' (``gfa_class``, ``dmax_problems``, ``coded_dmax``, ``class_from_casting``,
``BMG_MIN_DMAX_MM``); this module only applies them.

Data preparation (:func:`prepare_gfa`)
--------------------------------------
Rows ``composition, gfa_class, dmax_mm`` (optional ``dmax_kind`` point / at_least / below,
``Tg_K``, ``weight``, ``origin``) become one entry per alloy (composition key):

* refused, with the reason, never guessed: an unparseable composition, an element without
  element data (the descriptors need it; :func:`elements_with_data`), an unknown class, a
  Dmax the rules refuse (≤ 0, > 200 mm, a Dmax on a crystal, a BMG "point" below 1 mm, a
  ribbon at ≥ 1 mm), an unknown Dmax kind, a weight that is not a positive number, an
  implausible Tg on a row that has nothing else to say, and a row that says nothing at all;
* the source codes 0 (crystal) and 0.15 mm (ribbon) mean "no Dmax" and are dropped (counted);
* a row with a Tg but no class is a glass (a measured Tg means it vitrified), BMG unknown;
* a cast rod without a class (``dmax_kind`` at_least / below) says what
  :func:`ml.rules.class_from_casting` says: amorphous at d mm → a glass with Dmax ≥ d (a BMG when
  d ≥ 1 mm, else BMG unknown); crystalline at d → only Dmax < d (not a BMG when d ≤ 1 mm);
* **conflicting labels for one composition** (several rows, one key): glass-vs-crystal is decided
  first, then BMG-vs-ribbon among the glass rows, each by this rule —

  1. rows of higher *priority* outweigh the others: a lab row (``origin`` "xrd" or "lab") beats
     any literature row, then a higher ``weight`` beats a lower one;
  2. among rows of equal priority, the **majority** of rows wins;
  3. a tie goes to the **more glass-forming** label (glass over crystal, BMG over ribbon): an
     amorphous sample proves the alloy can vitrify under some conditions, while a crystalline
     result can come from impurities (oxygen) or a slower process — a failure does not
     refute a success.

  Every conflict is flagged with the rows, the labels and which rule decided. The kept entry's
  weight is the largest weight among the rows that agree with the decision.
* Dmax of several rows: the largest point or "at least" value is the lower bound (the alloy was
  cast amorphous that thick); the upper bound is the largest point, else the smallest "below"
  value. Contradicting bounds (a crystalline rod thicker than... thinner than an amorphous one)
  are flagged and the amorphous evidence is kept (Dmax ≥ the largest amorphous diameter).

``GFAData.glass`` is 1 for a glass (ribbon or BMG), 0 for a crystal, NaN when unknown;
``bmg`` 1 for Dmax ≥ 1 mm, 0 for a ribbon or crystal, NaN when unknown; ``dmax_low_mm`` /
``dmax_high_mm`` the explicit Dmax interval (point: low == high; at least d: [d, inf]; below d:
[0, d]; none: NaN, NaN).

Model (:class:`GFAModel`)
-------------------------
Features (the vocabulary is every element with element data, so an alloy with an element no
training row has still gets features):

* the D1 + D2 + D3 descriptors of :mod:`ml.descriptors` (atomic fractions, Zhou et al.'s
  empirical parameters incl. ΔH_mix and δ, the theory-guided size / affinity / entropy terms);
* Magpie-style min / max / range of the six element properties, the most negative and the most
  positive unlike-pair ΔH, the number of elements and the largest fraction
  (:func:`element_stats`);
* element families (:data:`ELEMENT_GROUPS`): fraction per family, the base element's family and
  properties (:func:`group_features`);
* (``knn_k`` > 0) a neighbour block: the distance-weighted glass rate, BMG rate and log10 Dmax of
  the k nearest training alloys **of other chemical systems** (L1 on atomic fractions, or with
  ``knn_groups`` on fractions + family fractions) and their distances;
* (``pair_stats``) element-pair statistics: for each pair of the alloy's elements, the smoothed
  glass rate, BMG rate and mean log10 Dmax of the training alloys **of other systems** that
  contain both (:func:`_pair_block`) — what the binaries and the sibling systems say.

"Other systems" holds for training rows and for predictions alike, so the two blocks mean the
same in fit and use and say nothing a held-out system could not know; they are rebuilt from the
training rows of every fit (inner folds included).

Three XGBoost heads:

* ``p_glass`` — glass (ribbon or BMG) vs crystal; ``p_bmg`` — BMG vs the rest (ribbons and
  crystals; alloys whose BMG status is unknown are left out). Each is an
  ``imblearn.pipeline.Pipeline`` SMOTE → XGBClassifier, so SMOTE only ever sees the rows the
  head is fitted on (``fit_log_`` records each fit: rows, SMOTE input digest, synthetic rows).
  When the weights differ (lab rows up-weighted) SMOTE cannot carry them: it is skipped and
  the balance comes from ``scale_pos_weight`` (as in :mod:`ml.surrogate`). ``p_bmg`` is capped
  at ``p_glass`` (a BMG is a glass).
* ``dmax_mm`` — XGBoost ``survival:aft`` (normal errors on ln Dmax) with interval labels: a
  point Dmax [d, d]; a BMG without Dmax [1 mm, inf]; an amorphous rod [d, inf]; a crystalline
  rod [0, d]; with ``dmax_ribbons`` also a ribbon [0, 1 mm]. Bounds are learned as bounds,
  never as fake points. By default ribbons are left out, so ``dmax_mm`` is the Dmax the alloy
  would have *as a bulk glass* — read it together with ``p_bmg``. (With the ribbons in, the
  trees spend themselves on the ribbon/BMG boundary the BMG head already draws: inner-fold
  log10 MAE on reported BMG Dmax values 0.28 against 0.23 without, on the training part of
  the benchmark's first outer fold.) The AFT scale σ (``aft_sigma``, one value or several) is
  the one with the smallest out-of-fold error on the inner folds (``aft_sigma_``). The head is
  an ensemble of ``dmax_members`` AFT boosters with different seeds (geometric mean;
  :class:`AFTEnsemble`): 3 members 0.226 → 0.220 inner-fold MAE for ~6 s more CPU per fit.

Calibration inside :meth:`GFAModel.fit`, on ``inner_folds`` folds grouped by chemical system
(so it measures unseen systems, like the use it is for): out-of-fold predictions give

* the decision thresholds ``threshold_glass_`` / ``threshold_bmg_`` (F1-best on the
  out-of-fold probabilities; 0.5 when ``inner_folds`` is 0);
* the split-conformal half-width ``dmax_q_log10_`` of the ``coverage`` (80 %) Dmax interval:
  the ⌈(n+1)·coverage⌉-th smallest |log10 predicted − log10 reported| over the out-of-fold
  point Dmax values; the interval is [Dmax / 10^q, Dmax · 10^q]. Without inner folds (or with
  fewer than 5 point values) q comes from the AFT scale (z · σ / ln 10) and is not calibrated.

Development notes (inner-fold scores on the training rows of the benchmark's first outer
fold, 4 system folds; glass AUC / BMG AUC / Dmax log10 MAE; differences below ~0.005 AUC are
noise at this size):

* the glass-vs-crystal head is limited by the data, not the model: out of fold, alloys of
  single-class systems are ranked almost perfectly (AUC 0.99), those of the ~90 systems holding
  both glasses and crystals at 0.79 — and even the 3 nearest alloys *of the same system*
  (leave-one-out, information an unseen system does not have) reach only AUC 0.86 there: the
  labels interleave within a system at the resolution of the table. Every variant tried landed
  at 0.85–0.86: plain Magpie-like XGBoost 0.862; this model 0.851–0.855 with or without the
  k-NN, pair and family blocks, atomic fractions (``fractions``), SMOTE or ``scale_pos_weight``
  (``balance``), depth 4–6, colsample 0.25–0.8;
* ratio-aware pair statistics (``pair_ratios``: other systems' alloys at the same element
  ratios) 0.847 / 0.984 / 0.224 against 0.853 / 0.983 / 0.221: off by default;
* a family-aware neighbour distance (``knn_groups`` = 1) 0.857 / 0.985 / 0.226: noise, off;
* the BMG head gains from the k-NN and pair blocks (F1 0.897 → 0.908, AUC 0.982 → 0.985);
* Dmax: ribbons out of the AFT head 0.279 → 0.228; σ = 0.3–0.5 beats 0.7–1.0 (hence the grid).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Mapping, Sequence

import numpy as np
import xgboost as xgb
from imblearn.over_sampling import SMOTE
from imblearn.pipeline import Pipeline
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from ml.composition import Composition, CompositionError, parse_composition
from ml.dataprep import _number, _rows_from
from ml.descriptors import D2_NAMES, D3_NAMES, Featurizer, fractions_matrix, l1_distances
from ml.elements import PROPERTY_NAMES
from ml.forward import ALLOY_ELEMENTS, _check_range
from ml.rules import (
    BMG_MIN_DMAX_MM,
    DMAX_AT_LEAST,
    DMAX_BELOW,
    DMAX_KINDS,
    DMAX_POINT,
    GFA_BMG,
    GFA_CRYSTAL,
    GFA_RIBBON,
    GFAValueError,
    class_from_casting,
    coded_dmax,
    dmax_problems,
    gfa_class,
    temperature_problems,
)

__all__ = [
    "GFADataError", "GFAData", "prepare_gfa", "chemical_system", "system_folds", "gfa_data_hash",
    "GFAModel", "LAB_ORIGINS", "CONFLICT_RULE", "HEADS",
]

LAB_ORIGINS = ("xrd", "lab")
HEADS = ("p_glass", "p_bmg", "dmax_mm")
CONFLICT_RULE = (
    "lab rows (origin xrd/lab) outweigh literature, then higher weight outweighs lower; among rows "
    "of equal priority the majority wins; a tie goes to the more glass-forming label (glass over "
    "crystal, BMG over ribbon), since an amorphous sample proves the alloy can vitrify"
)
STATE_FORMAT = "glassloop.gfa/1"
_Z80 = 1.2815515655446004  # standard normal 90 % quantile (two-sided 80 %)


class GFADataError(ValueError):
    """The GFA table cannot be used (missing column, nothing usable, no crystal to learn from, ...)."""


# ------------------------------------------------------------------------------------ data


@dataclass
class GFAData:
    """One entry per alloy (composition key); see the module docstring for the fields."""

    compositions: list[Composition]
    keys: list[str]
    systems: list[str]
    glass: np.ndarray
    bmg: np.ndarray
    dmax_low_mm: np.ndarray
    dmax_high_mm: np.ndarray
    weight: np.ndarray
    report: dict[str, Any] = field(default_factory=dict)
    classes: list[str | None] = field(default_factory=list)  # "bmg" / "ribbon" / "crystal" / None
    lab: np.ndarray | None = None  # True where a lab row decided the entry

    def __len__(self) -> int:
        return len(self.keys)

    def subset(self, idx) -> "GFAData":
        idx = np.asarray(idx, dtype=int)
        return GFAData(
            compositions=[self.compositions[i] for i in idx], keys=[self.keys[i] for i in idx],
            systems=[self.systems[i] for i in idx], glass=self.glass[idx], bmg=self.bmg[idx],
            dmax_low_mm=self.dmax_low_mm[idx], dmax_high_mm=self.dmax_high_mm[idx], weight=self.weight[idx],
            report=self.report, classes=[self.classes[i] for i in idx] if self.classes else [],
            lab=None if self.lab is None else self.lab[idx],
        )


def chemical_system(composition) -> str:
    """"Al-Cu-Zr" for Zr55Cu30Al15: the sorted element symbols joined by "-" (text is parsed)."""
    if isinstance(composition, str):
        composition = parse_composition(composition)
    return "-".join(sorted(el for el, x in dict(composition).items() if float(x) > 0))


def system_folds(systems: Sequence[str], n_splits: int = 5, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """K folds over chemical systems: every row of a system sits in one test fold only.

    Systems are shuffled by ``seed``, then dealt largest first to the fold with the fewest rows
    so far (fold sizes stay even although a few systems hold hundreds of alloys).
    """
    systems = list(systems)
    uniq = sorted(set(systems))
    if not isinstance(n_splits, (int, np.integer)) or n_splits < 2 or n_splits > len(uniq):
        raise ValueError(f"n_splits={n_splits!r} needs 2 ≤ n_splits ≤ number of chemical systems ({len(uniq)})")
    sizes = Counter(systems)
    rng = np.random.default_rng(seed)
    order = [uniq[i] for i in rng.permutation(len(uniq))]
    order.sort(key=lambda s: -sizes[s])  # stable: equal sizes keep the shuffled order
    load = np.zeros(n_splits)
    fold_of = {}
    for s in order:
        f = int(np.argmin(load))
        fold_of[s] = f
        load[f] += sizes[s]
    fold = np.array([fold_of[s] for s in systems])
    idx = np.arange(len(systems))
    return [(idx[fold != f], idx[fold == f]) for f in range(n_splits)]


def _text(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value).strip()


@dataclass
class _Row:
    i: int
    comp: Composition
    cls: str | None
    glass: float
    bmg: float
    low: float
    high: float
    weight: float
    lab: bool

    @property
    def priority(self) -> tuple:
        return (self.lab, self.weight)


def _read_row(i: int, row: Mapping, columns) -> tuple[_Row | None, str | None, bool]:
    """(row, refusal reason, had a source code)."""
    comp_text = _text(row.get("composition"))
    try:
        comp = parse_composition(comp_text)
    except CompositionError as exc:
        return None, f"composition: {exc}", False
    no_data = [el for el in comp if el not in elements_with_data()]
    if no_data:
        return None, (f"no element data for {', '.join(no_data)}: the descriptors need radius, melting point, "
                      "electronegativity, valence, bulk modulus and cohesive energy"), False
    try:
        cls = gfa_class(row.get("gfa_class"))
    except GFAValueError as exc:
        return None, str(exc), False
    kind = _text(row.get("dmax_kind")).lower() or DMAX_POINT
    raw_d = row.get("dmax_mm")
    d_text = _text(raw_d)
    coded = False
    d = None
    if d_text and cls is not None and kind == DMAX_POINT and coded_dmax(cls, d_text):
        coded = True  # the source's "no Dmax" code (0 on a crystal, 0.15 on a ribbon)
    elif d_text:
        problems = dmax_problems(cls, d_text, kind)
        if problems:
            return None, "; ".join(problems), False
        d = float(d_text)
    elif kind not in DMAX_KINDS:
        return None, f"unknown Dmax kind {kind!r}", False
    if d is None and kind != DMAX_POINT:
        return None, f"Dmax kind {kind!r} needs a Dmax (the rod diameter in mm)", coded
    w_text = _text(row.get("weight"))
    weight = 1.0
    if w_text:
        w = _number(w_text)
        if w is None or w <= 0:
            return None, f"weight {w_text!r} must be a positive number", coded
        weight = w
    lab = _text(row.get("origin")).lower() in LAB_ORIGINS
    tg = _number(row.get("Tg_K"))
    glass = bmg = math.nan
    if cls is None and d is not None and kind != DMAX_POINT:
        cls, kind, d = class_from_casting(kind == DMAX_AT_LEAST, d)
        if kind == DMAX_AT_LEAST:
            glass = 1.0
            bmg = 1.0 if d >= BMG_MIN_DMAX_MM else math.nan  # "at least a ribbon": thicker unknown
        else:
            bmg = 0.0 if d <= BMG_MIN_DMAX_MM else math.nan
        cls = cls if cls == GFA_BMG else None
    elif cls is None and d is not None:  # a point Dmax without class: it is a glass
        glass, bmg = 1.0, float(d >= BMG_MIN_DMAX_MM)
        cls = GFA_BMG if d >= BMG_MIN_DMAX_MM else GFA_RIBBON
    elif cls is None:
        if tg is None:
            text = _text(row.get("Tg_K"))
            why = f" (Tg {text!r} is not a number)" if text else ""
            return None, f"no GFA class, Dmax or Tg{why}: nothing says whether it forms a glass", coded
        problems = temperature_problems(tg_k=tg)
        if problems:
            return None, " ".join(p.message for p in problems), coded
        glass = 1.0  # a measured Tg means it vitrified; BMG unknown
    if cls == GFA_CRYSTAL:
        glass, bmg = 0.0, 0.0
    elif cls == GFA_RIBBON:
        glass, bmg = 1.0, 0.0
    elif cls == GFA_BMG:
        glass, bmg = 1.0, 1.0
    if d is None:
        low = high = math.nan
    elif kind == DMAX_POINT:
        low = high = d
    elif kind == DMAX_AT_LEAST:
        low, high = d, math.inf
    else:
        low, high = 0.0, d
    return _Row(i, comp, cls, glass, bmg, low, high, weight, lab), None, coded


def _label(value: float, yes: str, no: str) -> str:
    return yes if value == 1 else no


def _decide(rows: list[_Row], attr: str, yes: str, no: str) -> tuple[float, list[_Row], str | None]:
    """Resolve one binary label over rows (see CONFLICT_RULE): (value, agreeing rows, flag reason)."""
    known = [r for r in rows if not math.isnan(getattr(r, attr))]
    if not known:
        return math.nan, rows, None
    values = {getattr(r, attr) for r in known}
    if len(values) == 1:
        v = values.pop()
        return v, [r for r in rows if getattr(r, attr) in (v,) or math.isnan(getattr(r, attr))], None
    top = max(r.priority for r in known)
    best = [r for r in known if r.priority == top]
    n_yes = sum(getattr(r, attr) == 1 for r in best)
    n_no = len(best) - n_yes
    if len(best) < len(known):
        rule = "lab rows outweigh literature" if top[0] and not all(r.lab for r in known) else \
            "the higher-weight rows outweigh the others"
        if n_yes != n_no:
            rule += " (and their majority)"
        elif n_yes:
            rule += " (their tie goes to the more glass-forming label)"
    elif n_yes != n_no:
        rule = f"majority of rows ({max(n_yes, n_no)} of {len(best)})"
    else:
        rule = "a tie goes to the more glass-forming label"
    v = 1.0 if n_yes >= n_no else 0.0
    parts = ", ".join(
        f"row {r.i}: {_label(getattr(r, attr), yes, no)}{' (lab)' if r.lab else ''}"
        + (f" w={r.weight:g}" if r.weight != 1 else "")
        for r in known
    )
    reason = f"conflicting labels ({parts}); kept {_label(v, yes, no)}: {rule}"
    agree = [r for r in rows if math.isnan(getattr(r, attr)) or getattr(r, attr) == v]
    return v, agree, reason


def _merge_dmax(rows: list[_Row]) -> tuple[float, float, str | None]:
    lows = [r.low for r in rows if not math.isnan(r.low) and r.low > 0]
    points = [r.low for r in rows if not math.isnan(r.low) and r.low == r.high]
    belows = [r.high for r in rows if not math.isnan(r.high) and r.low == 0 and r.high != r.low]
    if not lows and not belows:
        return math.nan, math.nan, None
    low = max(lows) if lows else 0.0
    high = max(points) if points else (min(belows) if belows else math.inf)
    if points and belows and min(belows) < high:
        high = min(belows)
    if high < low:
        return low, math.inf, (f"Dmax bounds contradict (at least {low:g} mm but below {high:g} mm); "
                               f"kept Dmax ≥ {low:g} mm: the amorphous casting is the evidence")
    return low, high, None


def prepare_gfa(df_or_rows: Any) -> GFAData:
    """Clean a GFA table into one entry per alloy; see the module docstring for every rule."""
    rows, columns = _rows_from(df_or_rows)
    if "composition" not in columns:
        raise GFADataError("the GFA table has no 'composition' column (need composition, gfa_class, dmax_mm)")
    if not rows:
        raise GFADataError("the GFA table has no rows")
    refused: list[dict] = []
    groups: dict[str, list[_Row]] = defaultdict(list)
    n_coded = 0
    for i, row in enumerate(rows):
        r, reason, coded = _read_row(i, row, columns)
        n_coded += coded
        if r is None:
            refused.append({"row": i, "composition": _text(row.get("composition")), "reason": reason})
            continue
        groups[r.comp.key].append(r)
    if not groups:
        raise GFADataError(f"no usable row in the GFA table: {len(rows)} read, all refused "
                           f"(first reason: {refused[0]['reason']})")
    flagged: list[dict] = []
    keys = sorted(groups)
    n = len(keys)
    out = {name: np.full(n, np.nan) for name in ("glass", "bmg", "low", "high")}
    weight = np.ones(n)
    lab = np.zeros(n, dtype=bool)
    comps, classes = [], []
    merged = 0
    for j, key in enumerate(keys):
        members = groups[key]
        comps.append(members[0].comp)
        merged += len(members) > 1
        g, agree, why = _decide(members, "glass", "glass", "crystal")
        if why:
            flagged.append({"composition": members[0].comp.formula, "reason": why})
        if g == 0:
            b, agree_b = 0.0, agree
        else:
            b, agree_b, why_b = _decide(agree, "bmg", "BMG", "not BMG (ribbon)")
            if why_b:
                flagged.append({"composition": members[0].comp.formula, "reason": why_b})
        low, high, why_d = _merge_dmax(agree_b)
        if why_d:
            flagged.append({"composition": members[0].comp.formula, "reason": why_d})
        out["glass"][j], out["bmg"][j], out["low"][j], out["high"][j] = g, b, low, high
        weight[j] = max(r.weight for r in agree_b)
        lab[j] = any(r.lab for r in agree_b)
        classes.append(GFA_CRYSTAL if g == 0 else GFA_BMG if b == 1 else GFA_RIBBON if (g == 1 and b == 0) else None)
    counts = Counter(c or "unknown" for c in classes)
    report = {
        "rows_in": len(rows),
        "rows_used": len(rows) - len(refused),
        "rows_refused": len(refused),
        "alloys": n,
        "merged_keys": merged,
        "source_codes_dropped": n_coded,
        "refused": refused,
        "flagged": flagged,
        "counts": {c: int(counts.get(c, 0)) for c in (GFA_BMG, GFA_RIBBON, GFA_CRYSTAL, "unknown")},
        "glass_bmg_unknown": int(np.sum((out["glass"] == 1) & np.isnan(out["bmg"]))),
        "dmax_points": int(np.sum(out["low"] == out["high"])),
        "dmax_bounds": int(np.sum(np.isfinite(out["low"]) & (out["low"] != out["high"]))),
        "conflict_rule": CONFLICT_RULE,
    }
    return GFAData(compositions=comps, keys=keys, systems=[chemical_system(c) for c in comps],
                   glass=out["glass"], bmg=out["bmg"], dmax_low_mm=out["low"], dmax_high_mm=out["high"],
                   weight=weight, report=report, classes=classes, lab=lab)


def gfa_data_hash(data: GFAData) -> str:
    """sha256 over the cleaned entries (sorted keys; labels, bounds rounded to 1e-6, weights)."""
    def num(v):
        v = float(v)
        return None if math.isnan(v) else ("inf" if math.isinf(v) else round(v, 6))

    records = [[data.keys[i], num(data.glass[i]), num(data.bmg[i]), num(data.dmax_low_mm[i]),
                num(data.dmax_high_mm[i]), num(data.weight[i])] for i in np.argsort(data.keys, kind="stable")]
    blob = json.dumps(records, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(blob.encode()).hexdigest()


# ------------------------------------------------------------------------------------ features

_PROPERTY_LABELS = {
    "radius_pm": ("atomic radius", "pm"), "melting_t_k": ("melting point", "K"),
    "electronegativity": ("electronegativity", ""), "vec": ("valence electrons", ""),
    "bulk_modulus_gpa": ("bulk modulus", "GPa"), "cohesive_energy_ev": ("cohesive energy", "eV"),
}
STAT_NAMES = tuple(f"stat_{p}_{s}" for p in PROPERTY_NAMES for s in ("min", "max", "range")) + (
    "stat_pair_h_min_kj_mol", "stat_pair_h_max_kj_mol", "stat_n_elements", "stat_max_fraction",
)
# Element families for the group block: glass formers transfer between chemically alike systems
# (Al–Ni–La and Al–Ni–Ce, Fe–B–Si and Co–B–Si), which atomic fractions alone cannot see.
ELEMENT_GROUPS = {
    "s_block": "Li Na K Rb Cs Be Mg Ca Sr Ba",
    "p_metal": "Al Ga In Tl Sn Pb Bi Zn Cd Hg",
    "metalloid": "B C N O Si P S Ge As Se Sb Te",
    "early_tm": "Ti V Cr Zr Nb Mo Hf Ta W Tc",
    "late_tm": "Mn Fe Co Ni Cu Ru Rh Pd Ag Re Os Ir Pt Au",
    "rare_earth": "Sc Y La Ce Pr Nd Pm Sm Eu Gd Tb Dy Ho Er Tm Yb Lu",
}
GROUP_NAMES = tuple(f"group_{g}" for g in ELEMENT_GROUPS) + tuple(f"base_is_{g}" for g in ELEMENT_GROUPS) + tuple(
    f"base_{p}" for p in PROPERTY_NAMES)
KNN_NAMES = ("knn_glass_rate", "knn_bmg_rate", "knn_log10_dmax", "knn_nearest_l1", "knn_mean_l1")
_PAIR_TARGETS = ("glass", "bmg", "log10_dmax")
PAIR_NAMES = tuple(f"pair_{t}_{s}" for t in _PAIR_TARGETS for s in ("mean", "min", "max", "el_mean", "el_min")) + (
    "pair_support_min", "pair_support_mean")
RATIO_NAMES = ("ratio_glass_mean", "ratio_glass_min", "ratio_bmg_mean", "ratio_bmg_min")
_READABLE = {
    "d2_r_mean_pm": "mean atomic radius (pm)", "d2_delta_pct": "atomic size mismatch δ (%)",
    "d2_tm_mean_k": "mean melting point (K)", "d2_tm_std_k": "melting point spread (K)",
    "d2_dh_mix_kj_mol": "mixing enthalpy ΔHmix (kJ/mol)", "d2_dh_mix_std_kj_mol": "spread of pair ΔH (kJ/mol)",
    "d2_s_ideal_j_mol_k": "ideal mixing entropy (J/mol/K)", "d2_chi_mean": "mean electronegativity",
    "d2_chi_std": "electronegativity difference", "d2_vec_mean": "valence electron concentration",
    "d2_vec_std": "VEC spread", "d2_k_mean_gpa": "mean bulk modulus (GPa)", "d2_k_std_gpa": "bulk modulus spread (GPa)",
    "d3_eps_rms": "residual strain (rms)", "d3_eps_max_abs": "largest residual strain",
    "d3_ec_mean_ev": "mean cohesive energy (eV)", "d3_ec_std_ev": "cohesive energy spread (eV)",
    "d3_pair_h_mean_kj_mol": "mean pair ΔH (kJ/mol)", "d3_pair_h_std_kj_mol": "pair ΔH spread (kJ/mol)",
    "d3_s_excess_kb": "size-mismatch entropy (kB)", "d3_s_nonideal_kb": "non-ideal mixing entropy (kB)",
    "stat_pair_h_min_kj_mol": "most negative pair ΔH (kJ/mol)", "stat_pair_h_max_kj_mol": "most positive pair ΔH (kJ/mol)",
    "stat_n_elements": "number of elements", "stat_max_fraction": "largest atomic fraction",
    "knn_glass_rate": "glass rate of the nearest alloys of other systems",
    "knn_bmg_rate": "BMG rate of the nearest alloys of other systems",
    "knn_log10_dmax": "log10 Dmax of the nearest BMGs of other systems",
    "knn_nearest_l1": "distance to the nearest alloy of another system",
    "knn_mean_l1": "mean distance to the nearest alloys of other systems",
}
_PAIR_LABELS = {"glass": "glass rate", "bmg": "BMG rate", "log10_dmax": "mean log10 Dmax"}
for _t, _lab in _PAIR_LABELS.items():
    _READABLE[f"pair_{_t}_mean"] = f"{_lab} of alloys with the same element pairs (other systems)"
    _READABLE[f"pair_{_t}_min"] = f"lowest {_lab} over its element pairs (other systems)"
    _READABLE[f"pair_{_t}_max"] = f"highest {_lab} over its element pairs (other systems)"
    _READABLE[f"pair_{_t}_el_mean"] = f"{_lab} of alloys with the same elements (other systems)"
    _READABLE[f"pair_{_t}_el_min"] = f"lowest {_lab} over its elements (other systems)"
_READABLE.update({
    "ratio_glass_mean": "glass rate of other systems' alloys with its element ratios",
    "ratio_glass_min": "lowest glass rate at its element ratios (other systems)",
    "ratio_bmg_mean": "BMG rate of other systems' alloys with its element ratios",
    "ratio_bmg_min": "lowest BMG rate at its element ratios (other systems)",
})
_READABLE["pair_support_min"] = "fewest known alloys sharing one of its element pairs (log)"
_READABLE["pair_support_mean"] = "known alloys sharing its element pairs (log, mean)"
_GROUP_LABELS = {"s_block": "alkali / alkaline-earth", "p_metal": "simple p-metal (Al, Sn, Zn, ...)",
                 "metalloid": "metalloid (B, C, Si, P, ...)", "early_tm": "early transition metal",
                 "late_tm": "late transition metal", "rare_earth": "rare earth (incl. Y, Sc)"}
for _g, _lab in _GROUP_LABELS.items():
    _READABLE[f"group_{_g}"] = f"{_lab} fraction"
    _READABLE[f"base_is_{_g}"] = f"base element is a {_lab}"
for _p, (_lab, _unit) in _PROPERTY_LABELS.items():
    _READABLE[f"base_{_p}"] = f"base element {_lab}" + (f" ({_unit})" if _unit else "")
for _p, (_lab, _unit) in _PROPERTY_LABELS.items():
    for _s, _w in (("min", "lowest"), ("max", "highest"), ("range", "range of")):
        _READABLE[f"stat_{_p}_{_s}"] = f"{_w} {_lab}" + (f" ({_unit})" if _unit else "")


def readable_feature_name(name: str) -> str:
    if name.startswith("frac_"):
        return f"{name[5:]} fraction"
    return _READABLE.get(name, name)


def element_stats(X: np.ndarray, props: Mapping[str, np.ndarray], H: np.ndarray, chunk: int = 2000) -> np.ndarray:
    """Magpie-style min / max / range of each element property over the elements present, the most
    negative and most positive unlike-pair ΔH, the number of elements and the largest fraction."""
    X = np.asarray(X, dtype=float)
    present = X > 0
    cols = []
    for p in PROPERTY_NAMES:
        v = np.asarray(props[p], dtype=float)[None, :]
        lo = np.where(present, v, np.inf).min(axis=1)
        hi = np.where(present, v, -np.inf).max(axis=1)
        cols += [lo, hi, hi - lo]
    hmin = np.zeros(len(X))
    hmax = np.zeros(len(X))
    H = np.asarray(H, dtype=float)
    off = ~np.eye(H.shape[0], dtype=bool)
    for s in range(0, len(X), chunk):
        m = present[s:s + chunk]
        pair = m[:, :, None] & m[:, None, :] & off
        has = pair.any(axis=(1, 2))
        hmin[s:s + chunk] = np.where(has, np.where(pair, H, np.inf).min(axis=(1, 2)), 0.0)
        hmax[s:s + chunk] = np.where(has, np.where(pair, H, -np.inf).max(axis=(1, 2)), 0.0)
    cols += [hmin, hmax, present.sum(axis=1).astype(float), X.max(axis=1)]
    return np.column_stack(cols)


def group_features(X: np.ndarray, vocabulary: Sequence[str], props: Mapping[str, np.ndarray]) -> np.ndarray:
    """Fractions per element family (:data:`ELEMENT_GROUPS`), the base (largest-fraction) element's
    family as 0/1 columns and its six properties."""
    X = np.asarray(X, dtype=float)
    member = np.zeros((len(vocabulary), len(ELEMENT_GROUPS)))
    for j, members in enumerate(ELEMENT_GROUPS.values()):
        names = set(members.split())
        member[:, j] = [el in names for el in vocabulary]
    base = np.argmax(X, axis=1)
    P = np.column_stack([np.asarray(props[p], dtype=float) for p in PROPERTY_NAMES])
    return np.hstack([X @ member, member[base], P[base]])


@lru_cache(maxsize=1)
def elements_with_data() -> tuple[str, ...]:
    """Every element the element tables give all six properties for (the model vocabulary holds
    them all, so an alloy with an element no training row has still gets features)."""
    from ml.composition import ELEMENTS
    from ml.elements import element_table

    out = []
    for el in ELEMENTS:
        try:
            element_table([el])
        except ValueError:
            continue
        out.append(el)
    return tuple(out)


def _group_membership(vocabulary: Sequence[str]) -> np.ndarray:
    """(k, n_groups + 1) 0/1: each element's family, the last column for elements in none."""
    member = np.zeros((len(vocabulary), len(ELEMENT_GROUPS) + 1))
    for j, members in enumerate(ELEMENT_GROUPS.values()):
        names = set(members.split())
        member[:, j] = [el in names for el in vocabulary]
    member[:, -1] = member[:, :-1].sum(axis=1) == 0
    return member


def _knn_block(Q: np.ndarray, q_sys: np.ndarray, R: np.ndarray, r_sys: np.ndarray, targets: np.ndarray,
               k: int, chunk: int = 512, distances: np.ndarray | None = None) -> np.ndarray:
    """For each query row: the inverse-distance-weighted mean of each target column over its k
    nearest reference rows of *another* chemical system with that target known, then the
    nearest and mean distance (of the first target's neighbours). ``distances``: the (n, m) L1
    distances when already known (a fit computes them once for all its rows)."""
    n, t = len(Q), targets.shape[1]
    out = np.full((n, t + 2), np.nan)
    if len(R) == 0 or n == 0:
        return _fill_knn(out, targets)
    known = np.isfinite(targets)
    for s in range(0, n, chunk):
        D = (l1_distances(Q[s:s + chunk], R, np.float32) if distances is None else distances[s:s + chunk]).astype(float)
        D[q_sys[s:s + chunk, None] == r_sys[None, :]] = np.inf
        for c in range(t):
            Dc = np.where(known[None, :, c], D, np.inf)
            kk = min(k, Dc.shape[1])
            idx = np.argpartition(Dc, kk - 1, axis=1)[:, :kk]
            d = np.take_along_axis(Dc, idx, axis=1)
            ok = np.isfinite(d)
            w = np.where(ok, 1.0 / (d + 0.02), 0.0)
            vals = np.where(ok, targets[idx, c], 0.0)
            with np.errstate(invalid="ignore", divide="ignore"):
                out[s:s + chunk, c] = (w * vals).sum(axis=1) / w.sum(axis=1)
            if c == 0:
                with np.errstate(invalid="ignore"):
                    out[s:s + chunk, t] = np.where(ok.any(axis=1), np.where(ok, d, np.inf).min(axis=1), np.nan)
                    out[s:s + chunk, t + 1] = np.where(ok.any(axis=1), np.where(ok, d, 0).sum(axis=1)
                                                       / np.maximum(ok.sum(axis=1), 1), np.nan)
    return _fill_knn(out, targets)


def _fill_knn(out: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """No neighbour of another system knows the target: its reference mean (0 when none), and the
    largest L1 distance there is (2) — so every feature is finite (SMOTE needs that)."""
    t = targets.shape[1]
    with np.errstate(invalid="ignore"):
        means = [float(np.nanmean(targets[:, c])) if np.isfinite(targets[:, c]).any() else 0.0 for c in range(t)]
    for c in range(t):
        out[:, c] = np.where(np.isfinite(out[:, c]), out[:, c], means[c])
    out[:, t:] = np.where(np.isfinite(out[:, t:]), out[:, t:], 2.0)
    return out


def _ratio_block(Q: np.ndarray, q_sys: np.ndarray, R: np.ndarray, r_sys: np.ndarray, targets: np.ndarray,
                 width: float = 0.08, smoothing: float = 2.0) -> np.ndarray:
    """Ratio-aware pair statistics (glass and BMG columns of ``targets``): for each pair i, j of
    the alloy's elements, the reference alloys **of other systems** containing both, weighted by
    how close their ratio c_i / (c_i + c_j) is to the alloy's (Gaussian, ``width``), give a
    smoothed rate (shrunk towards that pair's overall rate with weight ``smoothing``). Glass forms
    in composition windows (Cu–Zr near 35–65 % Cu, Fe–B near 12–25 % B): this carries a binary's
    or a sibling system's window to an unseen system. Per alloy: the c_i c_j-weighted mean over
    its pairs and the minimum; a pure element gets the reference mean."""
    n = len(Q)
    out = np.zeros((n, 4))
    if n == 0 or len(R) == 0:
        return out
    q_sys = np.asarray(q_sys)
    Rp = R > 0
    for c in range(2):
        known = np.isfinite(targets[:, c])
        Rk, yk, sk, Pk = R[known], targets[known, c], r_sys[known], Rp[known]
        prior = float(yk.mean()) if len(yk) else 0.0
        for s in np.unique(q_sys):
            rows = np.nonzero(q_sys == s)[0]
            el = np.nonzero((Q[rows] > 0).any(axis=0))[0]
            if len(el) < 2:
                out[rows, 2 * c] = out[rows, 2 * c + 1] = prior
                continue
            other = sk != s
            rates, weights = [], []
            for a_i in range(len(el)):
                for b_i in range(a_i + 1, len(el)):
                    i, j = el[a_i], el[b_i]
                    ref = other & Pk[:, i] & Pk[:, j]
                    qi, qj = Q[rows, i], Q[rows, j]
                    weights.append(qi * qj)
                    if not ref.any():
                        rates.append(np.full(len(rows), prior))
                        continue
                    r_ref = Rk[ref, i] / (Rk[ref, i] + Rk[ref, j])
                    y = yk[ref]
                    r_q = qi / (qi + qj)
                    K = np.exp(-0.5 * ((r_q[:, None] - r_ref[None, :]) / width) ** 2)
                    pair_rate = (y.sum() + smoothing * prior) / (len(y) + smoothing)
                    rates.append((K @ y + smoothing * pair_rate) / (K.sum(axis=1) + smoothing))
            rates, weights = np.array(rates), np.array(weights)
            out[rows, 2 * c] = (rates * weights).sum(axis=0) / weights.sum(axis=0)
            out[rows, 2 * c + 1] = rates.min(axis=0)
    return out


def _pair_block(Q: np.ndarray, q_sys: np.ndarray, R: np.ndarray, r_sys: np.ndarray, targets: np.ndarray,
                smoothing: float = 2.0) -> np.ndarray:
    """Element-pair and element statistics of the reference rows **of other chemical systems**.

    For each target column (glass, BMG, log10 Dmax) and each unlike pair of elements the query
    contains: the smoothed mean of the target over the reference alloys that contain both
    elements, (Σ y + a·ȳ) / (n + a) with a = ``smoothing`` and ȳ the reference mean, after
    removing the query's own chemical system from the counts. Per query: the pair means
    weighted by c_i c_j, their min and max; the same per element (weighted by c_i), its mean and
    min; then log(1 + n) of the least and the mean supported pair. A pure element has no pair: its
    element rate stands in and the support is 0 (every feature is finite).
    """
    n, t = len(Q), targets.shape[1]
    width = 5 * t + 2
    out = np.full((n, width), np.nan)
    if n == 0 or len(R) == 0:
        return out
    Mr = (R > 0).astype(float)
    stats = []
    for c in range(t):
        known = np.isfinite(targets[:, c])
        Mk, y = Mr[known], targets[known, c]
        prior = float(y.mean()) if len(y) else 0.0
        own = {}
        sys_k = r_sys[known]
        order = np.argsort(sys_k, kind="stable")
        uniq, starts = np.unique(sys_k[order], return_index=True)
        for s, rows_s in zip(uniq, np.split(order, starts[1:])):
            # a system's counts live on its own elements only: keep that small block
            Ms = Mk[rows_s]
            el_s = np.nonzero(Ms.any(axis=0))[0]
            Ms, ys = Ms[:, el_s], y[rows_s]
            own[s] = (el_s, Ms.T @ Ms, Ms.T @ (Ms * ys[:, None]))
        stats.append((Mk.T @ Mk, Mk.T @ (Mk * y[:, None]), prior, own))
    q_sys = np.asarray(q_sys)
    present = Q > 0
    for s in np.unique(q_sys):
        rows = np.nonzero(q_sys == s)[0]
        el = np.nonzero(present[rows].any(axis=0))[0]
        m = len(el)
        C = Q[np.ix_(rows, el)]
        upper = np.triu(np.ones((m, m), dtype=bool), k=1)
        W = C[:, :, None] * C[:, None, :] * upper
        wsum = W.sum(axis=(1, 2))
        supports = None
        for c, (N, G, prior, own) in enumerate(stats):
            Ns, Gs = N[np.ix_(el, el)], G[np.ix_(el, el)]
            if s in own:  # the same system has the same elements, in the same (vocabulary) order
                el_s, N_own, G_own = own[s]
                pos = np.searchsorted(el, el_s)
                Ns, Gs = Ns.copy(), Gs.copy()
                Ns[np.ix_(pos, pos)] -= N_own
                Gs[np.ix_(pos, pos)] -= G_own
            rate = (Gs + smoothing * prior) / (Ns + smoothing)
            base = 5 * c
            d = np.diag(rate)
            if m >= 2:
                with np.errstate(invalid="ignore", divide="ignore"):
                    out[rows, base] = (W * rate).sum(axis=(1, 2)) / wsum
                out[rows, base + 1] = rate[upper].min()
                out[rows, base + 2] = rate[upper].max()
            else:  # a pure element has no pair: its own rate stands in
                out[rows, base:base + 3] = d[0]
            out[rows, base + 3] = C @ d / C.sum(axis=1)
            out[rows, base + 4] = d.min()
            if c == 0 and m >= 2:
                supports = Ns[upper]
        if supports is not None:
            out[rows, 5 * t] = np.log1p(supports.min())
            out[rows, 5 * t + 1] = np.log1p(supports).mean()
        else:
            out[rows, 5 * t:] = 0.0
    return out


def _log10_point(data_low: np.ndarray, data_high: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((data_low == data_high) & (data_low > 0), np.log10(data_low), np.nan)


class _Features:
    """Base descriptors (computed once per row) + the other-systems k-NN block (per reference set)."""

    def __init__(self, featurizer: Featurizer, knn_k: int, pair_stats: bool = True, knn_groups: float = 0.0,
                 pair_ratios: bool = False, fractions: bool = True):
        self.featurizer = featurizer
        self.knn_k = knn_k
        self.pair_stats = bool(pair_stats)
        self.knn_groups = float(knn_groups)
        self.pair_ratios = bool(pair_ratios)
        # without ``fractions`` the D1 columns (one per element) are left out of the trees' inputs
        names = list(featurizer.feature_names_)
        self.keep = np.array([fractions or not n.startswith("frac_") for n in names])
        self.member = _group_membership(featurizer.vocabulary_)
        d = featurizer.to_dict()
        self.props = {p: np.asarray(v, dtype=float) for p, v in d["element_properties"].items()}
        self.H = np.asarray(d["mixing_enthalpy_kj_mol"], dtype=float)
        self.names = [n for n, k in zip(names, self.keep) if k] + list(STAT_NAMES) + list(GROUP_NAMES) + (
            list(KNN_NAMES) if knn_k else []) + (
            list(PAIR_NAMES) if self.pair_stats else []) + (list(RATIO_NAMES) if self.pair_ratios else [])

    @property
    def vocabulary(self) -> list[str]:
        return list(self.featurizer.vocabulary_)

    def fractions(self, compositions) -> np.ndarray:
        return fractions_matrix(compositions, self.vocabulary)

    def base(self, X: np.ndarray) -> np.ndarray:
        return np.hstack([self.featurizer.transform_fractions(X)[:, self.keep], element_stats(X, self.props, self.H),
                          group_features(X, self.vocabulary, self.props)])

    def embed(self, X: np.ndarray) -> np.ndarray:
        """Rows the k-NN block measures L1 distances on (summing to 1): the fractions, and with
        ``knn_groups`` = w > 0 also w × the element-family fractions, divided by 1 + w — so swapping
        La for Ce (both rare earths) moves an alloy less than swapping La for Fe."""
        if not self.knn_groups:
            return X
        return np.hstack([X, self.knn_groups * (X @ self.member)]) / (1.0 + self.knn_groups)

    def distances(self, Q: np.ndarray, R: np.ndarray) -> np.ndarray:
        return l1_distances(self.embed(Q), self.embed(R), np.float32)

    def knn(self, Q, q_sys, R, r_sys, targets, distances=None) -> np.ndarray:
        """The blocks built from a reference set (k-NN, element-pair statistics)."""
        parts = [np.empty((len(Q), 0))]
        if self.knn_k:
            parts.append(_knn_block(self.embed(Q), np.asarray(q_sys), self.embed(R), np.asarray(r_sys), targets,
                                    self.knn_k, distances=distances))
        if self.pair_stats:
            parts.append(_pair_block(Q, np.asarray(q_sys), R, np.asarray(r_sys), targets))
        if self.pair_ratios:
            parts.append(_ratio_block(Q, np.asarray(q_sys), R, np.asarray(r_sys), targets))
        return np.hstack(parts)


def _digest(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a, dtype=np.float64).tobytes()).hexdigest()[:16]


class AFTEnsemble:
    """Several AFT boosters (different seeds) used as one: the prediction is their geometric mean
    (the mean of the log-scale margins), the contributions their mean (they add up to it)."""

    def __init__(self, boosters: Sequence[xgb.Booster]):
        self.boosters = list(boosters)

    def inplace_predict(self, F: np.ndarray) -> np.ndarray:
        return np.exp(np.mean([np.log(b.inplace_predict(F)) for b in self.boosters], axis=0))

    def predict(self, dm: xgb.DMatrix, pred_contribs: bool = False) -> np.ndarray:
        return np.mean([b.predict(dm, pred_contribs=pred_contribs) for b in self.boosters], axis=0)


class RecordingSMOTE(SMOTE):
    """SMOTE that remembers what it resampled: ``n_input_``, ``n_synthetic_``, ``input_digest_``
    (sha256 of the input matrix), ``originals_kept_`` (the output starts with the input rows)."""

    def _fit_resample(self, X, y):
        Xr, yr = super()._fit_resample(X, y)
        self.n_input_ = int(len(X))
        self.n_synthetic_ = int(len(Xr) - len(X))
        self.input_digest_ = _digest(X)
        self.originals_kept_ = bool(np.array_equal(np.asarray(Xr)[:len(X)], np.asarray(X)))
        return Xr, yr


# ------------------------------------------------------------------------------------ model


class GFAModel(BaseEstimator):
    """P(glass), P(BMG) and Dmax with an 80 % interval (see the module docstring).

    scikit-learn conventions: ``__init__`` stores the parameters, :meth:`fit` checks them;
    fitted attributes end in ``_`` (``features_``, ``boosters_``, ``threshold_glass_``,
    ``threshold_bmg_``, ``dmax_q_log10_``, ``calibration_``, ``fit_log_``, ``n_train_``,
    ``data_hash_``, ``reference_``).
    """

    def __init__(self, seed: int = 0, descriptor_set: str = "D1D2D3", knn_k: int = 5, n_estimators: int = 200,
                 max_depth: int = 6, learning_rate: float = 0.075, colsample: float = 0.5, smote_k: int = 5,
                 dmax_n_estimators: int = 300, dmax_max_depth: int = 4, dmax_learning_rate: float = 0.05,
                 dmax_members: int = 3,
                 aft_sigma=(0.2, 0.35),
                 dmax_ribbons: bool = False, pair_stats: bool = True, pair_ratios: bool = False,
                 knn_groups: float = 0.0, fractions: bool = True, balance: str = "smote",
                 inner_folds: int = 3,
                 coverage: float = 0.8, n_jobs: int = 1):
        self.seed = seed
        self.descriptor_set = descriptor_set
        self.knn_k = knn_k
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.colsample = colsample
        self.smote_k = smote_k
        self.dmax_n_estimators = dmax_n_estimators
        self.dmax_max_depth = dmax_max_depth
        self.dmax_learning_rate = dmax_learning_rate
        self.dmax_members = dmax_members
        self.aft_sigma = aft_sigma
        self.dmax_ribbons = dmax_ribbons
        self.pair_stats = pair_stats
        self.balance = balance
        self.knn_groups = knn_groups
        self.pair_ratios = pair_ratios
        self.fractions = fractions
        self.inner_folds = inner_folds
        self.coverage = coverage
        self.n_jobs = n_jobs

    def get_config(self) -> dict:
        return self.get_params(deep=False)

    def _check_params(self) -> None:
        from ml.descriptors import ALL_DESCRIPTOR_SETS

        if self.descriptor_set not in ALL_DESCRIPTOR_SETS:
            raise ValueError(f"unknown descriptor set {self.descriptor_set!r}; choose one of {', '.join(ALL_DESCRIPTOR_SETS)}")
        _check_range("seed", self.seed, 0, integer=True)
        _check_range("knn_k", self.knn_k, 0, integer=True)
        _check_range("n_estimators", self.n_estimators, 1, integer=True)
        _check_range("max_depth", self.max_depth, 1, 20, integer=True)
        _check_range("learning_rate", self.learning_rate, 1e-4, 1.0)
        _check_range("dmax_learning_rate", self.dmax_learning_rate, 1e-4, 1.0)
        _check_range("dmax_members", self.dmax_members, 1, 20, integer=True)
        _check_range("colsample", self.colsample, 0.05, 1.0)
        _check_range("smote_k", self.smote_k, 1, integer=True)
        _check_range("dmax_n_estimators", self.dmax_n_estimators, 1, integer=True)
        _check_range("dmax_max_depth", self.dmax_max_depth, 1, 20, integer=True)
        sigmas = self._sigmas()
        if not sigmas:
            raise ValueError("aft_sigma must be a number or a non-empty list of numbers in [0.01, 10]; got ()")
        for v in sigmas:
            _check_range("aft_sigma", v, 0.01, 10.0)
        for name in ("dmax_ribbons", "pair_stats", "pair_ratios", "fractions"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise ValueError(f"{name} must be True or False; got {getattr(self, name)!r}")
        if not (_is_int(self.inner_folds) and (self.inner_folds == 0 or self.inner_folds >= 2)):
            raise ValueError(f"inner_folds must be 0 (no calibration) or an integer >= 2; got {self.inner_folds!r}")
        _check_range("coverage", self.coverage, 0.05, 0.99)
        _check_range("knn_groups", self.knn_groups, 0.0, 10.0)
        if self.balance not in ("smote", "weight"):
            raise ValueError(f"balance must be 'smote' or 'weight' (scale_pos_weight); got {self.balance!r}")
        _check_range("n_jobs", self.n_jobs, 1, integer=True)

    # -- training pieces ----------------------------------------------------------------------
    def _xgb_params(self) -> dict:
        return dict(n_estimators=self.n_estimators, max_depth=self.max_depth, learning_rate=self.learning_rate,
                    subsample=0.8, colsample_bytree=self.colsample, min_child_weight=1.0, tree_method="hist",
                    max_bin=64, n_jobs=self.n_jobs, random_state=self.seed, eval_metric="logloss")

    def _fit_classifier(self, head: str, F: np.ndarray, y: np.ndarray, w: np.ndarray, rows: np.ndarray,
                        stage: str, log: list) -> xgb.Booster | float:
        """One glass / BMG head on rows (indices into the fit data); a constant when one class only."""
        entry = {"head": head, "stage": stage, "rows": np.asarray(rows), "rows_digest": _digest(F),
                 "smote": False, "n_input": int(len(y)), "n_synthetic": 0, "input_digest": None}
        log.append(entry)
        n_pos, n_neg = int(np.sum(y == 1)), int(np.sum(y == 0))
        if n_pos == 0 or n_neg == 0:
            return float(n_pos > 0)
        minority = min(n_pos, n_neg)
        # SMOTE interpolates between rows, so it needs every feature: the blocks fill theirs (a
        # target no other system knows -> the reference mean), and a non-finite matrix would fall
        # back to class weights rather than fail.
        if self.balance == "smote" and np.allclose(w, w[0]) and minority >= 2 and np.isfinite(F).all():
            smote = RecordingSMOTE(k_neighbors=max(1, min(self.smote_k, minority - 1)), random_state=self.seed)
            pipe = Pipeline([("smote", smote), ("xgb", xgb.XGBClassifier(**self._xgb_params()))])
            pipe.fit(F, y)
            entry.update(smote=True, n_synthetic=smote.n_synthetic_, input_digest=smote.input_digest_,
                         originals_kept=smote.originals_kept_)
            return pipe.named_steps["xgb"].get_booster()
        spw = float(np.sum(w[y == 0]) / np.sum(w[y == 1]))
        clf = xgb.XGBClassifier(scale_pos_weight=spw, **self._xgb_params())
        clf.fit(F, y, sample_weight=w)
        entry["scale_pos_weight"] = spw
        return clf.get_booster()

    def _dmax_bounds(self, data: GFAData) -> tuple[np.ndarray, np.ndarray]:
        """Interval labels for the AFT head: explicit bounds ∩ what the class says (see docstring)."""
        lo_e, hi_e = data.dmax_low_mm.copy(), data.dmax_high_mm.copy()
        lo_c = np.where(data.bmg == 1, BMG_MIN_DMAX_MM, 0.0)
        ribbon = (data.glass == 1) & (data.bmg == 0)
        hi_c = np.where(ribbon & bool(self.dmax_ribbons), BMG_MIN_DMAX_MM, np.inf)
        has_e = np.isfinite(lo_e)
        lo = np.where(has_e, np.maximum(np.nan_to_num(lo_e), lo_c), lo_c)
        hi = np.where(has_e, np.minimum(hi_e, hi_c), hi_c)
        bad = lo > hi  # measurement against class: the measurement wins
        lo, hi = np.where(bad, lo_e, lo), np.where(bad, hi_e, hi)
        use = (data.glass != 0) & ((lo > 0) | np.isfinite(hi))
        lo = np.where(use, lo, np.nan)
        hi = np.where(use, hi, np.nan)
        return lo, hi

    def _sigmas(self) -> tuple:
        s = self.aft_sigma
        return tuple(s) if isinstance(s, (list, tuple, np.ndarray)) else (s,)

    def _fit_dmax(self, F: np.ndarray, lo: np.ndarray, hi: np.ndarray, w: np.ndarray, sigma: float) -> AFTEnsemble:
        """``dmax_members`` AFT boosters (seeds seed, seed + 1, ...) on the interval labels."""
        return AFTEnsemble([self._fit_aft(F, lo, hi, w, sigma, self.seed + k) for k in range(self.dmax_members)])

    def _fit_aft(self, F: np.ndarray, lo: np.ndarray, hi: np.ndarray, w: np.ndarray, sigma: float,
                 seed: int) -> xgb.Booster:
        dm = xgb.DMatrix(F, weight=w)
        dm.set_float_info("label_lower_bound", lo)
        dm.set_float_info("label_upper_bound", hi)
        params = {"objective": "survival:aft", "eval_metric": "aft-nloglik", "aft_loss_distribution": "normal",
                  "aft_loss_distribution_scale": float(sigma), "tree_method": "hist", "max_bin": 128,
                  "learning_rate": self.dmax_learning_rate, "max_depth": self.dmax_max_depth, "subsample": 0.8,
                  "colsample_bytree": self.colsample, "min_child_weight": 1.0, "seed": seed,
                  "nthread": self.n_jobs, "verbosity": 0}
        return xgb.train(params, dm, num_boost_round=self.dmax_n_estimators)

    def _fit_heads(self, data: GFAData, B: np.ndarray, X: np.ndarray, rows: np.ndarray, stage: str,
                   log: list, D: np.ndarray | None = None, sigmas: Sequence[float] = (0.5,)) -> dict:
        """Fit the three heads on ``rows`` of the fit data; returns boosters + the k-NN reference.
        ``D``: L1 distances between all rows of the fit data (or None); ``sigmas``: the AFT scales
        to fit (``heads["dmax_all"]``; ``heads["dmax_mm"]`` is the first)."""
        sub_sys = np.asarray(data.systems)[rows]
        ref_targets = self._knn_targets(data, rows)
        K = self.features_.knn(X[rows], sub_sys, X[rows], sub_sys, ref_targets,
                               None if D is None else D[np.ix_(rows, rows)])
        F = np.hstack([B[rows], K])
        heads = {}
        for head, y_all in (("p_glass", data.glass), ("p_bmg", data.bmg)):
            y = y_all[rows]
            m = np.isfinite(y)
            heads[head] = self._fit_classifier(head, F[m], y[m].astype(int), data.weight[rows][m], rows[m], stage, log)
        lo, hi = self._dmax_bounds(data)
        lo, hi = lo[rows], hi[rows]
        m = np.isfinite(lo)
        heads["dmax_all"] = {s: self._fit_dmax(F[m], lo[m], hi[m], data.weight[rows][m], s) if m.sum() >= 2 else None
                             for s in sigmas}
        heads["dmax_mm"] = heads["dmax_all"][sigmas[0]]
        reference = {"X": X[rows], "systems": sub_sys, "targets": ref_targets}
        return {"heads": heads, "reference": reference}

    @staticmethod
    def _knn_targets(data: GFAData, rows: np.ndarray) -> np.ndarray:
        return np.column_stack([data.glass[rows], data.bmg[rows],
                                _log10_point(data.dmax_low_mm[rows], data.dmax_high_mm[rows])])

    def _predict_heads(self, fitted: dict, B: np.ndarray, X: np.ndarray, systems,
                       distances: np.ndarray | None = None) -> tuple[dict, np.ndarray]:
        ref = fitted["reference"]
        K = self.features_.knn(X, np.asarray(systems), ref["X"], ref["systems"], ref["targets"], distances)
        F = np.hstack([B, K])
        out = {}
        for head in ("p_glass", "p_bmg"):
            b = fitted["heads"][head]
            out[head] = np.full(len(F), b) if isinstance(b, float) else b.inplace_predict(F)
        b = fitted["heads"]["dmax_mm"]
        out["dmax_mm"] = np.full(len(F), np.nan) if b is None else b.inplace_predict(F)
        return out, F

    # -- fit ---------------------------------------------------------------------------------
    def fit(self, data) -> "GFAModel":
        self._check_params()
        if not isinstance(data, GFAData):
            data = prepare_gfa(data)
        if len(data) < 2:
            raise GFADataError("the GFA table has fewer than two usable alloys: nothing to fit")
        if not np.any(data.glass == 0):
            raise GFADataError("The training table has no crystalline alloy: a glass-vs-crystal model cannot be "
                               "fitted without alloys that do not form a glass. Add Crystal rows.")
        if not np.any(data.glass == 1):
            raise GFADataError("The training table has no glass-forming alloy: a glass-vs-crystal model cannot be "
                               "fitted without alloys that form a glass. Add Ribbon or BMG rows.")
        if not np.any(data.bmg == 1):
            raise GFADataError("The training table has no bulk glass (BMG): a BMG model cannot be fitted without "
                               "alloys castable as a rod of at least 1 mm. Add BMG rows.")
        vocab = sorted({el for c in data.compositions for el in c} | set(ALLOY_ELEMENTS) | set(elements_with_data()))
        self.features_ = _Features(Featurizer(self.descriptor_set, vocab).fit(data.compositions), self.knn_k,
                                   self.pair_stats, self.knn_groups, self.pair_ratios, self.fractions)
        X = self.features_.fractions(data.compositions)
        B = self.features_.base(X)
        log: list = []
        systems = np.asarray(data.systems)
        all_rows = np.arange(len(data))
        # inner folds by chemical system: out-of-fold predictions for thresholds and conformal
        n_sys = len(set(data.systems))
        k = min(self.inner_folds, n_sys) if self.inner_folds else 0
        oof = {h: np.full(len(data), np.nan) for h in HEADS}
        sigmas = tuple(float(v) for v in self._sigmas())
        oof_dmax = {v: np.full(len(data), np.nan) for v in sigmas}
        inner = []
        # one float32 L1 distance matrix for the k-NN blocks of every inner fit and the final one
        D = self.features_.distances(X, X) if self.knn_k else None
        if k >= 2:
            for f, (tr, va) in enumerate(system_folds(data.systems, k, self.seed)):
                fitted = self._fit_heads(data, B, X, tr, f"inner-{f}", log, D, sigmas)
                pred, F_va = self._predict_heads(fitted, B[va], X[va], systems[va],
                                                 None if D is None else D[np.ix_(va, tr)])
                for h in HEADS:
                    oof[h][va] = pred[h]
                for v, b in fitted["heads"]["dmax_all"].items():
                    if b is not None:
                        oof_dmax[v][va] = b.inplace_predict(F_va)
                inner.append((tr, va))
        self.inner_folds_ = inner
        # the AFT scale: the one with the smallest out-of-fold log10 error on the reported Dmax values
        point = _log10_point(data.dmax_low_mm, data.dmax_high_mm)
        errors = {}
        for v, pred in oof_dmax.items():
            m = np.isfinite(point) & np.isfinite(pred) & (pred > 0)
            errors[v] = float(np.mean(np.abs(np.log10(pred[m]) - point[m]))) if m.sum() >= 5 else float("nan")
        finite = {v: e for v, e in errors.items() if np.isfinite(e)}
        self.aft_sigma_ = min(finite, key=finite.get) if finite else sigmas[0]
        oof["dmax_mm"] = oof_dmax[self.aft_sigma_]
        final = self._fit_heads(data, B, X, all_rows, "final", log, D, (self.aft_sigma_,))
        del D
        final["heads"].pop("dmax_all")
        self.boosters_ = final["heads"]
        self.reference_ = final["reference"]
        self.fit_log_ = log
        self._calibrate(data, oof, bool(inner))
        self.calibration_["aft_sigma"] = self.aft_sigma_
        self.calibration_["aft_sigma_oof_mae_log10"] = {str(v): e for v, e in errors.items()}
        self.feature_names_ = list(self.features_.names)
        self.n_train_ = len(data)
        self.data_hash_ = gfa_data_hash(data)
        return self

    def _calibrate(self, data: GFAData, oof: dict, have_oof: bool) -> None:
        cal: dict[str, Any] = {"inner_folds": len(self.inner_folds_)}
        self.threshold_glass_ = self.threshold_bmg_ = 0.5
        if have_oof:
            for head, y_all, attr in (("p_glass", data.glass, "threshold_glass_"), ("p_bmg", data.bmg, "threshold_bmg_")):
                p = oof[head]
                if head == "p_bmg":
                    p = np.minimum(p, oof["p_glass"])
                m = np.isfinite(y_all) & np.isfinite(p)
                t, f1 = best_f1_threshold(y_all[m].astype(int), p[m])
                setattr(self, attr, t)
                cal[f"{head}_oof_f1"] = f1
                cal[f"{head}_oof_auc"] = _auc(y_all[m].astype(int), p[m])
        point = _log10_point(data.dmax_low_mm, data.dmax_high_mm)
        m = np.isfinite(point) & np.isfinite(oof["dmax_mm"]) & (oof["dmax_mm"] > 0)
        if have_oof and m.sum() >= 5:
            r = np.sort(np.abs(np.log10(oof["dmax_mm"][m]) - point[m]))
            n = len(r)
            rank = min(n, int(math.ceil((n + 1) * self.coverage)))
            self.dmax_q_log10_ = float(r[rank - 1])
            cal.update(dmax_method="split-conformal on out-of-fold log10 residuals", dmax_n_points=n,
                       dmax_oof_mae_log10=float(np.mean(r)))
        else:
            self.dmax_q_log10_ = float(_Z80 * self.aft_sigma_ / math.log(10))
            cal.update(dmax_method="AFT scale (not calibrated: no inner folds or < 5 point Dmax values)")
        self.calibration_ = cal

    # -- predict -----------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        check_is_fitted(self, "boosters_")

    def _matrix(self, compositions) -> tuple[np.ndarray, np.ndarray, list[str]]:
        comps = [c if isinstance(c, Composition) else Composition(c) for c in compositions]
        X = self.features_.fractions(comps)
        systems = [chemical_system(c) for c in comps]
        return self.features_.base(X), X, systems

    def _raw(self, compositions) -> tuple[dict, np.ndarray]:
        self._check_fitted()
        B, X, systems = self._matrix(compositions)
        return self._predict_heads({"heads": self.boosters_, "reference": self.reference_}, B, X, systems)

    def predict(self, compositions) -> dict[str, np.ndarray]:
        """p_glass, p_bmg (≤ p_glass), dmax_mm and its ``coverage`` interval dmax_low_mm / dmax_high_mm."""
        raw, _ = self._raw(compositions)
        p_glass = np.clip(raw["p_glass"].astype(float), 0.0, 1.0)
        p_bmg = np.minimum(np.clip(raw["p_bmg"].astype(float), 0.0, 1.0), p_glass)
        d = raw["dmax_mm"].astype(float)
        f = 10.0 ** self.dmax_q_log10_
        return {"p_glass": p_glass, "p_bmg": p_bmg, "dmax_mm": d, "dmax_low_mm": d / f, "dmax_high_mm": d * f}

    def classify(self, compositions) -> list[str]:
        """"bmg" / "ribbon" / "crystal" with the calibrated thresholds."""
        out = self.predict(compositions)
        return [GFA_CRYSTAL if g < self.threshold_glass_ else GFA_BMG if b >= self.threshold_bmg_ else GFA_RIBBON
                for g, b in zip(out["p_glass"], out["p_bmg"])]

    def contributions(self, compositions, top: int = 5) -> list[dict]:
        """Per composition: for each head the ``top`` features with the largest |XGBoost
        contribution| (log-odds for p_glass / p_bmg, log10 mm for dmax_mm), largest first."""
        _check_range("top", top, 1, integer=True)
        raw, F = self._raw(compositions)
        names = [readable_feature_name(n) for n in self.feature_names_]
        dm = xgb.DMatrix(F, feature_names=None)
        per_head = {}
        for head in HEADS:
            b = self.boosters_[head]
            if b is None or isinstance(b, float):
                per_head[head] = np.zeros((len(F), len(names)))
                continue
            c = b.predict(dm, pred_contribs=True)[:, :-1]
            per_head[head] = c / math.log(10) if head == "dmax_mm" else c
        out = []
        for i in range(len(F)):
            item = {}
            for head in HEADS:
                c = per_head[head][i]
                order = np.argsort(-np.abs(c), kind="stable")[:top]
                item[head] = [[names[j], float(c[j])] for j in order]
            out.append(item)
        return out

    # -- persistence -------------------------------------------------------------------------
    def save(self, out_dir: str, prefix: str = "gfa") -> dict:
        self._check_fitted()
        os.makedirs(out_dir, exist_ok=True)
        files = {}
        for head in HEADS:
            b = self.boosters_[head]
            if isinstance(b, xgb.Booster):
                name = f"{prefix}_{head}.ubj"
                b.save_model(os.path.join(out_dir, name))
                files[head] = name
            elif isinstance(b, AFTEnsemble):
                files[head] = []
                for k, member in enumerate(b.boosters):
                    name = f"{prefix}_{head}_{k}.ubj"
                    member.save_model(os.path.join(out_dir, name))
                    files[head].append(name)
            else:
                files[head] = None if b is None else float(b)
        arrays = f"{prefix}_reference.npz"
        np.savez(os.path.join(out_dir, arrays), X=self.reference_["X"], targets=self.reference_["targets"],
                 systems=np.asarray(self.reference_["systems"], dtype=str))
        state = {
            "format": STATE_FORMAT,
            "config": self.get_config(),
            # every value a file name (callers copy them); an ensemble head's members are also
            # listed in order under "ensembles"
            "model_files": {**{h: f for h, f in files.items() if isinstance(f, str)},
                            **{(h if k == 0 else f"{h}_{k}"): n for h, f in files.items() if isinstance(f, list)
                               for k, n in enumerate(f)},
                            "reference": arrays},
            "ensembles": {h: f for h, f in files.items() if isinstance(f, list)},
            "constant_heads": {h: f for h, f in files.items() if not isinstance(f, (str, list))},
            "featurizer": self.features_.featurizer.to_dict(),
            "feature_names": list(self.feature_names_),
            "thresholds": {"p_glass": self.threshold_glass_, "p_bmg": self.threshold_bmg_},
            "dmax_q_log10": self.dmax_q_log10_,
            "aft_sigma": self.aft_sigma_,
            "calibration": _jsonable(self.calibration_),
            "n_train": self.n_train_,
            "data_hash": self.data_hash_,
            "versions": _versions(),
        }
        with open(os.path.join(out_dir, f"{prefix}_state.json"), "w") as fh:
            json.dump(state, fh, indent=1, ensure_ascii=False)
        state["model_files"]["state"] = f"{prefix}_state.json"
        return state

    @classmethod
    def load(cls, out_dir: str, state: dict | None = None, prefix: str = "gfa") -> "GFAModel":
        if state is None:
            with open(os.path.join(out_dir, f"{prefix}_state.json")) as fh:
                state = json.load(fh)
        if state.get("format") != STATE_FORMAT:
            raise ValueError(f"unsupported GFA model state format {state.get('format')!r}")
        config = dict(state["config"])
        unknown = sorted(set(config) - set(cls._get_param_names()))
        if unknown:
            raise ValueError(f"GFA model state has unknown parameter(s) {', '.join(unknown)}; refit the model")
        obj = cls(**config)
        obj.features_ = _Features(Featurizer.from_dict(state["featurizer"]), obj.knn_k, obj.pair_stats, obj.knn_groups,
                                 obj.pair_ratios, obj.fractions)
        if obj.features_.names != list(state["feature_names"]):
            raise ValueError("GFA model state is inconsistent: feature names differ from the featurizer's")
        boosters = {}
        for head in HEADS:
            name = state.get("ensembles", {}).get(head) or state["model_files"].get(head)
            if name:
                members = []
                for n in ([name] if isinstance(name, str) else name):
                    b = xgb.Booster()
                    b.load_model(os.path.join(out_dir, n))
                    b.set_param({"nthread": obj.n_jobs})
                    members.append(b)
                boosters[head] = members[0] if isinstance(name, str) else AFTEnsemble(members)
            else:
                boosters[head] = state["constant_heads"].get(head)
        with np.load(os.path.join(out_dir, state["model_files"]["reference"])) as z:
            obj.reference_ = {"X": z["X"], "targets": z["targets"], "systems": z["systems"].astype(str)}
        obj.boosters_ = boosters
        obj.threshold_glass_ = float(state["thresholds"]["p_glass"])
        obj.threshold_bmg_ = float(state["thresholds"]["p_bmg"])
        obj.dmax_q_log10_ = float(state["dmax_q_log10"])
        obj.aft_sigma_ = float(state["aft_sigma"])
        obj.calibration_ = dict(state.get("calibration", {}))
        obj.feature_names_ = list(state["feature_names"])
        obj.n_train_ = int(state["n_train"])
        obj.data_hash_ = state["data_hash"]
        obj.fit_log_ = []
        obj.inner_folds_ = []
        return obj


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def best_f1_threshold(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """The probability cut with the best F1 on (y, p) (midpoint between neighbouring scores); (0.5, nan)
    when one class is missing."""
    y = np.asarray(y, dtype=int)
    p = np.asarray(p, dtype=float)
    if len(y) == 0 or y.min() == y.max():
        return 0.5, float("nan")
    order = np.argsort(-p, kind="stable")
    ps, ys = p[order], y[order]
    tp = np.cumsum(ys)
    fp = np.cumsum(1 - ys)
    f1 = 2 * tp / (tp + fp + ys.sum())
    last = np.r_[ps[1:] != ps[:-1], True]  # cut only between distinct scores
    f1 = np.where(last, f1, -1)
    i = int(np.argmax(f1))
    t = float(ps[i] if i + 1 >= len(ps) else (ps[i] + ps[i + 1]) / 2)
    return t, float(f1[i])


def _auc(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else float("nan")


def _jsonable(d):
    if isinstance(d, dict):
        return {k: _jsonable(v) for k, v in d.items()}
    if isinstance(d, (list, tuple)):
        return [_jsonable(v) for v in d]
    if isinstance(d, (np.floating, float)):
        return None if not np.isfinite(d) else float(d)
    if isinstance(d, np.integer):
        return int(d)
    return d


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("xgboost", "scikit-learn", "imbalanced-learn", "numpy"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:  # pragma: no cover
            out[pkg] = "unknown"
    return out
