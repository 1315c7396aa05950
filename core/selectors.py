"""Reads the apps share."""


def columns_except(path, model, *kept):
    """``path``'s concrete columns but ``kept``, as ``defer()`` names them (``alloy__fractions``):
    a list page that shows of a joined row only a few columns leaves the others unread and
    unconverted (an alloy's summary columns and fractions were ~2 ms of a 50-row page)."""
    return [f"{path}__{f.name}" for f in model._meta.concrete_fields if f.name not in kept]
