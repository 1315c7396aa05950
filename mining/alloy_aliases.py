"""Named alloys (trade and lab names) the rules extractor reads as compositions.

Only aliases whose composition is well established in the literature, each with where it was
defined or reported. The composition is in at.% as ml.composition.parse_composition reads it.
Add a name only with its citation.
"""

import re

# name -> (composition, citation)
ALIASES = {
    "Vit1": ("Zr41.2Ti13.8Cu12.5Ni10Be22.5",
             "Peker & Johnson, Appl. Phys. Lett. 63 (1993) 2342 (Vitreloy 1)"),
    "Vit105": ("Zr52.5Cu17.9Ni14.6Al10Ti5",
               "Lin, Johnson & Rhim, Mater. Trans. JIM 38 (1997) 473 (Vit105)"),
    "Vit106": ("Zr57Cu15.4Ni12.6Al10Nb5",
               "X. H. Lin, PhD thesis, California Institute of Technology (1997) (Vit106)"),
}

# "Vit1", "Vit 1", "Vit-1", "Vitreloy 1", "Vitreloy-105", "Vit.105"
ALIAS_RE = re.compile(r"(?<![\w-])Vit(?:reloy)?[\s.\-]?(?P<num>1|105|106)(?![\w.]?\d)(?![A-Za-z])")


def alias_spans(text):
    """(start, end, composition) for each named alloy in the text."""
    out = []
    for m in ALIAS_RE.finditer(text):
        name = "Vit" + m.group("num")
        if name in ALIASES:
            out.append((m.start(), m.end(), ALIASES[name][0]))
    return out


def resolve(token):
    """The composition for a token that is exactly an alias (a table's first cell), or None."""
    m = ALIAS_RE.fullmatch(token.strip())
    return ALIASES["Vit" + m.group("num")][0] if m else None
