"""Plain records of one subject, as the rules see them. Times are aware datetimes; ``day`` fields
are site-local calendar dates."""
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

# Record kinds: the model label the services map back to a database row.
SUBJECT, INFUSION, DEATH, ASSESSMENT = "trials.subject", "trials.infusion", "trials.death", "toxicity.dailyassessment"
TOCILIZUMAB, STEROID, ANTICYTOKINE = "toxicity.tocilizumabdose", "toxicity.corticosteroiddose", "toxicity.anticytokinedose"
PLASMA_EXCHANGE, HEMOFILTRATION = "toxicity.plasmaexchange", "toxicity.hemofiltrationsession"


@dataclass(frozen=True)
class Finding:
    """A soft rule that fails on one field of one record; ``values`` are the values at raise time."""

    rule_id: str
    record: tuple[str, int]  # (kind, primary key)
    field: str
    message: str
    values: dict[str, Any]

    @property
    def key(self) -> tuple[str, str, int, str]:
        return (self.rule_id, self.record[0], self.record[1], self.field)


@dataclass(frozen=True)
class Trial:
    daily_assessment_until_day: int = 14
    tocilizumab_response_hours: int = 24


@dataclass(frozen=True)
class Assessment:
    id: int
    day: date
    study_day: int | None
    crs_grade: int | None  # None = NE
    icans_grade: int | None
    ctcae_crs_grade: int | None
    flags: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict)  # the observed fields, for the query's values


@dataclass(frozen=True)
class Dose:
    """A tocilizumab, corticosteroid or anti-cytokine dose."""

    kind: str
    id: int
    at: datetime
    day: date
    dose_mg: Decimal
    drug: str = "tocilizumab"
    weight_kg: Decimal | None = None
    indication: str = ""


@dataclass(frozen=True)
class PlasmaExchange:
    id: int
    at: datetime
    day: date
    exchanged_ml: int
    plasma_volumes: Decimal | None
    weight_kg: Decimal


@dataclass(frozen=True)
class Hemofiltration:
    id: int
    at: datetime
    effluent_rate_ml_h: int
    dose_ml_kg_h: Decimal | None
    weight_kg: Decimal


@dataclass(frozen=True)
class Infusion:
    id: int
    at: datetime
    day: date
    dose_cells_per_kg: float
    cohort_dose_level: float
    weight_kg: Decimal


@dataclass(frozen=True)
class Death:
    id: int
    day: date
    primary_cause: str


@dataclass(frozen=True)
class SubjectSnapshot:
    id: int
    today: date  # site-local
    now: datetime
    trial: Trial
    status: str
    day0: date | None
    enrolled_on: date
    baseline_weight_kg: Decimal
    assessments: tuple[Assessment, ...] = ()
    infusions: tuple[Infusion, ...] = ()
    doses: tuple[Dose, ...] = ()
    plasma_exchanges: tuple[PlasmaExchange, ...] = ()
    hemofiltrations: tuple[Hemofiltration, ...] = ()
    death: Death | None = None
    timezone: str = "UTC"  # the site's IANA zone: "00:00 of that day" is local midnight

    def doses_of(self, kind: str, drug: str | None = None) -> list[Dose]:
        return sorted((d for d in self.doses if d.kind == kind and (drug is None or d.drug == drug)), key=lambda d: d.at)
