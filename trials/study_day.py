"""Study-day and age arithmetic shared by every app (grading.md, Conventions). No Django import."""
from datetime import date


def study_day(on: date, day0: date) -> int:
    """Day 0 is the calendar date of the index infusion; the day before is day -1."""
    return (on - day0).days


def sdtm_study_day(on: date, reference: date) -> int:
    """SDTM --DY has no day 0: date - reference + 1 on or after the reference date (reports.md)."""
    delta = (on - reference).days
    return delta + 1 if delta >= 0 else delta


def age_in_years(date_of_birth: date, on: date) -> int:
    """Completed years of age on a date (a birthday counts on the day itself; 29 Feb -> 1 Mar)."""
    years = on.year - date_of_birth.year
    if (on.month, on.day) < (date_of_birth.month, date_of_birth.day):
        years -= 1
    return years
