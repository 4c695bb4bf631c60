"""R-CRS-2 fever-masking windows, from the drug logs' dates (no Django import).

grading.md R-CRS-2: fever is not required to grade CRS on a day inside the masking window of a
therapy given for CRS or ICANS on or after the course's CRS onset (its first day with CRS grade
>= 1, or NE with a minimum >= 1):
- tocilizumab or siltuximab: the dose day and the following 14 days;
- a systemic corticosteroid or anakinra: the dose day and the following 3 days;
- an antipyretic (``antipyretic_given`` on a daily assessment): that day and the next.
A dose with indication ``prophylaxis`` or ``other``, an intrathecal corticosteroid, and any dose
before onset never mask. A dose from an earlier episode still masks a recurrence inside its
window. Windows come from the dates alone, never from whether the days between were gradable.
The window lengths are our engineering reading of the drugs' duration of effect.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from toxicity.grading.inputs import FeverMask

from .records import ANTICYTOKINE, STEROID, TOCILIZUMAB, Course, Dose

ANTI_IL6_DAYS = 14  # tocilizumab, siltuximab
SHORT_DAYS = 3  # systemic corticosteroids, anakinra
ANTIPYRETIC_DAYS = 1  # that day and the next
MASKING_INDICATIONS = ("crs", "icans")
NON_SYSTEMIC_ROUTES = ("intrathecal",)


def window_days(dose: Dose) -> int | None:
    """Days after the dose day its window covers; None when the dose never masks fever."""
    if dose.indication not in MASKING_INDICATIONS:
        return None
    if dose.kind == TOCILIZUMAB:
        return ANTI_IL6_DAYS
    if dose.kind == ANTICYTOKINE:
        return {"siltuximab": ANTI_IL6_DAYS, "anakinra": SHORT_DAYS}.get(dose.drug)
    if dose.kind == STEROID and dose.route not in NON_SYSTEMIC_ROUTES:
        return SHORT_DAYS
    return None


@dataclass(frozen=True)
class MaskingDose:
    drug: str
    day: date
    at: datetime | None  # None for an antipyretic (a day, not a time)
    last_day: date  # the last day its window covers

    def covers(self, day: date) -> bool:
        return self.day <= day <= self.last_day

    @property
    def mask(self) -> FeverMask:
        return FeverMask(self.drug, self.day)


def logged_masking_doses(course: Course) -> list[MaskingDose]:
    """The logged doses that can mask fever (onset not yet applied), by time."""
    found = []
    for dose in course.doses:
        days = window_days(dose)
        if days is not None:
            found.append(MaskingDose(dose.drug, dose.day, dose.at, dose.day + timedelta(days=days)))
    return found


def antipyretic(day: date) -> MaskingDose:
    return MaskingDose("antipyretic", day, None, day + timedelta(days=ANTIPYRETIC_DAYS))


def fever_mask(day: date, *, onset: date | None, doses: Iterable[MaskingDose]) -> FeverMask | None:
    """The most recent masking dose given on or after ``onset`` whose window covers ``day``.

    Most recent by date; on one date a logged drug (it has a time and an indication) is named
    before an antipyretic, the later of two logged drugs first.
    """
    if onset is None:
        return None
    best = None
    for dose in doses:
        if onset <= dose.day and dose.covers(day):
            key = (dose.day, dose.at is not None, dose.at or datetime.min)
            if best is None or key > best[0]:
                best = (key, dose)
    return None if best is None else best[1].mask
