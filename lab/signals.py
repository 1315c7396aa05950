"""Keep each alloy's stored summary (counts, mean Tg/Tx/Tl, Trg, γ) true on every single
save or delete of its property values and samples — the web forms, the admin, mining and
design alike. Bulk writes (imports, bulk approval) call refresh_alloy_summaries themselves,
since bulk_create sends no signals."""

from django.db.models.signals import post_delete, post_save, pre_save
from django.dispatch import receiver

from .models import PropertyValue, Sample


@receiver(pre_save, sender=PropertyValue)
@receiver(pre_save, sender=Sample)
def remember_previous_alloy(sender, instance, raw=False, **kwargs):
    """A row moved to another alloy (an admin edit) changes the summaries of both."""
    if raw or instance.pk is None:
        return
    instance._previous_alloy_id = sender.objects.filter(pk=instance.pk).values_list("alloy_id", flat=True).first()


@receiver([post_save, post_delete], sender=PropertyValue)
@receiver([post_save, post_delete], sender=Sample)
def refresh_alloy_summary(sender, instance, raw=False, **kwargs):
    if raw:  # loaddata: the fixture carries the summary
        return
    from .services import refresh_alloy_summaries

    refresh_alloy_summaries([instance.alloy_id, getattr(instance, "_previous_alloy_id", None)])
