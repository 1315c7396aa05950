from django.apps import AppConfig


class TrainingConfig(AppConfig):
    """Model versions and training runs: the Django side of the ML core (``ml``).

    The app label stays ``ml`` (this code lived in the ``ml`` package until the pure core was
    split out): existing databases keep their tables, migrations and content types, and model
    references read ``"ml.ModelVersion"``.
    """

    name = "training"
    label = "ml"
    verbose_name = "Machine learning"
    default_auto_field = "django.db.models.BigAutoField"
