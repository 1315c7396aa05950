"""Before a round and after one: can the campaign's targets be met, and why a round came out short.

* ``feasibility(campaign)``: how many of the lab's known alloys meet every target, and by how
  much the nearest one misses ("3 of 819 known alloys meet all targets; the nearest misses Tg by
  40 K"). The known alloys are the lab's records with their mean measured values (``lab.Alloy``
  summaries: mean Tg/Tx/Tl, Trg, γ, ΔTx of the means, best known Dmax) — the same rows the
  next training snapshot is built from, counted and ranked in SQL, and Dmax targets can be judged too (the
  model's training table holds Tg/Tx/Tl only). An alloy counts for a campaign when it has a
  value for every targeted property.
* ``round_explanation(counts, campaign)``: the filter counts a round recorded
  (``design.generation``: draws → distinct → element constraints → not known → novel →
  P(glass) → P(BMG) → Dmax → thermal targets → batch) as a sentence naming what removed the draws.
"""

from __future__ import annotations

import math

from ml.composition import Composition
from ml.rules import display_k

from . import generation
from .models import DMAX_TARGET, TARGET_PROPERTIES

# target property -> lab.Alloy summary field
ALLOY_FIELDS = {
    "tg_k": "tg_mean_k", "tx_k": "tx_mean_k", "tl_k": "tl_mean_k", "trg": "trg", "gamma": "gamma",
    "delta_tx_k": "dtx_k", "dmax_mm": "dmax_mm",
}
SHORT_LABELS = {"tg_k": "Tg", "tx_k": "Tx", "tl_k": "Tl", "trg": "Trg", "gamma": "γ", "delta_tx_k": "ΔTx", "dmax_mm": "Dmax"}


def _amount(name, value):
    unit = TARGET_PROPERTIES[name][1]
    if name in ("trg", "gamma"):
        return f"{value:.3f}"
    if unit == "K":
        return f"{display_k(value, 0)} K"
    return f"{value:.1f} {unit}"


def _misses(name, bounds, value):
    """How far ``value`` lies outside the target (0 inside)."""
    lo, hi = bounds.get("min"), bounds.get("max")
    if lo is not None and value < lo:
        return lo - value
    if hi is not None and value > hi:
        return value - hi
    return 0.0


def feasibility(campaign):
    """{n_known, n_meet, n_meet_in_family, nearest: {alloy_id, formula, misses: [(label, text)]} | None,
    sentence} — see the module docstring. None when the campaign has no target."""
    from django.db.models import Case, Count, F, FloatField, Q, StdDev, Value, When
    from django.db.models.functions import Greatest, Ln

    from lab.models import Alloy

    # in ALLOY_FIELDS' order, not the stored one: PostgreSQL's jsonb reorders keys
    stored = campaign.targets or {}
    targets = {k: stored[k] for k in ALLOY_FIELDS if k in stored}
    if not targets:
        return None
    fields = {k: ALLOY_FIELDS[k] for k in targets}
    qs = Alloy.objects.filter(**{f"{f}__isnull": False for f in fields.values()})
    # Counted and ranked by the database (a campaign page read all 10,000 alloys and their
    # values into Python for this line): one aggregate, then the nearest miss by ORDER BY.
    meet = Q()
    for k, b in targets.items():
        if b.get("min") is not None:
            meet &= Q(**{f"{fields[k]}__gte": b["min"]})
        if b.get("max") is not None:
            meet &= Q(**{f"{fields[k]}__lte": b["max"]})
    spread = {k: StdDev(fields[k]) for k in targets if k != DMAX_TARGET}
    agg = qs.aggregate(n=Count("pk"), n_meet=Count("pk", filter=meet), **{f"s_{k}": s for k, s in spread.items()})
    n, n_meet = agg["n"], agg["n_meet"]
    names = " and ".join(SHORT_LABELS[k] for k in targets) if len(targets) <= 2 else ", ".join(SHORT_LABELS[k] for k in targets)
    known = f"known alloys with {names}" if n != 1 else f"known alloy with {names}"
    if n == 0:
        return {"n_known": 0, "n_meet": 0, "n_meet_in_family": 0, "nearest": None,
                "sentence": f"No alloy in the lab's records has a measured {names}: the targets cannot be checked against known alloys."}
    spec = _family(campaign)
    n_family = n_meet
    if spec:  # element constraints are tested in Python, on the alloys that meet the targets only
        n_family = sum(1 for fractions in qs.filter(meet).values_list("fractions", flat=True).iterator() if spec(fractions))
    sentence = f"{n_meet:,} of {n:,} {known} meet all targets"
    if spec and n_meet:
        sentence += f" ({n_family:,} of them within the campaign's element constraints)"
    nearest = None
    if n_meet < n:
        violation = Value(0.0, output_field=FloatField())
        for k, b in targets.items():
            f, lo, hi = fields[k], b.get("min"), b.get("max")
            if k == DMAX_TARGET:  # on log10 Dmax, half a decade as the unit (as the ranking does)
                lv = Ln(Case(When(**{f"{f}__gt": 0}, then=F(f)), default=Value(1e-3), output_field=FloatField())) / math.log(10)
                if lo is not None:
                    violation += Greatest(Value(math.log10(lo)) - lv, Value(0.0)) / generation.DMAX_LOG_SCALE
                if hi is not None:
                    violation += Greatest(lv - Value(math.log10(hi)), Value(0.0)) / generation.DMAX_LOG_SCALE
                continue
            whens = []
            if lo is not None:  # below the minimum first, as in _misses
                whens.append(When(**{f"{f}__lt": lo}, then=Value(float(lo)) - F(f)))
            if hi is not None:
                whens.append(When(**{f"{f}__gt": hi}, then=F(f) - Value(float(hi))))
            s = agg[f"s_{k}"] or (1.0 if k.endswith("_k") else 0.01)
            violation += Case(*whens, default=Value(0.0), output_field=FloatField()) / s
        row = (qs.exclude(meet).annotate(violation=violation).order_by("violation", "formula", "pk")
               .values_list("pk", "formula", *fields.values()).first())
        pk, formula = row[0], row[1]
        values = dict(zip(targets, row[2:]))
        misses = [(SHORT_LABELS[k], _amount(k, _misses(k, b, values[k]))) for k, b in targets.items()
                  if _misses(k, b, values[k]) > 0]
        nearest = {"alloy_id": pk, "formula": formula, "misses": misses}
        which = "the nearest" if n_meet == 0 else "the nearest of the others"
        sentence += f"; {which} ({formula}) misses " + _joined([f"{label} by {text}" for label, text in misses])
    if n_meet == 0:
        sentence += ". No known alloy reaches these targets: expect few or no candidates unless they are widened"
    return {"n_known": n, "n_meet": n_meet, "n_meet_in_family": n_family, "nearest": nearest, "sentence": sentence + "."}


def _family(campaign):
    """A fractions -> bool test of the campaign's element constraints, or None without any."""
    if not (campaign.base_element or campaign.allowed_elements or campaign.forbidden_elements or campaign.element_ranges):
        return None
    allowed, forbidden = set(campaign.allowed_elements or ()), set(campaign.forbidden_elements or ())
    ranges = {el: (lo / 100, hi / 100) for el, (lo, hi) in (campaign.element_ranges or {}).items()}

    def test(fractions):
        comp = Composition.from_fractions(fractions)
        return generation.meets_constraints(comp, campaign.max_elements, campaign.base_element, allowed, forbidden, ranges)

    return test


def _joined(items):
    if not items:
        return ""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def round_explanation(counts, campaign):
    """Where a round's draws went, as a sentence; "" when the round filled its batch (or has no counts)."""
    if not counts or "draws" not in counts:
        return ""
    stored = counts.get("stored", 0)
    if stored >= campaign.batch_size and not counts.get("near_misses"):
        return ""
    c = lambda key: int(counts.get(key, 0) or 0)  # noqa: E731
    scored = c("novel") if "novel" in counts else c("scored")
    after_p = scored - c("removed_by_p_glass") - c("removed_by_p_bmg")
    constraints = _constraints_text(campaign)
    stages = [
        ("duplicate draws of one composition", c("draws"), c("unique")),
        (f"the element constraints ({constraints})", c("unique"), c("meet_element_constraints")),
        ("being known alloys or earlier candidates", c("meet_element_constraints"), c("not_known_or_proposed")),
        (f"the novelty threshold (L1 ≥ {campaign.min_novelty:g} from every known alloy)", c("not_known_or_proposed"), c("novel")),
        (f"P(glass) ≥ {campaign.min_p_glass:g}", scored, scored - c("removed_by_p_glass")),
        (f"P(BMG) ≥ {campaign.min_p_bmg:g}", scored - c("removed_by_p_glass"), after_p),
        ("the Dmax target", after_p, after_p - c("removed_by_dmax")),
        ("the thermal targets (even optimistically, μ + κσ)", after_p - c("removed_by_dmax"), c("meet_all")),
    ]
    removed = [(name, before - after, after) for name, before, after in stages if before - after > 0]
    parts = [f"{name} removed {r:,}" for name, r, _ in removed]
    text = f"{stored} of {campaign.batch_size} candidates from {c('draws'):,} draws: " + (_joined(parts) if parts else "nothing was removed")
    emptied = next((name for name, _, after in removed if after == 0), None)
    if emptied:
        text += f". No draw was left after {emptied}"
        if emptied.startswith("the element constraints"):
            text += ": the CGAN hardly proposes such alloys — loosen the constraints or train on more alloys of this family"
        elif emptied.startswith("the novelty"):
            text += ": lower the novelty threshold"
        elif emptied.startswith("the thermal") or emptied.startswith("the Dmax"):
            text += ": the model believes no draw reaches the targets — widen them or raise κ"
        elif emptied.startswith("P("):
            text += ": lower the threshold"
    elif removed:
        biggest = max(removed, key=lambda r: r[1])
        text += f". The largest cut: {biggest[0]}"
    if counts.get("meet_all", 0) > stored and stored < campaign.batch_size:
        text += f". {c('meet_all') - stored:,} more met everything but were within L1 < {generation.BATCH_MIN_SEPARATION:g} of a pick"
    if "conditions_inside_targets" in counts and not counts["conditions_inside_targets"]:
        text += (". The targets lie beyond the (Tg, Tx, Tl) of the training data, so the CGAN was conditioned on the "
                 "closest rows instead")
    return text + "."


def _constraints_text(campaign):
    parts = []
    if campaign.base_element:
        parts.append(f"{campaign.base_element}-based")
    parts.append(f"at most {campaign.max_elements} elements")
    if campaign.allowed_elements:
        parts.append("only " + " ".join(campaign.allowed_elements))
    if campaign.forbidden_elements:
        parts.append("no " + " ".join(campaign.forbidden_elements))
    for el, (lo, hi) in (campaign.element_ranges or {}).items():
        parts.append(f"{el} {lo:g}–{hi:g} at.%")
    return ", ".join(parts)
