"""Hard rules of checks.md for daily assessments, rescue-therapy logs and typed-in adverse events,
over plain values.

Each function returns ``{field: [message, ...]}``; messages start with the rule id. The
services gather the values (the subject's other records, the site-local "now") and call them.
Soft rules (queries) are not here: they never block a save.
"""
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from toxicity import ctcae_terms
from toxicity.course.records import SERIOUSNESS_CODES
from toxicity.grading.dosing import PLASMA_ML_PER_KG, effluent_dose_ml_kg_h, mg_per_kg

Errors = dict[str, list[str]]

TOCI_MAX_DOSE_MG = Decimal("1600")
TOCI_MAX_MG_PER_KG = Decimal("16")
TOCI_DUPLICATE_WINDOW = timedelta(hours=1)
# STEROID-DOSE-IMPOSSIBLE (checks.md): mg per dose; methylprednisolone also 30 mg/kg per dose.
STEROID_MAX_DOSE_MG = {"dexamethasone": Decimal("100"), "methylprednisolone": Decimal("2000"),
                       "hydrocortisone": Decimal("1000"), "prednisone": Decimal("1000"), "prednisolone": Decimal("1000")}
NON_SYSTEMIC_ROUTES = ("intrathecal",)  # outside the per-kg systemic limits (data-dictionary.md)
METHYLPREDNISOLONE_MAX_MG_PER_KG = Decimal("30")
ANAKINRA_MAX_MG_PER_24H = Decimal("2400")
SILTUXIMAB_MAX_MG_PER_KG = Decimal("22")
TPE_MAX_ML = 12000
TPE_MAX_PLASMA_VOLUMES = Decimal("3.0")
CRRT_MAX_DOSE_ML_KG_H = Decimal("100")


def _add(errors: Errors, field: str, message: str) -> None:
    errors.setdefault(field, []).append(message)


def _not_future(errors: Errors, field: str, moment: datetime | None, now: datetime) -> None:
    if moment is not None and moment > now:
        _add(errors, field, "FUTURE-DATE: this time is in the future.")


def assessment_errors(
    v: dict[str, Any], *, today: date, death_date: date | None, subject_voided: bool = False
) -> Errors:
    errors: Errors = {}
    day = v.get("assessment_date")
    if subject_voided:
        _add(errors, "subject", "This subject was marked entered in error.")
    if day is not None:
        if day > today:
            _add(errors, "assessment_date", "FUTURE-DATE: the assessment date is after today.")
        if death_date is not None and day > death_date:
            _add(errors, "assessment_date", f"ASSESSMENT-AFTER-DEATH: the subject died on {death_date}.")
    return errors


def tocilizumab_errors(v: dict[str, Any], *, now: datetime, other_starts: Iterable[datetime]) -> Errors:
    errors: Errors = {}
    dose, weight, at = v.get("dose_mg"), v.get("weight_kg"), v.get("administered_at")
    if weight is None:
        _add(errors, "weight_kg", "TOCI-WEIGHT-MISSING: the weight is needed to check the dose.")
    if dose is not None:
        if dose <= 0 or dose > TOCI_MAX_DOSE_MG:
            _add(errors, "dose_mg", f"TOCI-DOSE-IMPOSSIBLE: {dose} mg is outside 0-{TOCI_MAX_DOSE_MG} mg (a unit or decimal error?).")
        elif weight and dose > TOCI_MAX_MG_PER_KG * weight:  # exact: never compare a rounded ratio
            _add(errors, "dose_mg", f"TOCI-DOSE-IMPOSSIBLE: {mg_per_kg(dose, weight)} mg/kg is above {TOCI_MAX_MG_PER_KG} mg/kg.")
    _not_future(errors, "administered_at", at, now)
    if at is not None:
        for other in other_starts:
            if abs(at - other) < TOCI_DUPLICATE_WINDOW:
                _add(errors, "administered_at", f"TOCI-DUPLICATE: another dose started at {other.isoformat()}, less than 1 hour apart.")
                break
    return errors


def corticosteroid_errors(v: dict[str, Any], *, now: datetime, weight_kg: Decimal | None) -> Errors:
    """``weight_kg``: the dose's own weight, else the latest recorded on or before the dose date
    (never a later one: a later, lower weight must not make an earlier dose impossible)."""
    errors: Errors = {}
    drug, dose = v.get("drug"), v.get("dose_mg")
    systemic = v.get("route") not in NON_SYSTEMIC_ROUTES
    if dose is not None:
        limit = STEROID_MAX_DOSE_MG.get(drug)
        if dose <= 0:
            _add(errors, "dose_mg", "The dose must be greater than 0 mg.")
        elif limit is not None and dose > limit:
            _add(errors, "dose_mg", f"STEROID-DOSE-IMPOSSIBLE: {drug} {dose} mg is above {limit} mg per dose.")
        elif (drug == "methylprednisolone" and systemic and weight_kg
              and dose > METHYLPREDNISOLONE_MAX_MG_PER_KG * weight_kg):
            _add(errors, "dose_mg", f"STEROID-DOSE-IMPOSSIBLE: methylprednisolone {mg_per_kg(dose, weight_kg)} mg/kg "
                                    f"is above 30 mg/kg (weight {weight_kg} kg, on or before the dose date).")
    _not_future(errors, "administered_at", v.get("administered_at"), now)
    return errors


def max_total_in_24h(doses: Iterable[tuple[datetime, Decimal]], including: datetime) -> Decimal:
    """The largest sum of doses starting in any window (t - 24 h, t] that contains ``including``."""
    doses = sorted(doses)
    best = Decimal(0)
    for end, _ in doses:
        if not (including <= end < including + timedelta(hours=24)):
            continue
        best = max(best, sum((d for at, d in doses if end - timedelta(hours=24) < at <= end), Decimal(0)))
    return best


def anticytokine_errors(
    v: dict[str, Any], *, now: datetime, other_doses: Iterable[tuple[datetime, Decimal]] = ()
) -> Errors:
    """``other_doses``: (start, mg) of the subject's other doses of the same drug."""
    errors: Errors = {}
    drug, dose, weight, at = v.get("drug"), v.get("dose_mg"), v.get("weight_kg"), v.get("administered_at")
    if dose is not None:
        if dose <= 0:
            _add(errors, "dose_mg", "The dose must be greater than 0 mg.")
        elif drug == "anakinra" and at is not None:
            total = max_total_in_24h([*other_doses, (at, dose)], including=at)
            if total > ANAKINRA_MAX_MG_PER_24H:
                _add(errors, "dose_mg", f"ANAKINRA-DOSE: {total} mg of anakinra in 24 hours is above {ANAKINRA_MAX_MG_PER_24H} mg.")
        elif drug == "siltuximab" and weight and dose > SILTUXIMAB_MAX_MG_PER_KG * weight:
            _add(errors, "dose_mg", f"SILTUXIMAB-DOSE: {mg_per_kg(dose, weight)} mg/kg is above {SILTUXIMAB_MAX_MG_PER_KG} mg/kg.")
    _not_future(errors, "administered_at", v.get("administered_at"), now)
    return errors


def plasma_exchange_errors(v: dict[str, Any], *, now: datetime) -> Errors:
    errors: Errors = {}
    started, ended = v.get("started_at"), v.get("ended_at")
    exchanged, weight, hct = v.get("plasma_volume_exchanged_ml"), v.get("weight_kg"), v.get("hematocrit_fraction")
    if started and ended and ended <= started:
        _add(errors, "ended_at", "The exchange ends before it starts.")
    _not_future(errors, "started_at", started, now)
    _not_future(errors, "ended_at", ended, now)
    if exchanged is not None:
        if exchanged <= 0 or exchanged > TPE_MAX_ML:
            _add(errors, "plasma_volume_exchanged_ml", f"TPE-VOLUME-IMPOSSIBLE: {exchanged} mL is outside 1-{TPE_MAX_ML} mL.")
        elif weight and hct and Decimal("0.10") <= hct <= Decimal("0.70"):
            volumes = Decimal(exchanged) / (PLASMA_ML_PER_KG * weight * (1 - hct))  # unrounded estimate
            if volumes > TPE_MAX_PLASMA_VOLUMES:
                _add(
                    errors, "plasma_volume_exchanged_ml",
                    f"TPE-VOLUME-IMPOSSIBLE: {volumes:.2f} estimated plasma volumes is above {TPE_MAX_PLASMA_VOLUMES}.",
                )
    return errors


def hemofiltration_errors(
    v: dict[str, Any], *, now: datetime, other_sessions: Iterable[tuple[datetime, datetime | None]]
) -> Errors:
    errors: Errors = {}
    started, ended, rate, weight = v.get("started_at"), v.get("ended_at"), v.get("effluent_rate_ml_h"), v.get("weight_kg")
    if started and ended and ended <= started:
        _add(errors, "ended_at", "CRRT-DOSE-IMPOSSIBLE: the session ends before it starts.")
    _not_future(errors, "started_at", started, now)
    _not_future(errors, "ended_at", ended, now)
    if rate is not None and weight and rate > CRRT_MAX_DOSE_ML_KG_H * weight:
        _add(errors, "effluent_rate_ml_h", f"CRRT-DOSE-IMPOSSIBLE: {effluent_dose_ml_kg_h(rate, weight)} mL/kg/h is above 100.")
    if started:
        for other_start, other_end in other_sessions:
            # Intervals [start, end) overlap; a running session (no end) extends to infinity.
            if (ended is None or other_start < ended) and (other_end is None or started < other_end):
                _add(errors, "started_at", f"CRRT-OVERLAP: overlaps the session started {other_start.isoformat()}.")
                break
    return errors


def icu_stay_errors(v: dict[str, Any], *, now: datetime) -> Errors:
    errors: Errors = {}
    admitted, discharged = v.get("admitted_at"), v.get("discharged_at")
    if admitted and discharged and discharged < admitted:
        _add(errors, "discharged_at", "The discharge is before the admission.")
    _not_future(errors, "admitted_at", admitted, now)
    _not_future(errors, "discharged_at", discharged, now)
    return errors


# --- typed-in CTCAE adverse events (data-dictionary.md, "Other adverse events") ---------------

AE_GRADES = range(1, 6)  # CTCAE grades 1-5; 5 = death related to the AE
def seriousness_errors(serious, codes) -> Errors:
    """ICH E2A criteria of an adverse event or an episode review: a list of known codes, at least
    one when serious, none otherwise."""
    errors: Errors = {}
    if codes is None:
        codes = []
    if not isinstance(codes, list) or not all(isinstance(c, str) for c in codes):
        _add(errors, "seriousness", "Send the seriousness criteria as a list of codes, e.g. [\"hospitalization\"].")
        return errors
    unknown = [c for c in codes if c not in SERIOUSNESS_CODES]
    if unknown:
        _add(errors, "seriousness", f"Unknown seriousness criteria {', '.join(unknown)}: use "
                                    f"{', '.join(SERIOUSNESS_CODES)}.")
    if serious and not codes:
        _add(errors, "seriousness", "A serious event needs at least one seriousness criterion: tick the criteria "
                                    "that apply, or untick 'serious'.")
    if not serious and codes:
        _add(errors, "seriousness", "Seriousness criteria apply only to a serious event: tick 'serious', or clear "
                                    "the criteria.")
    return errors


def ordered_seriousness(codes) -> list[str]:
    """The criteria once each, in the contract's order (unknown codes last, as given)."""
    order = {code: n for n, code in enumerate(SERIOUSNESS_CODES)}
    return sorted(set(codes), key=lambda c: (order.get(c, len(order)), c))
OUTCOMES_RESOLVED = ("recovered", "recovered_with_sequelae")
OUTCOMES_ONGOING = ("recovering", "not_recovered")
OUTCOME_FATAL = "fatal"


def _as_date(value) -> date | None:
    """A date, or None for anything else (a value the field itself already refused)."""
    return value if isinstance(value, date) and not isinstance(value, datetime) else None


def adverse_event_errors(
    v: dict[str, Any], *, today: date, enrolled_on: date | None, death_date: date | None
) -> Errors:
    """Keys: ctcae_term, ctcae_version, grade, onset_date, resolution_date, serious, seriousness,
    relatedness, outcome. ``today`` is the site-local date. Missing values and codes outside the
    choices are the model fields' own errors and are not repeated here."""
    errors: Errors = {}
    term, version = (v.get("ctcae_term") or "").strip(), v.get("ctcae_version")
    if term:
        kind = ctcae_terms.derived_kind(term)
        if kind is not None:
            _add(errors, "ctcae_term", f"{kind} is not typed in: {kind} episodes are derived from the daily "
                                       "assessments. Record the daily CRS/ICANS observations instead of an "
                                       "adverse event.")
        elif version in ctcae_terms.VERSIONS and ctcae_terms.canonical(version, term) is None:
            _add(errors, "ctcae_term", f"'{term}' is not a CTCAE {version} term: choose a term from the list "
                                       "(or the organ class's '- Other, specify' term).")

    grade = v.get("grade")
    grade = grade if isinstance(grade, int) and not isinstance(grade, bool) else None
    if grade is not None and grade not in AE_GRADES:
        _add(errors, "grade", f"CTCAE grades are 1 to 5 (got {grade}): enter the grade of the worst severity.")

    onset, resolved = _as_date(v.get("onset_date")), _as_date(v.get("resolution_date"))
    if onset is not None:
        if onset > today:
            _add(errors, "onset_date", "FUTURE-DATE: the onset date is after today: check the date.")
        if enrolled_on is not None and onset < enrolled_on:
            _add(errors, "onset_date", f"The onset date is before the enrolment date ({enrolled_on}): an event "
                                       "before enrolment is medical history, not an adverse event; check the date.")
        if death_date is not None and onset > death_date:
            _add(errors, "onset_date", f"The onset date is after the date of death ({death_date}): check the date.")
    if resolved is not None:
        if resolved > today:
            _add(errors, "resolution_date", "FUTURE-DATE: the resolution date is after today: leave it empty "
                                            "while the event is ongoing.")
        if onset is not None and resolved < onset:
            _add(errors, "resolution_date", f"The resolution date is before the onset date ({onset}): correct one "
                                            "of the two dates.")
        if death_date is not None and resolved > death_date:
            _add(errors, "resolution_date", f"The resolution date is after the date of death ({death_date}): "
                                            "check the date.")

    serious, codes = bool(v.get("serious")), v.get("seriousness")
    for field, messages in seriousness_errors(serious, codes).items():
        for message in messages:
            _add(errors, field, message)
    codes = codes if isinstance(codes, list) and all(isinstance(c, str) for c in codes) else []

    outcome = v.get("outcome")
    if grade == 5 and outcome != OUTCOME_FATAL:
        _add(errors, "outcome", "Grade 5 is death related to the adverse event (CTCAE): set the outcome to "
                                "'fatal', or correct the grade.")
    if outcome == OUTCOME_FATAL:
        if grade is not None and grade != 5:
            _add(errors, "grade", "The outcome is fatal, so the CTCAE grade is 5 (death related to the adverse "
                                  "event): set grade 5, or correct the outcome.")
        # ICH E2A: an event that results in death is serious, with the criterion "death".
        if not serious:
            _add(errors, "serious", "A fatal adverse event is serious (it results in death): tick 'serious' and "
                                    "the criterion 'death'.")
        elif "death" not in codes:
            _add(errors, "seriousness", "A fatal adverse event has the seriousness criterion 'death': tick it.")
    elif "death" in codes:
        _add(errors, "seriousness", "The criterion 'death' is for an event whose outcome is fatal: set the "
                                    "outcome to 'fatal' (grade 5), or untick 'death'.")
    if outcome in OUTCOMES_RESOLVED and resolved is None and v.get("resolution_date") in (None, ""):
        _add(errors, "resolution_date", f"The outcome is '{outcome}': enter the resolution date, or change the "
                                        "outcome to 'recovering' or 'not recovered'.")
    if outcome in OUTCOMES_ONGOING and v.get("resolution_date") not in (None, ""):
        _add(errors, "resolution_date", f"The outcome is '{outcome}', so the event has not resolved: clear the "
                                        "resolution date, or set the outcome to 'recovered'.")
    return errors
