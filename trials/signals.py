"""Signals other apps listen to. Sent inside the writing transaction, so derived data commit with it."""
from django.dispatch import Signal

# Sent after a subject's own fields, infusions (day 0) or death record changed.
# Arguments: subject, user, because (a phrase for the audit reason).
subject_records_changed = Signal()
