"""The rules whose scans were rewritten for the consistency job's speed (bisect windows, episodes
derived once per snapshot) give exactly the findings of their straightforward definitions.

The references below are the definitions as first written (a scan of every dose for each dose's
24-hour window, the assessments sorted again for each episode). Generated snapshots have ties,
several doses inside 24 hours, Decimals of mixed exponents (the 24-hour totals are printed in
the messages, so they must be the same Decimal to the digit), NE days and recurrences.
"""
from dataclasses import replace
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reporting.episodes import derive_episodes
from toxicity.checks import records as r
from toxicity.checks import rules
from toxicity.checks.rules import (
    ANAKINRA_ADULT_MAX_24H, ANAKINRA_CHILD_MAX_DOSE, ANAKINRA_CHILD_MAX_MG_KG_24H, ANAKINRA_CHILD_WEIGHT_KG,
    STEROID_LIMITS, TOCI_MAX_PER_24H, TOCI_MIN_INTERVAL, Finding, _values,
)

EXAMPLES = settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
DAY0 = date(2026, 3, 1)
ZONES = [timezone.utc, timezone(timedelta(hours=2)), timezone(timedelta(hours=-6))]


# --- the straightforward definitions ------------------------------------------------------------


def ref_toci_timing(s):
    doses = s.doses_of(r.TOCILIZUMAB)
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
        doses = s.doses_of(r.STEROID, drug)
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
    doses = s.doses_of(r.ANTICYTOKINE, "anakinra")
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


def ref_episodes(s):
    return derive_episodes((a.day, a.crs_grade) for a in s.assessments)


def ref_toci_algorithm_delay(s):
    hours = s.trial.tocilizumab_response_hours
    if not hours:
        return
    doses = s.doses_of(r.TOCILIZUMAB)
    by_day = {a.day: a for a in s.assessments}
    for episode in ref_episodes(s):
        first = next(
            (a for a in sorted(s.assessments, key=lambda a: a.day)
             if episode.contains(a.day) and a.crs_grade is not None and a.crs_grade >= 2),
            None,
        )
        if first is None:
            continue
        start = datetime.combine(first.day, time(0), tzinfo=ZoneInfo(s.timezone))
        end = start + timedelta(hours=hours)
        if s.now < end:
            continue
        if not any(start <= d.at <= end for d in doses):
            yield Finding(
                "ALGORITHM-TOCI-DELAY", (r.ASSESSMENT, by_day[first.day].id), "crs_grade_derived",
                f"ALGORITHM-TOCI-DELAY: CRS grade {first.crs_grade} on {first.day} (episode from {episode.onset_date}) "
                f"and no tocilizumab started within {hours} h of 00:00 that day, as the protocol algorithm expects.",
                _values(assessment_date=first.day, crs_grade=first.crs_grade, window_hours=hours),
            )


def ref_toci_episode_max(s):
    doses = s.doses_of(r.TOCILIZUMAB)
    for episode in ref_episodes(s):
        inside = [d for d in doses if episode.contains(d.day)]
        for n, d in enumerate(inside[4:], start=5):
            yield Finding(
                "TOCI-EPISODE-MAX", (r.TOCILIZUMAB, d.id), "administered_at",
                f"TOCI-EPISODE-MAX: dose {n} in the CRS episode that started {episode.onset_date} (at most 4).",
                _values(administered_at=d.at, dose_number_in_episode=n, episode_onset=episode.onset_date),
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
        (r.STEROID, "hydrocortisone"), (r.ANTICYTOKINE, "anakinra"),
    ]), max_size=14))):
        moment = draw(moments)
        weight = draw(st.sampled_from([None, Decimal("12.5"), Decimal("39.9"), Decimal("70")]))
        out.append(r.Dose(kind, i + 1, moment, (moment.astimezone(ZoneInfo("Europe/Berlin"))).date(), draw(amounts),
                          drug, weight, "crs"))
    return tuple(out)


@st.composite
def snapshots(draw):
    grades = draw(st.lists(st.sampled_from([0, 0, 1, 2, 3, None]), max_size=8))
    days = sorted(draw(st.sets(st.integers(-1, 6), min_size=len(grades), max_size=len(grades))))
    order = draw(st.permutations(range(len(grades))))  # the rules must not rely on the order
    assessments = tuple(
        r.Assessment(id=100 + days[i], day=DAY0 + timedelta(days=days[i]), study_day=days[i], crs_grade=grades[i],
                     icans_grade=0, ctcae_crs_grade=grades[i])
        for i in order
    )
    return r.SubjectSnapshot(
        id=1, today=date(2026, 3, 20), now=datetime(2026, 3, draw(st.integers(1, 9)), 12, tzinfo=timezone.utc),
        trial=r.Trial(14, draw(st.sampled_from([0, 6, 24, 48]))), status="infused", day0=DAY0,
        enrolled_on=DAY0 - timedelta(days=10), baseline_weight_kg=Decimal(70), assessments=assessments,
        doses=draw(doses()), timezone="Europe/Berlin",
    )


@EXAMPLES
@given(snapshots())
def test_window_rules_match_their_straightforward_definitions(s):
    assert list(rules.toci_timing(s)) == list(ref_toci_timing(s))
    assert list(rules.steroid_high(s)) == list(ref_steroid_high(s))
    assert list(rules.anakinra_dose(s)) == list(ref_anakinra_dose(s))
    assert list(rules.toci_algorithm_delay(s)) == list(ref_toci_algorithm_delay(s))
    assert list(rules.toci_episode_max(s)) == list(ref_toci_episode_max(s))


@EXAMPLES
@given(snapshots(), snapshots())
def test_episodes_are_remembered_per_snapshot_not_across_subjects(first, second):
    assert rules.crs_episodes(first) == ref_episodes(first)
    assert rules.crs_episodes(second) == ref_episodes(second)
    changed = replace(first, assessments=second.assessments)
    assert rules.crs_episodes(changed) == ref_episodes(changed)
    assert rules.crs_episodes(first) == ref_episodes(first)
