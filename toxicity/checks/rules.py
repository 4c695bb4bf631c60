"""Soft rules of checks.md. Each rule takes a subject snapshot and returns findings; the rule id,
field and values of a finding identify its query (at most one open per rule, record and field).

Messages are sentences a coordinator understands, starting with the rule id.
"""
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from reporting.episodes import derive_episodes
from toxicity.grading.dosing import tocilizumab_expected_dose_mg

from .records import (
    ANTICYTOKINE,
    ASSESSMENT,
    DEATH,
    HEMOFILTRATION,
    INFUSION,
    PLASMA_EXCHANGE,
    STEROID,
    SUBJECT,
    TOCILIZUMAB,
    Assessment,
    Finding,
    SubjectSnapshot,
)

RuleFn = Callable[[SubjectSnapshot], Iterable[Finding]]


@dataclass(frozen=True)
class Rule:
    id: str
    check: RuleFn
    summary: str
    at_save: bool = True  # False: only the background job opens its queries (a save may still close them)


RULES: dict[str, Rule] = {}


def rule(*ids_and_summaries: tuple[str, str], at_save: bool = True):
    def register(fn: RuleFn) -> RuleFn:
        for rule_id, summary in ids_and_summaries:
            RULES[rule_id] = Rule(rule_id, fn, summary, at_save)
        return fn

    return register


def job_only_rules() -> set[str]:
    return {r.id for r in RULES.values() if not r.at_save}


def run_rules(snapshot: SubjectSnapshot) -> list[Finding]:
    """Every soft rule over one subject, each rule function once, in a stable order."""
    findings, seen = [], set()
    for r in RULES.values():
        if r.check in seen:
            continue
        seen.add(r.check)
        findings.extend(r.check(snapshot))
    return sorted(findings, key=lambda f: (f.rule_id, f.record, f.field))


def _num(value):
    """JSON-stable representation of a value at raise time."""
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")  # 700.00 -> "700", 38.50 -> "38.5": stable for comparison
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _values(**values):
    return {k: _num(v) for k, v in values.items()}


def _grade(g):
    return "NE" if g is None else g


# --- grading consistency (engine flags stored with each assessment) -------------------------

# flag -> (field the query sits on, raw fields whose values the query records)
FLAG_FIELDS = {
    "CRS-GRADE-MISMATCH": ("crs_grade_reported", ("crs_grade_reported",)),
    "ICANS-GRADE-MISMATCH": ("icans_grade_reported", ("icans_grade_reported",)),
    "CRS-NOT-EVALUABLE": ("crs_grade_derived", ("temperature_max_c", "oxygen_device", "oxygen_flow_l_min", "fio2_percent")),
    "ICANS-NOT-EVALUABLE": ("icans_grade_derived", ("ice_score", "ice_not_assessable", "capd_score", "consciousness")),
    "CRS-NO-FEVER-AT-ONSET": ("temperature_max_c", ("temperature_max_c", "hypotension", "hypoxia")),
    "VASOPRESSIN-ALONE": ("vasopressors", ("vasopressors",)),
    "ANGIOTENSIN-COUNTED": ("vasopressors", ("vasopressors",)),
    "O2-DEVICE-FLOW-CONFLICT": ("oxygen_flow_l_min", ("oxygen_device", "oxygen_flow_l_min")),
    "ICANS-TOOL-AGE": ("ice_score", ("ice_score", "capd_score")),
    "CAPD-AT-BASELINE": ("capd_score", ("capd_score",)),
}
FLAG_SUMMARIES = {
    "CRS-GRADE-MISMATCH": "The reported CRS grade differs from the grade derived from the observations.",
    "ICANS-GRADE-MISMATCH": "The reported ICANS grade differs from the grade derived from the observations.",
    "CRS-NOT-EVALUABLE": "The CRS grade cannot be derived: a value it depends on is missing.",
    "ICANS-NOT-EVALUABLE": "The ICANS grade cannot be derived (sedation, missing or wrong assessment tool).",
    "CRS-NO-FEVER-AT-ONSET": "Hypotension or hypoxia without fever and no ongoing CRS: please confirm another cause.",
    "VASOPRESSIN-ALONE": "Vasopressin is the only agent for hypotension (unusual): please confirm.",
    "ANGIOTENSIN-COUNTED": "Angiotensin II was counted as a vasopressor (not addressed by ASTCT): please confirm.",
    "O2-DEVICE-FLOW-CONFLICT": "The oxygen device and the flow disagree: please check both.",
    "ICANS-TOOL-AGE": "The ICANS tool does not match the age (ICE from 12 years, CAPD under 12): please check.",
    "CAPD-AT-BASELINE": "The CAPD score is at or below the pre-infusion baseline: please confirm.",
}


def _flag_message(flag: str, a: Assessment) -> str:
    detail = [r for r in a.reasons if flag in r]
    text = f"{flag}: {FLAG_SUMMARIES[flag]} ({a.day}, study day {a.study_day})"
    return text + (" " + " ".join(detail) if detail else "")


@rule(*FLAG_SUMMARIES.items())
def grading_flags(s: SubjectSnapshot):
    for a in s.assessments:
        for flag in a.flags:
            if flag not in FLAG_FIELDS:
                continue
            if flag == "CRS-NOT-EVALUABLE" and a.crs_grade is not None:
                # checks.md: the derived grade on the trial's scale is NE. A CTCAE v5.0 NE beside a
                # gradable ASTCT/v6 grade (FiO2 is optional there) is explained in the reasons only.
                continue
            field, raw_fields = FLAG_FIELDS[flag]
            if flag == "ICANS-TOOL-AGE" and a.raw.get("ice_score") is None:
                field = "capd_score"
            values = {name: a.raw.get(name) for name in raw_fields}
            values.update(crs_grade=_grade(a.crs_grade), icans_grade=_grade(a.icans_grade))
            yield Finding(flag, (ASSESSMENT, a.id), field, _flag_message(flag, a), _values(**values))


@rule(("CRS-BEFORE-INFUSION", "CRS or ICANS grade >= 1 before day 0."))
def before_infusion(s: SubjectSnapshot):
    for a in s.assessments:
        if a.study_day is None or a.study_day >= 0:
            continue
        for name, grade, field in (("CRS", a.crs_grade, "crs_grade_derived"), ("ICANS", a.icans_grade, "icans_grade_derived")):
            if grade is not None and grade >= 1:
                yield Finding(
                    "CRS-BEFORE-INFUSION", (ASSESSMENT, a.id), field,
                    f"CRS-BEFORE-INFUSION: {name} grade {grade} on study day {a.study_day}, before the CAR-T infusion.",
                    _values(study_day=a.study_day, grade=grade),
                )


_last_episodes: tuple = ((), [])  # (assessments, their episodes): several rules ask for the same subject's


def crs_episodes(s: SubjectSnapshot):
    """The CRS episodes of the subject's assessments (derived once per snapshot; do not mutate)."""
    assessments, episodes = _last_episodes
    if assessments is not s.assessments:
        episodes = derive_episodes((a.day, a.crs_grade) for a in s.assessments)
        _remember_episodes(s.assessments, episodes)
    return episodes


def _remember_episodes(assessments, episodes):
    global _last_episodes
    _last_episodes = (assessments, episodes)  # one tuple: threads see a whole pair or the previous one


def _window(times: list, moment: datetime, width: timedelta) -> tuple[int, int]:
    """Indexes [lo, hi) of the sorted ``times`` that lie in (moment - width, moment]."""
    return bisect_right(times, moment - width), bisect_right(times, moment)


ONSET_LATE_AFTER_DAY = 14


@rule(("ONSET-LATE", "A CRS episode starting after day 14."))
def onset_late(s: SubjectSnapshot):
    by_day = {a.day: a for a in s.assessments}
    for episode in crs_episodes(s):
        a = by_day[episode.onset_date]
        if a.study_day is not None and a.study_day > ONSET_LATE_AFTER_DAY:
            yield Finding(
                "ONSET-LATE", (ASSESSMENT, a.id), "crs_grade_derived",
                f"ONSET-LATE: a CRS episode starts on study day {a.study_day}, after day {ONSET_LATE_AFTER_DAY}: please confirm.",
                _values(onset_date=a.day, study_day=a.study_day),
            )


@rule(("DEATH-GRADE", "Death from CRS/ICANS without grade 5 on the death date, or grade 5 without a death record."))
def death_grade(s: SubjectSnapshot):
    on_day = {a.day: a for a in s.assessments}
    death = s.death
    if death is not None and death.primary_cause in ("crs", "icans"):
        a = on_day.get(death.day)
        grade = None if a is None else (a.crs_grade if death.primary_cause == "crs" else a.icans_grade)
        if grade != 5:
            yield Finding(
                "DEATH-GRADE", (DEATH, death.id), "death_primary_cause",
                f"DEATH-GRADE: death on {death.day} from {death.primary_cause.upper()}, but "
                + ("no assessment is recorded on that date." if a is None else f"the derived grade that day is {_grade(grade)}."),
                _values(death_date=death.day, primary_cause=death.primary_cause, grade=_grade(grade)),
            )
    for a in s.assessments:
        for name, grade, field, cause in (
            ("CRS", a.crs_grade, "crs_grade_derived", "crs"), ("ICANS", a.icans_grade, "icans_grade_derived", "icans")
        ):
            if grade == 5 and (death is None or death.day != a.day or death.primary_cause != cause):
                yield Finding(
                    "DEATH-GRADE", (ASSESSMENT, a.id), field,
                    f"DEATH-GRADE: {name} grade 5 on {a.day} without a death from {name} recorded on that date.",
                    _values(grade=5, assessment_date=a.day),
                )


@rule(("ASSESSMENT-MISSING", "No daily assessment for a day 0..N that has passed."), at_save=False)
def assessment_missing(s: SubjectSnapshot):
    if s.day0 is None or s.status == "withdrawn":
        return
    recorded = {a.day for a in s.assessments}
    for n in range(0, s.trial.daily_assessment_until_day + 1):
        day = s.day0 + timedelta(days=n)
        if day >= s.today or (s.death is not None and day > s.death.day):
            break
        if day not in recorded:
            yield Finding(
                "ASSESSMENT-MISSING", (SUBJECT, s.id), f"assessment_date={day.isoformat()}",
                f"ASSESSMENT-MISSING: no daily assessment for study day {n} ({day}).",
                _values(assessment_date=day, study_day=n),
            )


# --- tocilizumab ----------------------------------------------------------------------------

TOCI_MIN_INTERVAL = timedelta(hours=8)
TOCI_MAX_PER_24H = 3
TOCI_MAX_PER_EPISODE = 4


@rule(
    ("TOCI-DOSE-DEVIATION", "Tocilizumab dose more than 10% from the expected dose."),
    ("TOCI-DOSE-OVER-800", "Tocilizumab dose above 800 mg."),
)
def toci_dose(s: SubjectSnapshot):
    for d in s.doses_of(TOCILIZUMAB):
        if d.weight_kg is None:
            continue
        expected = tocilizumab_expected_dose_mg(d.weight_kg)
        if abs(d.dose_mg - expected) > expected / 10:
            yield Finding(
                "TOCI-DOSE-DEVIATION", (TOCILIZUMAB, d.id), "dose_mg",
                f"TOCI-DOSE-DEVIATION: {d.dose_mg} mg for {d.weight_kg} kg is more than 10% from the expected {expected} mg "
                "(12 mg/kg under 30 kg, else 8 mg/kg, at most 800 mg).",
                _values(dose_mg=d.dose_mg, weight_kg=d.weight_kg, expected_dose_mg=expected),
            )
        if d.dose_mg > 800:
            yield Finding(
                "TOCI-DOSE-OVER-800", (TOCILIZUMAB, d.id), "dose_mg",
                f"TOCI-DOSE-OVER-800: {d.dose_mg} mg is above the 800 mg maximum per dose.",
                _values(dose_mg=d.dose_mg),
            )


@rule(
    ("TOCI-INTERVAL", "Tocilizumab less than 8 hours after the previous dose."),
    ("TOCI-24H-MAX", "More than 3 tocilizumab doses in 24 hours."),
)
def toci_timing(s: SubjectSnapshot):
    doses = s.doses_of(TOCILIZUMAB)
    times = [d.at for d in doses]  # sorted
    for i, d in enumerate(doses):
        if i and d.at - doses[i - 1].at < TOCI_MIN_INTERVAL:
            gap = d.at - doses[i - 1].at
            yield Finding(
                "TOCI-INTERVAL", (TOCILIZUMAB, d.id), "administered_at",
                f"TOCI-INTERVAL: started {gap.total_seconds() / 3600:.1f} h after the previous dose (at least 8 h expected).",
                _values(administered_at=d.at, previous_at=doses[i - 1].at),
            )
        lo, hi = _window(times, d.at, timedelta(hours=24))
        in_window = doses[lo:hi]
        if len(in_window) > TOCI_MAX_PER_24H:
            yield Finding(
                "TOCI-24H-MAX", (TOCILIZUMAB, d.id), "administered_at",
                f"TOCI-24H-MAX: {len(in_window)} doses started in the 24 hours up to this one (at most 3).",
                _values(administered_at=d.at, doses_in_24h=len(in_window)),
            )


@rule(("TOCI-EPISODE-MAX", "More than 4 tocilizumab doses in one CRS episode."))
def toci_episode_max(s: SubjectSnapshot):
    doses = s.doses_of(TOCILIZUMAB)
    for episode in crs_episodes(s):
        inside = [d for d in doses if episode.contains(d.day)]
        for n, d in enumerate(inside[TOCI_MAX_PER_EPISODE:], start=TOCI_MAX_PER_EPISODE + 1):
            yield Finding(
                "TOCI-EPISODE-MAX", (TOCILIZUMAB, d.id), "administered_at",
                f"TOCI-EPISODE-MAX: dose {n} in the CRS episode that started {episode.onset_date} (at most 4).",
                _values(administered_at=d.at, dose_number_in_episode=n, episode_onset=episode.onset_date),
            )


@rule(("TOCI-WITHOUT-CRS", "Tocilizumab for CRS on a day whose CRS grade, and the day before, are 0."))
def toci_without_crs(s: SubjectSnapshot):
    grade_on = {a.day: a.crs_grade for a in s.assessments}
    for d in s.doses_of(TOCILIZUMAB):
        if d.indication != "crs":
            continue
        if grade_on.get(d.day) == 0 and grade_on.get(d.day - timedelta(days=1)) == 0:
            yield Finding(
                "TOCI-WITHOUT-CRS", (TOCILIZUMAB, d.id), "indication",
                f"TOCI-WITHOUT-CRS: tocilizumab for CRS on {d.day}, but the derived CRS grade is 0 that day and the day before.",
                _values(administered_at=d.at, indication=d.indication),
            )


@rule(("ALGORITHM-TOCI-DELAY", "No tocilizumab within the protocol window of the first CRS day graded >= 2."))
def toci_algorithm_delay(s: SubjectSnapshot):
    hours = s.trial.tocilizumab_response_hours
    if not hours:
        return
    episodes = crs_episodes(s)
    if not episodes:
        return
    doses = s.doses_of(TOCILIZUMAB)
    by_day = {a.day: a for a in s.assessments}
    ordered = sorted(s.assessments, key=lambda a: a.day)
    days = [a.day for a in ordered]
    zone = ZoneInfo(s.timezone)
    for episode in episodes:
        first = None
        for a in ordered[bisect_left(days, episode.onset_date):]:  # the days from onset, in order
            if not episode.contains(a.day):
                break  # past the resolution date: so is every later day
            if a.crs_grade is not None and a.crs_grade >= 2:
                first = a
                break
        if first is None:
            continue
        # from 00:00 of that day at the site
        start = datetime.combine(first.day, time(0), tzinfo=zone)
        end = start + timedelta(hours=hours)
        if s.now < end:
            continue  # the window is still open
        if not any(start <= d.at <= end for d in doses):
            yield Finding(
                "ALGORITHM-TOCI-DELAY", (ASSESSMENT, by_day[first.day].id), "crs_grade_derived",
                f"ALGORITHM-TOCI-DELAY: CRS grade {first.crs_grade} on {first.day} (episode from {episode.onset_date}) "
                f"and no tocilizumab started within {hours} h of 00:00 that day, as the protocol algorithm expects.",
                _values(assessment_date=first.day, crs_grade=first.crs_grade, window_hours=hours),
            )


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
        lo, hi = _window(times, d.at, timedelta(hours=24))
        totals.append(sum((o.dose_mg for o in doses[lo:hi]), Decimal(0)))
    return totals


@rule(("STEROID-DOSE-HIGH", "High corticosteroid dose per dose or per 24 hours."))
def steroid_high(s: SubjectSnapshot):
    for drug, (per_dose, per_day) in STEROID_LIMITS.items():
        doses = s.doses_of(STEROID, drug)
        for d, total in zip(doses, _totals_24h(doses)):
            if per_dose is not None and d.dose_mg > per_dose:
                text = f"{drug} {d.dose_mg} mg in one dose (above {per_dose} mg)"
            elif total > per_day:
                text = f"{drug} {total} mg in 24 hours (above {per_day} mg)"
            else:
                continue
            yield Finding(
                "STEROID-DOSE-HIGH", (STEROID, d.id), "dose_mg", f"STEROID-DOSE-HIGH: {text}: please confirm.",
                _values(drug=drug, dose_mg=d.dose_mg, total_24h_mg=total),
            )


ANAKINRA_ADULT_MAX_24H = Decimal(400)
ANAKINRA_CHILD_WEIGHT_KG = Decimal(40)
ANAKINRA_CHILD_MAX_DOSE = Decimal(100)
ANAKINRA_CHILD_MAX_MG_KG_24H = Decimal(10)


@rule(("ANAKINRA-DOSE", "Anakinra above 400 mg/24 h (adults), or > 100 mg/dose or > 10 mg/kg/24 h under 40 kg."))
def anakinra_dose(s: SubjectSnapshot):
    doses = s.doses_of(ANTICYTOKINE, "anakinra")
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
                      _values(dose_mg=d.dose_mg, total_24h_mg=total, weight_kg=weight))


SILTUXIMAB_MG_PER_KG = Decimal(11)
SILTUXIMAB_REPEAT = timedelta(days=21)


@rule(("SILTUXIMAB-DOSE", "Siltuximab more than 10% from 11 mg/kg, or repeated within 21 days."))
def siltuximab_dose(s: SubjectSnapshot):
    doses = s.doses_of(ANTICYTOKINE, "siltuximab")
    for i, d in enumerate(doses):
        if d.weight_kg is not None:
            expected = SILTUXIMAB_MG_PER_KG * d.weight_kg
            if abs(d.dose_mg - expected) > expected / 10:
                yield Finding(
                    "SILTUXIMAB-DOSE", (ANTICYTOKINE, d.id), "dose_mg",
                    f"SILTUXIMAB-DOSE: {d.dose_mg} mg for {d.weight_kg} kg is more than 10% from 11 mg/kg ({expected} mg).",
                    _values(dose_mg=d.dose_mg, weight_kg=d.weight_kg),
                )
        if i and d.at - doses[i - 1].at < SILTUXIMAB_REPEAT:
            yield Finding(
                "SILTUXIMAB-DOSE", (ANTICYTOKINE, d.id), "administered_at",
                f"SILTUXIMAB-DOSE: repeated {(d.at - doses[i - 1].at).days} days after the previous dose (21 days expected).",
                _values(administered_at=d.at, previous_at=doses[i - 1].at),
            )


# --- blood purification ---------------------------------------------------------------------


@rule(
    ("TPE-VOLUME", "Plasma volumes exchanged below 0.8 or above 1.6."),
    ("TPE-SAME-DAY", "More than one plasma exchange started on one calendar day."),
)
def plasma_exchange(s: SubjectSnapshot):
    seen_days = set()
    for p in sorted(s.plasma_exchanges, key=lambda p: p.at):
        if p.plasma_volumes is not None and not (Decimal("0.8") <= p.plasma_volumes <= Decimal("1.6")):
            yield Finding(
                "TPE-VOLUME", (PLASMA_EXCHANGE, p.id), "plasma_volume_exchanged_ml",
                f"TPE-VOLUME: {p.plasma_volumes} estimated plasma volumes exchanged (0.8-1.6 expected).",
                _values(plasma_volume_exchanged_ml=p.exchanged_ml, plasma_volumes_exchanged=p.plasma_volumes),
            )
        if p.day in seen_days:
            yield Finding(
                "TPE-SAME-DAY", (PLASMA_EXCHANGE, p.id), "started_at",
                f"TPE-SAME-DAY: another plasma exchange already started on {p.day}.",
                _values(started_at=p.at),
            )
        seen_days.add(p.day)


@rule(("CRRT-DOSE", "Effluent dose below 20 or above 35 mL/kg/h."))
def crrt_dose(s: SubjectSnapshot):
    for h in s.hemofiltrations:
        if h.dose_ml_kg_h is not None and not (20 <= h.dose_ml_kg_h <= 35):
            yield Finding(
                "CRRT-DOSE", (HEMOFILTRATION, h.id), "effluent_rate_ml_h",
                f"CRRT-DOSE: effluent dose {h.dose_ml_kg_h} mL/kg/h (20-35 expected).",
                _values(effluent_rate_ml_h=h.effluent_rate_ml_h, effluent_dose_ml_kg_h=h.dose_ml_kg_h),
            )


# --- set-up and weights ---------------------------------------------------------------------


@rule(("INFUSION-DOSE-COHORT", "Infused dose more than 20% from the cohort's dose level."))
def infusion_dose_cohort(s: SubjectSnapshot):
    for i in s.infusions:
        if abs(i.dose_cells_per_kg - i.cohort_dose_level) > 0.2 * i.cohort_dose_level:
            yield Finding(
                "INFUSION-DOSE-COHORT", (INFUSION, i.id), "dose_cells_per_kg",
                f"INFUSION-DOSE-COHORT: {i.dose_cells_per_kg:.3g} cells/kg is more than 20% from the cohort dose level "
                f"{i.cohort_dose_level:.3g} cells/kg.",
                _values(dose_cells_per_kg=i.dose_cells_per_kg, cohort_dose_level_cells_per_kg=i.cohort_dose_level),
            )


@rule(("WEIGHT-CHANGE", "A weight more than 10% from the last recorded weight."))
def weight_change(s: SubjectSnapshot):
    weights = sorted(
        [(i.at, INFUSION, i.id, i.weight_kg) for i in s.infusions]
        + [(d.at, d.kind, d.id, d.weight_kg) for d in s.doses if d.weight_kg is not None]
        + [(p.at, PLASMA_EXCHANGE, p.id, p.weight_kg) for p in s.plasma_exchanges]
        + [(h.at, HEMOFILTRATION, h.id, h.weight_kg) for h in s.hemofiltrations],
        key=lambda w: (w[0], w[1], w[2]),
    )
    previous = s.baseline_weight_kg
    for at, kind, record_id, weight in weights:
        if previous and abs(weight - previous) > previous / 10:
            yield Finding(
                "WEIGHT-CHANGE", (kind, record_id), "weight_kg",
                f"WEIGHT-CHANGE: {weight} kg is more than 10% from the last recorded weight ({previous} kg).",
                _values(weight_kg=weight, previous_weight_kg=previous),
            )
        previous = weight
