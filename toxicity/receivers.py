"""Re-derive a subject's grades and re-check it when the trials app changes what they depend on."""
from django.dispatch import receiver

from trials.signals import subject_records_changed

from .services import _high_grade_days, after_subject_write, regrade_subject


@receiver(subject_records_changed)
def regrade_on_subject_change(sender, *, subject, user, because, **kwargs):
    high_before = _high_grade_days(subject)
    regrade_subject(subject, user=user, because=because)
    after_subject_write(subject, high_before=high_before)
