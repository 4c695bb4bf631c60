"""Drug rules of checks.md: tocilizumab (Actemra label; NCCN/ASCO guidance), corticosteroids,
anakinra and siltuximab. Thresholds of the other drugs are engineering proposals a protocol may
override."""
from bisect import bisect_left
from datetime import datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from toxicity.course.derive import DerivedCourse, Day
from toxicity.course.records import ANTICYTOKINE, ASSESSMENT, STEROID, TOCILIZUMAB
from toxicity.grading.dosing import mg_per_kg, tocilizumab_expected_dose_mg

from .registry import Finding, grade_text, rule, values_of, window

# --- tocilizumab ----------------------------------------------------------------------------

TOCI_MIN_INTERVAL = timedelta(hours=8)
TOCI_MAX_PER_24H = 3
TOCI_MAX_PER_COURSE = 4  # checks.md: "up to four doses in total", whatever the episodes
ANTI_IL6_ACTIVE = timedelta(days=14)  # ALGORITHM-TOCI-DELAY: a dose this recent is still active
TOCI_BEFORE_DAY = timedelta(hours=24)  # ALGORITHM-TOCI-DELAY: a dose from 24 h before 00:00 counts


@rule(
    ("TOCI-DOSE-DEVIATION", "Tocilizumab dose more than 10% from the expected dose."),
    ("TOCI-DOSE-OVER-800", "Tocilizumab dose above 800 mg."),
)
def toci_dose(c: DerivedCourse):
    for d in c.course.doses_of(TOCILIZUMAB):
        if d.weight_kg is None:
            continue
        expected = tocilizumab_expected_dose_mg(d.weight_kg)
        if abs(d.dose_mg - expected) > expected / 10:
            yield Finding(
                "TOCI-DOSE-DEVIATION", (TOCILIZUMAB, d.id), "dose_mg",
                f"TOCI-DOSE-DEVIATION: {d.dose_mg} mg for {d.weight_kg} kg is more than 10% from the expected {expected} mg "
                "(12 mg/kg under 30 kg, else 8 mg/kg, at most 800 mg).",
                values_of(dose_mg=d.dose_mg, weight_kg=d.weight_kg, expected_dose_mg=expected),
            )
        if d.dose_mg > 800:
            yield Finding(
                "TOCI-DOSE-OVER-800", (TOCILIZUMAB, d.id), "dose_mg",
                f"TOCI-DOSE-OVER-800: {d.dose_mg} mg is above the 800 mg maximum per dose.",
                values_of(dose_mg=d.dose_mg),
            )


@rule(
    ("TOCI-INTERVAL", "Tocilizumab less than 8 hours after the previous dose."),
    ("TOCI-24H-MAX", "More than 3 tocilizumab doses in 24 hours."),
)
def toci_timing(c: DerivedCourse):
    doses = c.course.doses_of(TOCILIZUMAB)
    times = [d.at for d in doses]  # sorted
    for i, d in enumerate(doses):
        if i and d.at - doses[i - 1].at < TOCI_MIN_INTERVAL:
            gap = d.at - doses[i - 1].at
            yield Finding(
                "TOCI-INTERVAL", (TOCILIZUMAB, d.id), "administered_at",
                f"TOCI-INTERVAL: started {gap.total_seconds() / 3600:.1f} h after the previous dose (at least 8 h expected).",
                values_of(administered_at=d.at, previous_at=doses[i - 1].at),
            )
        lo, hi = window(times, d.at, timedelta(hours=24))
        in_window = doses[lo:hi]
        if len(in_window) > TOCI_MAX_PER_24H:
            yield Finding(
                "TOCI-24H-MAX", (TOCILIZUMAB, d.id), "administered_at",
                f"TOCI-24H-MAX: {len(in_window)} doses started in the 24 hours up to this one (at most 3).",
                values_of(administered_at=d.at, doses_in_24h=len(in_window)),
            )


@rule(("TOCI-COURSE-MAX", "A 5th or later tocilizumab dose of the subject's course, whatever its indication."))
def toci_course_max(c: DerivedCourse):
    """checks.md: counted across episodes, NE days and gaps; one query on each dose beyond the 4th."""
    doses = c.course.doses_of(TOCILIZUMAB)
    for n, d in enumerate(doses[TOCI_MAX_PER_COURSE:], start=TOCI_MAX_PER_COURSE + 1):
        yield Finding(
            "TOCI-COURSE-MAX", (TOCILIZUMAB, d.id), "administered_at",
            f"TOCI-COURSE-MAX: dose {n} of tocilizumab in this subject's course (at most 4 in total, whatever the "
            f"episodes): please confirm.",
            values_of(administered_at=d.at, dose_number_in_course=n),
        )


@rule(("TOCI-WITHOUT-CRS", "Tocilizumab for CRS on a day whose CRS grade, and the day before, are 0."))
def toci_without_crs(c: DerivedCourse):
    grade_on = {d.day: d.crs_grade for d in c.days}
    for d in c.course.doses_of(TOCILIZUMAB):
        if d.indication != "crs":
            continue
        if grade_on.get(d.day) == 0 and grade_on.get(d.day - timedelta(days=1)) == 0:
            yield Finding(
                "TOCI-WITHOUT-CRS", (TOCILIZUMAB, d.id), "indication",
                f"TOCI-WITHOUT-CRS: tocilizumab for CRS on {d.day}, but the derived CRS grade is 0 that day and the day before.",
                values_of(administered_at=d.at, indication=d.indication),
            )


@rule(("ALGORITHM-TOCI-DELAY", "No tocilizumab within the protocol window of the first CRS day graded >= 2."))
def toci_algorithm_delay(c: DerivedCourse):
    """checks.md: on the first day of a CRS episode graded >= 2 (an NE day by its proven minimum),
    a tocilizumab dose is expected to start between 24 h before 00:00 (site time) of that day and
    ``tocilizumab_response_hours`` after it; silent while a tocilizumab or siltuximab dose of the
    14 days before that 00:00 is still active (a recurrence under treatment). One query per episode."""
    hours = c.course.trial.tocilizumab_response_hours
    if not hours or not c.episodes.crs:
        return
    toci = [d.at for d in c.course.doses_of(TOCILIZUMAB)]
    anti_il6 = sorted([*toci, *(d.at for d in c.course.doses_of(ANTICYTOKINE, "siltuximab"))])
    days = [d.day for d in c.days]
    zone = ZoneInfo(c.course.subject.timezone)
    for episode in c.episodes.crs:
        first = None
        for d in c.days[bisect_left(days, episode.onset_date):]:  # the days from onset, in order
            if not episode.contains(d.day):
                break  # past the resolution date: so is every later day
            if (d.crs.level or 0) >= 2:
                first = d
                break
        if first is None:
            continue
        midnight = datetime.combine(first.day, time(0), tzinfo=zone)
        end = midnight + timedelta(hours=hours)
        if c.now < end:
            continue  # the window is still open
        if any(midnight - ANTI_IL6_ACTIVE <= at < midnight for at in anti_il6):
            continue  # anti-IL-6 therapy still active
        if not any(midnight - TOCI_BEFORE_DAY <= at <= end for at in toci):
            yield Finding(
                "ALGORITHM-TOCI-DELAY", (ASSESSMENT, first.id), "crs_grade_derived",
                f"ALGORITHM-TOCI-DELAY: CRS grade {_level_text(first)} on {first.day} (episode from {episode.onset_date}) "
                f"and no tocilizumab started from 24 h before 00:00 that day to {hours} h after it, as the protocol "
                "algorithm expects.",
                values_of(assessment_date=first.day, crs_grade=grade_text(first.crs_grade), window_hours=hours),
            )


def _level_text(d: Day) -> str:
    return str(d.crs_grade) if d.crs_grade is not None else f">= {d.crs.minimum}"


# --- other drugs ----------------------------------------------------------------------------

STEROID_LIMITS = {  # drug: (max per dose, max per 24 h) in mg; engineering proposals (checks.md)
    "dexamethasone": (Decimal(20), Decimal(80)),
    "methylprednisolone": (Decimal(1000), Decimal(2000)),
    "hydrocortisone": (None, Decimal(400)),
}


def _totals_24h(doses):
    """For each of the doses (sorted by time): the sum of the doses started in (t - 24 h, t], added
    in their order (the same Decimal, to the digit, as summing the whole list filtered)."""
    times = [d.at for d in doses]
    totals = []
    for d in doses:
        lo, hi = window(times, d.at, timedelta(hours=24))
        totals.append(sum((o.dose_mg for o in doses[lo:hi]), Decimal(0)))
    return totals


@rule(("STEROID-DOSE-HIGH", "High corticosteroid dose per dose or per 24 hours."))
def steroid_high(c: DerivedCourse):
    for drug, (per_dose, per_day) in STEROID_LIMITS.items():
        doses = c.course.doses_of(STEROID, drug)
        for d, total in zip(doses, _totals_24h(doses)):
            if per_dose is not None and d.dose_mg > per_dose:
                text = f"{drug} {d.dose_mg} mg in one dose (above {per_dose} mg)"
            elif total > per_day:
                text = f"{drug} {total} mg in 24 hours (above {per_day} mg)"
            else:
                continue
            yield Finding(
                "STEROID-DOSE-HIGH", (STEROID, d.id), "dose_mg", f"STEROID-DOSE-HIGH: {text}: please confirm.",
                values_of(drug=drug, dose_mg=d.dose_mg, total_24h_mg=total),
            )


CHILD_WEIGHT_KG = Decimal(40)
DEXAMETHASONE_CHILD_MG_KG = Decimal("0.5")
METHYLPREDNISOLONE_CHILD_MG_KG = Decimal(2)
PULSE_MG_KG_PER_DAY = Decimal(30)
PULSE_MAX_DAYS = 3


def steroid_weight(c: DerivedCourse, dose) -> Decimal | None:
    """The dose's own weight, else the latest recorded on or before its date (data-dictionary.md)."""
    return dose.weight_kg if dose.weight_kg is not None else c.course.weight_on(dose.day)


@rule(("STEROID-DOSE-HIGH-CHILD", "Under 40 kg: dexamethasone > 0.5 mg/kg, methylprednisolone > 2 mg/kg per dose "
                                  "outside a 1-3 day pulse of <= 30 mg/kg/day."))
def steroid_high_child(c: DerivedCourse):
    """checks.md STEROID-DOSE-HIGH-CHILD (systemic doses; intrathecal ones are outside the per-kg limits).

    A methylprednisolone dose above 2 mg/kg is part of a pulse when the run of consecutive days
    with such doses lasts at most 3 days and no day of it exceeds 30 mg/kg in total."""
    systemic = [d for d in c.course.doses_of(STEROID) if d.route != "intrathecal"]
    weights = {d.id: steroid_weight(c, d) for d in systemic}
    high_mp = {}  # day -> (total mg/kg of that day's methylprednisolone doses above 2 mg/kg)
    for d in systemic:
        w = weights[d.id]
        if d.drug == "methylprednisolone" and w and w < CHILD_WEIGHT_KG and d.dose_mg > METHYLPREDNISOLONE_CHILD_MG_KG * w:
            high_mp[d.day] = high_mp.get(d.day, Decimal(0)) + d.dose_mg / w
    for d in systemic:
        w = weights[d.id]
        if not w or w >= CHILD_WEIGHT_KG:
            continue
        if d.drug == "dexamethasone" and d.dose_mg > DEXAMETHASONE_CHILD_MG_KG * w:
            text = f"dexamethasone {mg_per_kg(d.dose_mg, w)} mg/kg for {w} kg (above 0.5 mg/kg per dose)"
        elif d.drug == "methylprednisolone" and d.day in high_mp and not _within_pulse(d.day, high_mp):
            text = (f"methylprednisolone {mg_per_kg(d.dose_mg, w)} mg/kg for {w} kg (above 2 mg/kg per dose, and not a "
                    f"pulse of at most {PULSE_MAX_DAYS} days of <= {PULSE_MG_KG_PER_DAY} mg/kg/day)")
        else:
            continue
        yield Finding(
            "STEROID-DOSE-HIGH-CHILD", (STEROID, d.id), "dose_mg",
            f"STEROID-DOSE-HIGH-CHILD: {text}: please confirm.",
            values_of(drug=d.drug, dose_mg=d.dose_mg, weight_kg=w),
        )


def _within_pulse(day, high_days: dict) -> bool:
    run = [day]
    for step in (-1, 1):
        other = day + timedelta(days=step)
        while other in high_days:
            run.append(other)
            other += timedelta(days=step)
    return len(run) <= PULSE_MAX_DAYS and all(high_days[d] <= PULSE_MG_KG_PER_DAY for d in run)


ANAKINRA_ADULT_MAX_24H = Decimal(400)
ANAKINRA_CHILD_WEIGHT_KG = Decimal(40)
ANAKINRA_CHILD_MAX_DOSE = Decimal(100)
ANAKINRA_CHILD_MAX_MG_KG_24H = Decimal(10)


@rule(("ANAKINRA-DOSE", "Anakinra above 400 mg/24 h (adults), or > 100 mg/dose or > 10 mg/kg/24 h under 40 kg."))
def anakinra_dose(c: DerivedCourse):
    doses = c.course.doses_of(ANTICYTOKINE, "anakinra")
    for d, total in zip(doses, _totals_24h(doses)):
        weight = d.weight_kg
        if weight is not None and weight < ANAKINRA_CHILD_WEIGHT_KG:
            if d.dose_mg > ANAKINRA_CHILD_MAX_DOSE:
                text = f"{d.dose_mg} mg in one dose for a child under 40 kg (above 100 mg)"
            elif total > ANAKINRA_CHILD_MAX_MG_KG_24H * weight:
                text = f"{total} mg in 24 hours for {weight} kg (above 10 mg/kg)"
            else:
                continue
        elif total > ANAKINRA_ADULT_MAX_24H:
            text = f"{total} mg in 24 hours (above 400 mg)"
        else:
            continue
        yield Finding("ANAKINRA-DOSE", (ANTICYTOKINE, d.id), "dose_mg", f"ANAKINRA-DOSE: {text}: please confirm.",
                      values_of(dose_mg=d.dose_mg, total_24h_mg=total, weight_kg=weight))


SILTUXIMAB_MG_PER_KG = Decimal(11)
SILTUXIMAB_REPEAT = timedelta(days=21)


@rule(("SILTUXIMAB-DOSE", "Siltuximab more than 10% from 11 mg/kg, or repeated within 21 days."))
def siltuximab_dose(c: DerivedCourse):
    doses = c.course.doses_of(ANTICYTOKINE, "siltuximab")
    for i, d in enumerate(doses):
        if d.weight_kg is not None:
            expected = SILTUXIMAB_MG_PER_KG * d.weight_kg
            if abs(d.dose_mg - expected) > expected / 10:
                yield Finding(
                    "SILTUXIMAB-DOSE", (ANTICYTOKINE, d.id), "dose_mg",
                    f"SILTUXIMAB-DOSE: {d.dose_mg} mg for {d.weight_kg} kg is more than 10% from 11 mg/kg ({expected} mg).",
                    values_of(dose_mg=d.dose_mg, weight_kg=d.weight_kg),
                )
        if i and d.at - doses[i - 1].at < SILTUXIMAB_REPEAT:
            yield Finding(
                "SILTUXIMAB-DOSE", (ANTICYTOKINE, d.id), "administered_at",
                f"SILTUXIMAB-DOSE: repeated {(d.at - doses[i - 1].at).days} days after the previous dose (21 days expected).",
                values_of(administered_at=d.at, previous_at=doses[i - 1].at),
            )


