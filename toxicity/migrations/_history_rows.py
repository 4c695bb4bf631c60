"""Audited data migrations: change rows and write the history row each change needs.

A migration sees historical models with plain managers, so it writes the history itself: one
"~" row per changed record, with the system reason, no user, at one moment.
"""
from django.utils import timezone

HISTORY_ONLY = {"history_id", "history_date", "history_change_reason", "history_type", "history_user",
                "history_relation"}


def history_row(history_model, instance, *, reason: str, at):
    """An unsaved history row of ``instance`` as it stands now."""
    row = history_model(history_date=at, history_change_reason=reason, history_type="~", history_user=None)
    for field in history_model._meta.concrete_fields:
        if field.name in HISTORY_ONLY:
            continue
        setattr(row, field.attname, getattr(instance, field.attname))
    return row


def now():
    return timezone.now()
