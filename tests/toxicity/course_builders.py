"""Build plain courses for the pure tests: records (toxicity.course.records) and derived courses
with given daily grades, without the database."""
from dataclasses import replace
from datetime import date, datetime, time, timedelta
from decimal import Decimal as D
from zoneinfo import ZoneInfo

from toxicity.course import records as r
from toxicity.course.derive import DerivedCourse, assemble, derived_day

TZ = ZoneInfo("Europe/Berlin")
DAY0 = date(2026, 3, 1)
NOW = datetime(2026, 4, 30, 12, tzinfo=TZ)


def on(day: int) -> date:
    return DAY0 + timedelta(days=day)


def at(day, hour=10, minute=0):
    return datetime.combine(on(day), time(hour, minute), tzinfo=TZ)


def observations(crs=0, **raw):
    """Observations consistent with a CRS grade (a positive day has fever; a day 0 resolves)."""
    values = {"temperature_max_c": D("38.5") if (crs or 0) >= 1 else D("36.8"), "hypotension": False,
              "hypoxia": False, "antipyretic_given": False}
    if crs is None:
        values["temperature_max_c"] = None
    values.update(raw)
    return values


def A(day, crs=0, icans=0, flags=(), id_=None, minimum=None, icans_minimum=None, masked_by=None, reasons=(),
      recorded_at=None, day0=DAY0, **raw):
    """A derived day with the given grades (None = NE), flags and observations; ``day`` counts from ``day0``."""
    grades = r.Grades(
        study_day=day, crs_grade_derived=crs, icans_grade_derived=icans, ctcae_crs_grade_derived=crs,
        minimum_crs_grade=minimum, minimum_icans_grade=icans_minimum, fever_masked_by=masked_by,
        crs_scale="astct_2019", icans_scale="astct_2019", engine_version="test", flags=tuple(flags),
        reasons=tuple(reasons),
    )
    assessment = r.Assessment(id_ or 1000 + day, day0 + timedelta(days=day), observations(crs, **raw), grades, 1,
                              recorded_at)
    return derived_day(assessment, grades)


def days(overrides, n=15):
    """Days 0..n-1, grade 0, with some days replaced."""
    return tuple(overrides.get(d, A(d)) for d in range(n))


def full_days(n=15):
    return days({}, n)


def episode(grades, start=1):
    """Days 0..14 with the given CRS grades from ``start``."""
    return days({start + i: A(start + i, crs=g) for i, g in enumerate(grades)})


def toci(i, day, hour=10, mg="560", kg="70", indication="crs", minute=0):
    return r.Dose(r.TOCILIZUMAB, i, at(day, hour, minute), on(day), "tocilizumab", D(mg), indication, "iv", D(kg))


def drug(kind, drug_, i, day, hour, mg, kg=None, indication="crs", route="iv"):
    return r.Dose(kind, i, at(day, hour), on(day), drug_, D(mg), indication, route, D(kg) if kg else None)


def subject(**kw):
    base = dict(id=1, subject_id="101-0001", trial_id=1, site_id=1, timezone="Europe/Berlin", status="infused",
                enrolled_on=DAY0 - timedelta(days=10), day0=DAY0, age_years=40, baseline_weight_kg=D("70"),
                cohort_dose_level=1.0e6)
    base.update(kw)
    return r.Subject(**base)


def snap(*, assessments=None, now=NOW, trial=r.Trial(), subject_fields=None, **records) -> DerivedCourse:
    """A derived course: the given days (default days 0..14, grade 0) and records."""
    day_list = list(full_days() if assessments is None else assessments)
    course = r.Course(subject(**(subject_fields or {})), trial,  # noqa: E501
                      assessments=tuple(d.assessment for d in day_list), **records)
    course = replace(course, doses=tuple(sorted(course.doses, key=lambda d: (d.at, d.kind, d.id or 0))))
    return assemble(course, day_list, now=now)


def course_of(derived: DerivedCourse, **changes) -> DerivedCourse:
    """The same days with some of the course's records or settings changed."""
    subject_fields = changes.pop("subject_fields", None)
    course = derived.course
    if subject_fields:
        course = replace(course, subject=replace(course.subject, **subject_fields))
    now = changes.pop("now", derived.now)
    course = replace(course, **changes)
    return assemble(course, list(derived.days), now=now)
