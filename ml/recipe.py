"""Casting recipe: how many grams of each element to weigh for an ingot of a given mass.

A composition is given in atomic per cent; the furnace needs masses. For element i with atomic
fraction xᵢ and atomic weight Mᵢ the mass fraction is wᵢ = xᵢMᵢ / Σⱼ xⱼMⱼ, and an ingot of m
grams needs m·wᵢ grams of it. With a raw material of purity pᵢ (mass fraction, e.g. 0.9995)
one weighs m·wᵢ / pᵢ so that the element itself is present in full (the impurities come on
top: the ingot is then slightly heavier than m, as the recipe states).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from ml.composition import Composition, parse_composition
from ml.elements import atomic_weights

DEFAULT_INGOT_G = 10.0
MAX_INGOT_G = 1000.0  # an arc-melter's hearth; above is a typo


class RecipeError(ValueError):
    """A recipe that cannot be made; the message says why."""


@dataclass(frozen=True)
class RecipeLine:
    element: str
    at_percent: float
    wt_percent: float
    atomic_weight: float
    purity: float
    grams: float  # to weigh, purity included


@dataclass(frozen=True)
class Recipe:
    formula: str
    ingot_g: float
    lines: tuple[RecipeLine, ...]

    @property
    def total_g(self) -> float:
        return sum(line.grams for line in self.lines)

    def as_dict(self) -> dict:
        return {"formula": self.formula, "ingot_g": self.ingot_g, "total_g": self.total_g,
                "lines": [line.__dict__ for line in self.lines]}


def casting_recipe(composition: Composition | str, ingot_g: float = DEFAULT_INGOT_G,
                   purity: float | Mapping[str, float] = 1.0) -> Recipe:
    """The recipe for ``ingot_g`` grams of ``composition`` (at.%); ``purity``: one mass
    fraction for every raw material, or per element (missing elements: 1.0)."""
    comp = parse_composition(composition) if isinstance(composition, str) else composition
    try:
        ingot_g = float(ingot_g)
    except (TypeError, ValueError):
        raise RecipeError(f"ingot mass {ingot_g!r} is not a number") from None
    if not 0 < ingot_g <= MAX_INGOT_G:
        raise RecipeError(f"ingot mass {ingot_g:g} g must be above 0 g and at most {MAX_INGOT_G:g} g")
    elements = sorted(comp, key=lambda e: -comp[e])
    purities = {e: float(purity.get(e, 1.0)) if isinstance(purity, Mapping) else float(purity) for e in elements}
    for e, p in purities.items():
        if not 0.5 <= p <= 1.0:
            raise RecipeError(f"purity of {e} {p:g} must be a mass fraction between 0.5 and 1 (e.g. 0.9995)")
    weights = dict(zip(elements, atomic_weights(elements)))
    total = sum(comp[e] * weights[e] for e in elements)
    lines = []
    for e in elements:
        w = comp[e] * weights[e] / total
        lines.append(RecipeLine(element=e, at_percent=100 * comp[e], wt_percent=100 * w, atomic_weight=weights[e],
                                purity=purities[e], grams=ingot_g * w / purities[e]))
    return Recipe(formula=comp.formula, ingot_g=ingot_g, lines=tuple(lines))
