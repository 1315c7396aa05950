"""Alloy compositions: the one strict parser every composition in GlassLoop goes through.

Pure Python (no Django, no numpy) so the ML code, the importers and the web forms share it.

Accepted text (the metallurgical convention):

* plain formulas in at.% or atomic fractions: ``Zr42Ti14Cu12Ni10Be22``, ``Cu0.5Hf0.5``;
* groups in ``()`` or ``[]``, nested; a group's inner amounts are normalised to 1 and scaled by
  the group's multiplier: ``(Cu50Zr40Al10)98Si2`` is Cu49 Zr39.2 Al9.8 Si2;
* ratios as amounts: ``(Cu5/6Ag1/6)12``;
* comma-separated members when each carries an amount: ``(P0.45,C0.2,B0.2,Si0.15)20``;
* amount 0 drops the element (``...100Sn0``);
* a lone element or group without an amount is the whole (``Fe`` = ``Fe100``);
* whitespace between tokens (``Zr 41.2 Ti 13.8 ...``) and a trailing ``at.%`` / ``at%`` /
  ``(at.%)`` are tolerated.

Each level (every group and the whole) must add up to about 1 or about 100 (within 1 %), else
the text is refused with the sum (and a suggestion when moving one decimal point would fix it).
Refused: unknown symbols (with suggestions such as ``TI`` -> ``Ti``, ``A1`` -> ``Al``), missing
amounts, unspecified splits like ``(Cu,Ni)21``, zero-padded numbers (``B02``), stray characters,
unbalanced brackets, empty text, weight percent.  Error positions are 1-based character
positions in the text as given.

Canonical values are held at a resolution of 0.01 at.%: fractions are apportioned into
10,000 units by largest remainder (ties alphabetical), so the at.% of the formula and key always
add up to exactly 100, ``parse_composition(c.formula) == c`` always holds, and two writings of
the same alloy (element order, fractions vs at.%) get identical fractions, formula and key.
A parsed element that would round to 0.00 at.% is refused; ``from_fractions`` (for generators)
drops such traces silently.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation

__all__ = [
    "ELEMENTS",
    "Composition",
    "CompositionError",
    "parse_composition",
    "parse_many",
]

ELEMENTS: tuple[str, ...] = (
    "H", "He", "Li", "Be", "B", "C", "N", "O", "F", "Ne", "Na", "Mg", "Al", "Si", "P", "S",
    "Cl", "Ar", "K", "Ca", "Sc", "Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn", "Ga",
    "Ge", "As", "Se", "Br", "Kr", "Rb", "Sr", "Y", "Zr", "Nb", "Mo", "Tc", "Ru", "Rh", "Pd",
    "Ag", "Cd", "In", "Sn", "Sb", "Te", "I", "Xe", "Cs", "Ba", "La", "Ce", "Pr", "Nd", "Pm",
    "Sm", "Eu", "Gd", "Tb", "Dy", "Ho", "Er", "Tm", "Yb", "Lu", "Hf", "Ta", "W", "Re", "Os",
    "Ir", "Pt", "Au", "Hg", "Tl", "Pb", "Bi", "Po", "At", "Rn", "Fr", "Ra", "Ac", "Th", "Pa",
    "U", "Np", "Pu", "Am", "Cm", "Bk", "Cf", "Es", "Fm", "Md", "No", "Lr", "Rf", "Db", "Sg",
    "Bh", "Hs", "Mt", "Ds", "Rg", "Cn", "Nh", "Fl", "Mc", "Lv", "Ts", "Og",
)
_ELEMENT_SET = frozenset(ELEMENTS)
_ELEMENT_BY_FOLD = {el.lower(): el for el in ELEMENTS}

UNITS = 10_000  # 1 unit = 0.01 at.%
_SUM_TOLERANCE = 0.01  # each level may be off by 1 % of 1 or of 100
_MAX_LENGTH = 1000
_MAX_DEPTH = 16
_MAX_NUMBER_LENGTH = 20  # keeps every amount a finite float with no overflow or underflow

# Characters a typist confuses with a lowercase letter of a symbol ("A10" for "Al0", "AI" for "Al").
_LOOKALIKE_LOWER = {"1": "l", "0": "o", "I": "l", "|": "l"}

_AT_PERCENT_SUFFIX = re.compile(r"\s*\(?\s*at\s*\.?\s*%\s*\)?\s*$", re.IGNORECASE)
_WEIGHT_PERCENT_SUFFIX = re.compile(r"\s*\(?\s*(wt|mass)\s*\.?\s*%\s*\)?\s*$", re.IGNORECASE)


class CompositionError(ValueError):
    """A composition text that cannot be read; the message says what is wrong and where.

    ``position`` is the 1-based character position of ``token`` in ``text`` (None when the
    problem is the text as a whole).
    """

    def __init__(self, message: str, *, text: str | None = None, position: int | None = None, token: str | None = None):
        super().__init__(message)
        self.text = text
        self.position = position
        self.token = token


# --------------------------------------------------------------------------------------------
# Composition
# --------------------------------------------------------------------------------------------


def _format_units(units: int) -> str:
    """10,000 units = 100 at.%; at most 2 decimals, trailing zeros stripped."""
    whole, rest = divmod(units, 100)
    if rest == 0:
        return str(whole)
    if rest % 10 == 0:
        return f"{whole}.{rest // 10}"
    return f"{whole}.{rest:02d}"


def _apportion(fractions: dict[str, float]) -> tuple[dict[str, int], list[str]]:
    """Split UNITS among elements by largest remainder; drop (and report) those left with 0 units.

    Remainders are compared at 1e-6 so float noise from summing in a different order never
    changes the result; ties go to the alphabetically first element.
    """
    dropped: list[str] = []
    while True:
        total = sum(fractions.values())
        exact = {el: f / total * UNITS for el, f in fractions.items()}
        units = {el: math.floor(x + 1e-7) for el, x in exact.items()}
        deficit = UNITS - sum(units.values())
        if deficit:
            if deficit > 0:
                order = sorted(exact, key=lambda el: (-round(exact[el] - units[el], 6), el))
                step = 1
            else:
                order = sorted((el for el in exact if units[el] > 0), key=lambda el: (round(exact[el] - units[el], 6), el))
                step = -1
            for k in range(abs(deficit)):
                units[order[k % len(order)]] += step
        zeros = [el for el, u in units.items() if u <= 0]
        if not zeros:
            return units, dropped
        dropped.extend(zeros)
        fractions = {el: f for el, f in fractions.items() if units[el] > 0}
        if not fractions:  # cannot happen: the largest share always gets units
            raise CompositionError("composition has no element above 0.01 at.%")


def _from_units(items: Iterable[tuple[str, int]]) -> Composition:
    """Build a Composition from (element, units) pairs that already sum to UNITS."""
    units = dict(items)
    self = object.__new__(Composition)
    elements = tuple(sorted(units, key=lambda el: (-units[el], el)))
    setattr_ = object.__setattr__
    setattr_(self, "_units", {el: units[el] for el in elements})
    setattr_(self, "_fractions", {el: units[el] / UNITS for el in elements})
    setattr_(self, "elements", elements)
    setattr_(self, "formula", "".join(el + _format_units(units[el]) for el in elements))
    key = "".join(el + _format_units(units[el]) for el in sorted(units))
    setattr_(self, "key", key)
    setattr_(self, "_hash", hash(key))
    return self


class Composition(Mapping):
    """Immutable mapping element -> atomic fraction (sums to 1), at 0.01 at.% resolution.

    ``Composition("Cu50Hf50")`` parses text; ``Composition({"Cu": 1, "Zr": 1})`` normalises
    amounts (same as ``from_fractions``).  Equality and hash go by ``key``.
    """

    __slots__ = ("_units", "_fractions", "elements", "formula", "key", "_hash")

    elements: tuple[str, ...]
    formula: str
    key: str

    def __new__(cls, source: str | Mapping[str, float]):
        if isinstance(source, Composition):
            return source
        if isinstance(source, str):
            return parse_composition(source)
        return cls.from_fractions(source)

    @classmethod
    def from_fractions(cls, mapping: Mapping[str, float]) -> Composition:
        """Normalise positive amounts (any scale) to fractions summing to 1; zeros are dropped.

        Refuses unknown symbols, negative / non-finite / non-numeric amounts and empty input.
        Elements that round to 0.00 at.% are dropped (generators produce such traces).
        """
        if isinstance(mapping, Composition):
            return mapping
        if not isinstance(mapping, Mapping):
            raise CompositionError(f"expected a mapping element -> amount, got {type(mapping).__name__}")
        fractions: dict[str, float] = {}
        for el, amount in mapping.items():
            if not isinstance(el, str) or el not in _ELEMENT_SET:
                hint = ""
                if isinstance(el, str) and el.strip().lower() in _ELEMENT_BY_FOLD:
                    hint = f" (did you mean {_ELEMENT_BY_FOLD[el.strip().lower()]!r}?)"
                raise CompositionError(f"unknown element symbol {el!r}{hint}", token=str(el))
            if isinstance(amount, bool):
                raise CompositionError(f"amount of {el} must be a number, got {amount!r}", token=el)
            try:
                value = float(amount)
            except (TypeError, ValueError):
                raise CompositionError(f"amount of {el} must be a number, got {amount!r}", token=el) from None
            if not math.isfinite(value):
                raise CompositionError(f"amount of {el} must be finite, got {amount!r}", token=el)
            if value < 0:
                raise CompositionError(f"amount of {el} is negative ({amount!r})", token=el)
            if value > 0:
                fractions[el] = fractions.get(el, 0.0) + value
        if not fractions:
            raise CompositionError("empty composition: no element with a positive amount")
        total = sum(fractions.values())
        if not math.isfinite(total):
            raise CompositionError("amounts are too large to add up")
        units, _dropped = _apportion(fractions)
        return _from_units(units.items())

    # Mapping protocol -----------------------------------------------------------------------
    def __getitem__(self, element: str) -> float:
        return self._fractions[element]

    def __iter__(self):
        return iter(self.elements)

    def __len__(self) -> int:
        return len(self.elements)

    def __contains__(self, element: object) -> bool:
        return element in self._fractions

    # Identity -------------------------------------------------------------------------------
    def __eq__(self, other: object):
        if isinstance(other, Composition):
            return self.key == other.key
        if isinstance(other, Mapping):
            return self._fractions == dict(other)
        return NotImplemented

    def __ne__(self, other: object):
        result = self.__eq__(other)
        return result if result is NotImplemented else not result

    def __hash__(self) -> int:
        return self._hash

    def __setattr__(self, name, value):
        raise AttributeError("Composition is immutable")

    def __delattr__(self, name):
        raise AttributeError("Composition is immutable")

    def __reduce__(self):
        return (_from_units, (tuple(self._units.items()),))

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self

    def __str__(self) -> str:
        return self.formula

    def __repr__(self) -> str:
        return f"Composition({self.formula!r})"

    # Views ----------------------------------------------------------------------------------
    @property
    def base_element(self) -> str:
        """The element with the largest fraction (ties alphabetical)."""
        return self.elements[0]

    def atomic_percent(self) -> dict[str, float]:
        """Element -> at.% (2 decimals, summing to exactly 100), canonical order."""
        return {el: u / 100 for el, u in self._units.items()}

    def units(self) -> dict[str, int]:
        """Element -> integer hundredths of an at.% (summing to 10,000)."""
        return dict(self._units)


# --------------------------------------------------------------------------------------------
# Parser
# --------------------------------------------------------------------------------------------


def _fail(message: str, text: str, index: int | None = None, token: str | None = None):
    """Raise CompositionError; ``index`` is 0-based, reported 1-based."""
    if index is None:
        raise CompositionError(message, text=text, token=token)
    raise CompositionError(message, text=text, position=index + 1, token=token)


def _fmt_sum(total: float) -> str:
    return format(round(total, 6), "g")


class _Item:
    __slots__ = ("start", "end", "symbol", "content", "amount", "amount_start", "amount_text", "is_ratio")

    def __init__(self, start, end, symbol, content):
        self.start = start
        self.end = end  # index after the symbol or the closing bracket
        self.symbol = symbol  # element symbol, or None for a group
        self.content = content  # group: element -> fraction (sums to 1)
        self.amount = None
        self.amount_start = -1
        self.amount_text = ""
        self.is_ratio = False


def _is_digit(c: str) -> bool:
    return "0" <= c <= "9"


def _scan_number(s: str, i: int, n: int) -> int:
    """End of the number starting at i (digits[.digits] or .digits); validates its shape."""
    j = i
    while j < n and _is_digit(s[j]):
        j += 1
    int_end = j
    if j < n and s[j] == ".":
        j += 1
        frac_start = j
        while j < n and _is_digit(s[j]):
            j += 1
        if j == frac_start:
            _fail(f"malformed number {s[i:j]!r} at position {i + 1}: no digits after the decimal point", s, i, s[i:j])
    if j - i > _MAX_NUMBER_LENGTH:
        _fail(f"number {s[i:i + 12] + '...'!r} at position {i + 1} is too long ({j - i} characters)", s, i, s[i:j])
    if int_end - i > 1 and s[i] == "0":
        token = s[i:j]
        _fail(
            f"zero-padded number {token!r} at position {i + 1} (write {token.lstrip('0') or '0'!r}"
            f" or a decimal such as '0.{token.lstrip('0')}')",
            s, i, token,
        )
    if j < n and s[j] == ".":
        _fail(f"malformed number {s[i:j + 1]!r} at position {i + 1}: a second decimal point", s, i, s[i:j + 1])
    return j


def _symbol_hint(s: str, i: int, n: int) -> tuple[str, str | None, str]:
    """For an unreadable symbol at i: (token to quote, suggested symbol or None, why)."""
    c = s[i]
    nxt = s[i + 1] if i + 1 < n else ""
    upper = c.upper()
    if nxt.isalpha():
        pair = upper + nxt.lower()
        if pair in _ELEMENT_SET:
            return c + nxt, pair, ""
    if nxt in _LOOKALIKE_LOWER:
        pair = upper + _LOOKALIKE_LOWER[nxt]
        if pair in _ELEMENT_SET:
            return c + nxt if nxt.isalpha() else c, pair, f" {nxt!r} may be a mistyped {_LOOKALIKE_LOWER[nxt]!r}"
    if upper in _ELEMENT_SET:
        return c, upper, ""
    token = c + nxt if nxt.isalpha() else c
    return token, None, ""


class _Parser:
    __slots__ = ("s", "n", "positions", "suggest")

    def __init__(self, s: str, n: int, suggest: bool = True):
        self.s = s
        self.n = n
        self.suggest = suggest
        self.positions: dict[str, int] = {}  # element -> first 0-based index

    def level(self, i: int, close: str, open_index: int, depth: int) -> tuple[dict[str, float], int]:
        """Parse items from i up to the closing bracket (or the end); returns (fractions, next i)."""
        s, n = self.s, self.n
        items: list[_Item] = []
        saw_comma = False
        last_comma = -1  # index of a comma not yet followed by an item
        while True:
            while i < n and s[i].isspace():
                i += 1
            if i >= n:
                if close:
                    _fail(f"unclosed {s[open_index]!r} at position {open_index + 1}", s, open_index, s[open_index])
                break
            c = s[i]
            start = i
            if "A" <= c <= "Z":
                if i + 1 < n and "a" <= s[i + 1] <= "z":
                    symbol = s[i:i + 2]
                    i += 2
                else:
                    symbol = c
                    i += 1
                if symbol not in _ELEMENT_SET:
                    token, suggestion, why = _symbol_hint(s, start, n)
                    hint = f" (did you mean {suggestion!r}?{why})" if suggestion and suggestion != token else ""
                    _fail(f"unknown element symbol {token!r} at position {start + 1}{hint}", s, start, token)
                if symbol not in self.positions:
                    self.positions[symbol] = start
                item = _Item(start, i, symbol, None)
            elif c == "(" or c == "[":
                if depth >= _MAX_DEPTH:
                    _fail(f"brackets nested too deeply at position {i + 1}", s, i, c)
                content, i = self.level(i + 1, ")" if c == "(" else "]", start, depth + 1)
                item = _Item(start, i, None, content)
            elif c == ")" or c == "]":
                if c == close:
                    i += 1
                    break
                if close:
                    _fail(
                        f"{c!r} at position {i + 1} does not match {s[open_index]!r} at position {open_index + 1}",
                        s, i, c,
                    )
                _fail(f"unmatched {c!r} at position {i + 1}", s, i, c)
            elif c == ",":
                if not items or last_comma >= 0:
                    _fail(f"stray ',' at position {i + 1}", s, i, c)
                saw_comma = True
                last_comma = i
                i += 1
                continue
            elif _is_digit(c) or c == ".":
                end = _scan_number(s, i, n)
                token = s[i:end]
                _fail(f"number {token!r} at position {i + 1} does not follow an element or a group", s, i, token)
            elif "a" <= c <= "z":
                token, suggestion, _why = _symbol_hint(s, start, n)
                hint = f" (element symbols start with a capital letter: did you mean {suggestion!r}?)" if suggestion else ""
                _fail(f"unexpected {token!r} at position {i + 1}{hint}", s, i, token)
            else:
                _fail(f"unexpected character {c!r} at position {i + 1}", s, i, c)

            last_comma = -1
            # Optional amount: a number or a ratio, whitespace allowed before it.
            j = i
            while j < n and s[j].isspace():
                j += 1
            if j < n and (_is_digit(s[j]) or s[j] == "."):
                end = _scan_number(s, j, n)
                amount = float(s[j:end])
                if end < n and s[end] == "/":
                    k = end + 1
                    if k >= n or not (_is_digit(s[k]) or s[k] == "."):
                        _fail(f"incomplete ratio {s[j:k]!r} at position {j + 1}", s, j, s[j:k])
                    end2 = _scan_number(s, k, n)
                    denominator = float(s[k:end2])
                    if denominator == 0:
                        _fail(f"ratio {s[j:end2]!r} at position {j + 1} divides by zero", s, j, s[j:end2])
                    amount /= denominator
                    item.is_ratio = True
                    end = end2
                item.amount = amount
                item.amount_start = j
                item.amount_text = s[j:end]
                i = end
            items.append(item)

        if last_comma >= 0:
            _fail(f"stray ',' at position {last_comma + 1}", s, last_comma, ",")
        return self.resolve(items, saw_comma, close, open_index, i), i

    def resolve(self, items: list[_Item], saw_comma: bool, close: str, open_index: int, end: int) -> dict[str, float]:
        s = self.s
        where = f"group {s[open_index:end]!r} at position {open_index + 1}" if close else ""
        if not items:
            if close:
                _fail(f"empty {where}", s, open_index, s[open_index:end])
            _fail("empty composition", s, None)
        missing = [it for it in items if it.amount is None]
        if missing:
            if len(items) == 1:
                items[0].amount = 1.0  # a lone element or group is the whole
            elif close and (len(missing) == len(items) or saw_comma):
                _fail(
                    f"unspecified split in {where}: give every member its own amount",
                    s, open_index, s[open_index:end],
                )
            elif len(missing) == len(items):
                _fail(f"amounts unspecified: no element in {s[:self.n].strip()!r} carries an amount", s, None)
            else:
                it = missing[0]
                if it.symbol is None:
                    group = s[it.start:it.end]
                    _fail(f"group {group!r} at position {it.start + 1} has no amount", s, it.start, group)
                hint = ""
                nxt = it.start + 1
                if len(it.symbol) == 1 and nxt < self.n and "A" <= s[nxt] <= "Z" and it.symbol + s[nxt].lower() in _ELEMENT_SET:
                    hint = f" (did you mean {it.symbol + s[nxt].lower()!r}?)"
                _fail(f"{it.symbol!r} at position {it.start + 1} has no amount{hint}", s, it.start, it.symbol)

        total = 0.0
        for it in items:
            total += it.amount
        if not (abs(total - 1.0) <= _SUM_TOLERANCE + 1e-9 or abs(total - 100.0) <= 100 * _SUM_TOLERANCE + 1e-7):
            self.bad_sum(items, total, where)

        result: dict[str, float] = {}
        for it in items:
            if it.amount == 0:
                continue
            share = it.amount / total
            if it.symbol is not None:
                result[it.symbol] = result.get(it.symbol, 0.0) + share
            else:
                for el, f in it.content.items():
                    result[el] = result.get(el, 0.0) + share * f
        return result  # never empty: the sum check above needs a positive amount

    def bad_sum(self, items: list[_Item], total: float, where: str):
        s = self.s
        what = f"the amounts in {where}" if where else "the amounts"
        message = f"{what} add up to {_fmt_sum(total)}; expected about 100 (at.%) or 1 (fractions)"
        suggestions = _sum_suggestions(s, self.n, items, total) if self.suggest else []
        if suggestions:
            message += "; did you mean " + " or ".join(repr(x) for x in suggestions) + "?"
        _fail(message, s, None, _fmt_sum(total))


def _sum_suggestions(s: str, n: int, items: list[_Item], total: float) -> list[str]:
    """Texts where moving one amount's decimal point makes this level add up; each re-parsed.

    Only the candidates that come closest to exactly 1 or 100 are offered (at most 3).
    """
    scored: list[tuple[float, int, str]] = []
    for it in items:
        if it.amount_start < 0 or it.is_ratio or it.amount == 0:
            continue
        for factor in ("100", "10", "1000", "0.1", "0.01", "0.001"):
            new_total = total - it.amount + it.amount * float(factor)
            off = min(abs(new_total - 1.0), abs(new_total - 100.0) / 100)
            if off > _SUM_TOLERANCE:
                continue
            try:
                value = Decimal(it.amount_text) * Decimal(factor)
            except InvalidOperation:  # pragma: no cover - amount_text is a validated number
                continue
            number = format(value.normalize(), "f")
            candidate = (s[:it.amount_start] + number + s[it.amount_start + len(it.amount_text):n]).strip()
            try:
                _parse(candidate, suggest=False)
            except CompositionError:
                continue
            scored.append((round(off, 9), len(scored), candidate))
    if not scored:
        return []
    scored.sort()
    best = scored[0][0]
    found: list[str] = []
    for off, _, candidate in scored:
        if off <= best + 1e-6 and candidate not in found:
            found.append(candidate)
    return found[:3]


def _parse(text: str, suggest: bool = True) -> Composition:
    n = len(text)
    if "%" in text:
        m = _WEIGHT_PERCENT_SUFFIX.search(text)
        if m:
            _fail(
                f"weight percent ({text[m.start():].strip()!r}) is not supported: give atomic percent",
                text, m.start(), text[m.start():].strip(),
            )
        m = _AT_PERCENT_SUFFIX.search(text)
        if m:
            n = m.start()
    parser = _Parser(text, n, suggest)
    fractions, _ = parser.level(0, "", -1, 0)
    units, dropped = _apportion(fractions)
    if dropped:
        el = min(dropped, key=lambda e: parser.positions.get(e, 0))
        pos = parser.positions.get(el)
        pct = fractions[el] * 100
        _fail(
            f"{el} at position {pos + 1 if pos is not None else '?'} comes to {pct:.3g} at.%,"
            f" below the 0.01 at.% resolution",
            text, pos, el,
        )
    return _from_units(units.items())


def parse_composition(text: str) -> Composition:
    """Parse a composition written in the metallurgical convention (see the module docstring).

    Raises CompositionError (a ValueError) saying what is wrong and where.
    """
    if isinstance(text, Composition):
        return text
    if text is None:
        raise CompositionError("empty composition", text=None)
    if not isinstance(text, str):
        raise CompositionError(f"composition must be text, got {type(text).__name__} {text!r}", text=None)
    if len(text) > _MAX_LENGTH:
        raise CompositionError(f"composition text too long ({len(text)} characters, at most {_MAX_LENGTH})", text=text[:50])
    if not text or text.isspace():
        raise CompositionError("empty composition", text=text)
    return _parse(text)


def parse_many(texts: Iterable[str]) -> list[Composition | CompositionError]:
    """Parse each text; a refused one yields its CompositionError instead of raising."""
    out: list[Composition | CompositionError] = []
    for text in texts:
        try:
            out.append(parse_composition(text))
        except CompositionError as exc:
            out.append(exc)
    return out
