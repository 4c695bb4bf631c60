"""Re-derive a subject's grades when the trials app changes what grading depends on."""
from django.dispatch import receiver

from trials.signals import subject_records_changed

from .services import regrade_subject


@receiver(subject_records_changed)
def regrade_on_subject_change(sender, *, subject, user, because, **kwargs):
    regrade_subject(subject, user=user, because=because)
