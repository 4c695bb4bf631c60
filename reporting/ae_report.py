"""The adverse-event report (reports.md, "Adverse-event report (CTCAE / ASTCT)") from a snapshot.

Listing: one row per adverse event (derived CRS/ICANS episodes and typed-in CTCAE events).
Summary per cohort and overall: infused N; subjects with any-grade and grade >= 3 CRS and ICANS
(count, percent, exact 95% Clopper-Pearson interval); max-grade distribution 0-5; median (range)
onset study day and duration of each subject's first episode; rescue-therapy use (subjects).
"""
from dataclasses import dataclass, field

from .sdtm import CTCAE_SCALE
from .snapshot import TrialSnapshot
from .stats import clopper_pearson, median_range

KINDS = ("crs", "icans")
THERAPIES = (
    ("tocilizumab", "Tocilizumab"),
    ("corticosteroid", "Corticosteroids"),
    ("anticytokine", "Anakinra / siltuximab"),
    ("plasma_exchange", "Plasma exchange"),
    ("hemofiltration", "Hemofiltration"),
    ("icu", "ICU admission"),
)


@dataclass(frozen=True)
class Proportion:
    count: int
    n: int
    low: float
    high: float

    @property
    def percent(self) -> float:
        return 100.0 * self.count / self.n if self.n else 0.0

    def text(self) -> str:
        if not self.n:
            return "0/0"
        return f"{self.count}/{self.n} ({self.percent:.1f}%; 95% CI {100 * self.low:.1f}-{100 * self.high:.1f})"


def proportion(count: int, n: int) -> Proportion:
    low, high = clopper_pearson(count, n)
    return Proportion(count, n, low, high)


@dataclass
class GroupSummary:
    label: str
    n: int
    any_grade: dict[str, Proportion] = field(default_factory=dict)
    grade3: dict[str, Proportion] = field(default_factory=dict)
    max_grade_counts: dict[str, list[int]] = field(default_factory=dict)  # index = grade 0..5
    onset_day: dict[str, tuple | None] = field(default_factory=dict)  # (median, min, max)
    duration_days: dict[str, tuple | None] = field(default_factory=dict)
    therapy: dict[str, Proportion] = field(default_factory=dict)


@dataclass(frozen=True)
class ListingRow:
    subject_id: str
    site_number: str
    cohort: str
    term: str
    scale: str
    grade: int
    onset_date: str
    onset_study_day: int | None
    resolution_date: str
    duration_days: int | None
    serious: bool
    relatedness: str
    outcome: str
    rescue_therapy: str
    max_grade_is_floor: bool = False  # NE days inside the episode: the grade is ">= n"
    seriousness: str = ""  # ICH E2A criteria, ";"-separated (reports.md: seriousness is not severity)

    @property
    def grade_text(self) -> str:
        return f">= {self.grade}" if self.max_grade_is_floor else str(self.grade)


@dataclass
class AeReport:
    protocol_code: str
    cut: str
    digest: str
    listing: list[ListingRow]
    groups: list[GroupSummary]  # per cohort (closed) then overall


def _therapy_text(ep: dict) -> str:
    parts = []
    if ep["tocilizumab_doses"]:
        parts.append(f"tocilizumab x{ep['tocilizumab_doses']}")
    if ep["corticosteroid_given"]:
        parts.append(f"steroids ({ep['dexamethasone_equivalent_mg']} mg dex-eq)")
    if ep["anakinra_doses"]:
        parts.append(f"anakinra x{ep['anakinra_doses']}")
    if ep["siltuximab_doses"]:
        parts.append(f"siltuximab x{ep['siltuximab_doses']}")
    if ep["plasma_exchange_sessions"]:
        parts.append(f"plasma exchange x{ep['plasma_exchange_sessions']} ({ep['plasma_exchange_volume_ml']} mL)")
    if ep["hemofiltration_sessions"]:
        parts.append(f"hemofiltration x{ep['hemofiltration_sessions']} ({ep['hemofiltration_hours']} h)")
    if ep["icu_days"]:
        parts.append(f"ICU {ep['icu_days']} d")
    return "; ".join(parts)


def listing(snapshot: TrialSnapshot, episodes: dict[int, list[dict]] | None = None) -> list[ListingRow]:
    episodes = episodes if episodes is not None else snapshot.episodes()
    info = {s.pk: s for s in snapshot.subjects}
    rows = []
    for s in snapshot.subjects:
        for ep in episodes.get(s.pk, []):
            rows.append(ListingRow(
                subject_id=s.subject_id, site_number=s.site_number, cohort=s.cohort_name, term=ep["term"],
                scale=ep["scale"], grade=ep["max_grade"], onset_date=ep["onset_date"].isoformat(),
                onset_study_day=ep["onset_study_day"],
                resolution_date=ep["resolution_date"].isoformat() if ep["resolution_date"] else "",
                duration_days=ep["duration_days"], serious=ep["serious"],
                relatedness=ep["relatedness"] or "related",  # CAR-T toxicities by definition, until reviewed
                outcome=ep["outcome"], rescue_therapy=_therapy_text(ep),
                max_grade_is_floor=ep["has_incomplete_days"], seriousness=";".join(ep["seriousness"]),
            ))
    for ae in snapshot.adverse_events:
        s = info.get(ae.subject_pk)
        if s is None:
            continue
        rows.append(ListingRow(
            subject_id=s.subject_id, site_number=s.site_number, cohort=s.cohort_name, term=ae.term,
            scale=CTCAE_SCALE.get(ae.version, f"ctcae_{ae.version}"), grade=ae.grade, onset_date=ae.onset_date.isoformat(),
            onset_study_day=(ae.onset_date - s.day0).days if s.day0 else None,
            resolution_date=ae.resolution_date.isoformat() if ae.resolution_date else "",
            duration_days=(ae.resolution_date - ae.onset_date).days if ae.resolution_date else None,
            serious=ae.serious, relatedness=ae.relatedness, outcome=ae.outcome, rescue_therapy="",
            seriousness=";".join(ae.seriousness),
        ))
    rows.sort(key=lambda r: (r.subject_id, r.onset_date, r.term))
    return rows


def summarize_group(label: str, snapshot: TrialSnapshot, subject_pks: list[int], episodes: dict[int, list[dict]]) -> GroupSummary:
    members = set(subject_pks)
    infused = [s for s in snapshot.subjects if s.pk in members and s.infused]
    n = len(infused)
    group = GroupSummary(label=label, n=n)
    for kind in KINDS:
        maxima, onsets, durations = [], [], []
        for s in infused:
            eps = [e for e in episodes.get(s.pk, []) if e["kind"] == kind]
            maxima.append(max((e["max_grade"] for e in eps), default=0))
            if eps:
                first = min(eps, key=lambda e: e["onset_date"])
                if first["onset_study_day"] is not None:
                    onsets.append(first["onset_study_day"])
                durations.append(first["duration_days"])
        group.any_grade[kind] = proportion(sum(1 for m in maxima if m >= 1), n)
        group.grade3[kind] = proportion(sum(1 for m in maxima if m >= 3), n)
        group.max_grade_counts[kind] = [sum(1 for m in maxima if m == g) for g in range(6)]
        group.onset_day[kind] = median_range(onsets)
        group.duration_days[kind] = median_range(durations)
    for key, _ in THERAPIES:
        used = 0
        for s in infused:
            course = snapshot.courses.get(s.pk)
            if course is None:
                continue
            if key == "icu":
                used += bool(course.icu_stays)
            elif key == "anticytokine":
                used += any(name == key and drug in ("anakinra", "siltuximab") for name, _, drug in course.therapies())
            else:
                used += any(name == key for name, _, _ in course.therapies())
        group.therapy[key] = proportion(used, n)
    return group


def build_ae_report(snapshot: TrialSnapshot, *, by_cohort: bool = True) -> AeReport:
    episodes = snapshot.episodes()
    groups = []
    if by_cohort:
        for pk, name, _ in snapshot.cohorts:
            groups.append(summarize_group(name, snapshot, [s.pk for s in snapshot.subjects if s.cohort_id == pk], episodes))
    groups.append(summarize_group("Overall", snapshot, [s.pk for s in snapshot.subjects], episodes))
    return AeReport(
        protocol_code=snapshot.protocol_code, cut=snapshot.cut.isoformat(), digest=snapshot.digest(),
        listing=listing(snapshot, episodes), groups=groups,
    )


def summary_csv_rows(report: AeReport) -> list[list[str]]:
    """The summary table as CSV rows: one row per measure, one column per group."""
    header = ["measure"] + [f"{g.label} (N={g.n})" for g in report.groups]
    rows = [header]
    for kind in KINDS:
        name = kind.upper()
        rows.append([f"{name} any grade"] + [g.any_grade[kind].text() for g in report.groups])
        rows.append([f"{name} grade >= 3"] + [g.grade3[kind].text() for g in report.groups])
        for grade in range(6):
            rows.append([f"{name} max grade {grade}"] + [str(g.max_grade_counts[kind][grade]) for g in report.groups])
        rows.append([f"{name} onset study day, median (range)"] + [_mr(g.onset_day[kind]) for g in report.groups])
        rows.append([f"{name} duration days, median (range)"] + [_mr(g.duration_days[kind]) for g in report.groups])
    for key, label in THERAPIES:
        rows.append([label] + [f"{g.therapy[key].count} ({g.therapy[key].percent:.1f}%)" for g in report.groups])
    return rows


def _mr(value) -> str:
    if value is None:
        return "-"
    med, low, high = value
    return f"{med:g} ({low:g}-{high:g})"
