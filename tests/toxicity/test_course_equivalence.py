"""One course, one answer (issue: one clinical course). For random courses entered in a random order
through the services, with corrections and voids, the live save path (what is stored), the
background check job and a report as of a cut after the last change derive the same daily grades
and the same episodes (with the process's grading memo or without); and the job finds nothing
to re-store and no query the save path missed.
"""
import os
from datetime import datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reporting.snapshot import load_snapshot
from tests.factories import make_infusion, make_subject
from toxicity import services
from toxicity.course.derive import derive_course
from toxicity.course.load import load_course
from toxicity.course.write import check_subjects
from toxicity.models import AnticytokineDose, CorticosteroidDose, DailyAssessment, Episode, Query, TocilizumabDose

# COURSE_PROPERTY_EXAMPLES=500 for a deeper search than the suite's
EXAMPLES = settings(max_examples=int(os.environ.get("COURSE_PROPERTY_EXAMPLES", 20)), deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
COMPARED = ("study_day", "crs_grade_derived", "icans_grade_derived", "ctcae_crs_grade_derived", "minimum_crs_grade",
            "minimum_icans_grade", "fever_masked_by", "flags", "reasons")
EPISODE_FIELDS = ("kind", "episode_number", "onset_date", "max_grade", "max_grade_date", "resolution_date",
                  "ongoing", "has_incomplete_days", "tocilizumab_doses", "corticosteroid_given", "anakinra_doses",
                  "serious", "outcome")

TEMPERATURES = [Decimal("36.8"), Decimal("37.9"), Decimal("38.0"), Decimal("39.4"), None]
HYPOTENSION = [{}, {"hypotension": True}, {"hypotension": True, "vasopressors": ["norepinephrine"]},
               {"hypotension": True, "vasopressors": ["norepinephrine", "epinephrine"]}]
HYPOXIA = [{}, {"hypoxia": True, "oxygen_device": "nasal_cannula", "oxygen_flow_l_min": Decimal("2")},
           {"hypoxia": True, "oxygen_device": "high_flow_nasal_cannula", "oxygen_flow_l_min": Decimal("30")},
           {"hypoxia": True, "oxygen_device": "high_flow_nasal_cannula"}, {"hypoxia": True}]
NEURO = [{"ice_score": 10, "consciousness": "alert"}, {"ice_score": 8, "consciousness": "awakens_spontaneously"},
         {"ice_score": 2, "consciousness": "awakens_to_tactile"},
         {"ice_score": None, "ice_not_assessable": "sedated", "consciousness": "unarousable"},
         {"ice_score": 10, "consciousness": "alert", "seizure": "rapidly_resolving"}]

days = st.fixed_dictionaries({
    "temperature_max_c": st.sampled_from(TEMPERATURES),
    "antipyretic_given": st.booleans(),
    "cv": st.sampled_from(HYPOTENSION),
    "o2": st.sampled_from(HYPOXIA),
    "neuro": st.sampled_from(NEURO),
})
doses = st.fixed_dictionaries({
    "kind": st.sampled_from(["tocilizumab", "dexamethasone", "anakinra"]),
    "day": st.integers(0, 9),
    "hour": st.sampled_from([1, 9, 23]),
    "indication": st.sampled_from(["crs", "crs", "icans", "prophylaxis", "other"]),
    "route": st.sampled_from(["iv", "iv", "intrathecal"]),
})


@st.composite
def courses(draw):
    day_numbers = draw(st.lists(st.integers(0, 9), min_size=2, max_size=8, unique=True))
    entries = [("day", n, draw(days)) for n in day_numbers]
    entries += [("dose", None, d) for d in draw(st.lists(doses, max_size=4, unique_by=lambda d: (d["day"], d["hour"])))]
    order = draw(st.permutations(range(len(entries))))
    corrections = draw(st.lists(st.tuples(st.integers(0, 20), st.sampled_from(TEMPERATURES)), max_size=2))
    void_a_dose = draw(st.booleans())
    return [entries[i] for i in order], corrections, void_a_dose


def _write(world, subject, entry):
    user = world.users["coordinator_a"]
    what, n, fields = entry
    zone = ZoneInfo(subject.site.timezone)
    if what == "day":
        observations = {"temperature_max_c": fields["temperature_max_c"], "antipyretic_given": fields["antipyretic_given"],
                        **fields["cv"], **fields["o2"], **fields["neuro"]}
        return services.assessment_create(user=user, subject=subject, assessment_date=subject.day0 + timedelta(days=n),
                                          **observations)
    at = datetime.combine(subject.day0 + timedelta(days=fields["day"]), time(fields["hour"]), tzinfo=zone)
    if fields["kind"] == "tocilizumab":
        return services.log_create(TocilizumabDose, user=user, subject=subject, administered_at=at,
                                   dose_mg=Decimal("560"), weight_kg=Decimal("70"), indication=fields["indication"])
    if fields["kind"] == "dexamethasone":
        return services.log_create(CorticosteroidDose, user=user, subject=subject, drug="dexamethasone",
                                   administered_at=at, dose_mg=Decimal("10"), route=fields["route"],
                                   indication=fields["indication"])
    return services.log_create(AnticytokineDose, user=user, subject=subject, drug="anakinra", administered_at=at,
                               dose_mg=Decimal("100"), weight_kg=Decimal("70"), route="iv",
                               indication=fields["indication"])


def _stored_days(subject):
    rows = DailyAssessment.objects.filter(subject=subject, voided=False).order_by("assessment_date")
    return {r.assessment_date: {name: getattr(r, name) for name in COMPARED} for r in rows}


def _derived_days(derived):
    return {d.day: {name: value for name, value in d.grades.columns().items() if name in COMPARED}
            for d in derived.days}


def _stored_episodes(subject):
    rows = Episode.objects.filter(subject=subject, voided=False).order_by("kind", "episode_number")
    return [tuple(getattr(e, name) for name in EPISODE_FIELDS) for e in rows]


def _derived_episodes(derived):
    return sorted(tuple(getattr(e, name) for name in EPISODE_FIELDS) for e in derived.episodes)


@EXAMPLES
@given(courses())
def test_the_save_path_the_job_and_a_report_derive_the_same_course(world, course):
    entries, corrections, void_a_dose = course
    user = world.users["coordinator_a"]
    subject = make_subject(user, world.site_a, world.cohort)
    make_infusion(user, subject, days_ago=12)
    subject.refresh_from_db()
    written = [_write(world, subject, entry) for entry in entries]
    assessments = [w for w in written if isinstance(w, DailyAssessment)]
    for index, temperature in corrections:  # corrections of a day, after the rest
        a = DailyAssessment.objects.get(pk=assessments[index % len(assessments)].pk)
        services.assessment_update(assessment=a, user=user, version=a.version, reason="source updated",
                                   changes={"temperature_max_c": temperature})
    dose = next((w for w in written if not isinstance(w, DailyAssessment)), None)
    if void_a_dose and dose is not None:
        dose = type(dose).objects.get(pk=dose.pk)
        services.log_void(dose, user=user, version=dose.version, reason="wrong subject")

    # the job's derivation of the same data (it reads the live tables)
    job = derive_course(load_course(subject.pk), now=timezone.now())
    assert _stored_days(subject) == _derived_days(job)
    assert _stored_episodes(subject) == _derived_episodes(job)
    # the process's memo, filled by every course derived before, answers as a fresh derivation does
    fresh = derive_course(load_course(subject.pk), now=timezone.now(), memo={})
    assert (_derived_days(fresh), _derived_episodes(fresh)) == (_derived_days(job), _derived_episodes(job))
    # a report as of a cut after the last change
    report = load_snapshot(world.trial, timezone.now()).derived[subject.pk]
    assert _derived_days(report) == _derived_days(job)
    assert _derived_episodes(report) == _derived_episodes(job)
    # the job itself: nothing to re-store, no save-time query missed, none to close
    versions = dict(DailyAssessment.objects.filter(subject=subject).values_list("pk", "version"))
    open_before = set(Query.objects.filter(subject=subject, status="open").values_list("pk", flat=True))
    outcome = check_subjects([subject.pk])
    assert {q.rule_id for q in outcome.opened} <= {"ASSESSMENT-MISSING"}
    assert outcome.auto_closed == 0
    assert dict(DailyAssessment.objects.filter(subject=subject).values_list("pk", "version")) == versions
    assert open_before <= set(Query.objects.filter(subject=subject, status="open").values_list("pk", flat=True))


def test_records_of_three_logs_with_the_same_id_stay_apart():
    """Found by the property above: voiding tocilizumab dose 5 removed anakinra dose 5 from the
    course in memory (the dose logs share one collection; a record is its kind and its id)."""
    from tests.toxicity.course_builders import drug, snap, toci
    from toxicity.course import records as r

    course = snap(doses=(toci(5, 1), drug(r.ANTICYTOKINE, "anakinra", 5, 2, 9, "100", "70"))).course
    left = course.with_record(r.TOCILIZUMAB, course.doses_of(r.TOCILIZUMAB)[0], removed=True)
    assert [(d.kind, d.id) for d in left.doses] == [(r.ANTICYTOKINE, 5)]
