"""Extractors turn a source's text into raw records (composition as written, values in the
unit written, the supporting snippet). They do not touch the database.

``rules`` is the offline extractor (regular expressions over sentences and table rows);
the LLM extractor lives in ``mining/llm.py`` and yields the same ``RawRecord``.
"""

import re
import unicodedata
from dataclasses import dataclass, field

from ml.rules import CELSIUS, KELVIN, temperature_unit, to_kelvin


@dataclass
class RawRecord:
    composition: str
    # property ("tg", "tx", "tl") -> (value as written, unit "K" or "C")
    values: dict = field(default_factory=dict)
    dmax_mm: float | None = None
    gfa_class: str = ""  # ml.rules.GFA_CLASSES, or "" when the text does not say
    heating_rate_k_min: float | None = None
    snippet: str = ""
    # property -> how the extractor derived it (e.g. "Tx = Tg + ΔTx = 680 K + 85 K"); its value
    # is still in ``values``, and grounding checks the parts, not the sum.
    derived: dict = field(default_factory=dict)
    more_snippets: list = field(default_factory=list)  # further passages merged into this record

    def kelvin(self, prop):
        """The value in K (°C converted by ml.rules.to_kelvin), or None."""
        if prop not in self.values:
            return None
        value, unit = self.values[prop]
        return to_kelvin(value, unit or KELVIN)


def normalise_for_search(text):
    """NFKC, unified dashes/quotes, whitespace collapsed: used to find a snippet in a text."""
    text = unicodedata.normalize("NFKC", text or "")
    text = re.sub(r"[\u2010-\u2015\u2212]", "-", text)
    text = re.sub(r"[\u2018\u2019]", "'", text).replace("\u201c", '"').replace("\u201d", '"')
    text = re.sub(r"-\s*\n\s*", "-", text)  # hyphenated line breaks from PDFs
    return " ".join(text.split())


def snippet_occurs(snippet, text, _cache={}):
    """Whether the snippet occurs in the text, ignoring whitespace/dash/quote differences."""
    needle = normalise_for_search(snippet)
    if not needle:
        return False
    key = id(text), len(text)
    if _cache.get("key") != key:
        _cache.clear()
        _cache.update(key=key, hay=normalise_for_search(text))
    return needle in _cache["hay"]


# ---------------------------------------------------------------- chunking (for the LLM)


def chunk_text(text, max_chars=12000, overlap_chars=800):
    """Overlapping chunks of at most max_chars, cut at a paragraph, line or sentence end
    where possible, each starting overlap_chars before the previous one ended (so a
    sentence or table row cut at a boundary is seen whole in one of the two chunks)."""
    text = text or ""
    if len(text) <= max_chars:
        return [text] if text.strip() else []
    overlap_chars = min(overlap_chars, max_chars // 2)
    chunks, start = [], 0
    while start < len(text):
        end = min(start + max_chars, len(text))
        if end < len(text):
            window = text[start:end]
            floor = max_chars // 2
            for sep in ("\n\n", "\n", ". ", " "):
                cut = window.rfind(sep)
                if cut >= floor:
                    end = start + cut + len(sep)
                    break
        chunks.append(text[start:end])
        if end >= len(text):
            break
        nxt = max(end - overlap_chars, start + 1)
        space = text.find(" ", nxt, end)  # begin the overlap at a word boundary
        start = space + 1 if space != -1 else nxt
    return chunks


# ---------------------------------------------------------------- rules extractor
#
# Sentence and table readers share one vocabulary (mining/rules_vocabulary.py) and one alias
# table (mining/alloy_aliases.py). A value is only read after a property's name with its unit
# written; differences, ratios and sentences that are instructions never give values; Tx is
# derived as Tg + ΔTx (with ``derived`` saying so) when only those are given.

from . import alloy_aliases
from .rules_vocabulary import (
    AFTER_DIFFERENCE_RE,
    DIFFERENCE_RE,
    NAME_RE,
    NUM,
    OPERATOR_AFTER_RE,
    OPERATOR_BEFORE_RE,
    PROP_NAME_RE,
    UNIT,
    VALUE_RE,
    is_instruction,
)

PROPS = ("tg", "tx", "tl")
NUM_UNIT_RE = re.compile(rf"(?P<num>{NUM})(?:\s*(?P<unit>{UNIT}))?", re.IGNORECASE)
SEP = r"\s*(?:,\s*and|,|and)\s*"
LIST_NAME = "(?:" + "|".join(PROP_NAME_RE[p].pattern for p in PROPS) + ")"
LIST_RE = re.compile(
    rf"(?P<names>{LIST_NAME}(?:{SEP}{LIST_NAME})+)(?P<fill>[^\d;]{{0,30}}?)"
    rf"(?P<nums>{NUM}(?:\s*{UNIT})?(?:{SEP}{NUM}(?:\s*{UNIT})?)+)",
    re.IGNORECASE,
)
HEATING_RE = re.compile(rf"(?P<num>{NUM})\s*(?:K|°\s?C|℃)\s*(?:/\s*|·\s*|\s+)(?P<per>min|s)(?:-1|−1|⁻¹)?\b", re.IGNORECASE)
DMAX_RE = re.compile(
    rf"(?:D\s?_?\{{?(?:max|c)\}}?(?![\w])|critical\s+(?:casting\s+)?(?:diameter|size|thickness)|maximum\s+(?:casting\s+)?(?:diameter|size))"
    rf"[^\d;]{{0,30}}?(?P<num>{NUM})\s*mm",
    re.IGNORECASE,
)
ELEMENT_AMOUNT_RE = re.compile(r"[A-Z][a-z]?\d+(?:\.\d+)?")
TOKEN_RE = re.compile(r"\S+")
COMPOSITION_CHARS_RE = re.compile(r"[\[\]()A-Za-z0-9.,]+")
PLACEHOLDERS = {"-", "–", "—", "n/a", "na", "n.a.", "/", "…", "?", "nd", "n.d.", "--", "―"}
MAX_FILL = 45  # characters between a name and its number


def _unit(text):
    """"K" or "C" for a unit the patterns matched (ml.rules.temperature_unit); they match only
    K or a way of writing °C."""
    if not text:
        return None
    return temperature_unit(text) or CELSIUS


def _composition_spans(sentence):
    """(start, end, composition) of the tokens in the sentence that look like compositions,
    and of named alloys (their composition from the alias table)."""
    spans = list(alloy_aliases.alias_spans(sentence))
    for m in TOKEN_RE.finditer(sentence):
        tok, start = m.group(), m.start()
        while tok and tok[-1] in ",;:.":
            tok = tok[:-1]
        while tok and tok[0] in "\"'":
            tok, start = tok[1:], start + 1
        # Drop an unbalanced trailing ')' or leading '(' left over from prose punctuation.
        if tok.endswith(")") and tok.count("(") < tok.count(")"):
            tok = tok[:-1]
        if tok.startswith("(") and tok.count("(") > tok.count(")"):
            tok, start = tok[1:], start + 1
        if not tok or not COMPOSITION_CHARS_RE.fullmatch(tok):
            continue
        if len(ELEMENT_AMOUNT_RE.findall(tok)) >= 2 or (any(c in tok for c in "([") and len(ELEMENT_AMOUNT_RE.findall(tok)) >= 1):
            if not any(s <= start < e for s, e, _ in spans):
                spans.append((start, start + len(tok), tok))
    return sorted(spans)


def _mask(text, spans, char="§"):
    chars = list(text)
    for start, end, *_ in spans:
        for i in range(start, end):
            if chars[i] not in "\n":
                chars[i] = char
    return "".join(chars)


def _list_values(masked):
    """'Tg, Tx and Tl ... are 715, 780 and 1154 K': [(prop, value, unit, pos)], taken spans."""
    found, taken = [], []
    for m in LIST_RE.finditer(masked):
        names = []
        for nm in re.finditer(LIST_NAME, m.group("names"), re.IGNORECASE):
            names += [p for p in PROPS if PROP_NAME_RE[p].fullmatch(nm.group())][:1]
        nums = list(NUM_UNIT_RE.finditer(m.group("nums")))
        if len(names) != len(nums) or len(set(names)) != len(names) or DIFFERENCE_RE.search(m.group("fill")):
            continue
        last_unit = next((_unit(n.group("unit")) for n in reversed(nums) if n.group("unit")), None)
        if last_unit is None:
            continue
        for prop, n in zip(names, nums):
            found.append((prop, float(n.group("num")), n.group("num"), _unit(n.group("unit")) or last_unit, m.start("nums") + n.start()))
        taken.append((m.start(), m.end()))
    return found, taken


def _sentence_values(masked):
    """[(prop, value, number as written, unit, number position)] in one composition-masked
    sentence; prop is "tg", "tx", "tl" or "dtx". Each name takes the first number with a unit
    after it, before the next name; not when the name is part of an expression (Tx − Tg,
    Tg/Tl) or the words between them or after the number make it a difference."""
    found, taken = _list_values(masked)
    names = [m for m in NAME_RE.finditer(masked) if not any(s <= m.start() < e for s, e in taken)]
    for i, m in enumerate(names):
        kind = m.lastgroup
        if kind == "block":
            continue
        end = names[i + 1].start() if i + 1 < len(names) else len(masked)
        if OPERATOR_BEFORE_RE.search(masked[max(0, m.start() - 3):m.start()]) or OPERATOR_AFTER_RE.match(masked[m.end():]):
            continue
        window = masked[m.end():end]
        v = VALUE_RE.search(window)
        if not v:
            continue
        fill = window[:v.start()]
        if len(fill) > MAX_FILL or re.search(r"[\d;]", fill) or DIFFERENCE_RE.search(fill):
            continue
        if AFTER_DIFFERENCE_RE.match(window[v.end():]):
            continue
        found.append((kind, float(v.group("num")), v.group("num"), _unit(v.group("unit")), m.end() + v.start()))
    seen, unique = set(), []
    for item in sorted(found, key=lambda f: f[4]):
        if item[4] not in seen:
            seen.add(item[4])
            unique.append(item)
    return unique


def _heating_rate(text):
    m = HEATING_RE.search(text)
    if not m:
        return None
    value = float(m.group("num"))
    return value * 60 if m.group("per").lower() == "s" else value


def _dmax(text):
    m = DMAX_RE.search(text)
    return float(m.group("num")) if m else None


def _derive_tx(record, dtx):
    """Tx = Tg + ΔTx when the source gives Tg and ΔTx but not Tx (ΔTx in K or °C is the same)."""
    if dtx is None or "tx" in record.values or "tg" not in record.values:
        return
    (tg, unit), (dvalue, dwritten) = record.values["tg"], dtx
    tg_written = f"{tg:g}"
    u = "K" if unit == KELVIN else "°C"
    record.values["tx"] = (round(tg + dvalue, 6), unit)
    record.derived["tx"] = f"Tx = Tg + ΔTx = {tg_written} {u} + {dwritten} {'K' if unit == KELVIN else '°C'}"


# ---- tables

HEADER_CELL_RE = re.compile(
    r"^(?P<label>.*?)\s*(?:[(\[]\s*(?P<unit>[^)\]]*)\s*[)\]]|/\s*(?P<unit2>K|°\s?C|℃|mm|K\s*/\s*min|K\s*min-1))?\s*$"
)
CELL_KINDS = (
    ("dtx", r"[Δ∆δ]\s?T\s?_?\{?x\}?|dTx|delta\s*Tx|ΔT"),
    ("tg", r"T\s?_?\{?g\}?"),
    ("tx", r"T\s?_?\{?(?:x1?|onset)\}?"),
    ("tl", r"T\s?_?\{?(?:l|liq)\}?"),
    ("dmax", r"D\s?_?\{?(?:max|c)\}?|dmax|critical\s+diameter"),
    ("rate", r"(?:heating\s+)?rate|β|q|φ"),
)


def _classify_cell(cell):
    """(kind, unit) for a header cell: a kind of CELL_KINDS or "other"/"label"."""
    m = HEADER_CELL_RE.match(cell.strip())
    label = (m.group("label") if m else cell).strip()
    unit_text = (m.group("unit") or m.group("unit2")) if m else None
    unit = temperature_unit(unit_text) if unit_text else None
    for kind, pattern in CELL_KINDS:
        if re.fullmatch(pattern, label, re.IGNORECASE):
            return kind, unit
    if label.lower() in {"alloy", "alloys", "composition", "compositions", "sample", "samples", "glass", "system", "no.", "id"}:
        return "label", None
    return "other", unit


def _split_header(line):
    line = line.strip()
    if "|" in line:
        return [c.strip() for c in line.strip("|").split("|")]
    wide = [c for c in re.split(r"\s{2,}|\t", line) if c]
    if len(wide) >= 3:
        return wide
    cells = []
    for tok in line.split():
        if cells and re.fullmatch(r"[(\[][^)\]]*[)\]]", tok):
            cells[-1] += " " + tok
        else:
            cells.append(tok)
    return cells


def _header(line):
    """[(kind, unit)] when the line is a table header naming temperature columns, else None."""
    if _composition_spans(line) or len(line) > 200:
        return None
    cells = _split_header(line)
    cols = [_classify_cell(c) for c in cells]
    kinds = [k for k, _ in cols]
    if len(cols) < 3 or not set(kinds) & set(PROPS) or sum(k in PROPS + ("dtx",) for k in kinds) < 2:
        return None
    words = [w for c, (k, _) in zip(cells, cols) if k == "other" for w in re.findall(r"[A-Za-z]{4,}", c)]
    return cols if len(words) <= 4 else None


def _row_cells(row):
    row = row.strip()
    if "|" in row:
        return [c.strip() for c in row.strip("|").split("|")]
    return [t for t in re.split(r"\s+", row) if t]


def _table_records(text, lines_with_offsets):
    """Records from table rows under a header naming the columns; and the consumed spans.
    Columns the extractor does not know are ignored; a row that does not align with the
    header is skipped, not guessed."""
    records, consumed = [], []
    i = 0
    while i < len(lines_with_offsets):
        line, offset = lines_with_offsets[i]
        cols = _header(line)
        if cols is None:
            i += 1
            continue
        context = line + " " + (lines_with_offsets[i - 1][0] if i > 0 else "")
        default_unit = "C" if re.search(r"°\s?C|º\s?C|℃|\(\s*C\s*\)", context) else "K"
        heating = _heating_rate(context)
        consumed.append((offset, offset + len(line)))
        j = i + 1
        while j < len(lines_with_offsets):
            row, row_offset = lines_with_offsets[j]
            stripped = row.strip()
            if not stripped or re.fullmatch(r"[|:\-\s=+—–]+", stripped):
                if not stripped and j > i + 1 and not re.fullmatch(r"[|:\-\s=+—–]*", lines_with_offsets[j - 1][0]):
                    break
                consumed.append((row_offset, row_offset + len(row)))
                j += 1
                continue
            cells = _row_cells(stripped)
            first = cells[0].rstrip(",;") if cells else ""
            comp = alloy_aliases.resolve(first)
            if comp is None:
                spans = _composition_spans(first)
                comp = spans[0][2] if spans and spans[0][2] == first else None
            if comp is None:
                break
            consumed.append((row_offset, row_offset + len(row)))
            j += 1
            cells = [c for c in cells[1:] if not re.fullmatch(rf"\(?{UNIT}\)?", c)]
            label_cols = [c for c in cols if c[0] != "label"]
            if len(cells) != len(label_cols) or len(cols) - len(label_cols) != 1 or cols[0][0] != "label":
                continue  # not aligned with the header: do not guess
            record = RawRecord(composition=comp, snippet=text[row_offset:row_offset + len(row)].strip(), heating_rate_k_min=heating)
            dtx = None
            for (kind, unit), cell in zip(label_cols, cells):
                if kind == "other":
                    continue
                if not re.fullmatch(NUM, cell):
                    if cell.lower() in PLACEHOLDERS:
                        continue
                    record = None
                    break
                value = float(cell)
                if kind in PROPS:
                    record.values[kind] = (value, unit or default_unit)
                elif kind == "dtx":
                    dtx = (value, cell)
                elif kind == "dmax":
                    record.dmax_mm = value
                elif kind == "rate":
                    record.heating_rate_k_min = value
            if record is None:
                continue
            _derive_tx(record, dtx)
            if record.values:
                records.append(record)
        i = j
    return records, consumed


SENTENCE_END_RE = re.compile(r"(?<=[.!?;])\s+(?=[A-ZΔ∆(\[\"'])")


def _sentences(paragraph, offset):
    start = 0
    for m in SENTENCE_END_RE.finditer(paragraph):
        # "Fig. 2", "et al. Zr" and "Ref. [1]" are not sentence ends.
        before = paragraph[max(0, m.start() - 6):m.start()]
        if re.search(r"(?:Fig|Figs|Ref|Refs|al|Eq|No|ca|approx|vs|i\.e|e\.g)\.$", before):
            continue
        yield paragraph[start:m.start()], offset + start
        start = m.end()
    yield paragraph[start:], offset + start


def extract_rules(text):
    """Records found by the rules in sentences and table rows (values as written)."""
    text = text or ""
    lines, pos = [], 0
    for line in text.split("\n"):
        lines.append((line, pos))
        pos += len(line) + 1
    table_records, consumed = _table_records(text, lines)
    # Prose: blank out table lines, join wrapped lines, keep offsets into the original text.
    prose = _mask(text, consumed, char=" ").replace("\r", " ")
    records = list(table_records)
    for pm in re.finditer(r"(?:[^\n]|\n(?!\s*\n))+", prose):
        paragraph = pm.group().replace("\n", " ")
        context = None
        open_records = {}  # composition -> [record, start, end, ΔTx] within this paragraph
        for sentence, s_off in _sentences(paragraph, pm.start()):
            if is_instruction(sentence):
                continue  # addressed to the reader or a machine: never a source of values
            comps = _composition_spans(sentence)
            masked = _mask(sentence, comps)
            values = _sentence_values(masked)
            heating, dmax = _heating_rate(sentence), _dmax(masked)
            for prop, value, written, unit, v_start in values:
                before = [c for c in comps if c[0] < v_start]
                comp = before[-1][2] if before else (comps[0][2] if comps else context)
                if comp is None:
                    continue
                entry = open_records.get(comp)
                if entry is None or (prop in entry[0].values and prop != "dtx"):
                    entry = [RawRecord(composition=comp), s_off, s_off + len(sentence), None]
                    open_records[comp] = entry
                    records.append(entry[0])
                rec = entry[0]
                if prop == "dtx":
                    entry[3] = (value, written)
                else:
                    rec.values[prop] = (value, unit or "K")
                entry[1], entry[2] = min(entry[1], s_off), max(entry[2], s_off + len(sentence))
                rec.snippet = text[entry[1]:entry[2]].strip()
                rec.heating_rate_k_min = rec.heating_rate_k_min or heating
                rec.dmax_mm = rec.dmax_mm or dmax
            if comps:
                context = comps[-1][2]
        for rec, _s, _e, dtx in open_records.values():
            _derive_tx(rec, dtx)
    return [r for r in records if r.values]
