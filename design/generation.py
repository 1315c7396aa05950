"""Candidate generation for a design campaign — pure Python (no Django), so the loop
simulation in bench/loop_sim.py runs exactly the code the site runs.

Steps (``generate``):

1. **Conditions inside the target region.** The CGAN is conditioned on (Tg, Tx, Tl). We draw
   condition rows from the training data's (Tg, Tx, Tl) rows with Gaussian jitter (10 % of
   each column's spread) plus uniform draws over the data's range, and keep those whose
   Tg, Tx, Tl, Trg, γ, ΔTx satisfy every thermal campaign target (a Dmax target does not
   condition the CGAN; it acts in steps 6–7). If fewer than 1 % qualify (targets
   beyond the data), the 5 % of draws closest to the region are used instead.
2. **Sampling**: ``n_draws`` compositions from the CGAN with those conditions. A campaign that
   asks for a bulk glass (P(BMG) ≥ a threshold, or a Dmax target) adds three condition columns
   (:func:`gfa_condition_columns`: glass = 1, BMG = 1, Dmax drawn log-uniformly inside the
   Dmax target, else unknown): the draws are anchored on known BMGs with such a Dmax
   (ml.inverse_design, step 1b), and a CGAN trained with the GFA condition (ml.gan) draws from
   the region of castable glasses; an older CGAN ignores the columns.
3. **Element constraints**: at most ``max_elements`` elements, the required base element
   (largest fraction), only allowed / no forbidden elements, per-element at.% ranges.
4. **Dedupe** against known alloys (composition keys) and earlier candidates of the campaign.
5. **Novelty**: L1 distance on atomic fractions to the nearest known alloy ≥ ``min_novelty``.
6. **Scoring** with the forward model (mean μ and ensemble std σ of each property) and the
   surrogate (P(glass), P(BMG), Dmax with its 80 % interval); drop what has P(glass) <
   ``min_p_glass``, P(BMG) < ``min_p_bmg`` or misses any target even optimistically, i.e.
   with a margin m_t < 0 below (μ + κσ below a minimum, μ − κσ above a maximum). With κ = 0
   the mean prediction itself must meet every target. ``counts`` says how many scored draws
   each glass-forming-ability filter removed, in the order P(glass) → P(BMG) → Dmax target
   (``removed_by_p_glass``, ``removed_by_p_bmg``, ``removed_by_dmax``). Where the model has
   no GFA model (P(glass), P(BMG), Dmax are NaN) those filters cannot apply: such draws
   pass them unchecked, are counted in ``gfa_unknown``, and ``GenerationResult.notes``
   says so in words.
7. **Ranking** by the acquisition score (UCB with a novelty bonus)::

       A = Σ_t tanh(m_t) + λ · min(d_nn, 0.15)
       m_t = (μ_t + κ σ_t − min_t) / s_t          for a minimum
       m_t = (max_t − (μ_t − κ σ_t)) / s_t        for a maximum (both: the smaller margin)

   where s_t is the spread (standard deviation) of property t in the training data, κ the
   exploration weight, λ the novelty weight and d_nn the L1 distance to the nearest known
   alloy. The Dmax target is scored the same way on log10 Dmax, with the 80 % interval
   [low, high] as the uncertainty: its upper half (high/median) stands for σ when a minimum
   is asked, its lower half (median/low) for a maximum, each divided by 1.2816 (the 80 %
   quantile of a normal), and s = 0.5 decade::

       m_dmax = (log10 d + κ·σ_up − log10 min) / 0.5,   σ_up = log10(high/d) / 1.2816

   so with κ = 1.28 a Dmax whose interval reaches the target is kept, and a draw the model is
   sure misses it is dropped. Each margin saturates (tanh, bounded by 1) so that overshooting one target cannot
   buy a miss on another, while a larger margin still ranks higher; σ rewards compositions the model is unsure about (where a lab result teaches most);
   the novelty bonus stops growing at 0.15 (7.5 at.% moved) so that far extrapolations, where
   the models know least, are not preferred for being far.
8. **Batch**: the best ``batch_size`` in score order, skipping any within L1 < 0.04 of a pick
   already made, so one batch is not ten copies of one alloy. With ``fill_with_near_misses``
   a batch that step 6 leaves short is filled with the best-scoring compositions that meet
   P(glass) but miss a target (marked ``near_miss``): when the target region lies beyond what
   the model believes, the loop still gets results from its edge to learn from.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np

from ml.composition import Composition
from ml.descriptors import fractions_matrix  # the one fractions matrix (bench/loop_sim.py uses generation.fractions_matrix)

PROPERTIES = ("tg_k", "tx_k", "tl_k", "trg", "gamma", "delta_tx_k")
BATCH_MIN_SEPARATION = 0.04  # L1 on fractions (2 at.% moved) between two picks of one batch
CONDITION_JITTER = 0.10
MIN_CONDITION_SHARE = 0.01
NOVELTY_CAP = 0.15

ACQUISITION_FORMULA = (
    "A = Σ_t tanh(m_t) + λ·min(d_nn, 0.15), with m_t = (μ_t + κ·σ_t − min_t)/s_t for a minimum and "
    "(max_t − μ_t + κ·σ_t)/s_t for a maximum; μ, σ = forward-model mean and ensemble std, "
    "s_t = spread of t in the training data, d_nn = L1 distance to the nearest known alloy. "
    "Dmax targets count on log10 Dmax with s = 0.5 decade and the 80 % interval as σ (its upper half for a minimum, "
    "lower half for a maximum, ÷ 1.2816). "
    "Kept only when P(glass) and P(BMG) meet their thresholds and every m_t ≥ 0 (the target is met at least optimistically)."
)
GFA_KEYS = ("p_glass", "p_bmg", "dmax_mm", "dmax_low_mm", "dmax_high_mm")
DMAX_TARGET = "dmax_mm"
DMAX_LOG_SCALE = 0.5  # decades: the s_t of the Dmax margin
Z80 = 1.2816  # the 90th percentile of a standard normal: an 80 % interval is ±1.2816 σ


@dataclass
class DesignSpec:
    """What a campaign asks for, in plain numbers (fractions, not at.%)."""

    targets: Mapping[str, Mapping[str, float | None]]
    base_element: str = ""
    allowed_elements: Sequence[str] = ()
    forbidden_elements: Sequence[str] = ()
    max_elements: int = 6
    element_ranges: Mapping[str, tuple[float, float]] = field(default_factory=dict)  # at.%
    min_p_glass: float = 0.5
    min_p_bmg: float = 0.0
    min_novelty: float = 0.05
    batch_size: int = 10
    n_draws: int = 10_000
    kappa: float = 1.0
    novelty_weight: float = 1.0
    fill_with_near_misses: bool = False


@dataclass
class Scored:
    composition: Composition
    predictions: dict[str, float]
    nearest_index: int
    nearest_distance: float
    score: float
    terms: dict[str, float]


@dataclass
class GenerationResult:
    picks: list[Scored]
    counts: dict[str, int]
    timings_s: dict[str, float]
    notes: list[str] = field(default_factory=list)  # what the round could not do, in words


def derived(tg, tx, tl):
    """Trg, γ, ΔTx from arrays of Tg, Tx, Tl (K)."""
    tg, tx, tl = (np.asarray(a, dtype=float) for a in (tg, tx, tl))
    with np.errstate(divide="ignore", invalid="ignore"):
        return tg / tl, tx / (tg + tl), tx - tg


def property_table(y: np.ndarray) -> dict[str, np.ndarray]:
    """(n, 3) Tg, Tx, Tl -> every target property as arrays."""
    y = np.asarray(y, dtype=float)
    trg, gamma, dtx = derived(y[:, 0], y[:, 1], y[:, 2])
    return {"tg_k": y[:, 0], "tx_k": y[:, 1], "tl_k": y[:, 2], "trg": trg, "gamma": gamma, "delta_tx_k": dtx}


def target_mask(values: Mapping[str, np.ndarray], targets) -> np.ndarray:
    """Rows whose values meet every target (min ≤ v ≤ max)."""
    n = len(next(iter(values.values())))
    ok = np.ones(n, dtype=bool)
    for name, b in targets.items():
        v = np.asarray(values[name], dtype=float)
        if b.get("min") is not None:
            ok &= v >= b["min"]
        if b.get("max") is not None:
            ok &= v <= b["max"]
    return ok & np.all([np.isfinite(np.asarray(values[n_])) for n_ in targets], axis=0)


def target_violation(values, targets, scales) -> np.ndarray:
    """Sum over targets of the standardised distance outside the target range (0 inside)."""
    n = len(next(iter(values.values())))
    total = np.zeros(n)
    for name, b in targets.items():
        v = np.asarray(values[name], dtype=float)
        s = scales[name]
        if b.get("min") is not None:
            total += np.clip((b["min"] - v) / s, 0, None)
        if b.get("max") is not None:
            total += np.clip((v - b["max"]) / s, 0, None)
    return total


def property_scales(train_y: np.ndarray) -> dict[str, float]:
    table = property_table(train_y)
    scales = {}
    for name, v in table.items():
        v = v[np.isfinite(v)]
        s = float(v.std()) if v.size > 1 else 0.0
        scales[name] = s if s > 0 else (1.0 if name.endswith("_k") else 0.01)
    return scales


def draw_conditions(train_y: np.ndarray, targets, n: int, rng: np.random.Generator) -> tuple[np.ndarray, bool]:
    """n (Tg, Tx, Tl) condition rows inside the target region (see module docstring).

    Returns (rows, inside): ``inside`` is False when the region lies beyond the data and the
    closest rows were used instead.
    """
    targets = thermal_targets(targets)  # a Dmax target does not condition the CGAN
    y = np.asarray(train_y, dtype=float)
    y = y[np.all(np.isfinite(y), axis=1)]
    if len(y) == 0:
        raise ValueError("no training rows with Tg, Tx and Tl to draw conditions from")
    spread = y.std(axis=0) + 1e-9
    lo, hi = y.min(axis=0), y.max(axis=0)
    m = max(4 * n, 20_000)
    k_data = int(0.7 * m)
    rows = y[rng.integers(0, len(y), k_data)] + rng.normal(0, CONDITION_JITTER, (k_data, 3)) * spread
    # Uniform over the data's box, each row sorted so Tg < Tx < Tl stays true.
    box = np.sort(rng.uniform(lo.min(), hi.max(), (m - k_data, 3)), axis=1)
    proposals = np.vstack([rows, box])
    proposals = proposals[(proposals[:, 0] < proposals[:, 1]) & (proposals[:, 1] < proposals[:, 2])]
    values = property_table(proposals)
    inside = target_mask(values, targets)
    if inside.sum() >= max(1, int(MIN_CONDITION_SHARE * len(proposals))):
        pool = proposals[inside]
        ok = True
    else:
        viol = target_violation(values, targets, property_scales(y))
        pool = proposals[np.argsort(viol, kind="stable")[: max(1, len(proposals) // 20)]]
        ok = False
    return pool[rng.integers(0, len(pool), n)], ok


DMAX_CONDITION_SPAN = 4.0  # an open Dmax minimum d conditions on [d, 4 d] (log-uniform)


def gfa_condition_columns(spec: "DesignSpec", n: int, rng: np.random.Generator) -> np.ndarray | None:
    """(n, 3) glass, BMG, Dmax (mm; NaN = unknown) condition columns for a campaign that asks
    for a bulk glass, else None (step 2 of the module docstring)."""
    b = spec.targets.get(DMAX_TARGET)
    if spec.min_p_bmg <= 0 and b is None:
        return None
    dmax = np.full(n, np.nan)
    if b is not None and (b.get("min") is not None or b.get("max") is not None):
        lo = b.get("min") if b.get("min") is not None else max(1.0, b["max"] / DMAX_CONDITION_SPAN)
        hi = b.get("max") if b.get("max") is not None else lo * DMAX_CONDITION_SPAN
        lo, hi = max(lo, 1e-3), max(hi, lo * 1.0001)
        dmax = 10 ** rng.uniform(math.log10(lo), math.log10(hi), n)
    return np.column_stack([np.ones(n), np.ones(n), dmax])


def condition_rows(train_y, train_compositions, spec: DesignSpec, min_rows: int = 5) -> np.ndarray:
    """The training rows to draw conditions from: those of alloys in the campaign's chemical
    family (base element, allowed / forbidden elements) when there are at least ``min_rows``
    — (Tg, Tx, Tl) of a Zr-based glass steer the CGAN towards Zr-based compositions — else all."""
    y = np.asarray(train_y, dtype=float)
    if train_compositions is None or not (spec.base_element or spec.allowed_elements or spec.forbidden_elements):
        return y
    allowed, forbidden = set(spec.allowed_elements or ()), set(spec.forbidden_elements or ())
    mask = np.array([
        (not spec.base_element or c.base_element == spec.base_element)
        and (not allowed or set(c) <= allowed) and not (set(c) & forbidden)
        for c in train_compositions
    ])
    mask &= np.all(np.isfinite(y), axis=1)
    return y[mask] if mask.sum() >= min_rows else y


def constraint_mask(compositions: Sequence[Composition], spec: DesignSpec) -> np.ndarray:
    """True for compositions that meet every element constraint of the spec."""
    allowed = set(spec.allowed_elements or ())
    forbidden = set(spec.forbidden_elements or ())
    ranges = {el: (lo / 100.0, hi / 100.0) for el, (lo, hi) in (spec.element_ranges or {}).items()}
    out = np.zeros(len(compositions), dtype=bool)
    for i, c in enumerate(compositions):
        out[i] = meets_constraints(c, spec.max_elements, spec.base_element, allowed, forbidden, ranges)
    return out


def meets_constraints(c: Composition, max_elements, base_element, allowed, forbidden, ranges) -> bool:
    if len(c) > max_elements or len(c) < 2:
        return False
    if base_element and c.base_element != base_element:
        return False
    els = set(c)
    if allowed and not els <= allowed:
        return False
    if forbidden and els & forbidden:
        return False
    for el, (lo, hi) in ranges.items():
        # 1e-9: the parser's 0.01 at.% grid may land exactly on a bound.
        if not (lo - 1e-9 <= c.get(el, 0.0) <= hi + 1e-9):
            return False
    return True


def thermal_targets(targets) -> dict:
    """The targets on Tg, Tx, Tl and what derives from them (they steer the CGAN's conditions)."""
    return {k: v for k, v in targets.items() if k in PROPERTIES}


def gfa_column(pred: Mapping[str, np.ndarray], name: str, n: int) -> np.ndarray:
    """A GFA prediction as a float array; NaN where the model has none (or the key is absent)."""
    v = pred.get(name)
    if v is None:
        return np.full(n, np.nan)
    v = np.asarray(v, dtype=float)
    return np.broadcast_to(v, (n,)).copy() if v.ndim == 0 else v


def dmax_margin(pred: Mapping[str, np.ndarray], bounds, n: int, kappa: float) -> np.ndarray:
    """The Dmax target's margin (module docstring, step 7); NaN where Dmax is unknown.

    Without an interval (or a broken one) σ is 0: the median alone must meet the target.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        d = gfa_column(pred, "dmax_mm", n)
        log_d = np.where(d > 0, np.log10(np.where(d > 0, d, 1.0)), np.nan)
        low, high = gfa_column(pred, "dmax_low_mm", n), gfa_column(pred, "dmax_high_mm", n)
        up = np.where((high >= d) & (d > 0), np.log10(high / d), 0.0) / Z80
        down = np.where((low > 0) & (low <= d), np.log10(d / low), 0.0) / Z80
        up, down = np.nan_to_num(up, nan=0.0, posinf=0.0), np.nan_to_num(down, nan=0.0, posinf=0.0)
        m = np.full(n, np.inf)
        if bounds.get("min") is not None:
            m = np.minimum(m, (log_d + kappa * up - math.log10(bounds["min"])) / DMAX_LOG_SCALE)
        if bounds.get("max") is not None:
            m = np.minimum(m, (math.log10(bounds["max"]) - (log_d - kappa * down)) / DMAX_LOG_SCALE)
    return np.where(np.isfinite(log_d), m, np.nan)


def acquisition(pred: Mapping[str, np.ndarray], targets, scales, distance: np.ndarray, kappa: float, novelty_weight: float):
    """(scores, per-target margins) — the formula in the module docstring.

    The Dmax margin is NaN where Dmax is unknown (no GFA model); it adds nothing to the score
    there (tanh(0)), so the round can still rank on the rest.
    """
    n = len(distance)
    score = np.zeros(n)
    margins = {}
    for name, b in targets.items():
        if name == DMAX_TARGET:
            m = dmax_margin(pred, b, n, kappa)
            margins[name] = m
            score += np.tanh(np.nan_to_num(m, nan=0.0))
            continue
        mu = np.asarray(pred[name], dtype=float)
        sd = np.nan_to_num(np.asarray(pred.get(f"{name}_std", np.zeros(n)), dtype=float))
        m = np.full(n, np.inf)
        if b.get("min") is not None:
            m = np.minimum(m, (mu + kappa * sd - b["min"]) / scales[name])
        if b.get("max") is not None:
            m = np.minimum(m, (b["max"] - (mu - kappa * sd)) / scales[name])
        margins[name] = m
        score += np.tanh(m)
    score += novelty_weight * np.minimum(np.asarray(distance, dtype=float), NOVELTY_CAP)
    return score, margins


def generate(
    spec: DesignSpec,
    *,
    sample: Callable[[np.ndarray, int], list[Composition]],
    predict: Callable[[Sequence[Composition]], dict[str, np.ndarray]],
    train_y: np.ndarray,
    known: Sequence[Mapping[str, float]],
    known_keys: set[str],
    earlier_keys: set[str] = frozenset(),
    train_compositions: Sequence[Composition] | None = None,
    seed: int = 0,
    progress: Callable[[float, str], None] | None = None,
) -> GenerationResult:
    """Run steps 1–8 of the module docstring and return the batch with counts per filter.

    ``sample(conditions, seed)`` -> compositions (one per condition row);
    ``predict(compositions)`` -> arrays tg_k, tx_k, tl_k, trg, gamma, delta_tx_k (+ ``_std``)
    and p_glass, optionally p_bmg, dmax_mm, dmax_low_mm, dmax_high_mm (absent or NaN: unknown,
    see step 6); ``known``: fractions of every known alloy (for novelty and nearest alloy).
    """
    say = progress or (lambda f, msg: None)
    timings = {}
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    counts: dict[str, int] = {"draws": spec.n_draws}

    say(0.05, "drawing conditions inside the target region")
    conditions, inside = draw_conditions(condition_rows(train_y, train_compositions, spec), spec.targets, spec.n_draws, rng)
    counts["conditions_inside_targets"] = int(inside)
    gfa_cols = gfa_condition_columns(spec, spec.n_draws, rng)
    if gfa_cols is not None:
        conditions = np.hstack([conditions, gfa_cols])
    say(0.1, f"sampling {spec.n_draws:,} compositions from the CGAN")
    comps = sample(conditions, seed)
    timings["sample"] = time.perf_counter() - t0

    # Unique first: the same alloy drawn twice is scored once.
    unique: dict[str, Composition] = {}
    for c in comps:
        if c is not None:
            unique.setdefault(c.key, c)
    comps = list(unique.values())
    counts["unique"] = len(comps)

    say(0.4, "checking element constraints")
    comps = [c for c, ok in zip(comps, constraint_mask(comps, spec)) if ok]
    counts["meet_element_constraints"] = len(comps)
    comps = [c for c in comps if c.key not in known_keys and c.key not in earlier_keys]
    counts["not_known_or_proposed"] = len(comps)

    say(0.5, "measuring novelty")
    t1 = time.perf_counter()
    from ml.metrics import nearest_distances

    vocab = sorted({el for c in comps for el in c} | {el for k in known for el in k})
    if comps and len(known):
        dist, idx = nearest_distances(fractions_matrix(comps, vocab), fractions_matrix(known, vocab), metric="l1")
    else:
        dist, idx = np.full(len(comps), 2.0), np.full(len(comps), -1)
    keep = dist >= spec.min_novelty
    comps = [c for c, k in zip(comps, keep) if k]
    dist, idx = dist[keep], idx[keep]
    counts["novel"] = len(comps)
    timings["novelty"] = time.perf_counter() - t1

    say(0.65, f"scoring {len(comps):,} compositions")
    t2 = time.perf_counter()
    picks: list[Scored] = []
    notes: list[str] = []
    if comps:
        pred = predict(comps)
        n = len(comps)
        pred = dict(pred)
        for key in GFA_KEYS:  # absent (an older bundle adapter) reads as unknown
            pred[key] = gfa_column(pred, key, n)
        scales = property_scales(train_y)
        scores, margins = acquisition(pred, spec.targets, scales, dist, spec.kappa, spec.novelty_weight)
        ok_p, ok_t, gfa_counts, gfa_note = _filters(spec, pred, margins, n)
        counts.update(gfa_counts)
        if gfa_note:
            notes.append(gfa_note)
        ok = ok_p & ok_t
        counts["meet_targets_on_mean"] = int(_meets_on_mean(pred, spec.targets, n).sum())
        counts["meet_targets"] = int(ok_t.sum())
        counts["meet_all"] = int(ok.sum())
        timings["score"] = time.perf_counter() - t2
        say(0.9, "ranking")
        ranked = np.argsort(-scores, kind="stable")
        order = [i for i in ranked if ok[i]]
        if spec.fill_with_near_misses:
            order += [i for i in ranked if ok_p[i] and not ok_t[i]]
        chosen: list[int] = []
        chosen_X = np.zeros((0, len(vocab)))
        for i in order:
            if len(chosen) >= spec.batch_size:
                break
            x = fractions_matrix([comps[i]], vocab)
            if len(chosen) and np.abs(chosen_X - x).sum(axis=1).min() < BATCH_MIN_SEPARATION:
                continue
            chosen.append(i)
            chosen_X = np.vstack([chosen_X, x])
        for i in chosen:
            p = {k: float(np.asarray(v)[i]) for k, v in pred.items()}
            terms = {f"margin_{name}": float(m[i]) for name, m in margins.items() if math.isfinite(float(m[i]))}
            terms["novelty"] = float(spec.novelty_weight * min(dist[i], NOVELTY_CAP))
            if not ok_t[i]:
                terms["near_miss"] = 1.0
            picks.append(Scored(comps[i], p, int(idx[i]), float(dist[i]), float(scores[i]), terms))
    else:
        counts.update(scored=0, meet_p_glass=0, removed_by_p_glass=0, removed_by_p_bmg=0, removed_by_dmax=0, gfa_unknown=0,
                      meet_targets=0, meet_all=0)
    counts["stored"] = len(picks)
    counts["near_misses"] = sum(1 for p in picks if p.terms.get("near_miss"))
    timings["total"] = time.perf_counter() - t0
    say(1.0, f"{len(picks)} candidates")
    return GenerationResult(picks=picks, counts=counts, timings_s={k: round(v, 3) for k, v in timings.items()}, notes=notes)


def _filters(spec: DesignSpec, pred, margins, n):
    """(passes the thresholds, meets every target, counts, note or "").

    The glass-forming-ability filters run in the order P(glass) → P(BMG) → Dmax target and
    count what each removed of the draws still in; a draw without the value a filter needs
    (no GFA model) passes it unchecked and is counted in ``gfa_unknown``.
    """
    p_glass, p_bmg = pred["p_glass"], pred["p_bmg"]
    known_glass, known_bmg = np.isfinite(p_glass), np.isfinite(p_bmg)
    ok_glass = ~known_glass | (p_glass >= spec.min_p_glass)
    ok_bmg = ~known_bmg | (p_bmg >= spec.min_p_bmg)
    ok_p = ok_glass & ok_bmg
    thermal = [m for name, m in margins.items() if name != DMAX_TARGET]
    ok_thermal = np.all([np.nan_to_num(m, nan=-1.0) >= 0 for m in thermal], axis=0) if thermal else np.ones(n, bool)
    dmax_m = margins.get(DMAX_TARGET)
    known_dmax = np.isfinite(dmax_m) if dmax_m is not None else np.ones(n, bool)
    ok_dmax = ~known_dmax | (np.nan_to_num(dmax_m, nan=0.0) >= 0) if dmax_m is not None else np.ones(n, bool)
    ok_t = ok_thermal & ok_dmax
    counts = {
        "scored": n,
        "meet_p_glass": int(ok_glass.sum()),
        "removed_by_p_glass": int((~ok_glass).sum()),
        "removed_by_p_bmg": int((ok_glass & ~ok_bmg).sum()),
        "removed_by_dmax": int((ok_p & ~ok_dmax).sum()),
    }
    dmax_asked = dmax_m is not None
    unchecked = []
    if spec.min_p_glass > 0 and not known_glass.all():
        unchecked.append((f"P(glass) ≥ {spec.min_p_glass:g}", int((~known_glass).sum())))
    if spec.min_p_bmg > 0 and not known_bmg.all():
        unchecked.append((f"P(BMG) ≥ {spec.min_p_bmg:g}", int((~known_bmg).sum())))
    if dmax_asked and not known_dmax.all():
        unchecked.append(("the Dmax target", int((~known_dmax).sum())))
    gfa_unknown = ~(known_glass & known_bmg & known_dmax) if dmax_asked else ~(known_glass & known_bmg)
    counts["gfa_unknown"] = int(gfa_unknown.sum())
    note = ""
    if unchecked:
        most = max(k for _, k in unchecked)
        names = _joined([name for name, _ in unchecked])
        whom = "any draw" if most == n else f"{most:,} of {n:,} draws"
        note = (
            f"Not checked: {names}. The model has no glass-forming-ability prediction for {whom} "
            "(it was trained without one, e.g. without crystalline records), so those candidates pass unchecked."
        )
    return ok_p, ok_t, counts, note


def _meets_on_mean(pred, targets, n):
    """Meets every target on the mean prediction (Dmax on its median; unknown Dmax passes)."""
    thermal = thermal_targets(targets)
    ok = target_mask({k: pred[k] for k in thermal}, thermal) if thermal else np.ones(n, bool)
    if DMAX_TARGET in targets:
        m = dmax_margin(pred, targets[DMAX_TARGET], n, kappa=0.0)
        ok &= ~np.isfinite(m) | (np.nan_to_num(m, nan=0.0) >= 0)
    return ok


def _joined(items):
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def finite(x):
    return x is not None and isinstance(x, (int, float)) and math.isfinite(x)
