"""Study day and age arithmetic (grading.md, Conventions; reports.md, SDTM --DY)."""
from datetime import date

import pytest

from trials.study_day import age_in_years, sdtm_study_day, study_day

DAY0 = date(2026, 3, 10)


@pytest.mark.parametrize(
    "on, day, sdtm",
    [
        (date(2026, 3, 9), -1, -1),  # the day before infusion is day -1 in both
        (date(2026, 3, 10), 0, 1),  # day 0 is SDTM day 1: SDTM has no day 0
        (date(2026, 3, 11), 1, 2),
        (date(2026, 3, 3), -7, -7),
        (date(2026, 4, 7), 28, 29),
    ],
)
def test_study_day_and_sdtm_day(on, day, sdtm):
    assert study_day(on, DAY0) == day
    assert sdtm_study_day(on, DAY0) == sdtm


@pytest.mark.parametrize(
    "born, on, years",
    [
        (date(2014, 5, 15), date(2026, 5, 14), 11),  # the day before the 12th birthday
        (date(2014, 5, 15), date(2026, 5, 15), 12),  # the birthday itself
        (date(2012, 2, 29), date(2025, 2, 28), 12),  # leap-day birthday, not yet 13
        (date(2012, 2, 29), date(2025, 3, 1), 13),
        (date(2012, 2, 29), date(2024, 2, 29), 12),
    ],
)
def test_age_in_completed_years(born, on, years):
    assert age_in_years(born, on) == years
