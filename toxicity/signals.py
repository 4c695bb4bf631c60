"""Signals other apps listen to. Sent inside the writing transaction, so derived data commit with it."""
from django.dispatch import Signal

# Sent after a subject's daily grades or rescue-therapy records may have changed (every write).
# Arguments: subject.
subject_grades_changed = Signal()
