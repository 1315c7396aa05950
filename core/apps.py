from django.apps import AppConfig


class CoreConfig(AppConfig):
    """What every domain app shares: roles, the job lifecycle, the API base, plots, formatting."""

    name = "core"
    verbose_name = "GlassLoop core"
