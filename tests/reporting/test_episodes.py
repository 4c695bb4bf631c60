"""Episodes (reports.md): onset, NE inside, resolution, recurrence, ongoing, max grade, rescue
therapy between onset and resolution, dexamethasone equivalents, ICU days, seriousness, outcome;
and the stored episodes follow every write."""
from datetime import date, timedelta
from decimal import Decimal

from reporting.episodes import (
    Course,
    IcuStay,
    Therapy,
    course_episodes,
    derive_episodes,
    dexamethasone_equivalent_mg,
)
from reporting.models import Episode
from toxicity import services

D0 = date(2026, 3, 1)


def d(n):
    return D0 + timedelta(days=n)


def test_onset_ne_inside_resolution_recurrence_and_ongoing():
    days = [(d(0), 0), (d(1), 1), (d(2), None), (d(3), 3), (d(4), 0), (d(5), 0), (d(6), 2), (d(7), None)]
    first, second = derive_episodes(days)
    assert (first.onset_date, first.max_grade, first.max_grade_date, first.resolution_date) == (d(1), 3, d(3), d(4))
    assert first.duration_days == 3 and not first.ongoing
    assert second.onset_date == d(6) and second.ongoing and second.resolution_date is None
    assert second.duration_days == 1  # up to the last assessment (an NE day)


def test_dexamethasone_equivalents_use_the_reports_ratios():
    assert dexamethasone_equivalent_mg("dexamethasone", Decimal("10")) == Decimal("10.00")
    assert dexamethasone_equivalent_mg("methylprednisolone", Decimal("1000")) == Decimal("187.62")
    assert dexamethasone_equivalent_mg("hydrocortisone", Decimal("26.7")) == Decimal("1.00")
    assert dexamethasone_equivalent_mg("prednisone", Decimal("66.7")) == Decimal("10.00")
    assert dexamethasone_equivalent_mg("other", Decimal("50")) == Decimal("0")


def course(**kw):
    grades = kw.pop("crs", [(d(0), 0), (d(1), 2), (d(2), 3), (d(3), 1), (d(4), 0)])
    return Course(day0=D0, crs=tuple(grades), icans=((d(0), 0),), **kw)


def test_therapy_counted_from_onset_up_to_but_not_on_the_resolution_day():
    therapies = (
        Therapy("tocilizumab", d(0)),  # before onset
        Therapy("tocilizumab", d(1)), Therapy("tocilizumab", d(2)),
        Therapy("tocilizumab", d(4)),  # resolution day: after the episode
        Therapy("corticosteroid", d(2), drug="dexamethasone", dose_mg=Decimal("10")),
        Therapy("corticosteroid", d(3), drug="methylprednisolone", dose_mg=Decimal("53.3")),
        Therapy("anticytokine", d(3), drug="anakinra"),
        Therapy("anticytokine", d(3), drug="siltuximab"),
        Therapy("plasma_exchange", d(2), volume_ml=3000), Therapy("plasma_exchange", d(3), volume_ml=2500),
        Therapy("hemofiltration", d(2), hours=Decimal("20.5")),
    )
    (ep,) = course_episodes(course(therapies=therapies), cut=d(10))
    assert ep["tocilizumab_doses"] == 2
    assert ep["corticosteroid_given"] and ep["dexamethasone_equivalent_mg"] == Decimal("20.00")
    assert (ep["anakinra_doses"], ep["siltuximab_doses"]) == (1, 1)
    assert (ep["plasma_exchange_sessions"], ep["plasma_exchange_volume_ml"]) == (2, 5500)
    assert (ep["hemofiltration_sessions"], ep["hemofiltration_hours"]) == (1, Decimal("20.5"))
    assert ep["onset_study_day"] == 1 and ep["max_grade"] == 3 and ep["serious"] and ep["outcome"] == "recovered"


def test_icu_days_within_the_episode_make_it_serious_even_at_grade_2():
    grades = [(d(0), 0), (d(1), 2), (d(2), 2), (d(3), 0)]
    (ep,) = course_episodes(course(crs=grades, icu_stays=(IcuStay(d(2), d(6)),)), cut=d(10))
    assert ep["icu_days"] == 1  # day 2 only: day 3 is the resolution day
    assert ep["serious"]
    (quiet,) = course_episodes(course(crs=grades), cut=d(10))
    assert quiet["icu_days"] == 0 and not quiet["serious"]


def test_death_of_the_toxicity_during_the_episode_is_fatal_and_other_deaths_are_not():
    grades = [(d(0), 0), (d(1), 2), (d(2), 4)]
    (fatal,) = course_episodes(course(crs=grades, death_date=d(3), death_cause="crs"), cut=d(3))
    assert fatal["outcome"] == "fatal" and fatal["serious"] and fatal["ongoing"]
    (other,) = course_episodes(course(crs=[(d(0), 0), (d(1), 1), (d(2), 1)], death_date=d(2),
                                      death_cause="infection"), cut=d(3))
    assert other["outcome"] == "not_recovered" and other["serious"]  # death during the episode


NORMAL = dict(temperature_max_c=Decimal("36.8"), ice_score=10, consciousness="awakens_spontaneously")


def test_stored_episodes_follow_corrections_and_voids(world):
    user, subject = world.users["coordinator_a"], world.subject_a
    day = lambda n: subject.day0 + timedelta(days=n)  # noqa: E731
    services.assessment_create(user=user, subject=subject, assessment_date=day(1), **{**NORMAL, "temperature_max_c": Decimal("38.0")})
    b = services.assessment_create(user=user, subject=subject, assessment_date=day(2), **NORMAL)
    services.assessment_create(user=user, subject=subject, assessment_date=day(3), **{**NORMAL, "temperature_max_c": Decimal("38.4")})
    crs = Episode.objects.filter(subject=subject, kind="crs", voided=False).order_by("episode_number")
    assert [(e.onset_date, e.resolution_date) for e in crs] == [(day(1), day(2)), (day(3), None)]
    first = crs[0]
    # a fever on day 2 joins the two episodes: the second is voided, the first is now ongoing
    services.assessment_update(assessment=b, user=user, version=b.version, reason="source updated",
                               changes={"temperature_max_c": Decimal("38.1")})
    crs = list(Episode.objects.filter(subject=subject, kind="crs").order_by("episode_number"))
    assert [(e.episode_number, e.voided) for e in crs] == [(1, False), (2, True)]
    assert crs[0].ongoing and crs[0].resolution_date is None
    assert crs[0].pk == first.pk and crs[0].modified_at > first.modified_at
    # 37.9 is no fever: the boundary splits them again
    b.refresh_from_db()
    services.assessment_update(assessment=b, user=user, version=b.version, reason="transcription error",
                               changes={"temperature_max_c": Decimal("37.9")})
    assert Episode.objects.filter(subject=subject, kind="crs", voided=False).count() == 2


def test_episode_endpoint_filters_and_scope(world):
    user, subject = world.users["coordinator_a"], world.subject_a
    services.assessment_create(user=user, subject=subject, assessment_date=subject.day0 + timedelta(days=1),
                               **{**NORMAL, "temperature_max_c": Decimal("39.0"), "hypotension": True,
                                  "vasopressors": ["norepinephrine"]})
    listed = world.client("sponsor").get("/api/v1/episodes/", {"kind": "crs", "min_grade": 3}).data["results"]
    assert [(e["subject_id"], e["max_grade"], e["term"], e["serious"]) for e in listed] == [
        (subject.subject_id, 3, "Cytokine release syndrome", True)
    ]
    assert world.client("sponsor").get("/api/v1/episodes/", {"min_grade": 4}).data["results"] == []
    assert world.client("coordinator_b").get("/api/v1/episodes/").data["results"] == []
    assert world.client("coordinator_b").get(f"/api/v1/episodes/{listed[0]['id']}/").status_code == 404
