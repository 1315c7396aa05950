"""A candidate's casting recipe from a page's or the API's query (``?ingot_g=…&purity=…``).

The science is ``ml.recipe.casting_recipe`` (grams from at.% via atomic weights, purity
included); this reads the two parameters and returns its refusals in its own words, on the
parameter they concern.

``purity``: empty (pure raw materials), one mass fraction for every element ("0.9995"), or per
element ("Zr 0.998, Cu 0.9999"; elements not named: 1.0).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ml.composition import parse_composition
from ml.recipe import DEFAULT_INGOT_G, Recipe, RecipeError, casting_recipe

_PURITY_ITEM = re.compile(r"^\s*([A-Za-z]{1,2})\s*[:=]?\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*$")


@dataclass
class RecipeRequest:
    ingot_g: str = f"{DEFAULT_INGOT_G:g}"
    purity: str = ""
    recipe: Recipe | None = None
    errors: dict[str, str] = field(default_factory=dict)


def parse_purity(text, elements):
    """A float, an element -> float dict, or 1.0 (empty); RecipeError with the reason."""
    text = (text or "").strip()
    if not text:
        return 1.0
    try:
        return float(text)
    except ValueError:
        pass
    out = {}
    by_fold = {el.lower(): el for el in elements}
    for item in [t for t in re.split(r"[,;\n]+", text) if t.strip()]:
        m = _PURITY_ITEM.match(item)
        if not m:
            raise RecipeError(f"cannot read purity {item.strip()!r}: give one value (e.g. 0.9995) or per element (e.g. “Zr 0.998, Cu 0.9999”)")
        el = by_fold.get(m.group(1).lower())
        if el is None:
            raise RecipeError(f"purity given for {m.group(1)}, which is not in the alloy ({' '.join(elements)})")
        out[el] = float(m.group(2))
    return out


def recipe_for(formula, params) -> RecipeRequest:
    """The recipe of ``formula`` for ``params`` (a QueryDict or dict with ``ingot_g`` and
    ``purity``); ``errors`` = {"ingot_g" | "purity": message} when it cannot be made."""
    req = RecipeRequest(
        ingot_g=str(params.get("ingot_g") or "").strip() or f"{DEFAULT_INGOT_G:g}",
        purity=str(params.get("purity") or "").strip(),
    )
    comp = parse_composition(formula)
    try:
        casting_recipe(comp, req.ingot_g)  # the ingot mass alone, so its refusal is its own
    except RecipeError as exc:
        req.errors["ingot_g"] = str(exc)
    try:
        purity = parse_purity(req.purity, sorted(comp, key=lambda e: -comp[e]))
        recipe = casting_recipe(comp, DEFAULT_INGOT_G if "ingot_g" in req.errors else req.ingot_g, purity)
    except RecipeError as exc:
        req.errors["purity"] = str(exc)
    else:
        if not req.errors:
            req.recipe = recipe
    return req

