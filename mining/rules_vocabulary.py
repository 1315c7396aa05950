"""One vocabulary for the rules extractor's sentence and table readers: property names
(symbols and the wordings papers use), the quantities that look like temperatures but are
not (ΔTx, Trg, γ, peaks, solidus), units, and the phrases that make a number a difference,
a ratio or an instruction rather than a value."""

import re

NUM = r"\d+(?:\.\d+)?"
UNIT = r"(?:K|°\s?C|º\s?C|℃|oC|degC)(?![A-Za-z0-9/])"
_NOT_AFTER = r"(?<![ΔδΔ∆\w])"

# Symbols (a following letter or digit excludes: thallium 'Tl20' is not Tl; Tx1 is Tx).
SYMBOLS = {
    "tg": _NOT_AFTER + r"T\s?_?\{?g\}?(?![\w])",
    "tx": _NOT_AFTER + r"T\s?_?\{?(?:x1?|onset)\}?(?![\w])",
    "tl": _NOT_AFTER + r"T\s?_?\{?(?:l|liq|liquidus)\}?(?![\w])",
}
CRYST = r"(?:crystalli[sz]ation|devitrification)"
# Wordings, longest first within each property.
WORDS = {
    "tg": [r"(?:calorimetric\s+)?glass[\s-]+transition(?:\s+(?:temperatures?|point))?"],
    "tx": [
        rf"onset(?:\s+temperatures?)?\s+of\s+(?:the\s+)?(?:first\s+|primary\s+)?{CRYST}(?:\s+(?:event|peak|temperature))?",
        rf"(?:first\s+|primary\s+)?{CRYST}\s+onset(?:\s+temperatures?)?",
        rf"(?:first\s+|primary\s+)?{CRYST}\s+(?:sets\s+in|begins|starts|commences|occurs)(?:\s+at)?",
        rf"{CRYST}\s+(?:onset\s+)?temperatures?",
        r"onset\s+of\s+the\s+first\s+exotherm(?:ic\s+(?:event|peak))?",
        r"crystalli[sz]es\s+at",
        rf"{CRYST}",
    ],
    "tl": [
        r"liquidus(?:\s+temperatures?)?",
        r"melting\s+(?:is\s+)?(?:completes?|completed|ends|finishes)(?:\s+at)?",
        r"end\s+of\s+(?:the\s+)?melting(?:\s+(?:event|endotherm))?",
        r"offset\s+of\s+(?:the\s+)?melting(?:\s+(?:event|endotherm))?",
        r"fully\s+molten(?:\s+(?:above|at))?",
    ],
}
# Quantities whose numbers are not Tg/Tx/Tl (they stop a preceding name from taking them).
# "dtx" is kept: Tx = Tg + ΔTx when Tx itself is not given.
OTHERS = {
    "dtx": [r"[Δ∆δ]\s?T\s?_?\{?x\}?(?![\w])", r"\bdTx\b", r"\bdelta\s*Tx\b",
            r"(?:width\s+of\s+the\s+)?supercooled\s+liquid\s+(?:region|range|interval)"],
    "block": [
        r"reduced\s+glass[\s-]+transition(?:\s+temperatures?)?", r"(?<![\w])T\s?_?\{?rg\}?(?![\w])",
        r"γ|\bgamma\b", r"(?<![\w])T\s?_?\{?(?:p\d?|m|s|x2|x3)\}?(?![\w])",
        r"\bpeaks?\b", r"\bsolidus\b", r"onset\s+of\s+melting", r"melting\s+(?:onset|point|temperature)",
        rf"second\s+{CRYST}",
    ],
}


def _group(pats):
    return "(?:" + "|".join(pats) + ")"


NAME_PATTERNS = {prop: _group(WORDS[prop] + [SYMBOLS[prop]]) for prop in ("tg", "tx", "tl")}
# One alternation: at a position the first listed kind wins, so "reduced glass transition"
# (listed before "glass transition") is a ratio, not Tg.
NAME_RE = re.compile(
    "|".join([rf"(?P<dtx>{_group(OTHERS['dtx'])})", rf"(?P<block>{_group(OTHERS['block'])})"]
             + [rf"(?P<{p}>{NAME_PATTERNS[p]})" for p in ("tg", "tx", "tl")]),
    re.IGNORECASE,
)
PROP_NAME_RE = {p: re.compile(NAME_PATTERNS[p], re.IGNORECASE) for p in ("tg", "tx", "tl")}

# Between a name and its number: words that make the number a change, gap or ratio.
DIFFERENCE_RE = re.compile(
    r"\b(?:by|lowered|raised|reduced|decrease[sd]?|increase[sd]?|shift(?:s|ed)?|differen\w*|gap|interval|"
    r"width|between|ratio|drops?|dropped|rises?|rose|change[sd]?|minus|plus|spread|range|times)\b|[+×*÷]",
    re.IGNORECASE,
)
# After the number and unit: the number was a gap ("17 K above Tx", "30 K higher than").
AFTER_DIFFERENCE_RE = re.compile(
    r"^\s*(?:\)|,)?\s*(?:higher|lower|above|below|than|apart|wider|narrower|more|less|greater|smaller|after|before|"
    r"larger|beyond|up|down)\b",
    re.IGNORECASE,
)
# An operator next to a name: "Tx − Tg", "Tg/Tl", "Tg + Tl" are expressions, not the property.
OPERATOR_BEFORE_RE = re.compile(r"[-−–/+×]\s*$")
OPERATOR_AFTER_RE = re.compile(r"^\s*[-−–/+×]\s*(?:\(|T|[Δ∆])")
# After a number: not a rate (20 K/min), a length, a fraction or a time.
NOT_TEMPERATURE = r"(?!\.?\d)(?!\s*(?:K|°\s?C|℃)\s*(?:/|·|\s+min|\s+s\b))"
VALUE_RE = re.compile(rf"(?P<num>{NUM}){NOT_TEMPERATURE}\s*(?P<unit>{UNIT})")

# Sentences addressed to the reader or to an AI, or instructions: they never give values.
INSTRUCTION_RE = re.compile(
    r"\b(?:ignore|disregard|forget|override)\b[^.]{0,60}\b(?:instructions?|above|previous|prior|earlier|table|text|rules?)\b"
    r"|\b(?:AI|A\.I\.|assistants?|language\s+models?|LLMs?|chatbots?|GPT\w*|extractors?|system\s+prompts?|prompt)\b"
    r"|^\W*(?:system|user|assistant|instruction|note\s+to\s+\w+)\s*:"
    r"|^\W*(?:please\s+)?(?:report|record|output|return|print|write|state|set|use|extract|answer|respond|list)\b"
    r"|\b(?:please|you\s+(?:must|should|will)|you\s+are)\b[^.]{0,60}\b(?:report|record|output|return|write|state|extract|use|list)\b",
    re.IGNORECASE,
)


def is_instruction(sentence):
    return bool(INSTRUCTION_RE.search(sentence))
