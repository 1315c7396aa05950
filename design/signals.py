"""Lab results flowing back into the design loop.

A saved XRD or DSC measurement, or a change of the sample itself (its rod diameter), updates
the candidate its sample came from (in the same transaction), and once committed lets the loop decide whether enough new lab results exist
to retrain the models.
"""

import logging

from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from lab.models import DSCMeasurement, Sample, XRDMeasurement

logger = logging.getLogger(__name__)


def _after_commit_retrain_check():
    from training.services import maybe_retrain_for_new_results

    try:
        maybe_retrain_for_new_results()
    except Exception:  # the measurement is saved; a failed check must not hide that
        logger.exception("The retrain check after a lab result failed")


@receiver(post_save, sender=XRDMeasurement, dispatch_uid="design.xrd_result")
@receiver(post_save, sender=DSCMeasurement, dispatch_uid="design.dsc_result")
def lab_result_saved(sender, instance, raw=False, **kwargs):
    if raw:  # fixtures being loaded
        return
    if sender is XRDMeasurement and not instance.is_analysed:
        # stored, its pattern still to be analysed on the worker (or unreadable): no result yet;
        # the analysis saves it again with its verdict and this runs then
        return
    from .services import record_measurement

    user = getattr(instance, "operator", None)
    try:
        with transaction.atomic():  # a savepoint: a failure here must not lose the measurement
            record_measurement(instance.sample_id, user=user)
    except Exception:
        logger.exception("Could not update the design candidate of sample %s", instance.sample_id)
    transaction.on_commit(_after_commit_retrain_check)


@receiver(post_save, sender=Sample, dispatch_uid="design.sample_changed")
def sample_saved(sender, instance, created=False, raw=False, **kwargs):
    """A candidate's sample changed (e.g. its rod diameter was stated): its validation follows."""
    if raw or created:
        return
    from .models import Candidate
    from .services import record_measurement

    if not Candidate.objects.filter(sample_id=instance.pk).exists():
        return
    try:
        with transaction.atomic():
            record_measurement(instance.pk, user=getattr(instance, "_history_user", None))
    except Exception:
        logger.exception("Could not update the design candidate of sample %s", instance.pk)
