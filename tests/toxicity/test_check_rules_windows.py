"""The rules whose scans were written for the consistency job's speed (bisect windows) give exactly
the findings of their straightforward definitions.

The references below are the definitions as written in checks.md (a scan of every dose for each
dose's 24-hour window, the assessments sorted again for each episode). Generated courses have ties,
several doses inside 24 hours, Decimals of mixed exponents (the 24-hour totals are printed in the
messages, so they must be the same Decimal to the digit), NE days and recurrences.
"""
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.toxicity.course_builders import A, snap
from toxicity.checks import drugs as rules
from toxicity.checks.drugs import (
    ANAKINRA_ADULT_MAX_24H, ANAKINRA_CHILD_MAX_DOSE, ANAKINRA_CHILD_MAX_MG_KG_24H, ANAKINRA_CHILD_WEIGHT_KG,
    STEROID_LIMITS, TOCI_MAX_PER_24H, TOCI_MIN_INTERVAL,
)
from toxicity.checks.registry import Finding, values_of as _values
from toxicity.course import records as r

EXAMPLES = settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
DAY0 = date(2026, 3, 1)
ZONES = [timezone.utc, timezone(timedelta(hours=2)), timezone(timedelta(hours=-6))]


# --- the straightforward definitions ------------------------------------------------------------


def ref_toci_timing(s):
    doses = s.course.doses_of(r.TOCILIZUMAB)
    for i, d in enumerate(doses):
        if i and d.at - doses[i - 1].at < TOCI_MIN_INTERVAL:
            gap = d.at - doses[i - 1].at
            yield Finding(
                "TOCI-INTERVAL", (r.TOCILIZUMAB, d.id), "administered_at",
                f"TOCI-INTERVAL: started {gap.total_seconds() / 3600:.1f} h after the previous dose (at least 8 h expected).",
                _values(administered_at=d.at, previous_at=doses[i - 1].at),
            )
        in_window = [o for o in doses if d.at - timedelta(hours=24) < o.at <= d.at]
        if len(in_window) > TOCI_MAX_PER_24H:
            yield Finding(
                "TOCI-24H-MAX", (r.TOCILIZUMAB, d.id), "administered_at",
                f"TOCI-24H-MAX: {len(in_window)} doses started in the 24 hours up to this one (at most 3).",
                _values(administered_at=d.at, doses_in_24h=len(in_window)),
            )


def ref_total_24h(doses, d):
    return sum((o.dose_mg for o in doses if d.at - timedelta(hours=24) < o.at <= d.at), Decimal(0))


def ref_steroid_high(s):
    for drug, (per_dose, per_day) in STEROID_LIMITS.items():
        doses = s.course.doses_of(r.STEROID, drug)
        for d in doses:
            total = ref_total_24h(doses, d)
            if per_dose is not None and d.dose_mg > per_dose:
                text = f"{drug} {d.dose_mg} mg in one dose (above {per_dose} mg)"
            elif total > per_day:
                text = f"{drug} {total} mg in 24 hours (above {per_day} mg)"
            else:
                continue
            yield Finding(
                "STEROID-DOSE-HIGH", (r.STEROID, d.id), "dose_mg", f"STEROID-DOSE-HIGH: {text}: please confirm.",
                _values(drug=drug, dose_mg=d.dose_mg, total_24h_mg=total),
            )


def ref_anakinra_dose(s):
    doses = s.course.doses_of(r.ANTICYTOKINE, "anakinra")
    for d in doses:
        total = ref_total_24h(doses, d)
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
        yield Finding("ANAKINRA-DOSE", (r.ANTICYTOKINE, d.id), "dose_mg", f"ANAKINRA-DOSE: {text}: please confirm.",
                      _values(dose_mg=d.dose_mg, total_24h_mg=total, weight_kg=weight))


def ref_toci_algorithm_delay(s):
    """checks.md ALGORITHM-TOCI-DELAY as written: the first day within each CRS episode graded >= 2
    (NE by its minimum), a tocilizumab dose from 24 h before its 00:00 to the window's end, silent
    while a tocilizumab or siltuximab dose of the 14 days before that 00:00 is active."""
    hours = s.course.trial.tocilizumab_response_hours
    if not hours:
        return
    toci = [d.at for d in s.course.doses_of(r.TOCILIZUMAB)]
    anti_il6 = toci + [d.at for d in s.course.doses_of(r.ANTICYTOKINE, "siltuximab")]
    for episode in s.episodes.crs:
        first = next((d for d in sorted(s.days, key=lambda d: d.day)
                      if episode.contains(d.day) and (d.crs.level or 0) >= 2), None)
        if first is None:
            continue
        start = datetime.combine(first.day, time(0), tzinfo=ZoneInfo(s.course.subject.timezone))
        end = start + timedelta(hours=hours)
        if s.now < end or any(start - timedelta(days=14) <= at < start for at in anti_il6):
            continue
        if not any(start - timedelta(hours=24) <= at <= end for at in toci):
            level = str(first.crs_grade) if first.crs_grade is not None else f">= {first.crs.minimum}"
            yield Finding(
                "ALGORITHM-TOCI-DELAY", (r.ASSESSMENT, first.id), "crs_grade_derived",
                f"ALGORITHM-TOCI-DELAY: CRS grade {level} on {first.day} (episode from {episode.onset_date}) "
                f"and no tocilizumab started from 24 h before 00:00 that day to {hours} h after it, as the protocol "
                "algorithm expects.",
                _values(assessment_date=first.day, crs_grade="NE" if first.crs_grade is None else first.crs_grade,
                        window_hours=hours),
            )


# --- generated snapshots --------------------------------------------------------------------------

# dose times on a coarse grid (hours 0..95 in 0-3 steps of 20 minutes) so that ties and windows
# of exactly 24 hours happen often
moments = st.builds(
    lambda hour, third, zone: datetime(2026, 3, 1, tzinfo=timezone.utc).astimezone(zone)
    + timedelta(hours=hour, minutes=20 * third),
    st.integers(0, 95), st.integers(0, 2), st.sampled_from(ZONES),
)
amounts = st.sampled_from(["10", "10.00", "20.5", "100", "99.99", "150.0", "0.01", "400", "8"]).map(Decimal)


@st.composite
def doses(draw):
    out = []
    for i, (kind, drug) in enumerate(draw(st.lists(st.sampled_from([
        (r.TOCILIZUMAB, "tocilizumab"), (r.STEROID, "dexamethasone"), (r.STEROID, "methylprednisolone"),
        (r.STEROID, "hydrocortisone"), (r.ANTICYTOKINE, "anakinra"), (r.ANTICYTOKINE, "siltuximab"),
    ]), max_size=14))):
        moment = draw(moments)
        weight = draw(st.sampled_from([None, Decimal("12.5"), Decimal("39.9"), Decimal("70")]))
        out.append(r.Dose(kind, i + 1, moment, (moment.astimezone(ZoneInfo("Europe/Berlin"))).date(), drug,
                          draw(amounts), "crs", "iv", weight))
    return tuple(out)


@st.composite
def courses(draw):
    grades = draw(st.lists(st.sampled_from([0, 0, 1, 2, 3, None]), max_size=8))
    minimums = [draw(st.sampled_from([None, 1, 2, 3])) if g is None else None for g in grades]
    day_numbers = sorted(draw(st.sets(st.integers(-1, 6), min_size=len(grades), max_size=len(grades))))
    days = tuple(A(day_numbers[i], crs=grades[i], minimum=minimums[i]) for i in range(len(grades)))
    return snap(assessments=days, doses=draw(doses()),
                now=datetime(2026, 3, draw(st.integers(1, 9)), 12, tzinfo=timezone.utc),
                trial=r.Trial(daily_assessment_until_day=14, tocilizumab_response_hours=draw(st.sampled_from([0, 6, 24, 48]))))


@EXAMPLES
@given(courses())
def test_window_rules_match_their_straightforward_definitions(s):
    assert list(rules.toci_timing(s)) == list(ref_toci_timing(s))
    assert list(rules.steroid_high(s)) == list(ref_steroid_high(s))
    assert list(rules.anakinra_dose(s)) == list(ref_anakinra_dose(s))
    assert list(rules.toci_algorithm_delay(s)) == list(ref_toci_algorithm_delay(s))
