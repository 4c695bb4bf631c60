"""The data of one trial as they stood at a data cut, reconstructed from the audit history.

Reports (AE report, DSMB report, registry summary) are computed only from a
:class:`TrialSnapshot`, never from live tables, so a report rebuilt for the same cut after later
edits uses the same rows and has the same :meth:`TrialSnapshot.digest` (reports.md: "frozen: the
report states the cut time and a hash of the data it used"). Each subject's course is loaded by
the one loader as of the cut and derived by the one derivation (``toxicity.course``): the daily
grades and episodes a report shows are those the save path and the consistency job store.
"""
import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.utils import timezone

from toxicity.course.derive import DerivedCourse, Day, derive_course
from toxicity.course.load import load_courses
from toxicity.course.records import Course
from toxicity.grading import ENGINE_VERSION
from toxicity.models import AdverseEvent, Query
from trials.models import Cohort, Site, Subject, Trial


@dataclass(frozen=True)
class SubjectInfo:
    pk: int
    subject_id: str
    site_id: int
    site_number: str
    cohort_id: int
    cohort_name: str
    status: str
    sex: str
    age_years: int | None
    enrolled_on: date
    day0: date | None  # None: not infused at the cut

    @property
    def infused(self) -> bool:
        return self.day0 is not None


@dataclass(frozen=True)
class TypedAdverseEvent:
    subject_pk: int
    term: str
    version: str
    grade: int
    onset_date: date
    resolution_date: date | None
    serious: bool
    relatedness: str
    outcome: str
    seriousness: tuple[str, ...] = ()


POSITIVE_PRESSURE = {"cpap", "bipap", "mechanical_ventilation"}


@dataclass
class TrialSnapshot:
    trial_id: int
    protocol_code: str
    title: str
    crs_scale: str
    icans_scale: str
    cut: datetime
    daily_assessment_until_day: int
    stopping: dict  # threshold, cutoff, prior_a, prior_b
    sites: list[tuple[int, str, str]]  # (pk, site_number, name)
    cohorts: list[tuple[int, str, float]]  # (pk, name, dose level)
    subjects: list[SubjectInfo]
    courses: dict[int, Course]  # as recorded at the cut
    adverse_events: list[TypedAdverseEvent]
    open_queries: list[tuple[int, date]]  # (subject pk, opened on)
    site_today: dict[int, date] = field(default_factory=dict)  # site pk -> local date at the cut
    engine_version: str = ENGINE_VERSION
    derived: dict[int, DerivedCourse] = field(default_factory=dict, repr=False)  # courses derived at the cut

    def __post_init__(self):
        if not self.derived:
            memo = {}
            self.derived = {pk: derive_course(c, now=self.cut, memo=memo) for pk, c in self.courses.items()}

    def days(self, pk: int) -> tuple[Day, ...]:
        """The subject's derived days as of the cut (date order)."""
        derived = self.derived.get(pk)
        return derived.days if derived is not None else ()

    def episodes(self) -> dict[int, list[dict]]:
        """Derived CRS/ICANS episodes per subject as of the cut (reports.md fields)."""
        return {pk: [e.fields() for e in d.episodes] for pk, d in self.derived.items()}

    def death(self, pk: int):
        course = self.courses.get(pk)
        return course.death if course is not None else None

    def restricted(self, *, site_ids: set[int] | None = None, cohort_ids: set[int] | None = None) -> "TrialSnapshot":
        """The same snapshot narrowed to some sites and/or cohorts (report filters)."""
        keep = {s.pk for s in self.subjects
                if (site_ids is None or s.site_id in site_ids) and (cohort_ids is None or s.cohort_id in cohort_ids)}
        return TrialSnapshot(
            **{**self.__dict__,
               "subjects": [s for s in self.subjects if s.pk in keep],
               "courses": {pk: c for pk, c in self.courses.items() if pk in keep},
               "derived": {pk: d for pk, d in self.derived.items() if pk in keep},
               "adverse_events": [a for a in self.adverse_events if a.subject_pk in keep],
               "open_queries": [q for q in self.open_queries if q[0] in keep],
               "cohorts": [c for c in self.cohorts if cohort_ids is None or c[0] in cohort_ids],
               "sites": [s for s in self.sites if site_ids is None or s[0] in site_ids]},
        )

    def digest(self) -> str:
        """SHA-256 of the canonical JSON of every value the reports use (not the cut itself): the
        recorded data and the grading engine's version, from which everything shown is derived."""
        payload = {k: v for k, v in asdict(self).items() if k not in ("cut", "derived")}
        text = json.dumps(payload, sort_keys=True, default=_json_default, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


def _json_default(value):
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return str(value)


def _local(moment: datetime, tz: str) -> date:
    return timezone.localtime(moment, ZoneInfo(tz)).date()


def _history_as_of(model, cut, **filters):
    """Per record the latest history row at or before the cut, unless it deletes or voids it."""
    from django.db.models import Max, Subquery

    history = model.history.model
    latest = (history.objects.filter(history_date__lte=cut, **filters).order_by().values("id")
              .annotate(last=Max("history_id")).values("last"))
    return history.objects.filter(history_id__in=Subquery(latest), voided=False).exclude(history_type="-")


def load_snapshot(trial: Trial, cut: datetime | None = None) -> TrialSnapshot:
    """Every subject of the trial as of ``cut`` (default: now), from the audit history."""
    cut = cut or timezone.now()
    sites = {s.pk: s for s in Site.objects.filter(trial=trial)}
    cohorts = {c.pk: c for c in Cohort.objects.filter(trial=trial)}
    all_ids = list(Subject.objects.filter(trial=trial).values_list("pk", flat=True))
    subject_rows = sorted(_history_as_of(Subject, cut, id__in=all_ids), key=lambda s: s.subject_id)
    ids = [s.id for s in subject_rows]
    cut_day = {pk: _local(cut, site.timezone) for pk, site in sites.items()}
    subjects = [
        SubjectInfo(
            pk=s.id, subject_id=s.subject_id, site_id=s.site_id, site_number=sites[s.site_id].site_number,
            cohort_id=s.cohort_id, cohort_name=cohorts[s.cohort_id].name, status=s.status, sex=s.sex,
            age_years=s.age_years, enrolled_on=s.enrolled_on,
            day0=s.day0 if s.day0 is not None and s.day0 <= cut_day[s.site_id] else None,
        )
        for s in subject_rows
    ]
    courses = load_courses(ids, as_of=cut)
    adverse_events = [
        TypedAdverseEvent(
            subject_pk=ae.subject_id, term=ae.ctcae_term, version=ae.ctcae_version, grade=ae.grade,
            onset_date=ae.onset_date, resolution_date=ae.resolution_date, serious=ae.serious,
            relatedness=ae.relatedness, outcome=ae.outcome, seriousness=tuple(ae.seriousness or ()),
        )
        for ae in _history_as_of(AdverseEvent, cut, subject_id__in=ids).order_by("subject_id", "onset_date", "id")
    ]
    queries = Query.history.model.objects.filter(history_date__lte=cut, trial_id=trial.pk)
    latest = {}
    for qid, hid, status, sid, opened in queries.values_list("id", "history_id", "status", "subject_id", "opened_at"):
        if qid not in latest or hid > latest[qid][0]:
            latest[qid] = (hid, status, sid, opened)
    open_queries = sorted(
        (sid, _local(opened, "UTC")) for _, status, sid, opened in latest.values() if status in ("open", "answered")
    )
    return TrialSnapshot(
        trial_id=trial.pk, protocol_code=trial.protocol_code, title=trial.title, crs_scale=trial.crs_scale,
        icans_scale=trial.icans_scale, cut=cut, daily_assessment_until_day=trial.daily_assessment_until_day,
        stopping={
            "threshold": float(trial.stopping_toxicity_threshold), "cutoff": float(trial.stopping_posterior_cutoff),
            "prior_a": float(trial.stopping_prior_a), "prior_b": float(trial.stopping_prior_b),
        },
        sites=[(s.pk, s.site_number, s.name) for s in sorted(sites.values(), key=lambda s: s.site_number)],
        cohorts=[(c.pk, c.name, c.dose_level_cells_per_kg) for c in sorted(cohorts.values(), key=lambda c: c.name)],
        subjects=subjects,
        courses={pk: courses[pk] for pk in sorted(courses)},
        adverse_events=adverse_events,
        open_queries=open_queries,
        site_today=cut_day,
    )


def expected_days(info: SubjectInfo, *, until_day: int, today: date, death: date | None) -> list[date]:
    """Days 0..until_day of an infused subject up to the cut and the death (data currency)."""
    if info.day0 is None:
        return []
    last = min(info.day0 + timedelta(days=until_day), today, death or today)
    return [info.day0 + timedelta(days=n) for n in range((last - info.day0).days + 1)]
