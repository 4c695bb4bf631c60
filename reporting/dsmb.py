"""The content of the DSMB report (reports.md, "DSMB report"), computed from a snapshot.

Rendering (PDF, figures) is separate: :mod:`reporting.pdf` turns a :class:`DsmbReport` into
bytes. The open report pools the arms; the closed report (DSMB role only) breaks every table
down by cohort.
"""
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from datetime import UTC, date

from .ae_report import AeReport, build_ae_report
from .snapshot import TrialSnapshot, expected_days
from .stats import StoppingStatus, stopping_boundary, stopping_status

QUERY_AGE_BUCKETS = ((0, 7, "< 7 days"), (7, 15, "7-14 days"), (15, 31, "15-30 days"), (31, 10**6, "> 30 days"))


@dataclass(frozen=True)
class EnrolmentRow:
    site: str
    cohort: str
    enrolled: int
    infused: int


@dataclass(frozen=True)
class Lane:
    """One subject of the swimmer plot: daily grades and event markers by study day."""

    subject_id: str
    cohort: str
    last_day: int
    crs: list[tuple[int, int | None]]  # (study day, grade; None = NE)
    icans: list[tuple[int, int | None]]
    markers: list[tuple[int, str]]  # (study day, marker kind)


@dataclass
class DsmbReport:
    protocol_code: str
    title: str
    closed: bool
    cut: str
    digest: str
    enrolment: list[EnrolmentRow]
    expected_assessments: int
    entered_assessments: int
    oldest_missing: date | None
    open_queries_by_age: list[tuple[str, int]]
    ae: AeReport
    stopping: dict[str, StoppingStatus]  # "crs" / "icans" grade >= 3
    stopping_settings: dict
    lanes: list[Lane]
    grade3_listing: list = field(default_factory=list)
    deaths: list[tuple[str, str, str, int | None]] = field(default_factory=list)  # subject, date, cause, study day
    sae_listing: list = field(default_factory=list)

    @property
    def currency(self) -> float:
        return self.entered_assessments / self.expected_assessments if self.expected_assessments else 1.0


def build_dsmb_report(snapshot: TrialSnapshot, *, closed: bool) -> DsmbReport:
    ae = build_ae_report(snapshot, by_cohort=closed)
    utc_cut_day = snapshot.cut.astimezone(UTC).date()
    cut_day = defaultdict(lambda: utc_cut_day, snapshot.site_today)
    # 1. enrolment, data currency, open queries
    counts = Counter()
    for s in snapshot.subjects:
        key = (s.site_number, s.cohort_name if closed else "all arms")
        counts[key + ("enrolled",)] += 1
        counts[key + ("infused",)] += s.infused
    keys = sorted({k[:2] for k in counts})
    enrolment = [EnrolmentRow(site, cohort, counts[(site, cohort, "enrolled")], counts[(site, cohort, "infused")])
                 for site, cohort in keys]
    expected = entered = 0
    oldest = None
    for s in snapshot.subjects:
        death = snapshot.death(s.pk)
        want = expected_days(s, until_day=snapshot.daily_assessment_until_day, today=cut_day[s.site_id],
                             death=death.day if death else None)
        have = {d.day for d in snapshot.days(s.pk)}
        expected += len(want)
        entered += sum(1 for d in want if d in have)
        missing = [d for d in want if d not in have]
        if missing and (oldest is None or missing[0] < oldest):
            oldest = missing[0]
    ages = Counter()
    for _, opened in snapshot.open_queries:
        age = max((utc_cut_day - opened).days, 0)  # opened on is a UTC date
        label = next(lbl for low, high, lbl in QUERY_AGE_BUCKETS if low <= age < high)
        ages[label] += 1
    # 3. stopping rule: subjects with a grade >= 3 episode among the infused
    overall = ae.groups[-1]
    settings = snapshot.stopping
    prior = {"threshold": settings["threshold"], "prior_a": settings["prior_a"], "prior_b": settings["prior_b"]}
    boundary = stopping_boundary(max(overall.n, 20), cutoff=settings["cutoff"], **prior)  # shared by CRS and ICANS
    stopping = {
        kind: stopping_status(overall.grade3[kind].count, overall.n, cutoff=settings["cutoff"], boundary=boundary, **prior)
        for kind in ("crs", "icans")
    }
    # 4. swimmer lanes
    lanes = []
    for s in snapshot.subjects:
        if not s.infused:
            continue
        course = snapshot.courses[s.pk]
        days = snapshot.days(s.pk)
        markers = [((day - s.day0).days, name) for name, day, _ in course.therapies()]
        markers += [((st.admitted - s.day0).days, "icu") for st in course.icu_stays]
        if course.death:
            markers.append(((course.death.day - s.day0).days, "death"))
        last = max([(d.day - s.day0).days for d in days] + [m[0] for m in markers] + [0])
        lanes.append(Lane(
            subject_id=s.subject_id, cohort=s.cohort_name if closed else "", last_day=last,
            crs=[((d.day - s.day0).days, d.crs_grade) for d in days],
            icans=[((d.day - s.day0).days, d.icans_grade) for d in days],
            markers=sorted(markers),
        ))
    # 5. listings
    info = {s.pk: s for s in snapshot.subjects}
    deaths = []
    for pk, course in snapshot.courses.items():
        if course.death and pk in info:
            s, death = info[pk], course.death
            deaths.append((s.subject_id, death.day.isoformat(), death.primary_cause or "",
                           (death.day - s.day0).days if s.day0 else None))
    deaths.sort()
    if not closed:  # the open report pools the arms: no cohort anywhere in its content
        ae.listing = [replace(r, cohort="") for r in ae.listing]
    return DsmbReport(
        protocol_code=snapshot.protocol_code, title=snapshot.title, closed=closed, cut=snapshot.cut.isoformat(),
        digest=snapshot.digest(), enrolment=enrolment, expected_assessments=expected, entered_assessments=entered,
        oldest_missing=oldest, open_queries_by_age=[(lbl, ages[lbl]) for _, _, lbl in QUERY_AGE_BUCKETS],
        ae=ae, stopping=stopping, stopping_settings=settings, lanes=lanes,
        grade3_listing=[r for r in ae.listing if r.grade >= 3],
        deaths=deaths,
        sae_listing=[r for r in ae.listing if r.serious],
    )
