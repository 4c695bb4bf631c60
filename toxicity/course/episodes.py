"""CRS and ICANS episodes from the derived daily grades: the one episode rule (no Django import).

reports.md, "CRS and ICANS episodes", separately for CRS and for ICANS:
- A *positive* day has grade >= 1, or grade NE with a minimum >= 1 (R-CRS-15): it opens an
  episode, or continues one. An NE day without a provable minimum continues an open episode but
  never opens one.
- A *resolution day* ends the episode: for CRS a day without fever, hypotension or hypoxia
  (R-CRS-14), whatever their attributed cause, with a recorded temperature; for ICANS a day with
  derived grade 0. Any other day (an afebrile day with hypotension outside a masking window,
  graded 0) continues an open episode.
- The episode runs from its onset to its last positive day; ``resolution_date`` is the first
  resolution day after it, None while it is ongoing. A later positive day starts a new episode
  (a recurrence), also when fever is masked.
- ``max_grade`` counts NE days by their minimum; ``has_incomplete_days`` says an NE day lies
  between onset and resolution, so the maximum is a floor.

This module is used by the live save path, the consistency job, reports as of a data cut and
exports alike; what each episode carries (rescue therapy, ICU days, seriousness per ICH E2A,
outcome) is worked out here too.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import NamedTuple
from decimal import Decimal

from toxicity.grading.dosing import dexamethasone_equivalent_mg

from .records import ANTICYTOKINE, CRS, SERIOUSNESS_CODES, STEROID, TOCILIZUMAB, Course, EpisodeReview

TERMS = {CRS: "Cytokine release syndrome", "icans": "Immune effector cell-associated neurotoxicity syndrome"}
LIFE_THREATENING_GRADE = 4  # CTCAE defines grade 4 as life-threatening


class EpisodeDay(NamedTuple):
    """One day as the episode rule sees it (a named tuple: two per day of every course derived)."""

    day: date
    grade: int | None  # None = NE
    minimum: int | None = None  # the floor of an NE day (R-CRS-15)
    resolves: bool = False  # a resolution day (see the module docstring)
    recorded_at: datetime | None = None  # when the day was first entered

    @property
    def level(self) -> int | None:
        """The grade, or for an NE day its proven minimum (None when nothing is proven)."""
        return self.grade if self.grade is not None else self.minimum

    @property
    def positive(self) -> bool:
        return (self.level or 0) >= 1


@dataclass(frozen=True)
class Span:
    """An episode's dates and grades, before what it carries is worked out."""

    onset_date: date
    max_grade: int
    max_grade_date: date
    last_positive_date: date
    resolution_date: date | None
    last_assessment_date: date
    has_incomplete_days: bool

    @property
    def ongoing(self) -> bool:
        return self.resolution_date is None

    @property
    def duration_days(self) -> int:
        return ((self.resolution_date or self.last_assessment_date) - self.onset_date).days

    def contains(self, day: date) -> bool:
        """Whether a calendar day lies between onset (inclusive) and resolution (exclusive)."""
        return self.onset_date <= day and (self.resolution_date is None or day < self.resolution_date)


class EpisodeTracker:
    """The episode rule as a fold over days in date order: ``open`` says whether an episode is
    under way before the next day (the grading context's ``crs_ongoing``)."""

    def __init__(self):
        self.spans: list[Span] = []
        self._current: dict | None = None
        self._last_seen: date | None = None

    @property
    def open(self) -> bool:
        return self._current is not None

    def step(self, d: EpisodeDay) -> None:
        self._last_seen = d.day
        current = self._current
        if d.positive:
            if current is None:
                self._current = {"onset_date": d.day, "max_grade": d.level, "max_grade_date": d.day,
                                 "last_positive_date": d.day, "has_incomplete_days": d.grade is None}
                return
            current["last_positive_date"] = d.day
            current["has_incomplete_days"] |= d.grade is None
            if d.level > current["max_grade"]:
                current["max_grade"], current["max_grade_date"] = d.level, d.day
        elif current is not None:
            if d.resolves:
                self.spans.append(Span(**current, resolution_date=d.day, last_assessment_date=d.day))
                self._current = None
            elif d.grade is None:
                current["has_incomplete_days"] = True  # an NE day inside: the maximum is a floor

    def finish(self) -> list[Span]:
        if self._current is not None:
            self.spans.append(Span(**self._current, resolution_date=None, last_assessment_date=self._last_seen))
            self._current = None
        return self.spans


def derive_spans(days: Iterable[EpisodeDay]) -> list[Span]:
    """The episodes of one kind from its days (any order; days need not be consecutive)."""
    tracker = EpisodeTracker()
    for d in sorted(days, key=lambda d: d.day):
        tracker.step(d)
    return tracker.finish()


# --- what an episode carries -------------------------------------------------------------------


@dataclass(frozen=True)
class Episode:
    """A derived CRS or ICANS episode with every reports.md field (the stored row's fields)."""

    kind: str
    episode_number: int
    term: str
    scale: str
    onset_date: date
    onset_study_day: int | None
    max_grade: int
    max_grade_date: date
    last_positive_date: date
    resolution_date: date | None
    duration_days: int
    ongoing: bool
    last_assessment_date: date
    has_incomplete_days: bool
    tocilizumab_doses: int = 0
    corticosteroid_given: bool = False
    dexamethasone_equivalent_mg: Decimal = Decimal("0.00")
    anakinra_doses: int = 0
    siltuximab_doses: int = 0
    plasma_exchange_sessions: int = 0
    plasma_exchange_volume_ml: int = 0
    hemofiltration_sessions: int = 0
    hemofiltration_hours: Decimal = Decimal("0.0")
    icu_days: int = 0
    seriousness_derived: tuple[str, ...] = ()  # the criteria the data prove
    seriousness: tuple[str, ...] = ()  # derived and recorded by the investigator
    serious: bool = False
    serious_since: datetime | None = None  # when the data first proved a criterion (recorded_at)
    relatedness: str = ""  # the investigator's, from the review ("" before it)
    outcome: str = "not_recovered"
    review_id: int | None = None
    review_status: str = "missing"  # missing, current, outdated

    def contains(self, day: date) -> bool:
        return self.onset_date <= day and (self.resolution_date is None or day < self.resolution_date)

    def fields(self) -> dict:
        """The stored row's values."""
        return {name: getattr(self, name) for name in EPISODE_FIELDS}

    def review_snapshot(self) -> dict:
        """What a review confirms about the episode: when this changes, the review is outdated."""
        return {"max_grade": self.max_grade, "resolution_date": _iso(self.resolution_date),
                "has_incomplete_days": self.has_incomplete_days,
                "seriousness_derived": list(self.seriousness_derived)}


EPISODE_FIELDS = tuple(name for name in Episode.__dataclass_fields__ if name not in ("last_positive_date", "serious_since"))


def _iso(day: date | None) -> str | None:
    return None if day is None else day.isoformat()


def _icu_days(span: Span, course: Course, cut: date) -> int:
    """Calendar days of the episode (onset .. the day before resolution, or the last assessment)
    spent in the ICU, for any reason."""
    last = span.resolution_date - timedelta(days=1) if span.resolution_date else max(span.last_assessment_date, span.onset_date)
    days = set()
    for stay in course.icu_stays:
        start = max(stay.admitted, span.onset_date)
        end = min(stay.discharged or cut, last)
        days.update(start + timedelta(days=n) for n in range((end - start).days + 1))
    return len(days)


def _hours(start: datetime, end: datetime | None, now: datetime) -> Decimal:
    stop = min(end, now) if end else now
    return Decimal(max((stop - start).total_seconds(), 0)) / 3600


def _review_for(kind: str, onset: date, reviews: Iterable[EpisodeReview]) -> EpisodeReview | None:
    for review in reviews:
        if review.kind == kind and review.onset_date == onset:
            return review
    return None


def seriousness_criteria(kind: str, span: Span, days: Iterable[EpisodeDay], course: Course, *,
                         died_of_it: bool) -> tuple[list[str], datetime | None]:
    """ICH E2A criteria the data prove (reports.md, "Seriousness is not severity"), and when the
    first of them was recorded: results in death (died during the episode of this toxicity),
    life-threatening (max grade 4 or more, CTCAE's definition), requires or prolongs
    hospitalisation (an ICU stay for this toxicity during the episode). Grade 3 alone is severe,
    not serious."""
    found, since = [], []
    if died_of_it:
        found.append("death")
        since.append(course.death.recorded_at)
    if span.max_grade >= LIFE_THREATENING_GRADE:
        found.append("life_threatening")
        since += [d.recorded_at for d in days if span.contains(d.day) and (d.level or 0) >= LIFE_THREATENING_GRADE]
    stays = [s for s in course.icu_stays if s.reason == kind and overlaps(span, s)]
    if stays:
        found.append("hospitalization")
        since += [s.recorded_at for s in stays]
    known = [t for t in since if t is not None]
    return found, (min(known) if known else None)


def overlaps(span, stay) -> bool:
    """An ICU stay overlaps the episode's days [onset, resolution)."""
    starts_in_time = span.resolution_date is None or stay.admitted < span.resolution_date
    ends_in_time = stay.discharged is None or stay.discharged >= span.onset_date
    return starts_in_time and ends_in_time


def summarize(kind: str, number: int, span: Span, days: list[EpisodeDay], course: Course, *, scale: str,
              now: datetime, cut: date) -> Episode:
    """One episode with the rescue therapy given between onset (inclusive) and resolution
    (exclusive), ICU days, seriousness and outcome (reports.md)."""
    toci = anakinra = siltuximab = tpe = crrt = volume = 0
    steroid, dex, hours = False, Decimal("0"), Decimal("0")
    for d in course.doses:
        if not span.contains(d.day):
            continue
        if d.kind == TOCILIZUMAB:
            toci += 1
        elif d.kind == STEROID:
            steroid = True
            dex += dexamethasone_equivalent_mg(d.drug, d.dose_mg) or Decimal("0")
        elif d.kind == ANTICYTOKINE and d.drug == "anakinra":
            anakinra += 1
        elif d.kind == ANTICYTOKINE and d.drug == "siltuximab":
            siltuximab += 1
    for p in course.plasma_exchanges:
        if span.contains(p.day):
            tpe += 1
            volume += p.exchanged_ml or 0
    for h in course.hemofiltrations:
        if span.contains(h.day):
            crrt += 1
            hours += _hours(h.at, h.ended_at, now)
    death = course.death
    died = death is not None and span.contains(death.day)
    died_of_it = died and (death.primary_cause == kind or span.max_grade == 5)
    derived, since = seriousness_criteria(kind, span, days, course, died_of_it=died_of_it)
    review = _review_for(kind, span.onset_date, course.reviews)
    recorded = list(review.seriousness) if review is not None and review.serious else []
    criteria = tuple(code for code in SERIOUSNESS_CODES if code in derived or code in recorded)
    if died_of_it:
        outcome = "fatal"
    elif review is not None and review.outcome:
        outcome = review.outcome
    else:
        outcome = "recovered" if span.resolution_date is not None else "not_recovered"
    episode = Episode(
        kind=kind, episode_number=number, term=TERMS[kind], scale=scale,
        onset_date=span.onset_date,
        onset_study_day=(span.onset_date - course.subject.day0).days if course.subject.day0 else None,
        max_grade=span.max_grade, max_grade_date=span.max_grade_date, last_positive_date=span.last_positive_date,
        resolution_date=span.resolution_date, duration_days=span.duration_days, ongoing=span.ongoing,
        last_assessment_date=span.last_assessment_date, has_incomplete_days=span.has_incomplete_days,
        tocilizumab_doses=toci, corticosteroid_given=steroid, dexamethasone_equivalent_mg=dex.quantize(Decimal("0.01")),
        anakinra_doses=anakinra, siltuximab_doses=siltuximab, plasma_exchange_sessions=tpe,
        plasma_exchange_volume_ml=volume, hemofiltration_sessions=crrt, hemofiltration_hours=hours.quantize(Decimal("0.1")),
        icu_days=_icu_days(span, course, cut),
        seriousness_derived=tuple(code for code in SERIOUSNESS_CODES if code in derived), seriousness=criteria,
        serious=bool(criteria), serious_since=since if derived else None,
        relatedness=review.relatedness if review is not None else "", outcome=outcome,
        review_id=review.id if review is not None else None,
    )
    status = "missing" if review is None else "current" if _same(review.reviewed, episode.review_snapshot()) else "outdated"
    return replace(episode, review_status=status)


def _same(reviewed: Mapping, snapshot: Mapping) -> bool:
    return {k: reviewed.get(k) for k in snapshot} == dict(snapshot)


@dataclass
class EpisodeSet:
    """The episodes of one course, both kinds, numbered per kind in onset order."""

    crs: list[Episode] = field(default_factory=list)
    icans: list[Episode] = field(default_factory=list)

    def __iter__(self):
        yield from self.crs
        yield from self.icans

    def of(self, kind: str) -> list[Episode]:
        return self.crs if kind == CRS else self.icans
