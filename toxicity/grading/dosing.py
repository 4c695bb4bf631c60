"""Dosing and blood-purification arithmetic (checks.md; data-dictionary.md, rescue interventions).

Tocilizumab (Actemra label; NCCN/ASCO CRS guidance): 12 mg/kg under 30 kg, else 8 mg/kg,
never more than 800 mg per dose. Plasma volume: 65 mL/kg x (1 - hematocrit). Effluent dose:
effluent rate / weight. Dexamethasone equivalents as reports.md gives them.
"""
from decimal import ROUND_HALF_UP, Decimal

TOCILIZUMAB_MAX_DOSE_MG = Decimal("800")
TOCILIZUMAB_CHILD_WEIGHT_KG = Decimal("30")
PLASMA_ML_PER_KG = Decimal("65")

# mg of the drug with the effect of 1 mg of dexamethasone (data-dictionary.md: dexamethasone 1 =
# methylprednisolone 5.33 = prednisolone 6.67 = prednisone 6.67 = hydrocortisone 26.7).
DEXAMETHASONE_EQUIVALENT_DIVISOR = {
    "dexamethasone": Decimal("1"),
    "methylprednisolone": Decimal("5.33"),
    "hydrocortisone": Decimal("26.7"),
    "prednisone": Decimal("6.67"),
    "prednisolone": Decimal("6.67"),
}


def mg_per_kg(dose_mg: Decimal, weight_kg: Decimal) -> Decimal:
    return (Decimal(dose_mg) / Decimal(weight_kg)).quantize(Decimal("0.01"), ROUND_HALF_UP)


def tocilizumab_expected_dose_mg(weight_kg: Decimal) -> Decimal:
    """12 mg/kg below 30 kg, 8 mg/kg from 30 kg, capped at 800 mg per dose."""
    weight = Decimal(weight_kg)
    per_kg = Decimal("12") if weight < TOCILIZUMAB_CHILD_WEIGHT_KG else Decimal("8")
    return min(per_kg * weight, TOCILIZUMAB_MAX_DOSE_MG).quantize(Decimal("0.1"), ROUND_HALF_UP)


def estimated_plasma_volume_ml(weight_kg: Decimal, hematocrit_fraction: Decimal) -> int:
    return int((PLASMA_ML_PER_KG * Decimal(weight_kg) * (1 - Decimal(hematocrit_fraction))).to_integral_value(ROUND_HALF_UP))


def plasma_volumes_exchanged(exchanged_ml: int, estimated_ml: int) -> Decimal:
    return (Decimal(exchanged_ml) / Decimal(estimated_ml)).quantize(Decimal("0.01"), ROUND_HALF_UP)


def effluent_dose_ml_kg_h(effluent_rate_ml_h: int, weight_kg: Decimal) -> Decimal:
    return (Decimal(effluent_rate_ml_h) / Decimal(weight_kg)).quantize(Decimal("0.1"), ROUND_HALF_UP)


def dexamethasone_equivalent_mg(drug: str, dose_mg: Decimal) -> Decimal | None:
    """None for a drug without a stated equivalence ('other')."""
    divisor = DEXAMETHASONE_EQUIVALENT_DIVISOR.get(drug)
    return None if divisor is None else (Decimal(dose_mg) / divisor).quantize(Decimal("0.01"), ROUND_HALF_UP)
