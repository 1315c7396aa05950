"""Validation of extracted records: every record gets a list of flags, each with a reason
a reviewer can read. A clean record has no flag. No database access here except through
the ``others`` values the caller passes in, so a whole batch is checked with one query.

Flags and their rules (the domain rules themselves are ``ml.rules``', shared with the lab
and the ML data preparation, so what is clean here is accepted on approval and vice versa)
---------------------
unparseable  the composition parser refused it (its message), or a value is not a number.
order        the given temperatures are not strictly Tg < Tx < Tl.
range        a value outside 200–2500 K (limits included), or ΔTx = Tx − Tg above 250 K (the
             widest supercooled liquid regions reported for BMGs are ~130 K; 250 K leaves
             margin). ΔTx < 0 is an ``order`` problem, not repeated here.
units        °C suspected (``ml.rules.celsius_suspicions``). Rule: the alloy's base element
             belongs to a family whose glasses all have Tg well above a floor
             (FAMILY_MIN_TG_K, e.g. Zr 520 K, Fe 600 K), the record's Tg (or Tx when Tg is
             missing) is below that floor, and adding 273.15 K brings it above the floor; or
             Tl < 550 K (no BMG liquidus is that low) and Tl + 273.15 is plausible.
             Low-temperature families (Mg, Ca, La, Ce, Au, Ag, ...) have no floor: their K
             values really are that low. Values the source gave in °C were converted on
             extraction and are not suspected again.
duplicate    same composition key as an existing alloy's property value or another pending
             record, and every temperature both give agrees within 10 K
             (``ml.rules.compare_temperatures`` = "agree").
conflict     same key, and some temperature both give differs by more than 10 K ("differ").
             Values that share no temperature ("disjoint", e.g. one gives only Tg, the other
             only Tl) are neither: there is nothing to compare.
outlier      a forward model (``predictor``) predicts mean ± std for the composition and the
             value is more than 3 std away (std floored at 10 K so an over-confident model
             does not flag everything).
snippet      the supporting snippet was not found in the source text (LLM records): we keep
             the record, flagged, rather than drop it, so the reviewer decides.
ungrounded   a stored Tg/Tx/Tl/Dmax is not stated by any number of the record's snippet or
             more_snippets (as written, in K or in °C, ±0.6 of the written unit; composition
             subscripts and years are not read as values), or the record has values and no
             snippet. A derived value (``derived``) is grounded by its formula's parts.
             Any flag keeps a record out of "approve clean" (``bulk_blockers``).
"""

import logging
import math
import re
from collections import defaultdict
from dataclasses import dataclass

from ml import rules
from ml.composition import ELEMENTS, CompositionError, parse_composition
# The limits that block approval here are the ones that refuse a lab value and drop rows in
# the ML data preparation: one rule, ml.rules.
from ml.rules import AGREEMENT_TOLERANCE_K as AGREE_WITHIN_K
from ml.rules import FAMILY_MIN_TG_K, MIN_TL_K  # noqa: F401  (documented above; re-exported)

UNPARSEABLE = "unparseable"
ORDER = "order"
RANGE = "range"
UNITS = "units"
DUPLICATE = "duplicate"
CONFLICT = "conflict"
OUTLIER = "outlier"
SNIPPET = "snippet"
UNGROUNDED = "ungrounded"  # a stored value is not found in the record's snippet (K or °C)
ALL_FLAGS = (UNPARSEABLE, ORDER, RANGE, UNITS, DUPLICATE, CONFLICT, OUTLIER, SNIPPET, UNGROUNDED)
# Flags that forbid approval until the reviewer edits the record.
BLOCKING_FLAGS = (UNPARSEABLE, ORDER, RANGE)

OUTLIER_SIGMA = 3.0
OUTLIER_MIN_STD_K = 10.0

TEMPERATURES = (("tg_k", "Tg"), ("tx_k", "Tx"), ("tl_k", "Tl"))

logger = logging.getLogger(__name__)


def get_active_predictor():
    """The active model version's forward model for the ``outlier`` flag, or None when no
    version is active (or its artefacts cannot be read: then no record is flagged outlier,
    and the model page says what is wrong).

    Returns ``predictor(compositions) -> {"tg_k": (means, stds), "tx_k": ..., "tl_k": ...}``,
    aligned with ``compositions``; NaN (never flagged) for a composition with an element that
    no training alloy of the model contains.
    """
    import numpy as np


    from training import bundles as ml_bundles
    from ml.artefacts import ArtefactError

    try:
        bundle = ml_bundles.load_active_bundle()
    except ArtefactError:
        logger.warning("the active model's artefacts cannot be read; outlier checks are off", exc_info=True)
        return None
    if bundle is None:
        return None
    # Only judge compositions made of elements the model has seen in training alloys: far
    # outside its data (a new alloy family) its prediction is no reason to doubt a paper.
    vocabulary = ml_bundles.bundle_vocabulary(bundle) & {el for comp in ml_bundles.training_compositions(bundle) for el in comp}

    def predictor(compositions):
        known = [i for i, comp in enumerate(compositions) if set(comp) <= vocabulary]
        out = {name: (np.full(len(compositions), np.nan), np.full(len(compositions), np.nan)) for name, _ in TEMPERATURES}
        if known:
            predicted = ml_bundles.predict(bundle, [compositions[i] for i in known])
            for name, _ in TEMPERATURES:
                out[name][0][known] = predicted[name]
                out[name][1][known] = predicted.get(f"{name}_std", np.zeros(len(known)))
        return out

    return predictor


@dataclass(frozen=True)
class ReferenceValue:
    """A value the record is compared with: an alloy's property value or another record."""

    label: str
    key: str
    tg_k: float | None
    tx_k: float | None
    tl_k: float | None


def flag(name, reason):
    return {"flag": name, "reason": reason}


def _fmt(value):
    return f"{value:g}"


def parse_into(record):
    """Parse the record's composition; fill its parsed fields. Returns the Composition or None."""
    try:
        comp = parse_composition(record.composition_for_parsing)
    except CompositionError as exc:
        record.composition_formula = record.composition_key = record.base_element = record.elements_index = ""
        record.parse_error = str(exc)
        return None
    record.composition_formula = comp.formula
    record.composition_key = comp.key
    record.base_element = comp.base_element
    record.elements_index = "|" + "|".join(sorted(comp.elements)) + "|"
    record.parse_error = ""
    return comp


def check_values_are_numbers(record):
    """Import rows keep what they could not read in original_values[...]['error']."""
    return [
        flag(UNPARSEABLE, info["error"])
        for info in (record.original_values or {}).values()
        if isinstance(info, dict) and info.get("error")
    ]


def check_order(tg_k, tx_k, tl_k):
    problems = [p.message for p in rules.temperature_problems(tg_k, tx_k, tl_k) if p.kind == rules.ORDER]
    return [flag(ORDER, " ".join(problems))] if problems else []


def check_range(tg_k, tx_k, tl_k):
    problems = [p.message for p in rules.temperature_problems(tg_k, tx_k, tl_k) if p.kind in (rules.RANGE, rules.DTX)]
    return [flag(RANGE, " ".join(problems))] if problems else []


def _given_in_celsius(record, name):
    info = (record.original_values or {}).get(name[:2])
    return isinstance(info, dict) and rules.temperature_unit(info.get("unit")) == rules.CELSIUS


def check_units(record, base_element):
    given_in_celsius = {name for name, _ in TEMPERATURES if _given_in_celsius(record, name)}
    reasons = rules.celsius_suspicions(
        base_element, record.tg_k, record.tx_k, record.tl_k, given_in_celsius=given_in_celsius
    )
    return [flag(UNITS, "; ".join(reasons) + ".")] if reasons else []


def _details(record, other):
    """The temperatures both give, for the reviewer: "Tg 435 vs 404 K, Tx 440 vs 440 K"."""
    return ", ".join(
        f"{rules.TEMPERATURE_LABELS[name]} {_fmt(a)} vs {_fmt(b)} K" for name, a, b in rules.shared_temperatures(record, other)
    )


def check_duplicates(record, same_key):
    """same_key: ReferenceValues with the record's key (the record itself excluded).

    A value sharing no temperature with the record is neither a duplicate nor a conflict.
    """
    if not same_key:
        return []
    dup, conf = [], []
    for other in same_key:
        outcome = rules.compare_temperatures(record, other)
        if outcome == rules.DISJOINT:
            continue
        (dup if outcome == rules.AGREE else conf).append(f"{other.label} ({_details(record, other)})")
    out = []
    if conf:
        out.append(flag(CONFLICT, f"Same alloy, differs by more than {AGREE_WITHIN_K:g} K from: " + "; ".join(conf[:5]) + "."))
    if dup:
        out.append(flag(DUPLICATE, f"Same alloy, agrees within {AGREE_WITHIN_K:g} K with: " + "; ".join(dup[:5]) + "."))
    return out


def check_outliers(records_with_comp, predictor):
    """{record index: flag} for values far from the predictor's mean given its std."""
    if predictor is None or not records_with_comp:
        return {}
    comps = [comp for _, comp in records_with_comp]
    predictions = predictor(comps) or {}
    out = {}
    for i, (record, _) in enumerate(records_with_comp):
        reasons = []
        for name, label in TEMPERATURES:
            value = getattr(record, name)
            if value is None or name not in predictions:
                continue
            means, stds = predictions[name]
            if not math.isfinite(float(means[i])):  # the model cannot say (unknown element)
                continue
            mean, std = float(means[i]), max(float(stds[i]), OUTLIER_MIN_STD_K)
            z = abs(value - mean) / std
            if z > OUTLIER_SIGMA:
                reasons.append(f"{label} = {_fmt(value)} K is {z:.1f}σ from the model's {rules.display_k(mean, 0)} ± {rules.display_k(std, 0)} K")
        if reasons:
            out[id(record)] = flag(OUTLIER, "; ".join(reasons) + ".")
    return out


def validate_records(records, *, others=(), predictor=None):
    """Parse and flag ``records`` in place (their parsed fields and ``set_flags``).

    ``others``: ReferenceValues already in the system (alloy property values, other pending
    records) to check duplicates against, or a callable(keys) returning them; records in ``records`` are also compared with
    each other. Returns the records.
    """
    comps = {id(r): parse_into(r) for r in records}
    if callable(others):  # a lookup by key, so the caller can query once for all keys
        others = others({r.composition_key for r in records if r.composition_key})
    by_key = defaultdict(list)
    for other in others:
        by_key[other.key].append(other)
    for r in records:
        if r.composition_key:
            by_key[r.composition_key].append(
                ReferenceValue(f"record {r.pk}" if r.pk else f"row '{r.composition_raw}'", r.composition_key, r.tg_k, r.tx_k, r.tl_k)
            )
    parsed = [(r, comps[id(r)]) for r in records if comps[id(r)] is not None]
    outliers = check_outliers(parsed, predictor)
    for r in records:
        comp = comps[id(r)]
        flags = []
        if comp is None:
            flags.append(flag(UNPARSEABLE, r.parse_error))
        flags += check_values_are_numbers(r)
        flags += check_order(r.tg_k, r.tx_k, r.tl_k)
        flags += check_range(r.tg_k, r.tx_k, r.tl_k)
        if comp is not None:
            flags += check_units(r, comp.base_element)
            flags += check_duplicates(r, _without_self(by_key[comp.key], r))
            if id(r) in outliers:
                flags.append(outliers[id(r)])
        if r.snippet_in_source is False:
            flags.append(flag(SNIPPET, "The supporting snippet does not occur in the source text."))
        flags += check_grounding(r)
        r.set_flags(flags)
    return records


def _without_self(values, record):
    """The values with the record's own entry removed (matched by identity of its label/values)."""
    me = f"record {record.pk}" if record.pk else f"row '{record.composition_raw}'"
    out, removed = [], False
    for v in values:
        if not removed and v.label == me and (v.tg_k, v.tx_k, v.tl_k) == (record.tg_k, record.tx_k, record.tl_k):
            removed = True
            continue
        out.append(v)
    return out


# ---------------------------------------------------------------- grounding
#
# A stored value is *grounded* when a number in the record's snippet (or one of its
# ``more_snippets``) states it. The value is looked for as written (``original_values``, when
# it still matches the stored value), in K and in °C (T − 273.15), each within
# GROUNDING_TOLERANCE of the number written (papers round to the unit they write: 409.85 °C
# is printed "410"). Numbers that are not measurements are not read: digits glued to a letter
# (the subscripts of Zr57Cu28Al10Ni5, "Ni5"), numbers between element symbols in a spaced
# composition ("Zr 57 Cu 28"), parts of DOIs and decimals after "/" or ".", and four-digit
# integers 1900–2035 with no temperature unit after them (years: a table liquidus of exactly
# 1900–2035 K written without a unit is therefore ungrounded, and the reviewer checks it).
# A value the extractor derived (``derived[prop]``, e.g. "Tx = Tg + ΔTx = 680 K + 85 K") is
# not in the text by construction: the numbers after the formula's last "=" (its parts) must
# be grounded instead.

GROUNDING_TOLERANCE = 0.6
GROUNDED_VALUES = (("tg", "tg_k", "Tg"), ("tx", "tx_k", "Tx"), ("tl", "tl_k", "Tl"), ("dmax", "dmax_mm", "Dmax"))
_ELEMENT_SYMBOL = "|".join(sorted(ELEMENTS, key=len, reverse=True))
_NUMBER = re.compile(r"(?<![A-Za-z\d./])(\d+(?:\.\d+)?)(?![\d])")
_UNIT_AFTER = re.compile(r"\s?(?:K\b|°\s?C|º\s?C|℃|oC\b|kelvin|deg)", re.IGNORECASE)
_ELEMENT_BEFORE = re.compile(rf"(?:^|[\s(\[])(?:{_ELEMENT_SYMBOL})\s$")
_ELEMENT_AFTER = re.compile(rf"^\s(?:{_ELEMENT_SYMBOL})\s?\d")  # the composition goes on: "57 Cu 28"
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(°\s?C|º\s?C|℃|K|mm)?")


def snippet_numbers(text):
    """The numbers a text states as measurements (floats), without composition subscripts,
    DOI parts and years (see above)."""
    out = []
    for m in _NUMBER.finditer(text or ""):
        before, after = text[max(0, m.start() - 4):m.start()], text[m.end():m.end() + 10]
        if _ELEMENT_BEFORE.search(before) and _ELEMENT_AFTER.match(after):
            continue  # "Zr 57 Cu 28 ..." (a composition with spaces, as PDFs print subscripts)
        number = m.group(1)
        if "." not in number and 1900 <= int(number) <= 2035 and not _UNIT_AFTER.match(after):
            continue  # a year
        out.append(float(number))
    return out


def _near(numbers, target):
    return target is not None and any(abs(n - target) <= GROUNDING_TOLERANCE for n in numbers)


def _temperature_found(numbers, value_k, written=None):
    """value_k (K) is stated: as written, in K, or in °C."""
    candidates = [value_k, value_k - rules.C_TO_K]
    if written is not None:
        candidates.insert(0, written)
    return any(_near(numbers, c) for c in candidates)


def _written(record, prop, stored):
    """The value as the source wrote it, when it is still the stored one (not edited since)."""
    info = (record.original_values or {}).get(prop)
    if not isinstance(info, dict) or info.get("error") or not isinstance(info.get("value"), (int, float)):
        return None
    if prop == "dmax":
        return float(info["value"])
    try:
        in_k = rules.to_kelvin(info["value"], info.get("unit") or rules.KELVIN)
    except ValueError:
        return None
    return float(info["value"]) if abs(in_k - stored) <= GROUNDING_TOLERANCE else None


def formula_parts(formula):
    """The (number, unit) parts after a derivation's last '=': 'Tx = Tg + ΔTx = 680 K + 85 K'
    -> [(680.0, 'K'), (85.0, 'K')]."""
    tail = (formula or "").rsplit("=", 1)[-1]
    return [(float(m.group(1)), rules.temperature_unit(m.group(2)) or (m.group(2) or "")) for m in _PART.finditer(tail)]


def grounding_problems(record):
    """Why the record's values are not grounded in its snippets ([] when they all are)."""
    present = [(prop, name, label, getattr(record, name)) for prop, name, label in GROUNDED_VALUES if getattr(record, name) is not None]
    if not present:
        return []
    texts = [record.snippet or ""] + [s for s in (record.more_snippets or []) if isinstance(s, str)]
    if not any(t.strip() for t in texts):
        return ["There is no snippet to find the values in."]
    numbers = [n for t in texts for n in snippet_numbers(t)]
    derived = record.derived or {}
    problems = []
    for prop, name, label, value in present:
        unit = "mm" if prop == "dmax" else "K"
        if derived.get(prop):
            parts = formula_parts(derived[prop])
            missing = [
                f"{_fmt(v)} {u}".strip() for v, u in parts
                if not (_temperature_found(numbers, v + rules.C_TO_K if u == rules.CELSIUS else v, v) if u in (rules.KELVIN, rules.CELSIUS) else _near(numbers, v))
            ]
            if not parts:
                problems.append(f"{label} = {_fmt(value)} {unit} is derived ({derived[prop]}) but the derivation names no numbers.")
            elif missing:
                problems.append(f"{label} = {_fmt(value)} {unit} is derived ({derived[prop]}); {', '.join(missing)} not found in the snippet.")
            continue
        if prop == "dmax":
            found = _near(numbers, value) or _near(numbers, _written(record, prop, value))
            shown = f"{_fmt(value)} mm"
        else:
            found = _temperature_found(numbers, value, _written(record, prop, value))
            shown = f"{_fmt(value)} K ({value - rules.C_TO_K:.0f} °C)"
        if not found:
            problems.append(f"{label} = {shown} is not found in the snippet.")
    return problems


def check_grounding(record):
    problems = grounding_problems(record)
    return [flag(UNGROUNDED, " ".join(problems))] if problems else []


# ---------------------------------------------------------------- bulk approval
#
# "Approve clean" approves only records a reviewer would sign without reading them: the
# composition parsed, Tg, Tx and Tl all given (a record with only Tg is incomplete: it is
# approved one by one, by a person), and no flag at all (duplicate, conflict, outlier, units,
# snippet and ungrounded included: each asks a person to look).

COMPLETE_VALUES = (("tg_k", "Tg"), ("tx_k", "Tx"), ("tl_k", "Tl"))


def bulk_blockers(record):
    """Why the record is not approved by "approve clean" ([] when it is), one short reason each."""
    reasons = []
    if not record.composition_key:
        reasons.append("composition not parsed")
    missing = [label for name, label in COMPLETE_VALUES if getattr(record, name) is None]
    if missing:
        reasons.append("no " + ", ".join(missing) + " (incomplete)")
    names = sorted({f["flag"] for f in record.flags or []})
    if names:
        reasons.append("flagged: " + ", ".join(names))
    return reasons
