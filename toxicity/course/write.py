"""How a write of a subject's clinical data ends: one visible sequence, no signals.

Every service that writes clinical data (toxicity's assessments, drug and procedure logs,
adverse events and episode reviews; trials' subject, infusion and death records) runs inside
:func:`subject_write` and so ends with :func:`after_subject_write`:

    load the course once  ->  re-derive every day's grades  ->  store the grades that changed
    ->  store the episodes  ->  run the record-level checks (queries)  ->  enqueue the alerts

The consistency job runs the same sequence over many subjects (:func:`refresh_courses`), so the
save path and the job cannot disagree. A bulk import keeps one write per subject open for the
whole file (:func:`batched_writes`): each row is validated against the course in memory, and the
sequence runs once per subject when the batch ends.
"""
from __future__ import annotations

from collections.abc import Iterable
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date

from django.db import transaction
from django.utils import timezone

from toxicity.checks import run_rules
from toxicity.models import DailyAssessment
from trials.models import Subject
from trials.notifications import notify_data_managers
from trials.roles import DATA_ENTRY_ROLES
from trials.services import require_roles

from . import records as r
from .derive import DerivedCourse, derive_course, derive_days
from .load import kind_of, load_course, load_courses, record_of
from .store import store_episodes, store_grades

HIGH_GRADE = 4  # a derived grade this high alerts the data managers


@dataclass
class SubjectWrite:
    """A write in progress: the locked subject and its course, kept up to date in memory."""

    subject: Subject
    course: r.Course
    user: object
    because: str = ""
    changed: bool = False
    high_before: frozenset = frozenset()  # grades >= 4 stored before the write (alerts are for new ones)

    def record(self, instance, *, removed: bool = False) -> None:
        """Fold a written (or voided) row into the course, and note what the write did. Rows the
        course does not carry (typed-in adverse events, the subject itself) change nothing in it."""
        record = record_of(instance, self.course)
        if record is not None:
            self.course = self.course.with_record(kind_of(instance), record, removed=removed)
        self.changed = True

    def derive_into(self, assessment: DailyAssessment) -> None:
        """Set an assessment's derived grades in memory, as the course with it in place derives
        them, so that its first save is also its only history row."""
        if not isinstance(assessment.assessment_date, date):
            return  # not a date yet: validation names the field
        course = self.course.with_record(r.ASSESSMENT, record_of(assessment, self.course))
        for day in derive_days(course):
            if day.day == assessment.assessment_date and day.grades is not None:
                for name, value in day.grades.columns().items():
                    setattr(assessment, name, value)


_BATCH: ContextVar[dict | None] = ContextVar("subject_write_batch", default=None)


@contextmanager
def subject_write(subject: Subject, *, user, roles=DATA_ENTRY_ROLES):
    """Lock the subject and load its course; the caller writes and calls ``write.record(row)``;
    then the sequence runs, in the same transaction (or once per subject at the end of a batch)."""
    require_roles(user, roles, subject.trial_id, subject.site_id)
    batch = _BATCH.get()
    if batch is not None and subject.pk in batch:
        write = batch[subject.pk]
        if not write.changed:  # the row that opened it failed: its savepoint took the lock with it
            Subject.objects.select_for_update().filter(pk=subject.pk).exists()
        yield write
        return
    with transaction.atomic():
        locked = Subject.objects.select_for_update(of=("self",)).select_related("site", "trial", "cohort").get(pk=subject.pk)
        course = load_course(locked.pk, include_voided=True, subject=locked)
        write = SubjectWrite(locked, course, user, high_before=frozenset(stored_high_grades(course)))
        if batch is not None:
            batch[locked.pk] = write
        yield write
        if batch is None and write.changed:
            after_subject_write(write.subject, user=user, because=write.because, course=write.course,
                                high_before=write.high_before)


@contextmanager
def batched_writes():
    """For a bulk import: every row still goes through its service (validated, audited, graded),
    and the sequence runs once per subject when the batch ends, in the batch's transaction."""
    batch: dict[int, SubjectWrite] = {}
    token = _BATCH.set(batch)
    try:
        yield
    finally:
        _BATCH.reset(token)
    for write in batch.values():
        if write.changed:
            after_subject_write(write.subject, user=write.user, because=write.because or "an import",
                                course=write.course, high_before=write.high_before)


def after_subject_write(subject: Subject, *, user, because: str, course: r.Course | None = None,
                        high_before: frozenset | None = None) -> None:
    """The sequence after a write of the subject's data (the subject row is locked by the caller).

    ``course`` is the course as the write left it (loaded again when not given); ``high_before``
    the grades >= 4 stored before the write (default: those stored now)."""
    if course is None:
        course = load_course(subject.pk, include_voided=True)
    before = {subject.pk: high_before} if high_before is not None else None
    refresh_courses([subject], {subject.pk: course}, user=user, because=because, at_save=True, high_before=before)


def refresh_courses(subjects: list[Subject], courses: dict[int, r.Course], *, user, because: str,
                    run=None, at_save: bool = False, high_before: dict | None = None):
    """Derive, store, check and alert for these (locked) subjects; returns the queries' outcome.

    A subject marked entered in error, or without a course, keeps nothing derived: its episodes
    are voided and its rule queries close. Data managers hear of every derived grade >= 4 that
    was not stored before (``high_before``, default the stored grades)."""
    from toxicity.queries import reconcile  # the query workflow reads courses too

    now = timezone.now()
    live = {pk: c for pk, c in courses.items() if c is not None and not c.subject.voided}
    derived = [derive_course(c, now=now) for c in live.values()]
    store_grades(derived, user=user, because=because)
    store_episodes(derived, subject_ids=[s.pk for s in subjects])
    findings = {s.pk: [] for s in subjects}
    findings.update({d.course.subject.id: run_rules(d) for d in derived})
    outcome = reconcile(subjects, findings, run=run, at_save=at_save)
    by_id = {s.pk: s for s in subjects}
    for d in derived:
        sid = d.course.subject.id
        before = high_before[sid] if high_before and sid in high_before else stored_high_grades(d.course)
        for kind, day, grade in sorted(_high_grades(d) - before):
            notify_data_managers(subject=by_id[d.course.subject.id], text=f"derived {kind} grade {grade} on {day}")
    return outcome


def check_subjects(subject_ids: Iterable[int], *, run=None, at_save: bool = False):
    """The consistency job over some subjects, in one transaction: the same sequence as a save,
    by the system (grades that drifted from the data are re-derived and audited)."""
    with transaction.atomic():
        subjects = list(Subject.objects.select_for_update(of=("self",)).filter(pk__in=list(subject_ids))
                        .select_related("site", "trial", "cohort").order_by("pk"))
        courses = load_courses([s.pk for s in subjects], subjects=subjects)
        return refresh_courses(subjects, courses, user=None, because="the consistency check run", run=run,
                               at_save=at_save)


def _high_grades(d: DerivedCourse) -> set[tuple[str, date, int]]:
    found = set()
    for day in d.days:
        for kind, ep in (("CRS", day.crs), ("ICANS", day.icans)):
            if ep.level is not None and ep.level >= HIGH_GRADE:
                found.add((kind, day.day, ep.level))
    return found


def stored_high_grades(course: r.Course | None) -> set[tuple[str, date, int]]:
    found = set()
    for a in course.assessments if course is not None else ():
        g = a.stored
        if g is None:
            continue
        for kind, grade, minimum in (("CRS", g.crs_grade_derived, g.minimum_crs_grade),
                                     ("ICANS", g.icans_grade_derived, g.minimum_icans_grade)):
            level = grade if grade is not None else minimum
            if level is not None and level >= HIGH_GRADE:
                found.add((kind, a.day, level))
    return found
