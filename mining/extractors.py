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

NUM = r"\d+(?:\.\d+)?"
UNIT = r"(?:K|°\s?C|º\s?C|℃|oC|degC)(?![A-Za-z0-9/])"
# Property names; a leading Δ (ΔTx) or letter excludes, a following digit/letter excludes
# (so thallium 'Tl20' in a composition is not Tl).
TG = r"(?:(?<![ΔδΔ∆\w])T\s?_?\{?g\}?(?![\w])|glass[\s-]+transition(?:\s+temperatures?)?)"
TX = r"(?:(?<![ΔδΔ∆\w])T\s?_?\{?x1?\}?(?![\w])|(?:onset\s+(?:temperature\s+)?(?:of\s+)?)?crystalli[sz]ation(?:\s+(?:onset\s+)?temperatures?)?)"
TL = r"(?:(?<![ΔδΔ∆\w])T\s?_?\{?l\}?(?![\w])|liquidus(?:\s+temperatures?)?)"
NAMES = {"tg": TG, "tx": TX, "tl": TL}
ANY_NAME = rf"(?:{TG}|{TX}|{TL})"
SEP = r"\s*(?:,\s*and|,|/|and)\s*"
# After a number: not a rate (20 K/min), a length, a fraction or a time.
NOT_TEMPERATURE = r"(?!\.?\d)(?!\s*(?:K|°\s?C|℃)\s*(?:/|·|\s+min|\s+s\b))(?!\s*(?:mm|nm|µm|μm|%|at\.|wt|h\b|min\b|s\b))"

LIST_RE = re.compile(
    rf"(?P<names>{ANY_NAME}(?:{SEP}{ANY_NAME})+)(?P<fill>[^\d;]{{0,30}}?)"
    rf"(?P<nums>{NUM}(?:\s*{UNIT})?(?:{SEP}{NUM}(?:\s*{UNIT})?)+)",
    re.IGNORECASE,
)
SINGLE_RE = {
    prop: re.compile(
        rf"(?P<name>{pattern})(?:\s*\([^)]{{0,15}}\))?(?P<fill>[^\d;]{{0,40}}?)(?P<num>{NUM}){NOT_TEMPERATURE}(?:\s*(?P<unit>{UNIT}))?",
        re.IGNORECASE,
    )
    for prop, pattern in NAMES.items()
}
NUM_UNIT_RE = re.compile(rf"(?P<num>{NUM})(?:\s*(?P<unit>{UNIT}))?", re.IGNORECASE)
HEATING_RE = re.compile(rf"(?P<num>{NUM})\s*(?:K|°\s?C|℃)\s*(?:/\s*|·\s*|\s+)(?P<per>min|s)(?:-1|−1|⁻¹)?\b", re.IGNORECASE)
DMAX_RE = re.compile(
    rf"(?:D\s?_?\{{?(?:max|c)\}}?(?![\w])|critical\s+(?:casting\s+)?(?:diameter|size|thickness)|maximum\s+(?:casting\s+)?(?:diameter|size))"
    rf"[^\d;]{{0,30}}?(?P<num>{NUM})\s*mm",
    re.IGNORECASE,
)
ELEMENT_AMOUNT_RE = re.compile(r"[A-Z][a-z]?\d+(?:\.\d+)?")
TOKEN_RE = re.compile(r"\S+")
COMPOSITION_CHARS_RE = re.compile(r"[\[\]()A-Za-z0-9.,]+")
PLACEHOLDERS = {"-", "–", "—", "n/a", "na", "n.a.", "/", "…", "?"}

HEADER_COLUMN_RE = re.compile(
    r"(?P<dtx>[Δ∆δ]\s?T\s?_?\{?x\}?(?![\w])|dTx\b|delta\s*Tx\b)"
    r"|(?P<trg>(?<![\w])T\s?_?\{?rg\}?(?![\w]))"
    r"|(?P<tg>(?<![\w])T\s?_?\{?g\}?(?![\w]))"
    r"|(?P<tx>(?<![\w])T\s?_?\{?x1?\}?(?![\w]))"
    r"|(?P<tl>(?<![\w])T\s?_?\{?l\}?(?![\w]))"
    r"|(?P<tm>(?<![\w])T\s?_?\{?m\}?(?![\w]))"
    r"|(?P<tp>(?<![\w])T\s?_?\{?p\d?\}?(?![\w]))"
    r"|(?P<gamma>γ|\bgamma\b)"
    r"|(?P<dmax>(?<![\w])D\s?_?\{?(?:max|c)\}?(?![\w]))"
    r"|(?P<other>\bHv\b|\bRc\b|\bE\b|\bσ\w*)"
)
HEADER_UNIT_RE = re.compile(r"^\s*[(\[]\s*(K|°\s?C|º\s?C|℃|oC|mm|K/min)\s*[)\]]")


def _unit(text):
    """"K" or "C" for a unit the patterns matched (ml.rules.temperature_unit); they match only
    K or a way of writing °C."""
    if not text:
        return None
    return temperature_unit(text) or CELSIUS


def _composition_spans(sentence):
    """(start, end, text) of the tokens in the sentence that look like compositions."""
    spans = []
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
            spans.append((start, start + len(tok), tok))
    return spans


def _mask(text, spans, char="§"):
    chars = list(text)
    for start, end, *_ in spans:
        for i in range(start, end):
            if chars[i] not in "\n":
                chars[i] = char
    return "".join(chars)


def _sentence_values(masked):
    """[(prop, value, unit or None, number position)] found in one (composition-masked) sentence."""
    found, taken = [], []
    for m in LIST_RE.finditer(masked):
        names = []
        for nm in re.finditer(ANY_NAME, m.group("names"), re.IGNORECASE):
            for prop, pattern in NAMES.items():
                if re.fullmatch(pattern, nm.group(), re.IGNORECASE):
                    names.append(prop)
                    break
        nums = list(NUM_UNIT_RE.finditer(m.group("nums")))
        if len(names) != len(nums) or len(set(names)) != len(names):
            continue
        last_unit = next((_unit(n.group("unit")) for n in reversed(nums) if n.group("unit")), None)
        for prop, n in zip(names, nums):
            found.append((prop, float(n.group("num")), _unit(n.group("unit")) or last_unit, m.start("nums") + n.start()))
        taken.append((m.start(), m.end()))
    for prop, regex in SINGLE_RE.items():
        for m in regex.finditer(masked):
            if any(s <= m.start() < e for s, e in taken):
                continue
            if re.search(ANY_NAME, m.group("fill"), re.IGNORECASE):
                continue  # the number belongs to a later property name
            found.append((prop, float(m.group("num")), _unit(m.group("unit")), m.start("num")))
    # A number is one property's value ("glass transition temperature (Tg) of 683 K" names it twice).
    seen, unique = set(), []
    for item in sorted(found, key=lambda f: f[3]):
        if item[3] not in seen:
            seen.add(item[3])
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


def _header_columns(line):
    cols = []
    for m in HEADER_COLUMN_RE.finditer(line):
        kind = m.lastgroup
        unit_m = HEADER_UNIT_RE.match(line[m.end():])
        cols.append((kind, _unit(unit_m.group(1)) if unit_m and unit_m.group(1) not in ("mm", "K/min") else None))
    return cols


def _is_header(line):
    cols = _header_columns(line)
    kinds = {k for k, _ in cols}
    if len(cols) < 2 or not kinds & {"tg", "tx", "tl"}:
        return False
    if _composition_spans(line):
        return False
    # A header is mostly labels: few long words.
    words = [w for w in re.findall(r"[A-Za-z]{4,}", line) if w.lower() not in {"alloy", "alloys", "composition", "compositions", "sample", "gamma", "table"}]
    return len(words) <= 4


def _table_records(text, lines_with_offsets):
    """Records from table rows under a header naming the columns; and the consumed spans."""
    records, consumed = [], []
    i = 0
    while i < len(lines_with_offsets):
        line, offset = lines_with_offsets[i]
        if not _is_header(line):
            i += 1
            continue
        cols = _header_columns(line)
        context = line + " " + (lines_with_offsets[i - 1][0] if i > 0 else "")
        default_unit = "C" if re.search(r"°\s?C|º\s?C|℃|\(\s*C\s*\)", context) else "K"
        heating = _heating_rate(context)
        consumed.append((offset, offset + len(line)))
        j = i + 1
        while j < len(lines_with_offsets):
            row, row_offset = lines_with_offsets[j]
            stripped = row.strip()
            if not stripped:
                if j == i + 1:
                    j += 1
                    continue
                break
            tokens = [t for t in re.split(r"[\s|\t]+", stripped) if t]
            comps = _composition_spans(tokens[0]) if tokens else []
            if not comps or comps[0][2] != tokens[0].rstrip(",;"):
                break
            cells = []
            for tok in tokens[1:]:
                if re.fullmatch(NUM, tok):
                    cells.append(float(tok))
                elif tok.lower() in PLACEHOLDERS:
                    cells.append(None)
                elif re.fullmatch(rf"\(?{UNIT}\)?", tok):
                    continue
                else:
                    cells = None
                    break
            consumed.append((row_offset, row_offset + len(row)))
            j += 1
            if cells is None or len(cells) != len(cols):
                continue  # not aligned with the header: do not guess
            record = RawRecord(composition=comps[0][2], snippet=text[row_offset:row_offset + len(row)].strip(), heating_rate_k_min=heating)
            for (kind, unit), value in zip(cols, cells):
                if value is None:
                    continue
                if kind in ("tg", "tx", "tl"):
                    record.values[kind] = (value, unit or default_unit)
                elif kind == "dmax":
                    record.dmax_mm = value
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
    """Records found by regular expressions in sentences and table rows (values as written)."""
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
        open_records = {}  # composition -> (record, start, end) within this paragraph
        for sentence, s_off in _sentences(paragraph, pm.start()):
            comps = _composition_spans(sentence)
            values = _sentence_values(_mask(sentence, comps))
            heating, dmax = _heating_rate(sentence), _dmax(_mask(sentence, comps))
            if values:
                for prop, value, unit, v_start in values:
                    before = [c for c in comps if c[0] < v_start]
                    comp = before[-1][2] if before else (comps[0][2] if comps else context)
                    if comp is None:
                        continue
                    entry = open_records.get(comp)
                    if entry is None or prop in entry[0].values:
                        entry = [RawRecord(composition=comp), s_off, s_off + len(sentence)]
                        open_records[comp] = entry
                        records.append(entry[0])
                    rec = entry[0]
                    rec.values[prop] = (value, unit or "K")
                    entry[1], entry[2] = min(entry[1], s_off), max(entry[2], s_off + len(sentence))
                    rec.snippet = text[entry[1]:entry[2]].strip()
                    rec.heating_rate_k_min = rec.heating_rate_k_min or heating
                    rec.dmax_mm = rec.dmax_mm or dmax
            if comps:
                context = comps[-1][2]
    return [r for r in records if r.values]
