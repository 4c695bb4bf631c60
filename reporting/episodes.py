"""CRS and ICANS episodes from derived daily grades (reports.md). Pure Python, no Django import.

An episode starts on the first day with grade >= 1; NE days inside an episode continue it; it
ends on the last day with grade >= 1 before a day with grade 0, which is the resolution date.
No grade-0 day yet: ongoing. A later day with grade >= 1 starts a new episode (a recurrence).
"""
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

NE = None  # a day graded "not evaluable" is stored as None


@dataclass(frozen=True)
class Episode:
    onset_date: date
    max_grade: int
    max_grade_date: date
    last_positive_date: date
    resolution_date: date | None  # the first grade-0 day after the episode; None while ongoing
    last_assessment_date: date  # the latest day seen (for the duration of an ongoing episode)

    @property
    def ongoing(self) -> bool:
        return self.resolution_date is None

    @property
    def duration_days(self) -> int:
        end = self.resolution_date or self.last_assessment_date
        return (end - self.onset_date).days

    def contains(self, day: date) -> bool:
        """Whether a calendar day lies between onset (inclusive) and resolution (exclusive)."""
        return self.onset_date <= day and (self.resolution_date is None or day < self.resolution_date)


def derive_episodes(days: Iterable[tuple[date, int | None]]) -> list[Episode]:
    """Episodes from (date, grade) pairs; grade None means NE. Days need not be consecutive."""
    episodes: list[Episode] = []
    current: dict | None = None
    last_seen: date | None = None
    for day, grade in sorted(days, key=lambda d: d[0]):
        last_seen = day
        if grade is NE:
            continue
        if grade >= 1:
            if current is None:
                current = {"onset_date": day, "max_grade": grade, "max_grade_date": day, "last_positive_date": day}
            else:
                current["last_positive_date"] = day
                if grade > current["max_grade"]:
                    current["max_grade"], current["max_grade_date"] = grade, day
        elif current is not None:
            episodes.append(Episode(**current, resolution_date=day, last_assessment_date=day))
            current = None
    if current is not None:
        episodes.append(Episode(**current, resolution_date=None, last_assessment_date=last_seen))
    return episodes


# --- what each episode carries beyond its dates (reports.md, "CRS and ICANS episodes") -------

TERMS = {"crs": "Cytokine release syndrome", "icans": "Immune effector cell-associated neurotoxicity syndrome"}

# Dexamethasone-equivalent potency (reports.md): dexamethasone 1 = methylprednisolone 5.33 =
# hydrocortisone 26.7 = prednisone 6.67. Other steroids count as "given" but add no mg.
DEXAMETHASONE_EQUIVALENT = {
    "dexamethasone": Decimal("1"),
    "methylprednisolone": Decimal("5.33"),
    "hydrocortisone": Decimal("26.7"),
    "prednisone": Decimal("6.67"),
}


@dataclass(frozen=True)
class Therapy:
    """One rescue-therapy record reduced to what an episode counts; ``day`` is the site-local start date."""

    kind: str  # tocilizumab, corticosteroid, anticytokine, plasma_exchange, hemofiltration
    day: date
    drug: str = ""
    dose_mg: Decimal | None = None
    volume_ml: int | None = None
    hours: Decimal | None = None


@dataclass(frozen=True)
class IcuStay:
    admitted: date  # site-local dates
    discharged: date | None  # None: still in the ICU at the data cut


@dataclass(frozen=True)
class EpisodeSummary:
    tocilizumab_doses: int = 0
    corticosteroid_given: bool = False
    dexamethasone_equivalent_mg: Decimal = Decimal("0")
    anakinra_doses: int = 0
    siltuximab_doses: int = 0
    plasma_exchange_sessions: int = 0
    plasma_exchange_volume_ml: int = 0
    hemofiltration_sessions: int = 0
    hemofiltration_hours: Decimal = Decimal("0")
    icu_days: int = 0
    died_during_episode: bool = False
    serious: bool = False
    outcome: str = "not_recovered"


def dexamethasone_equivalent_mg(drug: str, dose_mg: Decimal) -> Decimal:
    """mg of dexamethasone with the same glucocorticoid effect; 0 for steroids without a ratio."""
    ratio = DEXAMETHASONE_EQUIVALENT.get(drug)
    return (Decimal(dose_mg) / ratio).quantize(Decimal("0.01")) if ratio else Decimal("0")


def _icu_days(episode: Episode, stays: Iterable[IcuStay], cut: date) -> int:
    """Calendar days of the episode (onset .. the day before resolution, or the last assessment) spent in the ICU."""
    last = episode.resolution_date - timedelta(days=1) if episode.resolution_date else max(episode.last_assessment_date, episode.onset_date)
    days = set()
    for stay in stays:
        start = max(stay.admitted, episode.onset_date)
        end = min(stay.discharged or cut, last)
        days.update(start + timedelta(days=n) for n in range((end - start).days + 1))
    return len(days)


def summarize(
    episode: Episode,
    *,
    kind: str,
    therapies: Iterable[Therapy],
    icu_stays: Iterable[IcuStay],
    death_date: date | None,
    death_cause: str | None,
    cut: date,
) -> EpisodeSummary:
    """Rescue therapy given between onset (inclusive) and resolution (exclusive), seriousness and outcome.

    reports.md: serious = max grade >= 3 or ICU stay or death; outcome from resolution / death.
    Outcome ``fatal`` when the subject died during the episode of this toxicity (the death's
    primary cause, or grade 5); a death of another cause during an unresolved episode leaves it
    ``not_recovered``; a resolved episode is ``recovered``.
    """
    counts = {"tocilizumab": 0, "anakinra": 0, "siltuximab": 0, "tpe": 0, "crrt": 0}
    steroid, dex, volume, hours = False, Decimal("0"), 0, Decimal("0")
    for t in therapies:
        if not episode.contains(t.day):
            continue
        if t.kind == "tocilizumab":
            counts["tocilizumab"] += 1
        elif t.kind == "corticosteroid":
            steroid = True
            dex += dexamethasone_equivalent_mg(t.drug, t.dose_mg or Decimal("0"))
        elif t.kind == "anticytokine" and t.drug in ("anakinra", "siltuximab"):
            counts[t.drug] += 1
        elif t.kind == "plasma_exchange":
            counts["tpe"] += 1
            volume += t.volume_ml or 0
        elif t.kind == "hemofiltration":
            counts["crrt"] += 1
            hours += t.hours or Decimal("0")
    icu_days = _icu_days(episode, list(icu_stays), cut)
    died = death_date is not None and episode.contains(death_date)
    if died and (death_cause == kind or episode.max_grade == 5):
        outcome = "fatal"
    elif episode.resolution_date is not None:
        outcome = "recovered"
    else:
        outcome = "not_recovered"
    return EpisodeSummary(
        tocilizumab_doses=counts["tocilizumab"],
        corticosteroid_given=steroid,
        dexamethasone_equivalent_mg=dex,
        anakinra_doses=counts["anakinra"],
        siltuximab_doses=counts["siltuximab"],
        plasma_exchange_sessions=counts["tpe"],
        plasma_exchange_volume_ml=volume,
        hemofiltration_sessions=counts["crrt"],
        hemofiltration_hours=hours.quantize(Decimal("0.1")),
        icu_days=icu_days,
        died_during_episode=died,
        serious=episode.max_grade >= 3 or icu_days > 0 or died,
        outcome=outcome,
    )


@dataclass(frozen=True)
class Course:
    """Everything episode derivation needs about one subject, as plain values."""

    day0: date | None
    crs: tuple[tuple[date, int | None], ...]  # (date, derived grade on the trial scale; None = NE)
    icans: tuple[tuple[date, int | None], ...]
    therapies: tuple[Therapy, ...] = ()
    icu_stays: tuple[IcuStay, ...] = ()
    death_date: date | None = None
    death_cause: str | None = None
    crs_scale: str = "astct_2019"
    icans_scale: str = "astct_2019"


def course_episodes(course: Course, *, cut: date) -> list[dict]:
    """Every CRS and ICANS episode of a subject with all its reports.md fields, as field dicts."""
    rows = []
    for kind, days, scale in (("crs", course.crs, course.crs_scale), ("icans", course.icans, course.icans_scale)):
        for number, ep in enumerate(derive_episodes(days), start=1):
            summary = summarize(ep, kind=kind, therapies=course.therapies, icu_stays=course.icu_stays,
                                death_date=course.death_date, death_cause=course.death_cause, cut=cut)
            fields = {k: v for k, v in summary.__dict__.items() if k != "died_during_episode"}
            rows.append({
                "kind": kind,
                "episode_number": number,
                "term": TERMS[kind],
                "scale": scale,
                "onset_date": ep.onset_date,
                "onset_study_day": (ep.onset_date - course.day0).days if course.day0 else None,
                "max_grade": ep.max_grade,
                "max_grade_date": ep.max_grade_date,
                "resolution_date": ep.resolution_date,
                "duration_days": ep.duration_days,
                "ongoing": ep.ongoing,
                "last_assessment_date": ep.last_assessment_date,
                **fields,
            })
    return rows
