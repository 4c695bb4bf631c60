"""Blood purification, infusion and weight rules of checks.md."""
from decimal import Decimal

from toxicity.course.derive import DerivedCourse
from toxicity.course.records import HEMOFILTRATION, INFUSION, PLASMA_EXCHANGE

from .registry import Finding, rule, values_of

# --- blood purification ---------------------------------------------------------------------


@rule(
    ("TPE-VOLUME", "Plasma volumes exchanged below 0.8 or above 1.6."),
    ("TPE-SAME-DAY", "More than one plasma exchange started on one calendar day."),
)
def plasma_exchange(c: DerivedCourse):
    seen_days = set()
    for p in sorted(c.course.plasma_exchanges, key=lambda p: p.at):
        if p.plasma_volumes is not None and not (Decimal("0.8") <= p.plasma_volumes <= Decimal("1.6")):
            yield Finding(
                "TPE-VOLUME", (PLASMA_EXCHANGE, p.id), "plasma_volume_exchanged_ml",
                f"TPE-VOLUME: {p.plasma_volumes} estimated plasma volumes exchanged (0.8-1.6 expected).",
                values_of(plasma_volume_exchanged_ml=p.exchanged_ml, plasma_volumes_exchanged=p.plasma_volumes),
            )
        if p.day in seen_days:
            yield Finding(
                "TPE-SAME-DAY", (PLASMA_EXCHANGE, p.id), "started_at",
                f"TPE-SAME-DAY: another plasma exchange already started on {p.day}.",
                values_of(started_at=p.at),
            )
        seen_days.add(p.day)


@rule(("CRRT-DOSE", "Effluent dose below 20 or above 35 mL/kg/h."))
def crrt_dose(c: DerivedCourse):
    for h in c.course.hemofiltrations:
        if h.dose_ml_kg_h is not None and not (20 <= h.dose_ml_kg_h <= 35):
            yield Finding(
                "CRRT-DOSE", (HEMOFILTRATION, h.id), "effluent_rate_ml_h",
                f"CRRT-DOSE: effluent dose {h.dose_ml_kg_h} mL/kg/h (20-35 expected).",
                values_of(effluent_rate_ml_h=h.effluent_rate_ml_h, effluent_dose_ml_kg_h=h.dose_ml_kg_h),
            )


# --- set-up and weights ---------------------------------------------------------------------


@rule(("INFUSION-DOSE-COHORT", "Infused dose more than 20% from the cohort's dose level."))
def infusion_dose_cohort(c: DerivedCourse):
    level = c.course.subject.cohort_dose_level
    if not level:
        return
    for i in c.course.infusions:
        if abs(i.dose_cells_per_kg - level) > 0.2 * level:
            yield Finding(
                "INFUSION-DOSE-COHORT", (INFUSION, i.id), "dose_cells_per_kg",
                f"INFUSION-DOSE-COHORT: {i.dose_cells_per_kg:.3g} cells/kg is more than 20% from the cohort dose level "
                f"{level:.3g} cells/kg.",
                values_of(dose_cells_per_kg=i.dose_cells_per_kg, cohort_dose_level_cells_per_kg=level),
            )


@rule(("WEIGHT-CHANGE", "A weight more than 10% from the last recorded weight."))
def weight_change(c: DerivedCourse):
    previous = c.course.subject.baseline_weight_kg
    for w in c.course.weights():
        kind, record_id = w.record
        if previous and abs(w.weight_kg - previous) > previous / 10:
            yield Finding(
                "WEIGHT-CHANGE", (kind, record_id), "weight_kg",
                f"WEIGHT-CHANGE: {w.weight_kg} kg is more than 10% from the last recorded weight ({previous} kg).",
                values_of(weight_kg=w.weight_kg, previous_weight_kg=previous),
            )
        previous = w.weight_kg
