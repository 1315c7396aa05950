"""GlassLoop's machine-learning core: pure science, no Django and no app imports.

Composition parser, element table, descriptors, estimators (forward model, GFA surrogate,
CGAN), metrics, inverse design, data preparation, the domain rules every app shares
(``ml.rules``) and the CLI (``python -m ml``). The Django glue for model versions and training
runs is the ``training`` app; the import contract (tests/test_layers.py) keeps it that way.
"""
