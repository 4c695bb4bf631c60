"""CRS and ICANS episodes from derived daily grades (reports.md). Pure Python, no Django import.

An episode starts on the first day with grade >= 1; NE days inside an episode continue it; it
ends on the last day with grade >= 1 before a day with grade 0, which is the resolution date.
No grade-0 day yet: ongoing. A later day with grade >= 1 starts a new episode (a recurrence).
"""
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

NE = None  # a day graded "not evaluable" is stored as None


@dataclass(frozen=True)
class Episode:
    onset_date: date
    max_grade: int
    max_grade_date: date
    last_positive_date: date
    resolution_date: date | None  # the first grade-0 day after the episode; None while ongoing
    last_assessment_date: date  # the latest day seen (for the duration of an ongoing episode)

    @property
    def ongoing(self) -> bool:
        return self.resolution_date is None

    @property
    def duration_days(self) -> int:
        end = self.resolution_date or self.last_assessment_date
        return (end - self.onset_date).days

    def contains(self, day: date) -> bool:
        """Whether a calendar day lies between onset (inclusive) and resolution (exclusive)."""
        return self.onset_date <= day and (self.resolution_date is None or day < self.resolution_date)


def derive_episodes(days: Iterable[tuple[date, int | None]]) -> list[Episode]:
    """Episodes from (date, grade) pairs; grade None means NE. Days need not be consecutive."""
    episodes: list[Episode] = []
    current: dict | None = None
    last_seen: date | None = None
    for day, grade in sorted(days, key=lambda d: d[0]):
        last_seen = day
        if grade is NE:
            continue
        if grade >= 1:
            if current is None:
                current = {"onset_date": day, "max_grade": grade, "max_grade_date": day, "last_positive_date": day}
            else:
                current["last_positive_date"] = day
                if grade > current["max_grade"]:
                    current["max_grade"], current["max_grade_date"] = grade, day
        elif current is not None:
            episodes.append(Episode(**current, resolution_date=day, last_assessment_date=day))
            current = None
    if current is not None:
        episodes.append(Episode(**current, resolution_date=None, last_assessment_date=last_seen))
    return episodes
