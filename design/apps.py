from django.apps import AppConfig


class DesignConfig(AppConfig):
    name = "design"
    verbose_name = "Design campaigns"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from . import signals  # noqa: F401  (connects the lab-result receivers)
