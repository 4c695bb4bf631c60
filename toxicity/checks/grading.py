"""Grading-consistency rules of checks.md (the engine's flags, infusion, onset, death, missing days)
and SAE-REVIEW-MISSING (reports.md, seriousness)."""
from datetime import timedelta

from toxicity.course.derive import DerivedCourse, Day
from toxicity.course.episodes import overlaps
from toxicity.course.records import ASSESSMENT, DEATH, SUBJECT

from .registry import Finding, grade_text, rule, values_of

# --- grading consistency (engine flags stored with each assessment) -------------------------

# flag -> (field the query sits on, observed fields whose values the query records)
FLAG_FIELDS = {
    "CRS-GRADE-MISMATCH": ("crs_grade_reported", ("crs_grade_reported",)),
    "ICANS-GRADE-MISMATCH": ("icans_grade_reported", ("icans_grade_reported",)),
    "CRS-NOT-EVALUABLE": ("crs_grade_derived", ("temperature_max_c", "oxygen_device", "oxygen_flow_l_min", "fio2_percent")),
    "ICANS-NOT-EVALUABLE": ("icans_grade_derived", ("ice_score", "ice_not_assessable", "capd_score", "consciousness")),
    "CRS-NO-FEVER-AT-ONSET": ("temperature_max_c", ("temperature_max_c", "hypotension", "hypoxia")),
    "CRS-FEVER-MASKED": ("crs_grade_derived", ("temperature_max_c", "hypotension", "hypoxia")),
    "VASOPRESSIN-ALONE": ("vasopressors", ("vasopressors",)),
    "ANGIOTENSIN-COUNTED": ("vasopressors", ("vasopressors",)),
    "O2-DEVICE-FLOW-CONFLICT": ("oxygen_flow_l_min", ("oxygen_device", "oxygen_flow_l_min")),
    "ICANS-TOOL-AGE": ("ice_score", ("ice_score", "capd_score")),
    "CAPD-AT-BASELINE": ("capd_score", ("capd_score",)),
}
FLAG_SUMMARIES = {
    "CRS-GRADE-MISMATCH": "The reported CRS grade differs from the grade derived from the observations.",
    "ICANS-GRADE-MISMATCH": "The reported ICANS grade differs from the grade derived from the observations.",
    "CRS-NOT-EVALUABLE": "The CRS grade cannot be derived, or needs a value that is missing: please record it.",
    "ICANS-NOT-EVALUABLE": "The ICANS grade cannot be derived (sedation, missing or wrong assessment tool).",
    "CRS-NO-FEVER-AT-ONSET": "Hypotension or hypoxia without fever, outside any fever-masking window: not CRS "
                             "(R-CRS-14); please confirm another cause.",
    "CRS-FEVER-MASKED": "CRS graded without fever because a masking therapy covers the day (R-CRS-2): please "
                        "confirm the hypotension or hypoxia has no other cause.",
    "VASOPRESSIN-ALONE": "Vasopressin is the only agent for hypotension (unusual): please confirm.",
    "ANGIOTENSIN-COUNTED": "Angiotensin II was counted as a vasopressor (not addressed by ASTCT): please confirm.",
    "O2-DEVICE-FLOW-CONFLICT": "The oxygen device and the flow disagree: please check both.",
    "ICANS-TOOL-AGE": "The ICANS tool does not match the age (ICE from 12 years, CAPD under 12): please check.",
    "CAPD-AT-BASELINE": "The CAPD score is at or below the pre-infusion baseline: please confirm.",
}
FLOW_DEVICES = ("nasal_cannula", "high_flow_nasal_cannula")


def _flag_message(flag: str, d: Day) -> str:
    detail = [r for r in d.reasons if flag in r]
    text = f"{flag}: {FLAG_SUMMARIES[flag]} ({d.day}, study day {d.study_day})"
    return text + (" " + " ".join(detail) if detail else "")


def _missing_required(d: Day) -> str | None:
    """R-CRS-15: an observation the data dictionary requires is missing while the grade is
    determined without it (the flag still asks for it)."""
    a = d.assessment
    if not a.get("hypoxia") or a.get("hypoxia_other_cause"):
        return None
    device = a.get("oxygen_device") or "none"
    if device in FLOW_DEVICES and a.get("oxygen_flow_l_min") is None:
        return f"R-CRS-15: the oxygen flow is required with a {device.replace('_', ' ')}; the grade does not depend on it here."
    if device == "none":
        return "R-CRS-15: hypoxia is recorded without an oxygen device; the grade does not depend on it here."
    return None


@rule(*FLAG_SUMMARIES.items())
def grading_flags(c: DerivedCourse):
    for d in c.days:
        flags = d.flags
        if d.crs_grade is not None and "CRS-NOT-EVALUABLE" not in flags and _missing_required(d):
            flags = (*flags, "CRS-NOT-EVALUABLE")
        for flag in flags:
            if flag not in FLAG_FIELDS:
                continue
            message = _flag_message(flag, d)
            if flag == "CRS-NOT-EVALUABLE" and d.crs_grade is not None:
                # checks.md: the grade on the trial's scale is NE, or it needs a value the data
                # dictionary requires. A CTCAE v5.0 NE beside a gradable ASTCT/v6 grade (FiO2 is
                # optional there) is explained in the reasons only.
                missing = _missing_required(d)
                if missing is None:
                    continue
                message = f"{message} {missing}"
            field, raw_fields = FLAG_FIELDS[flag]
            if flag == "ICANS-TOOL-AGE" and d.assessment.get("ice_score") is None:
                field = "capd_score"
            values = {name: d.assessment.get(name) for name in raw_fields}
            values.update(crs_grade=grade_text(d.crs_grade), icans_grade=grade_text(d.icans_grade))
            if flag == "CRS-FEVER-MASKED" and d.grades.fever_masked_by is not None:
                values.update(masked_by=d.grades.fever_masked_by.drug, masked_since=d.grades.fever_masked_by.date)
            yield Finding(flag, (ASSESSMENT, d.id), field, message, values_of(**values))


@rule(("CRS-BEFORE-INFUSION", "CRS or ICANS grade >= 1 before day 0."))
def before_infusion(c: DerivedCourse):
    for d in c.days:
        if d.study_day is None or d.study_day >= 0:
            continue
        for name, level, field in (("CRS", d.crs.level, "crs_grade_derived"), ("ICANS", d.icans.level, "icans_grade_derived")):
            if level is not None and level >= 1:
                yield Finding(
                    "CRS-BEFORE-INFUSION", (ASSESSMENT, d.id), field,
                    f"CRS-BEFORE-INFUSION: {name} grade {level} on study day {d.study_day}, before the CAR-T infusion.",
                    values_of(study_day=d.study_day, grade=level),
                )


ONSET_LATE_AFTER_DAY = 14


@rule(("ONSET-LATE", "A CRS episode starting after day 14."))
def onset_late(c: DerivedCourse):
    by_day = {d.day: d for d in c.days}
    for episode in c.episodes.crs:
        d = by_day[episode.onset_date]
        if d.study_day is not None and d.study_day > ONSET_LATE_AFTER_DAY:
            yield Finding(
                "ONSET-LATE", (ASSESSMENT, d.id), "crs_grade_derived",
                f"ONSET-LATE: a CRS episode starts on study day {d.study_day}, after day {ONSET_LATE_AFTER_DAY}: please confirm.",
                values_of(onset_date=d.day, study_day=d.study_day),
            )


@rule(("DEATH-GRADE", "Death from CRS/ICANS without grade 5 on the death date, or grade 5 without a death record."))
def deathgrade_text(c: DerivedCourse):
    on_day = {d.day: d for d in c.days}
    death = c.course.death
    if death is not None and death.primary_cause in ("crs", "icans"):
        d = on_day.get(death.day)
        grade = None if d is None else (d.crs_grade if death.primary_cause == "crs" else d.icans_grade)
        if grade != 5:
            yield Finding(
                "DEATH-GRADE", (DEATH, death.id), "death_primary_cause",
                f"DEATH-GRADE: death on {death.day} from {death.primary_cause.upper()}, but "
                + ("no assessment is recorded on that date." if d is None else f"the derived grade that day is {grade_text(grade)}."),
                values_of(death_date=death.day, primary_cause=death.primary_cause, grade=grade_text(grade)),
            )
    for d in c.days:
        for name, grade, field, cause in (
            ("CRS", d.crs_grade, "crs_grade_derived", "crs"), ("ICANS", d.icans_grade, "icans_grade_derived", "icans")
        ):
            if grade == 5 and (death is None or death.day != d.day or death.primary_cause != cause):
                yield Finding(
                    "DEATH-GRADE", (ASSESSMENT, d.id), field,
                    f"DEATH-GRADE: {name} grade 5 on {d.day} without a death from {name} recorded on that date.",
                    values_of(grade=5, assessment_date=d.day),
                )


@rule(("ASSESSMENT-MISSING", "No daily assessment for a day 0..N that has passed."), at_save=False)
def assessment_missing(c: DerivedCourse):
    subject, death = c.course.subject, c.course.death
    if subject.day0 is None or subject.status == "withdrawn":
        return
    recorded = {d.day for d in c.days}
    today = c.today
    for n in range(0, c.course.trial.daily_assessment_until_day + 1):
        day = subject.day0 + timedelta(days=n)
        if day >= today or (death is not None and day > death.day):
            break
        if day not in recorded:
            yield Finding(
                "ASSESSMENT-MISSING", (SUBJECT, subject.id), f"assessment_date={day.isoformat()}",
                f"ASSESSMENT-MISSING: no daily assessment for study day {n} ({day}).",
                values_of(assessment_date=day, study_day=n),
            )


# --- seriousness ----------------------------------------------------------------------------

SAE_REVIEW_AFTER = timedelta(hours=24)


@rule(("SAE-REVIEW-MISSING", "A CRS/ICANS episode with max grade >= 3, an ICU stay or a death has no investigator "
                             "episode review after 24 hours."))
def sae_review_missing(c: DerivedCourse):
    """checks.md / reports.md: the investigator confirms seriousness (episode_review). The clock
    starts when the qualifying fact was first recorded (the grade >= 3 day, the ICU stay or the
    death); a review made before the episode last changed counts as missing ("outdated")."""
    for episode in c.episodes:
        stays = [s for s in c.course.icu_stays if overlaps(episode, s)]
        death = c.course.death
        died = death is not None and episode.contains(death.day)
        qualifying = []
        if episode.max_grade >= 3:
            kind_days = [d.crs if episode.kind == "crs" else d.icans for d in c.days]
            qualifying += [d.recorded_at for d in kind_days if episode.contains(d.day) and (d.level or 0) >= 3]
        qualifying += [s.recorded_at for s in stays]
        if died:
            qualifying.append(death.recorded_at)
        if not qualifying or episode.review_status == "current":
            continue
        known = [t for t in qualifying if t is not None]
        since = min(known) if known else None
        if since is not None and c.now < since + SAE_REVIEW_AFTER:
            continue
        what = "has no investigator review" if episode.review_status == "missing" else "changed since the investigator's review"
        yield Finding(
            "SAE-REVIEW-MISSING", (SUBJECT, c.course.subject.id), f"episode_review={episode.kind}:{episode.onset_date.isoformat()}",
            f"SAE-REVIEW-MISSING: the {episode.kind.upper()} episode from {episode.onset_date} (max grade "
            f"{'>= ' if episode.has_incomplete_days else ''}{episode.max_grade}"
            f"{', ICU stay' if stays else ''}{', death' if died else ''}) {what}: the investigator records whether it is "
            "serious (ICH E2A), its relatedness and outcome.",
            values_of(kind=episode.kind, onset_date=episode.onset_date, max_grade=episode.max_grade,
                    icu_stay=bool(stays), death=died, review_status=episode.review_status),
        )


