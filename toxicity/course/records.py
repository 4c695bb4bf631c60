"""The plain record types of one subject's clinical course (no Django import).

Every reader of a subject's data - grading, the consistency rules, episode derivation, reports
and exports - sees it as these records, loaded by ``load.py`` (live, or as of a data cut) and
derived by ``derive.py``. Times are aware datetimes; ``day`` is the site-local calendar date.
The kinds are the model labels the services map a record back to (queries name them).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any, NamedTuple

from toxicity.grading.inputs import FeverMask

# Record kinds: model labels (queries and the audit trail name records by them).
SUBJECT, INFUSION, DEATH = "trials.subject", "trials.infusion", "trials.death"
ASSESSMENT = "toxicity.dailyassessment"
TOCILIZUMAB, STEROID, ANTICYTOKINE = (
    "toxicity.tocilizumabdose", "toxicity.corticosteroiddose", "toxicity.anticytokinedose")
PLASMA_EXCHANGE, HEMOFILTRATION, ICU_STAY = (
    "toxicity.plasmaexchange", "toxicity.hemofiltrationsession", "toxicity.icustay")
EPISODE_REVIEW = "toxicity.episodereview"
DOSE_KINDS = (TOCILIZUMAB, STEROID, ANTICYTOKINE)

CRS, ICANS = "crs", "icans"
KINDS = (CRS, ICANS)
# ICH E2A seriousness criteria (data-dictionary.md, adverse_event and episode_review), in order.
SERIOUSNESS_CODES = (
    "death", "life_threatening", "hospitalization", "disability", "congenital_anomaly", "important_medical_event",
)


@dataclass(frozen=True)
class Trial:
    """The trial settings a course is graded and checked with (data-dictionary.md, Trial set-up)."""

    crs_scale: str = "astct_2019"
    icans_scale: str = "astct_2019"
    daily_assessment_until_day: int = 14
    tocilizumab_response_hours: int = 24


@dataclass(frozen=True)
class Subject:
    id: int
    subject_id: str = ""
    trial_id: int | None = None
    site_id: int | None = None
    timezone: str = "UTC"  # the site's IANA zone: site-local days and "00:00 of that day"
    status: str = "infused"
    enrolled_on: date | None = None
    day0: date | None = None
    age_years: Any = None  # whole years at the index infusion (Decimal or int in the CLI)
    developmental_delay: bool = False
    capd_baseline: int | None = None
    baseline_weight_kg: Decimal | None = None
    cohort_dose_level: float | None = None
    voided: bool = False


@dataclass(frozen=True)
class Grades:
    """What the platform derives for one day and stores with it: the columns of the same names
    (data-dictionary.md, "Derived and stored with the row"). Grades are 0-5, None = NE."""

    study_day: int | None
    crs_grade_derived: int | None
    icans_grade_derived: int | None
    ctcae_crs_grade_derived: int | None
    minimum_crs_grade: int | None
    minimum_icans_grade: int | None
    fever_masked_by: FeverMask | None
    crs_scale: str
    icans_scale: str
    engine_version: str
    flags: tuple[str, ...]
    reasons: tuple[str, ...]

    def columns(self) -> dict[str, Any]:
        """As the model stores them (JSON columns as lists and dicts)."""
        values = {name: getattr(self, name) for name in GRADE_COLUMNS}
        values["fever_masked_by"] = None if self.fever_masked_by is None else self.fever_masked_by.as_dict()
        values["flags"], values["reasons"] = list(self.flags), list(self.reasons)
        return values


GRADE_COLUMNS = tuple(Grades.__dataclass_fields__)


class Assessment(NamedTuple):
    """One daily assessment: the observed values of the day as stored (the model's
    ``OBSERVATIONS``), and the grades stored with it (None before it was ever derived). A named
    tuple: a trial's check run builds one per day of every course."""

    id: int | None
    day: date
    observations: Mapping[str, Any]
    stored: Grades | None = None
    version: int = 1
    recorded_at: datetime | None = None  # when first entered (SAE-REVIEW-MISSING's clock)
    key: Any = None  # the observations as stored, hashable (the loader's; None: not from the database)

    def get(self, name: str, default: Any = None) -> Any:
        return self.observations.get(name, default)


@dataclass(frozen=True)
class Dose:
    """A tocilizumab, corticosteroid or anti-cytokine dose."""

    kind: str  # TOCILIZUMAB, STEROID or ANTICYTOKINE
    id: int | None
    at: datetime
    day: date
    drug: str  # "tocilizumab" for the tocilizumab log
    dose_mg: Decimal
    indication: str
    route: str = "iv"
    weight_kg: Decimal | None = None  # as recorded on the dose (optional for corticosteroids)


@dataclass(frozen=True)
class PlasmaExchange:
    id: int | None
    at: datetime
    ended_at: datetime
    day: date
    exchanged_ml: int
    plasma_volumes: Decimal | None
    weight_kg: Decimal


@dataclass(frozen=True)
class Hemofiltration:
    id: int | None
    at: datetime
    ended_at: datetime | None  # None while running
    day: date
    modality: str
    effluent_rate_ml_h: int
    dose_ml_kg_h: Decimal | None
    weight_kg: Decimal


@dataclass(frozen=True)
class IcuStay:
    id: int | None
    admitted_at: datetime
    discharged_at: datetime | None  # None: still in the ICU
    admitted: date
    discharged: date | None
    reason: str  # crs, icans, other
    recorded_at: datetime | None = None


@dataclass(frozen=True)
class Infusion:
    id: int | None
    number: int
    at: datetime
    day: date
    dose_cells_per_kg: float
    weight_kg: Decimal


@dataclass(frozen=True)
class Death:
    id: int | None
    day: date
    primary_cause: str
    recorded_at: datetime | None = None


@dataclass(frozen=True)
class EpisodeReview:
    """The investigator's review of one derived episode, keyed by kind and onset date
    (data-dictionary.md, episode_review). ``reviewed`` is the episode as it stood when reviewed."""

    id: int | None
    kind: str
    onset_date: date
    serious: bool
    seriousness: tuple[str, ...]
    relatedness: str
    outcome: str
    reviewed: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Weight:
    at: datetime | None  # None: the baseline weight
    day: date | None
    weight_kg: Decimal
    record: tuple[str, int | None]


@dataclass(frozen=True)
class Course:
    """Everything recorded about one subject's course, in time order."""

    subject: Subject
    trial: Trial = Trial()
    assessments: tuple[Assessment, ...] = ()  # by day
    doses: tuple[Dose, ...] = ()  # by time
    plasma_exchanges: tuple[PlasmaExchange, ...] = ()
    hemofiltrations: tuple[Hemofiltration, ...] = ()
    icu_stays: tuple[IcuStay, ...] = ()
    infusions: tuple[Infusion, ...] = ()
    death: Death | None = None
    reviews: tuple[EpisodeReview, ...] = ()

    def therapies(self) -> list[tuple[str, date, str]]:
        """(therapy, site-local start day, drug) of every rescue therapy, in time order; therapy is
        tocilizumab, corticosteroid, anticytokine, plasma_exchange or hemofiltration."""
        found = [(THERAPY_NAMES[d.kind], d.day, d.drug, d.at) for d in self.doses]
        found += [("plasma_exchange", p.day, "", p.at) for p in self.plasma_exchanges]
        found += [("hemofiltration", h.day, h.modality, h.at) for h in self.hemofiltrations]
        return [(name, day, drug) for name, day, drug, _ in sorted(found, key=lambda t: (t[3], t[0]))]

    def doses_of(self, kind: str, drug: str | None = None) -> list[Dose]:
        return [d for d in self.doses if d.kind == kind and (drug is None or d.drug == drug)]

    def weights(self) -> list[Weight]:
        """Every recorded weight in time order (infusions, doses that carry one, procedures)."""
        found = [Weight(i.at, i.day, i.weight_kg, (INFUSION, i.id)) for i in self.infusions]
        found += [Weight(d.at, d.day, d.weight_kg, (d.kind, d.id)) for d in self.doses if d.weight_kg is not None]
        found += [Weight(p.at, p.day, p.weight_kg, (PLASMA_EXCHANGE, p.id)) for p in self.plasma_exchanges]
        found += [Weight(h.at, h.day, h.weight_kg, (HEMOFILTRATION, h.id)) for h in self.hemofiltrations]
        return sorted(found, key=lambda w: (w.at, w.record[0], w.record[1] or 0))

    def weight_on(self, day: date, *, excluding: tuple[str, int | None] | None = None) -> Decimal | None:
        """The latest weight recorded on or before ``day`` (never a later one), else the baseline
        weight (data-dictionary.md: corticosteroid per-kg checks)."""
        best = None
        for w in self.weights():
            if w.day <= day and w.record != excluding:
                best = w.weight_kg
        return best if best is not None else self.subject.baseline_weight_kg

    def with_record(self, kind: str, record: Any, *, removed: bool = False) -> Course:
        """The same course with one record added, replaced (same id) or removed: the save path
        updates the course it loaded instead of loading it again."""
        name, key = _COLLECTIONS[kind]
        if name == "death":
            return replace(self, death=None if removed else record)
        # the doses of three logs share one collection: a record is its kind and id together (a
        # review's own ``kind`` is the episode's, CRS or ICANS, not the record kind)
        items = [r for r in getattr(self, name)
                 if record.id is None or (r.id, r.kind if name == "doses" else kind) != (record.id, kind)]
        if not removed:
            items.append(record)
        return replace(self, **{name: tuple(sorted(items, key=key))})


THERAPY_NAMES = {TOCILIZUMAB: "tocilizumab", STEROID: "corticosteroid", ANTICYTOKINE: "anticytokine"}

_COLLECTIONS = {
    ASSESSMENT: ("assessments", lambda a: a.day),
    TOCILIZUMAB: ("doses", lambda d: (d.at, d.kind, d.id or 0)),
    STEROID: ("doses", lambda d: (d.at, d.kind, d.id or 0)),
    ANTICYTOKINE: ("doses", lambda d: (d.at, d.kind, d.id or 0)),
    PLASMA_EXCHANGE: ("plasma_exchanges", lambda p: (p.at, p.id or 0)),
    HEMOFILTRATION: ("hemofiltrations", lambda h: (h.at, h.id or 0)),
    ICU_STAY: ("icu_stays", lambda s: (s.admitted_at, s.id or 0)),
    INFUSION: ("infusions", lambda i: (i.number, i.id or 0)),
    EPISODE_REVIEW: ("reviews", lambda r: (r.kind, r.onset_date, r.id or 0)),
    DEATH: ("death", None),
}
