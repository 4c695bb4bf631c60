"""Synthetic daily courses for the demo trial: CRS and ICANS grades 0-5, children and adults,
tocilizumab, corticosteroids, anakinra, plasma exchange, hemofiltration, ICU stays, deaths and
a few typed-in CTCAE adverse events.

Every record goes through the services as the site's demo coordinator, so derived grades,
flags and the audit trail are exactly what a coordinator's entries would produce.
"""
from datetime import datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.utils import timezone

from toxicity import services
from toxicity.models import (
    AdverseEvent,
    AnticytokineDose,
    CorticosteroidDose,
    DailyAssessment,
    HemofiltrationSession,
    IcuStay,
    PlasmaExchange,
    TocilizumabDose,
)
from trials import services as trial_services
from trials.models import Subject

ADULT = {"temperature_max_c": "36.9", "ice_score": 10, "consciousness": "alert"}
CHILD = {"temperature_max_c": "36.9", "capd_score": 0, "consciousness": "alert"}
F = lambda t: {"temperature_max_c": t}  # noqa: E731  fever of the day
HYPOTENSION = {"hypotension": True}
ONE_PRESSOR = {"hypotension": True, "vasopressors": ["norepinephrine"]}
TWO_PRESSORS = {"hypotension": True, "vasopressors": ["norepinephrine", "epinephrine"]}
LOW_FLOW = {"hypoxia": True, "oxygen_device": "nasal_cannula", "oxygen_flow_l_min": "3", "fio2_percent": 32}
HIGH_FLOW = {"hypoxia": True, "oxygen_device": "high_flow_nasal_cannula", "oxygen_flow_l_min": "30", "fio2_percent": 50}
BIPAP = {"hypoxia": True, "oxygen_device": "bipap", "fio2_percent": 60}

# subject id -> {study day: observations on top of the normal day}; absent days are normal.
COURSES = {
    "101-0001": {1: F("38.4"), 2: F("38.9"), 3: F("37.6")},
    "101-0002": {1: F("38.6"), 2: {**F("39.1"), **HYPOTENSION, **LOW_FLOW}, 3: {**F("37.4"), **LOW_FLOW},
                 5: {"ice_score": 8}, 6: {"ice_score": 9}},
    "101-0003": {1: F("38.8"), 2: {**F("39.6"), **ONE_PRESSOR}, 3: {**F("37.8"), **ONE_PRESSOR, "capd_score": 10},
                 4: {"capd_score": 6}, 5: {"capd_score": 2}},
    "101-0004": {2: F("38.1"), 3: {"ice_score": 9}},
    "101-0005": {1: F("39.0"), 2: {**F("40.1"), **ONE_PRESSOR, **HIGH_FLOW},
                 3: {**F("39.2"), **TWO_PRESSORS, **BIPAP, "ice_score": None, "ice_not_assessable": "unarousable",
                     "consciousness": "unarousable"},
                 4: {**F("38.2"), **ONE_PRESSOR, **HIGH_FLOW, "ice_score": 2, "consciousness": "awakens_to_tactile"},
                 5: {**F("37.5"), **LOW_FLOW, "ice_score": 6, "consciousness": "awakens_to_voice"}, 6: {"ice_score": 8},
                 8: {"temperature_max_c": None}},  # not measured: NE with a query-to-be
    "101-0006": {},
    "102-0001": {1: F("39.3"), 2: {**F("39.8"), **ONE_PRESSOR, **HIGH_FLOW},
                 3: {**F("39.5"), **TWO_PRESSORS, **BIPAP}, 4: {**F("39.9"), **TWO_PRESSORS, **BIPAP,
                                                              "ice_score": 4}},
    "102-0002": {2: F("38.2"), 4: {"ice_score": 5, "consciousness": "awakens_to_voice"}, 5: {"ice_score": 7}},
    "102-0003": {1: F("38.9"), 2: {**F("39.4"), **HYPOTENSION, "capd_score": 5}, 3: {"capd_score": 3}},
    "102-0004": {3: {"capd_score": 12, "consciousness": "awakens_to_voice"}, 4: {"capd_score": 7}},
    "102-0005": {1: F("38.7"), 2: {**F("38.0"), **HIGH_FLOW}, 4: {"ice_score": 3, "seizure": "rapidly_resolving"},
                 5: {"ice_score": None, "ice_not_assessable": "unarousable", "consciousness": "unarousable",
                     "cerebral_edema": "diffuse_or_signs"}},
    "102-0006": {1: F("38.3"), 2: {"temperature_max_c": None}, 3: F("38.5")},
}
# subject id -> (study day of death, primary cause)
DEATHS = {"102-0001": (4, "crs"), "102-0005": (5, "icans")}
# Typed-in CTCAE v5.0 adverse events: subject id -> [(onset day, resolution day or None, fields)].
ADVERSE_EVENTS = {
    "101-0002": [(6, 9, {"ctcae_term": "Febrile neutropenia", "grade": 3, "serious": True,
                         "seriousness": ["hospitalization"], "relatedness": "probable", "outcome": "recovered"})],
    "101-0003": [(10, None, {"ctcae_term": "Neutrophil count decreased", "grade": 4, "relatedness": "probable",
                             "outcome": "not_recovered"})],
    "102-0003": [(14, 20, {"ctcae_term": "Upper respiratory infection", "grade": 2, "relatedness": "unlikely",
                           "outcome": "recovered"})],
}


def _at(subject: Subject, day: int, hour: int, minute: int = 0) -> datetime:
    local = datetime.combine(subject.day0 + timedelta(days=day), time(hour, minute), ZoneInfo(subject.site.timezone))
    return min(local, timezone.now() - timedelta(minutes=5))


def _rescue(subject: Subject, user) -> None:
    """Rescue therapy as the courses need it (NCCN/ASTCT practice: tocilizumab for grade >= 2)."""
    w = subject.baseline_weight_kg
    toci = lambda day, hour: services.log_create(  # noqa: E731
        TocilizumabDose, user=user, subject=subject, administered_at=_at(subject, day, hour),
        dose_mg=min((12 if w < 30 else 8) * w, Decimal(800)).quantize(Decimal("1")), weight_kg=w, indication="crs",
    )
    dex = lambda day, hour, mg, why="icans": services.log_create(  # noqa: E731
        CorticosteroidDose, user=user, subject=subject, drug="dexamethasone", administered_at=_at(subject, day, hour),
        dose_mg=Decimal(mg), route="iv", indication=why,
    )
    sid = subject.subject_id
    if sid in ("101-0002", "102-0003"):
        toci(2, 10)
    if sid == "101-0003":
        toci(2, 9), toci(2, 21), dex(3, 8, 5)
    if sid in ("101-0005", "102-0001"):
        toci(2, 8), toci(2, 18), dex(3, 7, 10, "crs"), dex(3, 13, 10, "crs")
        services.log_create(IcuStay, user=user, subject=subject, admitted_at=_at(subject, 2, 20),
                            discharged_at=_at(subject, 6, 12) if sid == "101-0005" else None, reason="crs")
    if sid == "101-0005":
        services.log_create(AnticytokineDose, user=user, subject=subject, drug="anakinra", administered_at=_at(subject, 3, 9),
                            dose_mg=Decimal(100), weight_kg=w, route="iv", indication="icans")
        services.log_create(HemofiltrationSession, user=user, subject=subject, modality="cvvhdf",
                            started_at=_at(subject, 3, 16), ended_at=_at(subject, 5, 10),
                            effluent_rate_ml_h=int(25 * w), weight_kg=w)
    if sid == "102-0001":
        services.log_create(PlasmaExchange, user=user, subject=subject, started_at=_at(subject, 3, 9),
                            ended_at=_at(subject, 3, 11), plasma_volume_exchanged_ml=int(65 * w * Decimal("0.65")),
                            replacement_fluid="ffp_albumin", hematocrit_fraction=Decimal("0.32"), weight_kg=w)
    if sid == "102-0005":
        dex(4, 10, 10), dex(4, 16, 10)
        services.log_create(PlasmaExchange, user=user, subject=subject, started_at=_at(subject, 2, 14),
                            ended_at=_at(subject, 2, 16), plasma_volume_exchanged_ml=3500,
                            replacement_fluid="albumin_5", hematocrit_fraction=Decimal("0.30"), weight_kg=w)


def _adverse_events(subject: Subject, user, *, local_today) -> None:
    for onset, resolved, fields in ADVERSE_EVENTS.get(subject.subject_id, []):
        day = lambda n: min(subject.day0 + timedelta(days=n), local_today)  # noqa: E731  never in the future
        services.log_create(AdverseEvent, user=user, subject=subject, ctcae_version="v5.0", onset_date=day(onset),
                            resolution_date=day(resolved) if resolved is not None else None, **fields)


def load_course(subject: Subject, user, *, today) -> None:
    if DailyAssessment.objects.filter(subject=subject).exists():
        return
    base = CHILD if (subject.age_years or 99) < 12 or subject.developmental_delay else ADULT
    death = DEATHS.get(subject.subject_id)
    local_today = min(today, trial_services.site_local_date(timezone.now(), subject.site))
    last_day = min(subject.trial.daily_assessment_until_day, (local_today - subject.day0).days, death[0] if death else 99)
    for day in range(-1, last_day + 1):
        fields = {**base, **COURSES.get(subject.subject_id, {}).get(day, {})}
        if "capd_score" in fields and base is ADULT:
            fields.pop("capd_score")
        services.assessment_create(user=user, subject=subject, assessment_date=subject.day0 + timedelta(days=day), **fields)
    _rescue(subject, user)
    _adverse_events(subject, user, local_today=local_today)
    if death:
        trial_services.death_record(subject=subject, user=user, death_date=subject.day0 + timedelta(days=death[0]),
                                    death_primary_cause=death[1])


def load_demo(trial, coordinators, *, today) -> None:
    for subject in Subject.objects.filter(trial=trial, voided=False).select_related("site", "trial"):
        load_course(subject, coordinators[subject.site.site_number], today=today)
