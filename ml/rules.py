"""Domain rules that every app applies, each written once. Pure Python: no Django, no numpy.

=============================  ===============================================================
rule                           who uses it
=============================  ===============================================================
Plausible Tg/Tx/Tl             ``lab.models.validate_transition_temperatures`` (model ``clean``,
(``temperature_problems``,     so the lab forms, the API and the services; the rows of a lab
``check_temperatures``)        import; approval of a mined record), ``mining.validation``
                               (``order`` and ``range`` flags), ``ml.dataprep`` (rows dropped
                               before a fit), ``ml.inverse_design`` (target limits).
Units: K or °C                 ``lab.models.to_kelvin`` (lab forms), ``lab.patterns`` (DSC curve
(``temperature_unit``,         files), ``mining.extractors`` and ``mining.llm`` (values as the
``to_kelvin``, ``C_TO_K``,     paper wrote them), ``mining.validation`` (``units`` flag),
``celsius_suspicions``)        ``ml.dataprep`` (its own neighbour test, with ``C_TO_K``).
Comparing two Tg/Tx/Tl         ``lab.services`` (conflict flag of a new value), ``lab.importing``
(``compare_temperatures``,     (merged / conflict rows), ``mining.validation`` (``duplicate`` /
``holds_temperatures``)        ``conflict`` flags).
Element lists                  ``lab.filters.ElementsField`` (API ``?elements=``),
(``parse_element_list``)       ``lab.forms.AlloySearchForm``, ``design.forms.CampaignForm``,
                               ``mining.forms.QueueFilterForm``.
=============================  ===============================================================

Elsewhere, also once: the periodic table is ``ml.composition.ELEMENTS`` (``ml.elements``
derives its Z order from it), atomic-fraction matrices are ``ml.descriptors.fractions_matrix``,
and DOI normalisation is ``core.doi`` (it needs Django's ValidationError).

Temperatures
------------
A transition temperature is plausible when 200 K ≤ T ≤ 2500 K (both limits included; no
metallic glass has a Tg below 200 K, and none melts above 2500 K). The given temperatures must
be strictly ordered Tg < Tx < Tl (a missing one is skipped: Tg < Tl is checked when Tx is
missing). The supercooled-liquid region ΔTx = Tx − Tg may be at most 250 K: the widest
reported for bulk metallic glasses are ~130 K, so 250 K leaves margin; a wider one is a typo or
a unit mix-up. ΔTx is judged only when Tg and Tx are both plausible and in order (otherwise the
range or order problem is the reason, not its consequence).

The messages are shown to people word for word (form errors, import reasons, review flags,
training reports), so each is a complete sentence.

Units
-----
``temperature_unit`` reads how a unit is written ("K", "°C", "℃", "degC", "celsius", ...);
``to_kelvin`` converts (T + 273.15 for °C, rounded to 1e-6 K so float noise never shows).
``celsius_suspicions`` is the per-family rule for a value that looks like °C written as K: the
alloy's base element belongs to a family whose glasses all have Tg above a floor
(``FAMILY_MIN_TG_K``), its Tg (or Tx when Tg is missing) is below that floor and would be above
it plus 273.15 K; or Tl is below 550 K (no BMG liquidus is that low) and Tl + 273.15 K is not.
Low-temperature families (Mg, Ca, La, Ce, Au, Ag, ...) have no floor: their K values really are
that low. (``ml.dataprep`` also compares each table row with its close neighbours in the same
table, a second test for tables rather than single values; it uses ``C_TO_K`` from here.)

Comparison
----------
Two sets of Tg/Tx/Tl *agree* when every temperature both give is within 10 K, *differ* when
some temperature both give is more than 10 K apart, and are *disjoint* when they share no
temperature (nothing to compare: neither a duplicate nor a conflict).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from ml.composition import ELEMENTS

__all__ = [
    "T_MIN_K", "T_MAX_K", "DTX_MAX_K", "TEMPERATURE_FIELDS", "TEMPERATURE_LABELS",
    "RANGE", "ORDER", "DTX", "TemperatureProblem", "TemperatureError", "temperature_problems",
    "check_temperatures", "is_plausible_temperature", "TEMPERATURE_DISPLAY_DECIMALS", "display_k",
    "KELVIN", "CELSIUS", "C_TO_K", "temperature_unit", "to_kelvin", "FAMILY_MIN_TG_K", "MIN_TL_K",
    "celsius_suspicions",
    "AGREEMENT_TOLERANCE_K", "AGREE", "DIFFER", "DISJOINT", "temperature_triple", "shared_temperatures",
    "compare_temperatures", "holds_temperatures",
    "ElementListError", "parse_element_list",
]

# --------------------------------------------------------------------------------------------
# Plausible temperatures
# --------------------------------------------------------------------------------------------

T_MIN_K = 200.0
T_MAX_K = 2500.0
DTX_MAX_K = 250.0
TEMPERATURE_FIELDS = ("tg_k", "tx_k", "tl_k")
TEMPERATURE_LABELS = {"tg_k": "Tg", "tx_k": "Tx", "tl_k": "Tl"}

# Kinds of problem with a Tg/Tx/Tl triple.
RANGE = "range"  # one temperature outside T_MIN_K..T_MAX_K (``field`` says which)
ORDER = "order"  # not Tg < Tx < Tl
DTX = "dtx"  # ΔTx = Tx − Tg above DTX_MAX_K


@dataclass(frozen=True)
class TemperatureProblem:
    kind: str  # RANGE, ORDER or DTX
    field: str | None  # "tg_k" / "tx_k" / "tl_k" for RANGE; None when it is about the triple
    message: str  # a sentence for people


class TemperatureError(ValueError):
    """A Tg/Tx/Tl triple breaks the rules; ``problems`` says how, each with its message."""

    def __init__(self, problems):
        self.problems = tuple(problems)
        super().__init__(" ".join(p.message for p in self.problems))


def _k(value: float) -> str:
    return f"{value:g} K"


TEMPERATURE_DISPLAY_DECIMALS = 1  # 0.1 K: one rounding rule for every page, table and export


def display_k(value, decimals: int = TEMPERATURE_DISPLAY_DECIMALS) -> str | None:
    """A temperature as shown to people: 0.1 K, halves rounded up, as written in decimal.

    ``f"{623.15:.1f}"`` gives 623.1 (the float is 623.1499…) where Django's ``floatformat``
    gives 623.2; the same value must read the same on every page, so both go through here.
    None (or a non-finite value) gives None.
    """
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(number):
        return None
    step = Decimal(1).scaleb(-int(decimals))
    return str(Decimal(repr(number)).quantize(step, rounding=ROUND_HALF_UP))


def is_plausible_temperature(value: float) -> bool:
    """200 K ≤ value ≤ 2500 K."""
    return T_MIN_K <= value <= T_MAX_K


def temperature_problems(tg_k=None, tx_k=None, tl_k=None) -> list[TemperatureProblem]:
    """Every problem of the triple (None = not given), range first, then order, then ΔTx.

    Empty when the given temperatures are plausible, ordered and ΔTx is not too wide.
    """
    values = {"tg_k": tg_k, "tx_k": tx_k, "tl_k": tl_k}
    problems = []
    for name, value in values.items():
        if value is None or is_plausible_temperature(value):
            continue
        hint = " (was it entered in °C?)" if value < T_MIN_K else ""
        problems.append(TemperatureProblem(
            RANGE, name,
            f"{TEMPERATURE_LABELS[name]} = {_k(value)} is outside the plausible range {T_MIN_K:g}–{T_MAX_K:g} K{hint}.",
        ))
    given = [(TEMPERATURE_LABELS[n], v) for n, v in values.items() if v is not None]
    unordered = [
        f"{a_name} ({_k(a)}) is not below {b_name} ({_k(b)})"
        for (a_name, a), (b_name, b) in zip(given, given[1:])
        if not a < b
    ]
    if unordered:
        problems.append(TemperatureProblem(ORDER, None, "; ".join(unordered) + ": expected Tg < Tx < Tl."))
    if (
        tg_k is not None and tx_k is not None and is_plausible_temperature(tg_k) and is_plausible_temperature(tx_k)
        and tg_k < tx_k and tx_k - tg_k > DTX_MAX_K
    ):
        problems.append(TemperatureProblem(
            DTX, None,
            f"ΔTx = Tx − Tg = {_k(round(tx_k - tg_k, 6))} is implausibly wide (> {DTX_MAX_K:g} K; "
            "the widest reported for metallic glasses are ~130 K).",
        ))
    return problems


def check_temperatures(tg_k=None, tx_k=None, tl_k=None) -> None:
    """Raise TemperatureError (with every problem) unless the triple keeps the rules."""
    problems = temperature_problems(tg_k, tx_k, tl_k)
    if problems:
        raise TemperatureError(problems)


# --------------------------------------------------------------------------------------------
# Units
# --------------------------------------------------------------------------------------------

KELVIN = "K"
CELSIUS = "C"
C_TO_K = 273.15
_UNIT_NAMES = {"K": KELVIN, "KELVIN": KELVIN, "C": CELSIUS, "CELSIUS": CELSIUS, "OC": CELSIUS}


def temperature_unit(text) -> str | None:
    """"K" or "C" for a unit as written ("K", "kelvin", "C", "°C", "º C", "℃", "oC", "degC",
    "celsius"); None when the text is no temperature unit."""
    if text is None:
        return None
    t = re.sub(r"\s+", "", str(text)).replace("℃", "C").replace("°", "").replace("º", "").upper()
    t = re.sub(r"^DEG(?:REES?)?", "", t)
    return _UNIT_NAMES.get(t)


def to_kelvin(value, unit):
    """``value`` in ``unit`` (anything :func:`temperature_unit` reads) as kelvin; None stays None.

    Raises ValueError for an unknown unit.
    """
    if value is None:
        return None
    which = temperature_unit(unit)
    if which is None:
        raise ValueError(f"Unknown temperature unit {unit!r}; use K or °C.")
    return round(float(value) + C_TO_K, 6) if which == CELSIUS else float(value)


# Lowest plausible Tg (K) for glasses based on each element, with margin below the lowest
# reported values. Families not listed (Mg, Ca, Sr, La, Ce, Pr, Nd, Sm, Yb, Au, Ag, Zn, Li)
# genuinely have Tg near or below 400 K, so no °C rule applies to them.
FAMILY_MIN_TG_K = {
    "Fe": 600, "Co": 600, "Ni": 550, "Zr": 520, "Hf": 600, "Ti": 520, "Cu": 550,
    "Pd": 500, "Pt": 450, "Y": 550, "Gd": 500, "Tb": 520, "Dy": 520, "Ho": 520, "Er": 520,
    "Tm": 520, "Lu": 520, "Sc": 550, "Nb": 700, "Ta": 700, "Mo": 700, "W": 700, "Be": 520,
}
MIN_TL_K = 550.0  # no BMG liquidus is lower


def celsius_suspicions(base_element, tg_k=None, tx_k=None, tl_k=None, *, given_in_celsius=()) -> list[str]:
    """Reasons to suspect that values in K are really °C (see the module docstring); empty when
    none. ``given_in_celsius``: the fields ("tg_k", ...) the source gave in °C, already
    converted, which are not suspected again."""
    reasons = []
    floor = FAMILY_MIN_TG_K.get(base_element)
    if floor is not None:
        # Judged on Tg, or on Tx only when Tg is missing.
        name, value = ("tg_k", tg_k) if tg_k is not None else ("tx_k", tx_k)
        if value is not None and value < floor <= value + C_TO_K and name not in given_in_celsius:
            reasons.append(
                f"{TEMPERATURE_LABELS[name]} = {_k(value)} is below any {base_element}-based glass (≥ {floor} K) "
                f"but {_k(round(value + C_TO_K, 2))} if it was °C"
            )
    if tl_k is not None and tl_k < MIN_TL_K <= tl_k + C_TO_K and "tl_k" not in given_in_celsius:
        reasons.append(f"Tl = {_k(tl_k)} is below any BMG liquidus (≥ {MIN_TL_K:g} K); °C?")
    return reasons


# --------------------------------------------------------------------------------------------
# Comparing two Tg/Tx/Tl triples
# --------------------------------------------------------------------------------------------

AGREEMENT_TOLERANCE_K = 10.0
AGREE = "agree"
DIFFER = "differ"
DISJOINT = "disjoint"


def temperature_triple(value) -> tuple:
    """(tg_k, tx_k, tl_k) of a 3-sequence, a mapping with those keys, or an object with those
    attributes (a PropertyValue, an ExtractedRecord, ...); missing ones are None."""
    if isinstance(value, Mapping):
        return tuple(value.get(f) for f in TEMPERATURE_FIELDS)
    if isinstance(value, (tuple, list)):
        if len(value) != 3:
            raise ValueError(f"a (Tg, Tx, Tl) triple has 3 values, not {len(value)}")
        return tuple(value)
    return tuple(getattr(value, f, None) for f in TEMPERATURE_FIELDS)


def shared_temperatures(a, b) -> list[tuple[str, float, float]]:
    """[(field, value in a, value in b)] for the temperatures both give, in Tg, Tx, Tl order."""
    return [
        (f, x, y)
        for f, x, y in zip(TEMPERATURE_FIELDS, temperature_triple(a), temperature_triple(b))
        if x is not None and y is not None
    ]


def compare_temperatures(a, b, tolerance_k: float = AGREEMENT_TOLERANCE_K) -> str:
    """AGREE ("agree"): every temperature both give is within ``tolerance_k``; DIFFER
    ("differ"): some shared one is further apart; DISJOINT ("disjoint"): none shared."""
    shared = shared_temperatures(a, b)
    if not shared:
        return DISJOINT
    return AGREE if all(abs(x - y) <= tolerance_k for _, x, y in shared) else DIFFER


def holds_temperatures(holder, wanted, tolerance_k: float = AGREEMENT_TOLERANCE_K) -> bool:
    """True when ``holder`` gives every temperature ``wanted`` gives, each within the tolerance
    (so ``wanted`` would add nothing to it)."""
    return all(
        h is not None and abs(h - w) <= tolerance_k
        for h, w in zip(temperature_triple(holder), temperature_triple(wanted))
        if w is not None
    )


# --------------------------------------------------------------------------------------------
# Element lists
# --------------------------------------------------------------------------------------------

_ELEMENT_BY_FOLD = {el.lower(): el for el in ELEMENTS}
_ELEMENT_SEPARATORS = re.compile(r"[\s,;\-–]+")


class ElementListError(ValueError):
    """Tokens of an element list that are no element symbol (``tokens``, as written)."""

    def __init__(self, tokens):
        self.tokens = tuple(tokens)
        quoted = [repr(t) for t in self.tokens]
        if len(quoted) == 1:
            message = f"{quoted[0]} is not an element symbol."
        else:
            message = f"{', '.join(quoted[:-1])} and {quoted[-1]} are not element symbols."
        super().__init__(message)


def parse_element_list(text) -> tuple[str, ...]:
    """Element symbols from text, case-insensitive: "zr, CU Al" -> ("Zr", "Cu", "Al").

    Separators: commas, semicolons, spaces, hyphens ("Zr-Cu-Al"). Repeats are dropped, the
    order is kept; empty text gives (). Raises ElementListError (a ValueError) naming every
    token that is not a symbol.
    """
    tokens = [t for t in _ELEMENT_SEPARATORS.split(str(text or "")) if t]
    bad = [t for t in tokens if t.lower() not in _ELEMENT_BY_FOLD]
    if bad:
        raise ElementListError(dict.fromkeys(bad))
    return tuple(dict.fromkeys(_ELEMENT_BY_FOLD[t.lower()] for t in tokens))


# ------------------------------------------------------------------------------ glass-forming ability

# The GFA classes of a composition, from the labels of the literature (Forrest & Greer 2022):
# a bulk glass (castable as a rod of at least 1 mm), a glass only as a melt-spun ribbon, or
# no glass at all. Mined records, lab records and the surrogate use these names.
GFA_BMG = "bmg"
GFA_RIBBON = "ribbon"
GFA_CRYSTAL = "crystal"
GFA_CLASSES = (GFA_BMG, GFA_RIBBON, GFA_CRYSTAL)
GFA_CLASS_LABELS = {GFA_BMG: "bulk glass (BMG)", GFA_RIBBON: "glass as ribbon only", GFA_CRYSTAL: "crystalline"}

BMG_MIN_DMAX_MM = 1.0  # "bulk": castable as a rod of at least 1 mm
DMAX_MAX_MM = 200.0  # no glass has been cast thicker (the record is ~80 mm); above is a typo

# How a Dmax is known: a reported critical diameter, or a bound from one casting — an
# amorphous rod of d mm says Dmax ≥ d, a crystalline one says Dmax < d.
DMAX_POINT = "point"
DMAX_AT_LEAST = "at_least"
DMAX_BELOW = "below"
DMAX_KINDS = (DMAX_POINT, DMAX_AT_LEAST, DMAX_BELOW)

_GFA_CLASS_NAMES = {
    "bmg": GFA_BMG, "bulk": GFA_BMG, "bulk glass": GFA_BMG, "bulk metallic glass": GFA_BMG,
    "ribbon": GFA_RIBBON, "glass ribbon": GFA_RIBBON, "melt-spun ribbon": GFA_RIBBON,
    "crystal": GFA_CRYSTAL, "crystalline": GFA_CRYSTAL, "nbmg": GFA_CRYSTAL,
}


class GFAValueError(ValueError):
    """A GFA class or Dmax that cannot be used; the message says why in the lab's words."""


def gfa_class(text) -> str | None:
    """The GFA class named by ``text`` ("BMG", "Ribbon", "Crystal", case-insensitive; empty →
    None); GFAValueError for a name we do not know."""
    if text is None:
        return None
    t = str(text).strip()
    if not t or t.lower() == "nan":
        return None
    try:
        return _GFA_CLASS_NAMES[t.lower()]
    except KeyError:
        raise GFAValueError(f"unknown GFA class {t!r}: use BMG, Ribbon or Crystal") from None


def is_glass(cls: str) -> bool:
    return cls in (GFA_BMG, GFA_RIBBON)


def dmax_problems(cls: str | None, dmax_mm, kind: str = DMAX_POINT) -> list[str]:
    """Why a Dmax (mm) cannot be used with GFA class ``cls`` (empty list: it can).

    The source's codes ``0`` for a crystal and ``0.15`` for a ribbon are not measurements and
    not problems either (empty list): callers ask :func:`coded_dmax` and store no Dmax for them.
    """
    if dmax_mm is None:
        return []
    try:
        d = float(dmax_mm)
    except (TypeError, ValueError):
        return [f"Dmax {dmax_mm!r} is not a number"]
    if d != d or (kind == DMAX_POINT and coded_dmax(cls, d)):
        return []
    if kind not in DMAX_KINDS:
        return [f"unknown Dmax kind {kind!r}"]
    problems = []
    if d <= 0:
        problems.append(f"Dmax {d:g} mm must be above 0 mm")
    elif d > DMAX_MAX_MM:
        problems.append(f"Dmax {d:g} mm is above {DMAX_MAX_MM:g} mm, thicker than any glass ever cast")
    if cls == GFA_CRYSTAL and kind != DMAX_BELOW and d > 0:
        problems.append(f"a crystalline alloy has no Dmax (got {d:g} mm)")
    if cls == GFA_BMG and kind == DMAX_POINT and 0 < d < BMG_MIN_DMAX_MM:
        problems.append(f"a BMG has Dmax ≥ {BMG_MIN_DMAX_MM:g} mm (got {d:g} mm): is it a ribbon?")
    if cls == GFA_RIBBON and kind != DMAX_BELOW and d >= BMG_MIN_DMAX_MM:
        problems.append(f"Dmax {d:g} mm makes it a BMG, not a ribbon")
    return problems


def coded_dmax(cls: str | None, dmax_mm) -> bool:
    """True for the source codes that stand for "no Dmax": 0 on a crystal, 0.15 on a ribbon."""
    try:
        d = float(dmax_mm)
    except (TypeError, ValueError):
        return False
    return (cls == GFA_CRYSTAL and d == 0) or (cls == GFA_RIBBON and abs(d - 0.15) < 1e-9)


def class_from_casting(amorphous: bool, diameter_mm) -> tuple[str | None, str, float | None]:
    """What one cast rod says: (GFA class or None if unknown, Dmax kind, bound in mm or None).

    An amorphous rod of d mm: a glass with Dmax ≥ d (a BMG when d ≥ 1 mm, else at least a
    ribbon). A crystalline rod of d mm: only Dmax < d — the alloy may still form a thinner
    glass, so its class stays unknown (not a BMG when d ≤ 1 mm, which the bound already says).
    """
    d = None if diameter_mm in (None, "") else float(diameter_mm)
    if amorphous:
        if d is None:
            return (GFA_RIBBON, DMAX_AT_LEAST, None)  # a glass; how thick is unknown
        return (GFA_BMG if d >= BMG_MIN_DMAX_MM else GFA_RIBBON, DMAX_AT_LEAST, d)
    return (None, DMAX_BELOW, d)
