"""Store what a course derives: each day's grades, and the episodes (reports.md).

Both writes touch only what changed. Changed grades are one UPDATE and one history insert
(``trials.bulk.bulk_update_with_history``), audited as a system change with the acting user and
the reason for the re-derivation. Episodes are derived data without an audit trail of their own:
a row per (subject, kind, number) is inserted, updated in place, or marked ``voided`` when the
episode no longer exists, so incremental pulls see every change.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from django.utils import timezone

from toxicity.models import DailyAssessment, Episode
from trials.audit import SYSTEM_REASON_PREFIX
from trials.bulk import bulk_update_with_history

from .derive import DerivedCourse
from .records import GRADE_COLUMNS


def store_grades(derived: Iterable[DerivedCourse], *, user, because: str) -> list[tuple[int, "object"]]:
    """Write the grades that differ from the stored ones. Returns (assessment id, Day) of each."""
    changed = {d.id: d for course in derived for d in course.days if d.changed and d.id is not None}
    if not changed:
        return []
    rows = list(DailyAssessment.objects.filter(pk__in=list(changed)).order_by("pk"))
    for row in rows:
        for name, value in changed[row.pk].grades.columns().items():
            setattr(row, name, value)
    bulk_update_with_history(DailyAssessment, rows, list(GRADE_COLUMNS), user=user,
                             reason=f"{SYSTEM_REASON_PREFIX}grades re-derived after {because}")
    return sorted(changed.items())


def _differs(row: Episode, values: dict) -> bool:
    return row.voided or any(getattr(row, name) != value for name, value in values.items())


def store_episodes(derived: Iterable[DerivedCourse], *, subject_ids: Iterable[int] = ()) -> int:
    """Make the stored episodes of these courses (and of ``subject_ids`` without a course, whose
    episodes are voided) equal to the derived ones; returns how many rows changed."""
    courses = list(derived)
    ids = sorted({c.course.subject.id for c in courses} | set(subject_ids))
    stored = defaultdict(dict)
    for row in Episode.objects.filter(subject_id__in=ids).order_by():
        stored[row.subject_id][(row.kind, row.episode_number)] = row
    new, changed = [], []
    for course in courses:
        sid = course.course.subject.id
        current = {}
        for episode in course.episodes:
            values = episode.fields()
            values["review_id"] = values.pop("review_id")
            values["seriousness"], values["seriousness_derived"] = list(episode.seriousness), list(episode.seriousness_derived)
            current[(episode.kind, episode.episode_number)] = values
        existing = stored.pop(sid, {})
        for key, values in current.items():
            row = existing.pop(key, None)
            if row is None:
                new.append(Episode(subject_id=sid, **values))
            elif _differs(row, values):
                for name, value in values.items():
                    setattr(row, name, value)
                row.voided = False
                changed.append(row)
        changed += [_voided(row) for row in existing.values() if not row.voided]
    for rows in stored.values():  # subjects without a course (voided): their episodes are gone
        changed += [_voided(row) for row in rows.values() if not row.voided]
    if changed:
        now = timezone.now()  # bulk_update does not touch auto_now columns
        for row in changed:
            row.modified_at = now
        names = [f.name for f in Episode._meta.concrete_fields if not f.primary_key and f.name not in ("subject", "created_at")]
        Episode.objects.bulk_update(changed, names)
    if new:
        Episode.objects.bulk_create(new)
    return len(changed) + len(new)


def _voided(row: Episode) -> Episode:
    row.voided = True
    return row
