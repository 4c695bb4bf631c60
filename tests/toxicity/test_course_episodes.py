"""The one episode rule (reports.md, toxicity/course/episodes.py): onset, NE inside, minimum grades,
resolution, recurrence, ongoing, max grade; rescue therapy between onset and resolution,
dexamethasone equivalents, ICU days, seriousness per ICH E2A, outcome, review status; and the
stored episodes follow every write."""
from datetime import date, timedelta
from decimal import Decimal

from tests.toxicity.course_builders import DAY0, A, at, drug, on, snap, toci
from toxicity import services
from toxicity.course import records as r
from toxicity.course.episodes import EpisodeDay, derive_spans
from toxicity.grading.dosing import dexamethasone_equivalent_mg
from toxicity.models import Episode

D0 = date(2026, 3, 1)


def d(n):
    return D0 + timedelta(days=n)


def day(n, grade, minimum=None, resolves=None):
    return EpisodeDay(d(n), grade, minimum, grade == 0 if resolves is None else resolves)


def test_onset_ne_inside_resolution_recurrence_and_ongoing():
    days = [day(0, 0), day(1, 1), day(2, None), day(3, 3), day(4, 0), day(5, 0), day(6, 2), day(7, None)]
    first, second = derive_spans(days)
    assert (first.onset_date, first.max_grade, first.max_grade_date, first.resolution_date) == (d(1), 3, d(3), d(4))
    assert first.duration_days == 3 and not first.ongoing and first.has_incomplete_days
    assert second.onset_date == d(6) and second.ongoing and second.resolution_date is None
    assert second.duration_days == 1  # up to the last assessment (an NE day)


def test_ne_day_with_a_proven_minimum_opens_and_maxes_an_episode():
    """R-CRS-15: an NE day provably >= 1 opens an episode; its minimum counts towards the max."""
    (ep,) = derive_spans([day(0, 0), day(1, None, minimum=3), day(2, 2), day(3, 0)])
    assert (ep.onset_date, ep.max_grade, ep.max_grade_date) == (d(1), 3, d(1))
    assert ep.has_incomplete_days
    assert derive_spans([day(0, 0), day(1, None), day(2, 0)]) == []  # no minimum: no episode


def test_only_a_resolution_day_ends_an_episode():
    """A grade-0 day that still has hypotension or hypoxia (no fever, outside a masking window)
    continues the episode; a day without fever, hypotension and hypoxia resolves it."""
    (ep,) = derive_spans([day(1, 2), day(2, 0, resolves=False), day(3, 3), day(4, 0, resolves=True)])
    assert (ep.onset_date, ep.max_grade, ep.resolution_date) == (d(1), 3, d(4))
    assert not ep.has_incomplete_days


def test_dexamethasone_equivalents_use_the_dictionary_ratios():
    assert dexamethasone_equivalent_mg("dexamethasone", Decimal("10")) == Decimal("10.00")
    assert dexamethasone_equivalent_mg("methylprednisolone", Decimal("1000")) == Decimal("187.62")
    assert dexamethasone_equivalent_mg("hydrocortisone", Decimal("26.7")) == Decimal("1.00")
    assert dexamethasone_equivalent_mg("prednisone", Decimal("66.7")) == Decimal("10.00")
    assert dexamethasone_equivalent_mg("prednisolone", Decimal("66.7")) == Decimal("10.00")
    assert dexamethasone_equivalent_mg("other", Decimal("50")) is None


GRADES = (A(0, crs=0), A(1, crs=2), A(2, crs=3), A(3, crs=1), A(4, crs=0))


def test_therapy_counted_from_onset_up_to_but_not_on_the_resolution_day():
    doses = (
        toci(1, 0), toci(2, 1), toci(3, 2, 20), toci(4, 4),  # before onset, two inside, on the resolution day
        drug(r.STEROID, "dexamethasone", 5, 2, 8, "10"),
        drug(r.STEROID, "methylprednisolone", 6, 3, 8, "53.3"),
        drug(r.ANTICYTOKINE, "anakinra", 7, 3, 9, "100", "70"),
        drug(r.ANTICYTOKINE, "siltuximab", 8, 3, 10, "770", "70"),
    )
    exchanges = tuple(r.PlasmaExchange(i, at(n, 8), at(n, 10), on(n), ml, Decimal("1.0"), Decimal("70"))
                      for i, (n, ml) in enumerate(((2, 3000), (3, 2500)), start=1))
    crrt = (r.Hemofiltration(1, at(2, 8), at(2, 8) + timedelta(hours=20, minutes=30), on(2), "cvvhdf", 1750,
                             Decimal("25"), Decimal("70")),)
    c = snap(assessments=GRADES, doses=doses, plasma_exchanges=exchanges, hemofiltrations=crrt)
    (ep,) = c.episodes.crs
    assert ep.tocilizumab_doses == 2
    assert ep.corticosteroid_given and ep.dexamethasone_equivalent_mg == Decimal("20.00")
    assert (ep.anakinra_doses, ep.siltuximab_doses) == (1, 1)
    assert (ep.plasma_exchange_sessions, ep.plasma_exchange_volume_ml) == (2, 5500)
    assert (ep.hemofiltration_sessions, ep.hemofiltration_hours) == (1, Decimal("20.5"))
    assert ep.onset_study_day == 1 and ep.max_grade == 3 and ep.outcome == "recovered"
    assert not ep.serious and ep.seriousness == ()  # grade 3 is severe, not serious (ICH E2A)


def icu(n_from, n_to, reason="crs"):
    return r.IcuStay(1, at(n_from, 16), at(n_to, 12), on(n_from), on(n_to), reason)


def test_icu_stay_for_the_toxicity_makes_it_serious_even_at_grade_2():
    grades = (A(0), A(1, crs=2), A(2, crs=2), A(3, crs=0))
    (ep,) = snap(assessments=grades, icu_stays=(icu(2, 6),)).episodes.crs
    assert ep.icu_days == 1  # day 2 only: day 3 is the resolution day
    assert ep.serious and ep.seriousness == ("hospitalization",)
    (other,) = snap(assessments=grades, icu_stays=(icu(2, 6, reason="other"),)).episodes.crs
    assert other.icu_days == 1 and not other.serious  # an ICU stay for another reason
    (quiet,) = snap(assessments=grades).episodes.crs
    assert quiet.icu_days == 0 and not quiet.serious


def test_grade_4_is_life_threatening_and_a_death_of_the_toxicity_is_fatal():
    grades = (A(0), A(1, crs=2), A(2, crs=4))
    c = snap(assessments=grades + (A(3, crs=5),), death=r.Death(1, on(3), "crs"))
    (fatal,) = c.episodes.crs
    assert fatal.outcome == "fatal" and fatal.seriousness == ("death", "life_threatening") and fatal.ongoing
    c = snap(assessments=(A(0), A(1, crs=1), A(2, crs=1)), death=r.Death(1, on(2), "infection"))
    (other,) = c.episodes.crs
    assert other.outcome == "not_recovered" and not other.serious  # died of something else


def test_the_review_adds_criteria_and_goes_out_of_date_when_the_episode_changes():
    grades = (A(0), A(1, crs=2), A(2, crs=3), A(3, crs=0))
    (unreviewed,) = snap(assessments=grades).episodes.crs
    assert unreviewed.review_status == "missing"
    review = r.EpisodeReview(7, "crs", on(1), True, ("important_medical_event",), "probable", "recovered",
                             unreviewed.review_snapshot())
    (ep,) = snap(assessments=grades, reviews=(review,)).episodes.crs
    assert ep.serious and ep.seriousness == ("important_medical_event",) and ep.relatedness == "probable"
    assert (ep.review_id, ep.review_status) == (7, "current")
    worse = (A(0), A(1, crs=2), A(2, crs=4), A(3, crs=0))
    (changed,) = snap(assessments=worse, reviews=(review,)).episodes.crs
    assert changed.review_status == "outdated" and changed.seriousness == ("life_threatening", "important_medical_event")


NORMAL = dict(temperature_max_c=Decimal("36.8"), ice_score=10, consciousness="alert")


def test_stored_episodes_follow_corrections_and_voids(world):
    user, subject = world.users["coordinator_a"], world.subject_a
    day_ = lambda n: subject.day0 + timedelta(days=n)  # noqa: E731
    services.assessment_create(user=user, subject=subject, assessment_date=day_(1), **{**NORMAL, "temperature_max_c": Decimal("38.0")})
    b = services.assessment_create(user=user, subject=subject, assessment_date=day_(2), **NORMAL)
    services.assessment_create(user=user, subject=subject, assessment_date=day_(3), **{**NORMAL, "temperature_max_c": Decimal("38.4")})
    crs = Episode.objects.filter(subject=subject, kind="crs", voided=False).order_by("episode_number")
    assert [(e.onset_date, e.resolution_date) for e in crs] == [(day_(1), day_(2)), (day_(3), None)]
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
                                  "vasopressors": ["norepinephrine", "epinephrine"]})
    listed = world.client("sponsor").get("/api/v1/episodes/", {"kind": "crs", "min_grade": 3}).data["results"]
    assert [(e["subject_id"], e["max_grade"], e["term"], e["serious"], e["seriousness"]) for e in listed] == [
        (subject.subject_id, 4, "Cytokine release syndrome", True, ["life_threatening"])
    ]
    assert world.client("sponsor").get("/api/v1/episodes/", {"min_grade": 5}).data["results"] == []
    assert world.client("coordinator_b").get("/api/v1/episodes/").data["results"] == []
    assert world.client("coordinator_b").get(f"/api/v1/episodes/{listed[0]['id']}/").status_code == 404
