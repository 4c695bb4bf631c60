"""Cross-field hard rules for subjects, deaths and infusions, over plain values (checks.md).

Each function returns ``{field: [message, ...]}`` (empty when valid). The services call them
on every save; forms and serializers reach them through the services, so the rules hold
however data arrive. Field-level ranges live on the model fields and database constraints.
"""
from datetime import date, datetime
from typing import Any

from .choices import DeathCause, LymphodepletionRegimen, SubjectStatus
from .study_day import age_in_years

Errors = dict[str, list[str]]
OLDEST_AGE_YEARS = 120
CAPD_MAX_AGE_YEARS = 12  # CAPD is the tool under 12 (R-ICANS-8); age exactly 12 is ambiguous, so allowed


def _add(errors: Errors, field: str, message: str) -> None:
    errors.setdefault(field, []).append(message)


def subject_errors(v: dict[str, Any], *, today: date) -> Errors:
    """Keys: trial_id, site_trial_id, cohort_trial_id, enrolled_on, date_of_birth, capd_baseline,
    developmental_delay, status, has_death."""
    errors: Errors = {}
    enrolled, born = v.get("enrolled_on"), v.get("date_of_birth")
    if v.get("site_trial_id") is not None and v["site_trial_id"] != v.get("trial_id"):
        _add(errors, "site", "This site belongs to another trial.")
    if v.get("cohort_trial_id") is not None and v["cohort_trial_id"] != v.get("trial_id"):
        _add(errors, "cohort", "This cohort belongs to another trial.")
    if enrolled and enrolled > today:
        _add(errors, "enrolled_on", "FUTURE-DATE: the enrolment date is in the future.")
    if born:
        if born > today:
            _add(errors, "date_of_birth", "FUTURE-DATE: the date of birth is in the future.")
        elif enrolled and born > enrolled:
            _add(errors, "date_of_birth", "The date of birth is after the enrolment date.")
        elif enrolled and age_in_years(born, enrolled) > OLDEST_AGE_YEARS:
            _add(errors, "date_of_birth", f"Age at enrolment over {OLDEST_AGE_YEARS} years: check the year of birth.")
    if v.get("capd_baseline") is not None and born and enrolled and not v.get("developmental_delay"):
        if age_in_years(born, enrolled) > CAPD_MAX_AGE_YEARS:
            _add(
                errors,
                "capd_baseline",
                "A CAPD baseline is recorded only for children under 12 or subjects with developmental delay.",
            )
    if v.get("status") == SubjectStatus.DIED and not v.get("has_death"):
        _add(errors, "status", "Record the death (date and primary cause) to set the status 'died'.")
    return errors


def death_errors(v: dict[str, Any], *, today: date) -> Errors:
    """Keys: death_date, death_primary_cause, death_cause_other_text, enrolled_on, date_of_birth,
    last_assessment_date (or None)."""
    errors: Errors = {}
    died = v.get("death_date")
    if died:
        if died > today:
            _add(errors, "death_date", "FUTURE-DATE: the date of death is in the future.")
        if v.get("enrolled_on") and died < v["enrolled_on"]:
            _add(errors, "death_date", "The date of death is before the enrolment date.")
        if v.get("last_assessment_date") and died < v["last_assessment_date"]:
            _add(
                errors,
                "death_date",
                f"ASSESSMENT-AFTER-DEATH: an assessment is dated {v['last_assessment_date']}, after this date of death.",
            )
    if v.get("death_primary_cause") == DeathCause.OTHER and not (v.get("death_cause_other_text") or "").strip():
        _add(errors, "death_cause_other_text", "Describe the cause when the primary cause is 'other'.")
    return errors


def infusion_errors(v: dict[str, Any], *, now: datetime, local_date: date | None) -> Errors:
    """Keys: infusion_number, infused_at, dose_cells_per_kg, lymphodepletion_regimen,
    lymphodepletion_start_date, enrolled_on, index_infused_at (another, non-voided index infusion's
    time, or None), subject_voided. ``local_date`` is the site-local date of ``infused_at``."""
    errors: Errors = {}
    infused_at = v.get("infused_at")
    if v.get("subject_voided"):
        _add(errors, "subject", "This subject was marked entered in error.")
    dose = v.get("dose_cells_per_kg")
    if dose is not None and dose <= 0:
        _add(errors, "dose_cells_per_kg", "The dose must be greater than 0 cells/kg.")
    if infused_at:
        if infused_at > now:
            _add(errors, "infused_at", "FUTURE-DATE: the infusion time is in the future.")
        if v.get("enrolled_on") and local_date and local_date < v["enrolled_on"]:
            _add(errors, "infused_at", "INFUSION-BEFORE-ENROLMENT: the infusion is before the enrolment date.")
        index_at = v.get("index_infused_at")
        number = v.get("infusion_number")
        if number and number > 1:
            if index_at is None:
                _add(errors, "infusion_number", "Record the index infusion (number 1) first: it defines day 0.")
            elif infused_at <= index_at:
                _add(errors, "infused_at", "A later infusion must be after the index infusion.")
    regimen, ld_start = v.get("lymphodepletion_regimen"), v.get("lymphodepletion_start_date")
    if regimen and regimen != LymphodepletionRegimen.NONE and ld_start is None:
        _add(errors, "lymphodepletion_start_date", "Required when a lymphodepletion regimen was given.")
    if regimen == LymphodepletionRegimen.NONE and ld_start is not None:
        _add(errors, "lymphodepletion_start_date", "Leave empty when no lymphodepletion was given.")
    if ld_start and local_date and ld_start > local_date:
        _add(errors, "lymphodepletion_start_date", "Lymphodepletion starts before the infusion.")
    return errors
