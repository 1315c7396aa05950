"""GlassLoop's machine-learning core.

The pure modules here (composition, descriptors, models, metrics, the CLI) import
no Django; the Django glue (apps.py, models.py, tasks.py, views.py) sits beside them.
"""
