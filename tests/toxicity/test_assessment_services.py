"""Daily assessment service: derived grades stored with the engine version and a history row;
the grading context comes from the subject's records; later days are re-derived when an
earlier day, a drug log, day 0 or the death record changes (audited as system changes)."""
from datetime import datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError

from toxicity import services
from toxicity.grading import ENGINE_VERSION
from toxicity.models import DailyAssessment, TocilizumabDose
from trials import services as trial_services

NORMAL = dict(temperature_max_c=Decimal("36.8"), ice_score=10, consciousness="alert")


def day(world, n):
    return world.subject_a.day0 + timedelta(days=n)


def assess(world, n, **fields):
    data = {**NORMAL, **fields}
    return services.assessment_create(
        user=world.users["coordinator_a"], subject=world.subject_a, assessment_date=day(world, n), **data
    )


def at(world, n, hour):
    return datetime.combine(day(world, n), time(hour), tzinfo=ZoneInfo(world.site_a.timezone))


def grades(world):
    rows = DailyAssessment.objects.filter(subject=world.subject_a, voided=False).order_by("assessment_date")
    return {r.study_day: r.crs_grade_derived for r in rows}


def test_save_stores_derived_grades_flags_reasons_version_and_one_history_row(world):
    a = assess(world, 1, temperature_max_c=Decimal("39.5"), hypotension=True, vasopressors=["norepinephrine"],
               hypoxia=True, oxygen_device="nasal_cannula", oxygen_flow_l_min=Decimal("2"))
    a.refresh_from_db()
    assert (a.study_day, a.crs_grade_derived, a.icans_grade_derived) == (1, 3, 0)  # the paper's example
    assert a.crs_scale == "astct_2019" and a.engine_version == ENGINE_VERSION
    assert a.reasons and isinstance(a.flags, list)
    assert a.history.count() == 1
    row = a.history.get()
    assert row.history_user == world.users["coordinator_a"] and row.crs_grade_derived == 3


def test_boundary_37_9_vs_38_0_through_the_service(world):
    assert assess(world, 1, temperature_max_c=Decimal("37.9")).crs_grade_derived == 0
    assert assess(world, 2, temperature_max_c=Decimal("38.0")).crs_grade_derived == 1


def test_missing_temperature_is_ne_not_normal(world):
    a = assess(world, 1, temperature_max_c=None)
    assert a.crs_grade_derived is None and "CRS-NOT-EVALUABLE" in a.flags


def test_one_assessment_per_subject_per_day(world):
    assess(world, 1)
    with pytest.raises(ValidationError) as exc:
        assess(world, 1)
    assert "assessment_date" in exc.value.message_dict


@pytest.mark.parametrize(
    "fields, field",
    [
        ({"temperature_max_c": Decimal("24.9")}, "temperature_max_c"),
        ({"temperature_max_c": Decimal("45.1")}, "temperature_max_c"),
        ({"oxygen_flow_l_min": Decimal("80.1"), "oxygen_device": "high_flow_nasal_cannula", "hypoxia": True}, "oxygen_flow_l_min"),
        ({"fio2_percent": 20}, "fio2_percent"),
        ({"fio2_percent": 101}, "fio2_percent"),
        ({"ice_score": 11}, "ice_score"),
        ({"capd_score": 33}, "capd_score"),
        ({"crs_grade_reported": 6}, "crs_grade_reported"),
        ({"vasopressors": ["norepinephrine"]}, "vasopressors"),  # without hypotension
        ({"oxygen_device": "mechanical_ventilation", "hypoxia": True}, "intubation_reason"),
        ({"ice_score": None}, "ice_not_assessable"),  # adult, ICE missing without a reason
        ({"seizure": "grand_mal"}, "seizure"),
    ],
)
def test_hard_limits_are_rejected_naming_the_field_and_nothing_is_stored(world, fields, field):
    with pytest.raises(ValidationError) as exc:
        assess(world, 1, **fields)
    assert field in exc.value.message_dict
    assert not DailyAssessment.objects.filter(subject=world.subject_a).exists()


def test_future_date_and_after_death_are_rejected(world):
    with pytest.raises(ValidationError) as exc:
        services.assessment_create(
            user=world.users["coordinator_a"], subject=world.subject_a,
            assessment_date=world.subject_a.day0 + timedelta(days=400), **NORMAL,
        )
    assert "FUTURE-DATE" in exc.value.message_dict["assessment_date"][0]
    trial_services.death_record(subject=world.subject_a, user=world.users["coordinator_a"],
                                death_date=day(world, 2), death_primary_cause="disease_progression")
    with pytest.raises(ValidationError) as exc:
        assess(world, 3)
    assert "ASSESSMENT-AFTER-DEATH" in exc.value.message_dict["assessment_date"][0]


def test_fever_exemption_comes_from_the_subjects_tocilizumab_log(world):
    """R-CRS-2: after tocilizumab given during CRS, hypotension without fever is still CRS."""
    assess(world, 1, temperature_max_c=Decimal("39.0"))  # onset, grade 1
    day2 = assess(world, 2, temperature_max_c=Decimal("37.0"), hypotension=True)  # no trigger yet: no CRS
    assert day2.crs_grade_derived == 0 and "CRS-NO-FEVER-AT-ONSET" in day2.flags
    dose = services.log_create(TocilizumabDose, user=world.users["coordinator_a"], subject=world.subject_a,
                               administered_at=at(world, 3, 9), dose_mg=Decimal("560"), weight_kg=Decimal("70"),
                               indication="crs")
    # day 2 closed the episode (grade 0) before the dose: a later afebrile hypotension day is still not CRS
    assert grades(world) == {1: 1, 2: 0}
    # move the dose to day 1 evening: day 2 is exempt now, so its hypotension is grade 2 CRS
    services.log_update(dose, user=world.users["coordinator_a"], version=dose.version, reason="time corrected",
                        changes={"administered_at": at(world, 1, 20)})
    assert grades(world) == {1: 1, 2: 2}
    day2 = DailyAssessment.objects.get(pk=day2.pk)
    latest = day2.history.first()
    assert latest.history_change_reason.startswith("system: grades re-derived after")
    assert latest.history_user == world.users["coordinator_a"]
    assert day2.version == 2


def test_correcting_an_earlier_day_re_derives_later_days(world):
    d1 = assess(world, 1, temperature_max_c=Decimal("37.0"))
    assess(world, 2, temperature_max_c=Decimal("37.0"), hypotension=True, antipyretic_given=True)
    assert grades(world) == {1: 0, 2: 0}
    services.assessment_update(assessment=d1, user=world.users["coordinator_a"], version=1,
                               reason="transcription error", changes={"temperature_max_c": Decimal("38.4"),
                                                                       "antipyretic_given": True})
    # day 1 is now CRS onset with an antipyretic: day 2's afebrile hypotension is exempt -> grade 2
    assert grades(world) == {1: 1, 2: 2}


def test_death_record_sets_grade_5_on_the_death_date(world):
    assess(world, 1, temperature_max_c=Decimal("39.0"), hypotension=True, vasopressors=["norepinephrine", "epinephrine"])
    assert grades(world) == {1: 4}
    trial_services.death_record(subject=world.subject_a, user=world.users["coordinator_a"],
                                death_date=day(world, 1), death_primary_cause="crs")
    assert grades(world) == {1: 5}
    death = world.subject_a.deaths.get(voided=False)
    trial_services.death_record(subject=world.subject_a, user=world.users["coordinator_a"], version=death.version,
                                reason="autopsy report", death_date=day(world, 1), death_primary_cause="infection")
    assert grades(world) == {1: 4}  # R-CRS-13: death from another cause is not CRS grade 5


def test_study_day_follows_a_corrected_index_infusion(world):
    a = assess(world, 2)
    assert a.study_day == 2
    infusion = world.infusion_a
    trial_services.infusion_update(
        infusion=infusion, user=world.users["coordinator_a"], version=infusion.version, reason="source updated",
        changes={"infused_at": infusion.infused_at - timedelta(days=1),
                 "lymphodepletion_start_date": infusion.lymphodepletion_start_date - timedelta(days=1)},
    )
    a.refresh_from_db()
    assert a.study_day == 3


def test_child_is_graded_with_capd_from_the_subject_record(world):
    from datetime import date

    from tests.factories import make_infusion, make_subject

    user = world.users["coordinator_a"]
    child = make_subject(user, world.site_a, world.cohort, date_of_birth=date.today() - timedelta(days=int(8 * 365.25)),
                         capd_baseline=2)
    make_infusion(user, child, days_ago=10)
    child.refresh_from_db()
    a = services.assessment_create(user=user, subject=child, assessment_date=child.day0 + timedelta(days=3),
                                   temperature_max_c=Decimal("37"), capd_score=9, consciousness="alert")
    assert a.icans_grade_derived == 3  # R-ICANS-8: CAPD >= 9
    baseline = services.assessment_create(user=user, subject=child, assessment_date=child.day0 + timedelta(days=4),
                                          temperature_max_c=Decimal("37"), capd_score=2,
                                          consciousness="alert")
    assert "CAPD-AT-BASELINE" in baseline.flags


def test_void_re_derives_the_following_days(world):
    d1 = assess(world, 1, temperature_max_c=Decimal("38.5"), antipyretic_given=True)
    assess(world, 2, temperature_max_c=Decimal("37.0"), hypoxia=True, oxygen_device="nasal_cannula",
           oxygen_flow_l_min=Decimal("3"))
    assert grades(world) == {1: 1, 2: 2}
    services.assessment_void(assessment=d1, user=world.users["coordinator_a"], version=1, reason="wrong subject")
    assert grades(world) == {2: 0}


def test_only_data_entry_roles_of_the_site_may_write(world):
    from django.http import Http404

    with pytest.raises(Http404):
        services.assessment_create(user=world.users["monitor_a"], subject=world.subject_a,
                                   assessment_date=day(world, 1), **NORMAL)
    with pytest.raises(Http404):
        services.assessment_create(user=world.users["coordinator_b"], subject=world.subject_a,
                                   assessment_date=day(world, 1), **NORMAL)
