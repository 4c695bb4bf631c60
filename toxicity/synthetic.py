"""Reproducible synthetic CAR-T trials for benchmarks, demos and tests.

Courses follow the shape of published CAR-T cohorts (ZUMA-1, JULIET, ELIANA, KarMMa: CRS in
about three quarters of patients, grade >= 3 in about one in eight; ICANS in about two fifths,
grade >= 3 in about one in eight; CRS onset day 1-7, ICANS a few days later), with rescue
therapy as guidelines give it and a few deliberate inconsistencies (reported grades that
differ, missing temperatures and days, off-label tocilizumab doses, weight jumps) for the
consistency job to find. Rows are written with ``bulk_insert_with_history``: one history row each,
derived grades and episodes from the same course derivation as a form save (toxicity.course), no
save-time checks (the job finds the inconsistencies).
"""
import random
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.contrib.auth import get_user_model
from django.db import transaction

from toxicity.models import (
    AnticytokineDose,
    CorticosteroidDose,
    DailyAssessment,
    HemofiltrationSession,
    IcuStay,
    PlasmaExchange,
    TocilizumabDose,
)
from django.utils import timezone

from toxicity.course import records as r
from toxicity.course.derive import derive_course
from toxicity.course.load import record_of
from toxicity.course.store import store_episodes
from toxicity.grading.dosing import effluent_dose_ml_kg_h, estimated_plasma_volume_ml, plasma_volumes_exchanged
from toxicity.models import OBSERVATIONS
from trials.bulk import bulk_insert_with_history
from trials.models import Cohort, Infusion, Site, Subject, Trial
from trials.study_day import age_in_years

REASON = "synthetic data generator"
SITE_ZONES = ["Europe/Berlin", "America/Chicago", "Europe/London", "America/New_York", "Asia/Tokyo", "Australia/Sydney"]


@dataclass
class Generated:
    subjects: int = 0
    assessments: int = 0
    interventions: int = 0
    counts: dict = field(default_factory=dict)


def _weight(rng, age):
    if age < 12:
        return Decimal(str(round(12 + age * 3 + rng.uniform(-3, 5), 1)))
    return Decimal(str(round(rng.uniform(48, 105), 1)))


def _course(rng, days):
    """Target CRS and ICANS grade per study day 0..days-1 (0 outside episodes)."""
    crs, icans = [0] * days, [0] * days
    u = rng.random()
    crs_max = 0 if u < 0.25 else 1 if u < 0.60 else 2 if u < 0.88 else 3 if u < 0.96 else 4
    if crs_max:
        onset = rng.choice([1, 1, 2, 2, 2, 3, 3, 4, 5, 7])
        length = rng.randint(2, 8)
        peak = onset + rng.randint(0, max(0, length // 2))
        for d in range(onset, min(days, onset + length)):
            crs[d] = crs_max if d == peak else max(1, crs_max - abs(d - peak))
    u = rng.random()
    icans_max = 0 if u < 0.60 else 1 if u < 0.75 else 2 if u < 0.88 else 3 if u < 0.97 else 4
    if icans_max:
        onset = min(days - 1, rng.choice([3, 4, 5, 5, 6, 7, 8, 10]))
        for d in range(onset, min(days, onset + rng.randint(2, 9))):
            icans[d] = icans_max if d < onset + 2 else max(1, icans_max - (d - onset - 1))
    return crs, icans


def _crs_observations(rng, g):
    obs = {"temperature_max_c": Decimal(str(round(rng.uniform(36.2, 37.6), 1)))}
    if g >= 1:
        obs["temperature_max_c"] = Decimal(str(round(rng.uniform(38.0, 40.2), 1)))
    if g == 2:
        obs.update(rng.choice([{"hypotension": True}, {"hypoxia": True, "oxygen_device": "nasal_cannula",
                                                       "oxygen_flow_l_min": Decimal(rng.choice([1, 2, 3, 4])), "fio2_percent": 30}]))
    elif g == 3:
        obs.update(rng.choice([{"hypotension": True, "vasopressors": ["norepinephrine"]},
                               {"hypoxia": True, "oxygen_device": "high_flow_nasal_cannula",
                                "oxygen_flow_l_min": Decimal(rng.choice([20, 30, 40])), "fio2_percent": 50}]))
    elif g >= 4:
        obs.update({"hypotension": True, "vasopressors": ["norepinephrine", "epinephrine"],
                    "hypoxia": True, "oxygen_device": "bipap", "fio2_percent": 60})
    return obs


def _icans_observations(rng, g, child):
    if child:
        capd = {0: 0, 1: rng.randint(1, 8), 2: rng.randint(1, 8), 3: rng.randint(9, 20), 4: rng.randint(9, 20)}[g]
        obs = {"capd_score": capd, "consciousness": {0: "alert", 1: "awakens_spontaneously",
                                                     2: "awakens_to_voice", 3: "awakens_to_tactile", 4: "unarousable"}[g]}
        if g >= 4:
            obs.update(capd_score=None, capd_unable=True)
        return obs
    ice = {0: 10, 1: rng.randint(7, 9), 2: rng.randint(3, 6), 3: rng.randint(0, 2)}.get(g)
    obs = {"ice_score": ice, "consciousness": {0: "alert", 1: "awakens_spontaneously",
                                               2: "awakens_to_voice", 3: "awakens_to_tactile"}.get(g, "unarousable")}
    if g >= 4:
        obs.update(ice_score=None, ice_not_assessable="unarousable")
    return obs


def _at(day0, day, hour, tz, minute=0):
    return datetime.combine(day0 + timedelta(days=day), time(hour, minute), tzinfo=tz)


def generate(protocol_code: str, *, subjects: int, days: int, seed: int, today: date | None = None) -> Generated:
    """Create (or extend) a synthetic trial. The same seed, sizes and ``today`` give the same data."""
    rng = random.Random(seed)
    today = today or date.today()
    user, _ = get_user_model().objects.get_or_create(username="synthetic", defaults={"is_active": False})
    out = Generated()
    with transaction.atomic():
        trial, _ = Trial.objects.get_or_create(
            protocol_code=protocol_code,
            defaults={"title": f"Synthetic trial {protocol_code}", "phase": "2", "sponsor": "Synthetic", "status": "active"},
        )
        n_sites = max(2, min(len(SITE_ZONES), subjects // 400 + 1))
        sites = [
            Site.objects.get_or_create(trial=trial, site_number=str(101 + i),
                                       defaults={"name": f"Synthetic site {101 + i}", "country": "DE",
                                                 "timezone": SITE_ZONES[i]})[0]
            for i in range(n_sites)
        ]
        cohorts = [Cohort.objects.get_or_create(trial=trial, name=name, defaults={"dose_level_cells_per_kg": dose})[0]
                   for name, dose in (("DL1", 0.5e6), ("DL2", 1.0e6), ("DL3", 2.0e6))]
        start = Subject.objects.filter(trial=trial).count()
        plans, subject_rows = [], []
        for n in range(start, start + subjects):
            site = sites[n % n_sites]
            u = rng.random()
            age = rng.randint(2, 11) if u < 0.15 else 12 if u < 0.18 else rng.randint(18, 80)
            day0 = today - timedelta(days=days + rng.randint(0, 60))
            enrolled = day0 - timedelta(days=rng.randint(7, 21))
            born = date(day0.year - age - 1, rng.randint(1, 12), rng.randint(1, 28))
            if age_in_years(born, day0) != age:
                born = date(born.year + 1, born.month, born.day)
            weight = _weight(rng, age)
            subject_rows.append(Subject(
                trial=trial, subject_id=f"{site.site_number}-{n + 1:05d}", site=site, cohort=cohorts[n % 3],
                enrolled_on=enrolled, sex=rng.choice(["female", "male"]), date_of_birth=born, age_years=age,
                diagnosis=rng.choice(["b_all", "dlbcl", "fl", "mcl", "mm"]) if age >= 18 else "b_all",
                baseline_weight_kg=weight, developmental_delay=False,
                capd_baseline=rng.randint(0, 3) if age < 12 else None, status="infused", day0=day0,
            ))
            plans.append((site, day0, weight, age))
        subject_rows = bulk_insert_with_history(Subject, subject_rows, user=user, reason=REASON)
        out.subjects = len(subject_rows)

        infusions, assessments, logs = [], [], {m: [] for m in (TocilizumabDose, CorticosteroidDose, AnticytokineDose,
                                                                 PlasmaExchange, HemofiltrationSession, IcuStay)}
        settings = r.Trial(trial.crs_scale, trial.icans_scale, trial.daily_assessment_until_day,
                           trial.tocilizumab_response_hours)
        now, derived = timezone.now(), []
        for subject, (site, day0, weight, age) in zip(subject_rows, plans):
            tz = ZoneInfo(site.timezone)
            cohort = subject.cohort
            dose = cohort.dose_level_cells_per_kg * (1.3 if rng.random() < 0.02 else rng.uniform(0.9, 1.1))
            infusions.append(Infusion(
                subject=subject, infusion_number=1, product="investigational", lot_number=f"SYN{subject.pk:07d}",
                infused_at=_at(day0, 0, 10, tz), dose_cells_per_kg=dose,
                weight_kg=weight * Decimal("1.15") if rng.random() < 0.02 else weight,
                lymphodepletion_regimen="flu_cy", lymphodepletion_start_date=day0 - timedelta(days=5),
            ))
            crs, icans = _course(rng, days)
            child = age < 12
            rows, first_log = [], {m: len(logs[m]) for m in logs}
            toci_given = 0
            for d in range(days):
                if rng.random() < 0.005:
                    continue  # a missing day (ASSESSMENT-MISSING)
                fields = {**_crs_observations(rng, crs[d]), **_icans_observations(rng, icans[d], child)}
                if rng.random() < 0.01:
                    fields["temperature_max_c"] = None  # not measured (CRS-NOT-EVALUABLE)
                reported = crs[d] if rng.random() > 0.03 else min(5, crs[d] + 1)
                rows.append(DailyAssessment(subject=subject, assessment_date=day0 + timedelta(days=d),
                                            crs_grade_reported=reported, icans_grade_reported=icans[d],
                                            antipyretic_given=crs[d] >= 1 and rng.random() < 0.5, **fields))
                if crs[d] >= 2 and toci_given < 2:
                    toci_given += 1
                    expected = min((12 if weight < 30 else 8) * weight, Decimal(800)).quantize(Decimal("1"))
                    mg = expected * Decimal("1.25") if rng.random() < 0.03 else expected
                    at = _at(day0, d, 9 if toci_given == 1 else 20, tz)
                    logs[TocilizumabDose].append(TocilizumabDose(subject=subject, administered_at=at, dose_mg=mg,
                                                                 weight_kg=weight, indication="crs"))
                if (icans[d] >= 2 or crs[d] >= 3) and rng.random() < 0.6:
                    at = _at(day0, d, 11, tz)
                    logs[CorticosteroidDose].append(CorticosteroidDose(
                        subject=subject, drug="dexamethasone", administered_at=at, dose_mg=Decimal(10), route="iv",
                        indication="icans" if icans[d] >= 2 else "crs"))
                if icans[d] >= 3 and rng.random() < 0.3:
                    at = _at(day0, d, 14, tz)
                    logs[AnticytokineDose].append(AnticytokineDose(
                        subject=subject, drug="anakinra", administered_at=at, dose_mg=Decimal(100), weight_kg=weight,
                        route="iv", indication="icans"))
                if crs[d] >= 3 and (d == 0 or crs[d - 1] < 3):
                    logs[IcuStay].append(IcuStay(subject=subject, admitted_at=_at(day0, d, 16, tz),
                                                 discharged_at=_at(day0, min(days - 1, d + 3), 12, tz), reason="crs"))
                    if crs[d] >= 4 and rng.random() < 0.5:
                        estimate = estimated_plasma_volume_ml(weight, Decimal("0.30"))
                        exchanged = int(estimate * rng.choice([1.0, 1.2, 1.5]))
                        logs[PlasmaExchange].append(PlasmaExchange(
                            subject=subject, started_at=_at(day0, d, 18, tz), ended_at=_at(day0, d, 20, tz),
                            plasma_volume_exchanged_ml=exchanged, replacement_fluid="albumin_5",
                            hematocrit_fraction=Decimal("0.30"), weight_kg=weight, estimated_plasma_volume_ml=estimate,
                            plasma_volumes_exchanged=plasma_volumes_exchanged(exchanged, estimate)))
                    if crs[d] >= 4 and rng.random() < 0.3:
                        rate = int(weight * 25)
                        logs[HemofiltrationSession].append(HemofiltrationSession(
                            subject=subject, modality="cvvhdf", started_at=_at(day0, d, 21, tz),
                            ended_at=_at(day0, d + 1, 21, tz), effluent_rate_ml_h=rate, weight_kg=weight,
                            effluent_dose_ml_kg_h=effluent_dose_ml_kg_h(rate, weight)))
            # the grades a form save would store: the same derivation over the course in memory
            course = r.Course(r.Subject(
                id=subject.pk, subject_id=subject.subject_id, trial_id=trial.pk, site_id=site.pk, timezone=site.timezone,
                enrolled_on=subject.enrolled_on, day0=day0, age_years=age, capd_baseline=subject.capd_baseline,
                baseline_weight_kg=weight, cohort_dose_level=cohort.dose_level_cells_per_kg), settings)
            own_logs = [row for m in logs for row in logs[m][first_log[m]:]]
            course = r.Course(
                course.subject, settings,
                assessments=tuple(r.Assessment(None, a.assessment_date, {n: getattr(a, n) for n in OBSERVATIONS})
                                  for a in rows),
                doses=tuple(sorted((record_of(x, course) for x in own_logs
                                    if isinstance(x, (TocilizumabDose, CorticosteroidDose, AnticytokineDose))),
                                   key=lambda x: x.at)),
                plasma_exchanges=tuple(record_of(x, course) for x in own_logs if isinstance(x, PlasmaExchange)),
                hemofiltrations=tuple(record_of(x, course) for x in own_logs if isinstance(x, HemofiltrationSession)),
                icu_stays=tuple(record_of(x, course) for x in own_logs if isinstance(x, IcuStay)),
            )
            course_derived = derive_course(course, now=now)
            for row, day in zip(rows, course_derived.days):
                for name, value in (day.grades.columns() if day.grades else {}).items():
                    setattr(row, name, value)
            derived.append(course_derived)
            assessments.extend(rows)
        bulk_insert_with_history(Infusion, infusions, user=user, reason=REASON)
        out.assessments = len(bulk_insert_with_history(DailyAssessment, assessments, user=user, reason=REASON))
        for model, rows in logs.items():
            bulk_insert_with_history(model, rows, user=user, reason=REASON)
            out.counts[model._meta.model_name] = len(rows)
        out.interventions = sum(out.counts.values())
        store_episodes(derived)
    return out
