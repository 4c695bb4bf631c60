"""Episodes follow the daily data: re-derived in the same transaction as every subject write."""
from django.dispatch import receiver

from toxicity.signals import subject_grades_changed

from .services import refresh_episodes


@receiver(subject_grades_changed)
def refresh_subject_episodes(sender, *, subject, **kwargs):
    refresh_episodes([subject.pk])
