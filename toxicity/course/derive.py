"""A subject's course derived: each day's grading context and grades, and the episodes (no Django).

One pass over the days in date order (grading.md, reports.md):
1. the context of a day - study day, ``crs_ongoing`` (an episode is under way), ``fever_masked_by``
   (R-CRS-2, ``masking.py``: windows of doses given on or after the course's CRS onset), the death
   on that date, the subject's age, developmental delay and CAPD baseline, the trial's scales;
2. the engine's grades for it (``toxicity.grading``), with the minimum grades of an NE day;
3. the episode rule (``episodes.py``) folds the day in, which gives the next day's context.
Then each episode's summary: therapy, ICU days, seriousness, outcome and review status.

The live save path, the consistency job, reports as of a cut, the CRF preview and the synthetic
generator all derive a course with :func:`derive_course`, so they agree by construction.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from toxicity.grading import GradingInputError, grade
from toxicity.grading.engine import age_as_graded
from toxicity.grading.crs import FEVER_C
from toxicity.grading.inputs import NE, FeverMask

from . import masking
from .episodes import EpisodeDay, EpisodeSet, EpisodeTracker, derive_spans, summarize
from .records import ASSESSMENT, CRS, ICANS, Assessment, Course, Grades

# Decimal places of the stored decimal observations: grade what is stored (39.5 -> 39.50).
DECIMAL_PLACES = {"temperature_max_c": 2, "oxygen_flow_l_min": 1}


class Day(NamedTuple):
    """One derived day: the assessment, its grades (None: its input cannot be graded) and the two
    episode views of it (a named tuple: one per day of every course derived)."""

    assessment: Assessment
    grades: Grades | None
    crs: EpisodeDay
    icans: EpisodeDay
    crs_ongoing: bool = False  # the grading context the day was graded with
    fever_masked_by: FeverMask | None = None

    @property
    def id(self) -> int | None:
        return self.assessment.id

    @property
    def day(self) -> date:
        return self.assessment.day

    @property
    def crs_grade(self) -> int | None:
        return None if self.grades is None else self.grades.crs_grade_derived

    @property
    def icans_grade(self) -> int | None:
        return None if self.grades is None else self.grades.icans_grade_derived

    @property
    def study_day(self) -> int | None:
        return None if self.grades is None else self.grades.study_day

    @property
    def flags(self) -> tuple[str, ...]:
        return () if self.grades is None else self.grades.flags

    @property
    def reasons(self) -> tuple[str, ...]:
        return () if self.grades is None else self.grades.reasons

    @property
    def changed(self) -> bool:
        """Whether the stored grades differ from these (what the store writes)."""
        return self.grades is not None and self.grades != self.assessment.stored


@dataclass(frozen=True)
class DerivedCourse:
    course: Course
    days: tuple[Day, ...]
    episodes: EpisodeSet
    now: datetime

    def day_of(self, day: date) -> Day | None:
        for d in self.days:
            if d.day == day:
                return d
        return None

    @property
    def today(self) -> date:
        """The site-local date at ``now``."""
        return self.now.astimezone(ZoneInfo(self.course.subject.timezone)).date()


def _as_input(name: str, value: Any) -> Any:
    """A stored decimal at its column's scale (39.5 is stored and graded as 39.50), also when typed
    as text on the CRF; a value the scale would change is left for the engine to judge."""
    if value == "":
        return None
    places = DECIMAL_PLACES.get(name)
    if places is None or isinstance(value, bool) or not isinstance(value, (Decimal, int, float, str)):
        return value
    try:
        number = Decimal(value.strip() if isinstance(value, str) else str(value))
        stored = number.quantize(Decimal(1).scaleb(-places))
    except (InvalidOperation, ValueError):  # not a number, or absurd magnitudes: the engine names the field
        return value if isinstance(value, str) else str(value)
    return stored if stored == number or not isinstance(value, str) else value


def grading_input(course: Course, a: Assessment, *, crs_ongoing: bool, fever_masked_by) -> dict[str, Any]:
    """The engine's input for one day: the observations plus the context from the course
    (data-dictionary.md, "Grading input")."""
    subject, trial, death = course.subject, course.trial, course.death
    data = {name: None if value == "" else value for name, value in a.observations.items()}  # "": not given
    for name, places in DECIMAL_PLACES.items():
        value = data.get(name)
        if value is not None and not (type(value) is Decimal and value.as_tuple().exponent == -places):
            data[name] = _as_input(name, value)
    data.update(
        assessment_date=a.day,
        age_years=subject.age_years,
        developmental_delay=subject.developmental_delay,
        capd_baseline=subject.capd_baseline,
        crs_ongoing=crs_ongoing,
        anticytokine_or_antipyretic_since_onset=fever_masked_by is not None,
        fever_masked_by=fever_masked_by,
        death_primary_cause=death.primary_cause if death is not None and death.day == a.day else None,
        crs_scale=trial.crs_scale,
        icans_scale=trial.icans_scale,
    )
    return data


def crs_resolves(observations: Mapping[str, Any]) -> bool:
    """A CRS resolution day (R-CRS-14, R-CRS-15): a recorded temperature below 38.0 C and neither
    hypotension nor hypoxia, whatever their attributed cause."""
    temp = observations.get("temperature_max_c")
    if temp is None or temp == "":
        return False
    if type(temp) is not Decimal:
        try:
            temp = Decimal(str(temp))
        except InvalidOperation:
            return False
    afebrile = temp < FEVER_C
    return afebrile and not observations.get("hypotension") and not observations.get("hypoxia")


def _grade_value(value):
    return None if value == NE else value


MEMO_SIZE = 65536  # states remembered (emptied when full): memory stays flat
_MEMO: dict = {}  # (stored observations, context) -> _Graded, for every course of the process


class _Graded:
    """One state of a day graded: the engine's result, whether the observations resolve CRS, and
    the Grades built from them per study day (frozen records, shared by equal days)."""

    __slots__ = ("result", "fever_masked_by", "resolves", "by_study_day")

    def __init__(self, result, fever_masked_by, resolves: bool):
        self.result, self.fever_masked_by, self.resolves, self.by_study_day = result, fever_masked_by, resolves, {}


def _graded(course: Course, a: Assessment, crs_ongoing: bool, fever_masked_by, memo: dict | None) -> _Graded:
    """The day's grading, remembered by the stored observations (``Assessment.key``) and the
    context: the same state of a day grades alike (the engine's output does not depend on the
    date), and normal days repeat across a trial. ``memo`` defaults to the process's; the key
    holds every value the grading input is built from, the age as grading tells ages apart."""
    key = None
    memo = _MEMO if memo is None else memo
    if a.key is not None:
        death = course.death
        subject, trial = course.subject, course.trial
        key = (a.key, crs_ongoing, fever_masked_by,
               death.primary_cause if death is not None and death.day == a.day else None,
               age_as_graded(subject.age_years), subject.developmental_delay, subject.capd_baseline, trial.crs_scale,
               trial.icans_scale)
        graded = memo.get(key)
        if graded is not None:
            return graded
    try:
        result = grade(grading_input(course, a, crs_ongoing=crs_ongoing, fever_masked_by=fever_masked_by))
    except GradingInputError:
        result = None
    graded = _Graded(result, fever_masked_by, crs_resolves(a.observations))
    if key is not None:
        if len(memo) >= MEMO_SIZE:
            memo.clear()
        memo[key] = graded
    return graded


def grades_of(course: Course, a: Assessment, *, crs_ongoing: bool, fever_masked_by, memo: dict | None = None
              ) -> Grades | None:
    """The day's grades (None when its input cannot be graded); ``memo``: see ``_graded``."""
    return _grades(course, a, _graded(course, a, crs_ongoing, fever_masked_by, memo))


def _grades(course: Course, a: Assessment, graded: _Graded) -> Grades | None:
    result = graded.result
    if result is None:
        return None
    day0 = course.subject.day0
    study_day = (a.day - day0).days if day0 else None
    grades = graded.by_study_day.get(study_day)
    if grades is None:
        grades = graded.by_study_day[study_day] = Grades(
            study_day=study_day,
            crs_grade_derived=_grade_value(result.crs_grade),
            icans_grade_derived=_grade_value(result.icans_grade),
            ctcae_crs_grade_derived=_grade_value(result.ctcae_crs_grade),
            minimum_crs_grade=result.minimum_crs_grade,
            minimum_icans_grade=result.minimum_icans_grade,
            fever_masked_by=graded.fever_masked_by,
            crs_scale=result.crs_scale,
            icans_scale=result.icans_scale,
            engine_version=result.engine_version,
            flags=tuple(result.flags),
            reasons=tuple(result.reasons),
        )
    return grades


_MISSING = object()


def derived_day(a: Assessment, g: Grades | None) -> Day:
    """A day with these grades, as the episode rule and the consistency rules see it."""
    return Day(a, g, *_episode_days(a, g))


def _episode_days(a: Assessment, g: Grades | None, resolves: bool | None = None) -> tuple[EpisodeDay, EpisodeDay]:
    if g is None:  # not gradable: an NE day of both kinds
        return (EpisodeDay(a.day, None, recorded_at=a.recorded_at), EpisodeDay(a.day, None, recorded_at=a.recorded_at))
    if resolves is None:
        resolves = crs_resolves(a.observations)
    crs = EpisodeDay(a.day, g.crs_grade_derived, g.minimum_crs_grade, resolves, a.recorded_at)
    icans = EpisodeDay(a.day, g.icans_grade_derived, g.minimum_icans_grade, g.icans_grade_derived == 0, a.recorded_at)
    return crs, icans


def derive_days(course: Course, memo: dict | None = None) -> list[Day]:
    """Each day's context and grades, in date order (``memo``: see ``grades_of``)."""
    logged = masking.logged_masking_doses(course)
    masking_doses: list[masking.MaskingDose] = []  # from the onset: the logged ones and antipyretics
    tracker = EpisodeTracker()
    onset: date | None = None  # the course's first positive CRS day
    days = []
    for a in course.assessments:
        mask = None  # nothing masks before the onset (R-CRS-2)
        if onset is not None:
            if a.observations.get("antipyretic_given"):
                masking_doses.append(masking.antipyretic(a.day))
            if masking_doses:
                mask = masking.fever_mask(a.day, onset=onset, doses=masking_doses)
        ongoing = tracker.open
        graded = _graded(course, a, ongoing, mask, memo)
        g = _grades(course, a, graded)
        crs, icans = _episode_days(a, g, graded.resolves)
        tracker.step(crs)
        if onset is None and crs.positive:
            onset = a.day
            masking_doses = [dose for dose in logged if dose.day >= onset]  # fever_mask's own test, once
            if a.observations.get("antipyretic_given"):
                masking_doses.append(masking.antipyretic(a.day))  # on the onset day: masks the next
        days.append(Day(a, g, crs, icans, ongoing, mask))
    return days


def preview_day(course: Course, day: date, observations: Mapping[str, Any], *, assessment_id: int | None = None):
    """What saving these observations for ``day`` would derive: (the engine's grading input for
    it, with the context the rest of the course gives). The CRF's live panel grades exactly this,
    so it shows what the save will store."""
    candidate = Assessment(assessment_id, day, dict(observations))
    with_candidate = course.with_record(ASSESSMENT, candidate) if assessment_id is not None else _added(course, candidate)
    for d in derive_days(with_candidate):
        if d.day == day:
            return grading_input(with_candidate, candidate, crs_ongoing=d.crs_ongoing, fever_masked_by=d.fever_masked_by)
    raise ValueError(f"{day} is not in the course")  # pragma: no cover - the candidate is always there


def _added(course: Course, candidate: Assessment) -> Course:
    """The course with a new day (a day already recorded is replaced, as a correction would)."""
    kept = tuple(a for a in course.assessments if a.day != candidate.day)
    return replace(course, assessments=tuple(sorted((*kept, candidate), key=lambda a: a.day)))


def derive_course(course: Course, *, now: datetime, cut: date | None = None, memo: dict | None = None
                  ) -> DerivedCourse:
    """The whole course derived; ``now`` is the moment of the derivation (or the data cut):
    running procedures count their hours up to it, ICU stays without discharge up to ``cut``.
    Several courses derived together may share a ``memo`` (see ``grades_of``)."""
    return assemble(course, derive_days(course, memo), now=now, cut=cut)


def assemble(course: Course, days: list[Day], *, now: datetime, cut: date | None = None) -> DerivedCourse:
    """The course with its derived days and the episodes they give."""
    cut = cut or now.astimezone(ZoneInfo(course.subject.timezone)).date()
    episodes = EpisodeSet()
    trial = course.trial
    for kind, scale in ((CRS, trial.crs_scale), (ICANS, trial.icans_scale)):
        kind_days = [d.crs if kind == CRS else d.icans for d in days]
        spans = derive_spans(kind_days)
        episodes.of(kind).extend(
            summarize(kind, n, span, kind_days, course, scale=scale, now=now, cut=cut)
            for n, span in enumerate(spans, start=1)
        )
    return DerivedCourse(course, tuple(days), episodes, now)
