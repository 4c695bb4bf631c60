"""Multi-day courses through the service layer (issue: one clinical course). Each is a short course
with its expected daily grades, episodes (onset, max, resolution) and queries, entered as a
coordinator would, through the same services as the forms and the API.

grading.md R-CRS-2 (masking windows), R-CRS-14 (resolution), R-CRS-15 (minimum grades), R-ICANS-3
(sedation), R-ICANS-6 (alert / awakens spontaneously); checks.md CRS-FEVER-MASKED,
TOCI-COURSE-MAX, ALGORITHM-TOCI-DELAY, STEROID-DOSE-IMPOSSIBLE; reports.md episodes.
"""
from datetime import datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError

from toxicity import services
from toxicity.course.write import check_subjects
from toxicity.models import (
    AnticytokineDose,
    CorticosteroidDose,
    DailyAssessment,
    Episode,
    Query,
    QueryOrigin,
    TocilizumabDose,
)

NORMAL = dict(temperature_max_c=Decimal("36.8"), ice_score=10, consciousness="alert")
AFEBRILE = Decimal("37.0")


def on(world, n):
    return world.subject_a.day0 + timedelta(days=n)


def at(world, n, hour, minute=0):
    return datetime.combine(on(world, n), time(hour, minute), tzinfo=ZoneInfo(world.site_a.timezone))


def assess(world, n, **fields):
    return services.assessment_create(user=world.users["coordinator_a"], subject=world.subject_a,
                                      assessment_date=on(world, n), **{**NORMAL, **fields})


def toci(world, n, hour=9, minute=0, indication="crs", weight="70"):
    return services.log_create(TocilizumabDose, user=world.users["coordinator_a"], subject=world.subject_a,
                               administered_at=at(world, n, hour, minute), dose_mg=Decimal("560"),
                               weight_kg=Decimal(weight), indication=indication)


def steroid(world, n, *, drug="dexamethasone", mg="10", indication="crs", route="iv", hour=11, weight=None):
    return services.log_create(CorticosteroidDose, user=world.users["coordinator_a"], subject=world.subject_a,
                               drug=drug, administered_at=at(world, n, hour), dose_mg=Decimal(mg), route=route,
                               indication=indication, weight_kg=Decimal(weight) if weight else None)


def crs_grades(world):
    rows = DailyAssessment.objects.filter(subject=world.subject_a, voided=False).order_by("assessment_date")
    return {r.study_day: "NE" if r.crs_grade_derived is None else r.crs_grade_derived for r in rows}


def icans_grades(world):
    rows = DailyAssessment.objects.filter(subject=world.subject_a, voided=False).order_by("assessment_date")
    return {r.study_day: "NE" if r.icans_grade_derived is None else r.icans_grade_derived for r in rows}


def episodes(world, kind="crs"):
    """(onset study day, max grade, resolution study day or None) of the stored episodes."""
    day0 = world.subject_a.day0
    rows = Episode.objects.filter(subject=world.subject_a, kind=kind, voided=False).order_by("episode_number")
    return [((e.onset_date - day0).days, e.max_grade,
             None if e.resolution_date is None else (e.resolution_date - day0).days) for e in rows]


def open_queries(world):
    """{(rule id, study day or record label)} of the subject's open rule queries."""
    found = set()
    for q in Query.objects.filter(subject=world.subject_a, origin=QueryOrigin.RULE, status="open"):
        where = q.record_type
        if q.record_type == "toxicity.dailyassessment":
            where = DailyAssessment.objects.get(pk=q.record_id).study_day
        found.add((q.rule_id, where))
    return found


def hypotensive(*agents):
    return {"hypotension": True, "vasopressors": list(agents)}


def test_fever_masked_after_tocilizumab_with_a_grade_0_day_in_between(world):
    """The worst case of the old course: after tocilizumab one afebrile day off all support closed
    the episode, and the next afebrile day on a vasopressor graded CRS 0. The dose's 14-day window
    masks the recurrence: a new episode, grade 3 on the pressor day, flagged CRS-FEVER-MASKED."""
    assess(world, 1, temperature_max_c=Decimal("39.0"))
    assess(world, 2, temperature_max_c=Decimal("39.2"), **hypotensive())
    toci(world, 2)
    assess(world, 3, temperature_max_c=AFEBRILE)
    pressor_day = assess(world, 4, temperature_max_c=Decimal("37.1"), **hypotensive("norepinephrine"))
    assess(world, 5, temperature_max_c=Decimal("36.9"))
    assert crs_grades(world) == {1: 1, 2: 2, 3: 0, 4: 3, 5: 0}
    assert episodes(world) == [(1, 2, 3), (4, 3, 5)]
    assert open_queries(world) == {("CRS-FEVER-MASKED", 4)}
    pressor_day.refresh_from_db()
    assert pressor_day.fever_masked_by == {"drug": "tocilizumab", "date": on(world, 2).isoformat()}
    q = Query.objects.get(rule_id="CRS-FEVER-MASKED")
    assert q.values["masked_by"] == "tocilizumab" and q.values["masked_since"] == on(world, 2).isoformat()
    assert "tocilizumab on" in q.text


def test_masking_expires_after_day_14_of_the_last_dose(world):
    """The window is the dose day and the following 14 days: day 15 of a dose on day 1 is inside,
    day 16 is not (then: no CRS, CRS-NO-FEVER-AT-ONSET, and the episode continues)."""
    assess(world, 1, temperature_max_c=Decimal("39.0"))
    toci(world, 1, hour=10)
    assess(world, 2, temperature_max_c=AFEBRILE)
    assess(world, 15, temperature_max_c=AFEBRILE, **hypotensive())
    assess(world, 16, temperature_max_c=AFEBRILE, **hypotensive())
    assert crs_grades(world) == {1: 1, 2: 0, 15: 2, 16: 0}
    assert episodes(world) == [(1, 1, 2), (15, 2, None)]  # day 16 is no resolution day: hypotension
    assert open_queries(world) == {("CRS-FEVER-MASKED", 15), ("CRS-NO-FEVER-AT-ONSET", 16), ("ONSET-LATE", 15)}


def test_an_antipyretic_on_an_ne_day_masks_the_next_day(world):
    """Windows come from the dates, not from gradable days: the antipyretic of an NE day (cannula
    flow missing) masks the next day; the day after that is outside its window."""
    assess(world, 1, temperature_max_c=Decimal("38.5"))
    assess(world, 2, temperature_max_c=Decimal("38.6"), antipyretic_given=True, hypoxia=True,
           oxygen_device="high_flow_nasal_cannula")  # flow missing: 2 or 3
    assess(world, 3, temperature_max_c=AFEBRILE, **hypotensive())
    assess(world, 4, temperature_max_c=AFEBRILE, **hypotensive())
    assert crs_grades(world) == {1: 1, 2: "NE", 3: 2, 4: 0}
    day2 = DailyAssessment.objects.get(subject=world.subject_a, assessment_date=on(world, 2))
    assert day2.minimum_crs_grade == 2
    day3 = DailyAssessment.objects.get(subject=world.subject_a, assessment_date=on(world, 3))
    assert day3.fever_masked_by == {"drug": "antipyretic", "date": on(world, 2).isoformat()}
    assert episodes(world) == [(1, 2, None)]
    # day 2 is provably grade >= 2 (its minimum): the protocol algorithm expected tocilizumab then
    assert open_queries(world) == {("CRS-NOT-EVALUABLE", 2), ("CRS-FEVER-MASKED", 3), ("CRS-NO-FEVER-AT-ONSET", 4),
                                   ("ALGORITHM-TOCI-DELAY", 2)}


@pytest.mark.parametrize("indication, route, grade", [
    ("prophylaxis", "iv", 0),  # R-CRS-2: prophylaxis never masks
    ("other", "iv", 0),  # indication other does not mask
    ("crs", "intrathecal", 0),  # an intrathecal steroid never masks
    ("crs", "iv", 2),  # a systemic steroid for CRS masks that day and the next 3
])
def test_prophylactic_dexamethasone_does_not_mask(world, indication, route, grade):
    assess(world, 1, temperature_max_c=Decimal("38.6"))
    steroid(world, 1, indication=indication, route=route)
    assess(world, 2, temperature_max_c=AFEBRILE, **hypotensive())
    assert crs_grades(world) == {1: 1, 2: grade}
    if grade:  # and no tocilizumab on the first grade >= 2 day of the episode
        assert open_queries(world) == {("CRS-FEVER-MASKED", 2), ("ALGORITHM-TOCI-DELAY", 2)}
    else:
        assert open_queries(world) == {("CRS-NO-FEVER-AT-ONSET", 2)}


def test_a_dose_before_onset_never_masks(world):
    toci(world, 0, hour=20)  # given before any CRS
    assess(world, 1, temperature_max_c=AFEBRILE, **hypotensive())
    assert crs_grades(world) == {1: 0}
    assert episodes(world) == []


def test_ne_day_with_a_provable_minimum_opens_an_episode(world):
    """R-CRS-15: fever and one vasopressor with the oxygen device missing is NE, at least 3; the
    episode opens on it and its maximum is that floor, marked incomplete."""
    assess(world, 1, temperature_max_c=Decimal("38.8"), hypoxia=True, **hypotensive("norepinephrine"))
    assess(world, 2, temperature_max_c=AFEBRILE)
    assert crs_grades(world) == {1: "NE", 2: 0}
    (episode,) = Episode.objects.filter(subject=world.subject_a, kind="crs", voided=False)
    assert (episode.onset_date, episode.max_grade, episode.has_incomplete_days) == (on(world, 1), 3, True)
    assert episode.resolution_date == on(world, 2)
    # provably grade >= 2 (its minimum, 3): the protocol algorithm expected tocilizumab that day
    assert open_queries(world) == {("CRS-NOT-EVALUABLE", 1), ("ALGORITHM-TOCI-DELAY", 1)}
    listed = world.client("sponsor").get("/api/v1/episodes/", {"kind": "crs"}).data["results"]
    assert [(e["max_grade"], e["has_incomplete_days"]) for e in listed] == [(3, True)]


def test_five_tocilizumab_doses_over_two_episodes(world):
    """TOCI-COURSE-MAX counts the course, not the episode: 3 doses in the first episode and 2 in a
    recurrence raise one query, on the fifth dose."""
    assess(world, 1, temperature_max_c=Decimal("39.0"), **hypotensive())
    toci(world, 1, hour=8)
    toci(world, 1, hour=18)
    assess(world, 2, temperature_max_c=Decimal("38.5"), **hypotensive())
    toci(world, 2, hour=10)
    assess(world, 3, temperature_max_c=AFEBRILE)
    assess(world, 17, temperature_max_c=Decimal("39.1"), **hypotensive())  # after the window: fever again
    toci(world, 17, hour=9)
    assess(world, 18, temperature_max_c=Decimal("38.9"), **hypotensive())
    fifth = toci(world, 18, hour=9)
    assert episodes(world) == [(1, 2, 3), (17, 2, None)]
    course_max = Query.objects.filter(subject=world.subject_a, rule_id="TOCI-COURSE-MAX", status="open")
    assert [(q.record_id, q.values["dose_number_in_course"]) for q in course_max] == [(fifth.pk, 5)]


def test_tocilizumab_at_23_00_the_evening_before_onset_counts_for_the_algorithm(world):
    """ALGORITHM-TOCI-DELAY counts a dose from 24 h before 00:00 of the first grade >= 2 day; a dose
    given before onset does not mask fever."""
    assess(world, 1, temperature_max_c=Decimal("37.5"))
    toci(world, 1, hour=23)
    assess(world, 2, temperature_max_c=Decimal("39.0"), **hypotensive())
    assess(world, 3, temperature_max_c=AFEBRILE, **hypotensive())  # not masked: the dose came before onset
    assert crs_grades(world) == {1: 0, 2: 2, 3: 0}
    assert open_queries(world) == {("CRS-NO-FEVER-AT-ONSET", 3)}


def test_tocilizumab_later_than_the_window_raises_the_algorithm_query(world):
    assess(world, 1, temperature_max_c=Decimal("37.5"))
    assess(world, 2, temperature_max_c=Decimal("39.0"), **hypotensive())
    toci(world, 3, hour=0, minute=1)  # 24 h 1 min after 00:00 of day 2
    assert ("ALGORITHM-TOCI-DELAY", 2) in open_queries(world)


def test_sedated_unarousable_patient_is_never_icans_4(world):
    """R-ICANS-3: sedation makes the ICE and consciousness domains not evaluable; without a seizure,
    motor or edema finding the grade is NE, and no ICANS episode starts."""
    assess(world, 1, ice_score=None, ice_not_assessable="sedated", consciousness="unarousable")
    assess(world, 2, ice_score=None, ice_not_assessable="sedated", consciousness="unarousable",
           seizure="rapidly_resolving")
    assess(world, 3)
    assert icans_grades(world) == {1: "NE", 2: 3, 3: 0}
    assert episodes(world, "icans") == [(2, 3, 3)]
    assert open_queries(world) == {("ICANS-NOT-EVALUABLE", 1), ("ICANS-NOT-EVALUABLE", 2)}


def test_drowsy_patient_waking_spontaneously_is_icans_1(world):
    """R-ICANS-6: awakens spontaneously is drowsy (grade 1); alert is normal."""
    assess(world, 1, consciousness="awakens_spontaneously")
    assess(world, 2, consciousness="alert")
    assert icans_grades(world) == {1: 1, 2: 0}
    assert episodes(world, "icans") == [(1, 1, 2)]


def test_a_methylprednisolone_dose_followed_by_a_later_lower_weight(world):
    """Per-kg limits use the weight recorded on or before the dose date, never a later one."""
    dose = steroid(world, 2, drug="methylprednisolone", mg="1000", indication="icans")  # 14.3 mg/kg at 70 kg
    services.log_create(AnticytokineDose, user=world.users["coordinator_a"], subject=world.subject_a,
                        drug="anakinra", administered_at=at(world, 4, 9), dose_mg=Decimal("100"),
                        weight_kg=Decimal("30"), route="iv", indication="icans")
    # a correction of the earlier dose is checked with the weight of its own date (70 kg): accepted
    dose = services.log_update(dose, user=world.users["coordinator_a"], version=dose.version,
                               reason="time corrected", changes={"administered_at": at(world, 2, 12)})
    assert dose.version == 2
    # the same dose after the lower weight is above 30 mg/kg (33.33 at 30 kg): impossible
    with pytest.raises(ValidationError) as exc:
        steroid(world, 5, drug="methylprednisolone", mg="1000", indication="icans")
    assert "STEROID-DOSE-IMPOSSIBLE" in exc.value.message_dict["dose_mg"][0]
    assert "30" in exc.value.message_dict["dose_mg"][0]
    assert not Query.objects.filter(rule_id="STEROID-DOSE-HIGH-CHILD").exists()  # 70 kg on day 2: not a child


def test_the_job_finds_what_the_save_found_and_changes_nothing(world):
    """The consistency job derives the course the same way: no grade to re-store, the same queries."""
    test_fever_masked_after_tocilizumab_with_a_grade_0_day_in_between(world)
    versions = dict(DailyAssessment.objects.filter(subject=world.subject_a).values_list("pk", "version"))
    before = open_queries(world)
    outcome = check_subjects([world.subject_a.pk])
    assert {q.rule_id for q in outcome.opened} == {"ASSESSMENT-MISSING"}  # the job's own rule: days not entered
    assert outcome.auto_closed == 0
    assert dict(DailyAssessment.objects.filter(subject=world.subject_a).values_list("pk", "version")) == versions
    assert {k for k in open_queries(world) if k[0] != "ASSESSMENT-MISSING"} == before
