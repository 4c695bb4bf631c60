"""Cytokine release syndrome (CRS) grade on the ASTCT 2019, CTCAE v5.0 or CTCAE v6.0 scale.

Sources:
- ASTCT 2019: Lee DW et al., ASTCT consensus grading for cytokine release syndrome and
  neurologic toxicity, Biol Blood Marrow Transplant 2019;25:625-638 (CRS table and footnotes):
  fever >= 38.0 C, then the worse of hypotension (by vasopressors) and hypoxia (by oxygen device).
- CTCAE v5.0 (NCI 2017), "Cytokine release syndrome": hypoxia graded by FiO2 (< 40% / >= 40%),
  hypotension by pressors; the engine maps multiple pressors or positive pressure to grade 4.
- CTCAE v6.0 (NCI 2025): grades 2 and 3 use the ASTCT oxygen devices; grades 1, 4, 5 and the
  pressor wording as v5.0.

Whether a day is CRS at all is one question on every scale, so all three share the fever gate
(R-CRS-1, R-CRS-2, R-CRS-14), attribution (R-CRS-12), missing data (R-CRS-15) and death
(R-CRS-13). Each component (hypotension, hypoxia) is a range [low, high]: a missing value
widens it, and the day is NE only when the missing value could change the grade. Organ
toxicities and the height of the fever never change the grade (R-CRS-11).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

from .inputs import (
    ASTCT_2019, CTCAE_V5, CTCAE_V6, NE, SCALE_LABELS, Assessment, Flag, ScaleGrade,
)

FEVER_C = Decimal("38.0")  # R-CRS-1: 38.0 is fever, 37.9 is not
LOW_FLOW_MAX_L_MIN = Decimal("6")  # R-CRS-4: <= 6 L/min low flow, > 6 high flow (ASTCT footnote)
NASAL_CANNULA_MAX_L_MIN = Decimal("15")  # soft limit: above this a plain cannula is doubtful
CTCAE_FIO2_HIGH = 40  # CTCAE v5.0: < 40% grade 2, >= 40% grade 3

MASKS = ("facemask", "non_rebreather", "venturi_mask")
NON_INVASIVE_POSITIVE_PRESSURE = ("cpap", "bipap")

DEVICE_NAMES = {
    "none": "no oxygen device", "nasal_cannula": "nasal cannula", "blow_by": "blow-by oxygen",
    "high_flow_nasal_cannula": "high-flow nasal cannula", "facemask": "facemask",
    "non_rebreather": "non-rebreather mask", "venturi_mask": "Venturi mask", "cpap": "CPAP",
    "bipap": "BiPAP", "mechanical_ventilation": "mechanical ventilation",
}
AGENT_NAMES = {"angiotensin_ii": "angiotensin II", "other": "another vasopressor"}


@dataclass(frozen=True)
class Component:
    """A component grade known to lie in [low, high]; low == high when nothing is missing."""

    low: int
    high: int
    reasons: tuple[str, ...] = ()
    flags: frozenset[str] = frozenset()


def _known(grade: int, *reasons: str, flags: frozenset[str] = frozenset()) -> Component:
    return Component(grade, grade, reasons, flags)


class Gate(enum.Enum):
    """Is this day CRS at all? (R-CRS-1, R-CRS-2, R-CRS-14, R-CRS-15)"""

    FEVER = "fever"  # fever present: grade at least 1
    EXEMPT = "exempt"  # R-CRS-2: fever no longer required, hypotension and hypoxia decide
    NO_CRS = "no_crs"  # R-CRS-14: no fever, no exemption: grade 0
    UNKNOWN = "unknown"  # R-CRS-15: temperature not measured and no exemption: NE


def grade_crs(a: Assessment, scale: str) -> ScaleGrade:
    """CRS grade of one day on `scale` (astct_2019, ctcae_v5 or ctcae_v6)."""
    label = SCALE_LABELS[scale]
    if a.death_primary_cause == "crs":  # R-CRS-13
        return ScaleGrade(scale, 5, (f"R-CRS-13: death principally due to CRS: {label} CRS "
                                     f"grade 5.",))
    reasons: list[str] = []
    if a.death_primary_cause is not None:
        reasons.append(f"R-CRS-13: death from {a.death_primary_cause.replace('_', ' ')} is not "
                       f"CRS grade 5.")
    gate, gate_reasons = fever_gate(a)
    reasons += gate_reasons

    if gate is Gate.NO_CRS:
        flags = set()
        if hypotension_counts(a) or hypoxia_counts(a):
            flags.add(Flag.CRS_NO_FEVER_AT_ONSET)
            reasons.append("R-CRS-14: hypotension or hypoxia without fever, outside any "
                           "fever-masking window (R-CRS-2): not CRS; confirm another cause.")
        reasons.append(f"{label} CRS grade 0 (R-CRS-14: no fever, outside any fever-masking "
                       f"window).")
        return ScaleGrade(scale, 0, tuple(reasons), frozenset(flags))

    hypotension = hypotension_component(a, scale)
    hypoxia = hypoxia_component(a, scale)
    reasons += hypotension.reasons + hypoxia.reasons
    if scale == CTCAE_V6:
        reasons.append("CTCAE v6.0: oxygen graded by the ASTCT devices; pressors and grades "
                       "1, 4 and 5 as CTCAE v5.0.")
    flags = set(hypotension.flags | hypoxia.flags)

    if gate is Gate.UNKNOWN:
        flags.add(Flag.CRS_NOT_EVALUABLE)
        reasons.append(f"{label} CRS not evaluable (R-CRS-15: temperature not measured and no "
                       f"R-CRS-2 exemption).")
        return ScaleGrade(scale, NE, tuple(reasons), frozenset(flags))

    floor = 1 if gate is Gate.FEVER else 0  # R-CRS-3: at least 1 when fever is present
    low = max(floor, hypotension.low, hypoxia.low)
    high = max(floor, hypotension.high, hypoxia.high)
    masked = gate is Gate.EXEMPT and low >= 1  # R-CRS-2: CRS graded without fever
    if masked:
        flags.add(Flag.CRS_FEVER_MASKED)
        reasons.append(_masked_sentence(a))
    if low != high:
        flags.add(Flag.CRS_NOT_EVALUABLE)
        minimum = low if low >= 1 else None
        floor_text = f"; the recorded values prove at least grade {low}" if minimum else ""
        reasons.append(f"{label} CRS not evaluable (R-CRS-15): the missing value decides between "
                       f"grade {low} and grade {high}{floor_text}.")
        return ScaleGrade(scale, NE, tuple(reasons), frozenset(flags), minimum)

    reasons.append(_summary(label, gate, low, hypotension, hypoxia))
    return ScaleGrade(scale, low, tuple(reasons), frozenset(flags))


def _masked_sentence(a: Assessment) -> str:
    """CRS-FEVER-MASKED: the site confirms hypotension/hypoxia have no other cause (R-CRS-2)."""
    by = (f"the masking window of {a.fever_masked_by.words()}" if a.fever_masked_by is not None
          else "a masking window of anti-cytokine or antipyretic therapy since CRS onset")
    return (f"CRS-FEVER-MASKED: CRS graded without fever inside {by} (R-CRS-2): confirm the "
            f"hypotension or hypoxia has no other cause.")


def _summary(label: str, gate: Gate, grade: int, hypotension: Component,
             hypoxia: Component) -> str:
    if gate is Gate.EXEMPT and grade == 0:
        return (f"{label} CRS grade 0 (R-CRS-14: neither hypotension nor hypoxia inside a "
                f"fever-masking window).")
    if gate is Gate.FEVER and grade == 1:
        return f"{label} CRS grade 1 (R-CRS-1: fever without hypotension or hypoxia)."
    fever = "with fever" if gate is Gate.FEVER else "fever not required under R-CRS-2"
    return (f"{label} CRS grade {grade} (R-CRS-3: the worse of hypotension grade "
            f"{_span(hypotension)} and hypoxia grade {_span(hypoxia)}, {fever}).")


def _span(c: Component) -> str:
    return str(c.low) if c.low == c.high else f"{c.low}-{c.high}"


# --- fever gate: R-CRS-1, R-CRS-2, R-CRS-12, R-CRS-14, R-CRS-15 -------------------------------

def fever_gate(a: Assessment) -> tuple[Gate, list[str]]:
    reasons: list[str] = []
    fever = fever_present(a)
    temp = a.temperature_max_c
    if a.fever_other_cause and (temp is None or temp >= FEVER_C):
        reasons.append("R-CRS-12: fever attributed to another cause does not count.")
    elif temp is None:
        reasons.append("R-CRS-15: temperature not measured.")
    else:
        reasons.append(temperature_sentence(temp))

    exempt = fever_exempt(a)
    if exempt:
        if a.fever_masked_by is not None:
            reasons.append(f"R-CRS-2: inside the fever-masking window of "
                           f"{a.fever_masked_by.words()}: fever is not required.")
        else:
            reasons.append("R-CRS-2: anti-cytokine or antipyretic therapy given since CRS onset "
                           "covers this day: fever is not required.")

    if fever:
        return Gate.FEVER, reasons
    if exempt:
        return Gate.EXEMPT, reasons
    if fever is None:
        return Gate.UNKNOWN, reasons
    return Gate.NO_CRS, reasons


def temperature_sentence(temp: Decimal) -> str:
    """R-CRS-1 for a measured temperature not attributed to another cause."""
    if temp >= FEVER_C:
        return f"R-CRS-1: temperature {_fmt(temp)} C is fever (>= 38.0 C)."
    return f"R-CRS-1: temperature {_fmt(temp)} C is not fever (< 38.0 C)."


def fever_present(a: Assessment) -> bool | None:
    """R-CRS-1 / R-CRS-12: True, False, or None when the temperature was not measured."""
    if a.fever_other_cause:
        return False  # whatever the temperature, it does not count
    if a.temperature_max_c is None:
        return None
    return a.temperature_max_c >= FEVER_C  # unrounded, in Celsius


def fever_exempt(a: Assessment) -> bool:
    """R-CRS-2: the day lies in the masking window of a therapy given on or after CRS onset.

    The platform names the therapy (``fever_masked_by``, from the drug logs' dates); the boolean
    ``anticytokine_or_antipyretic_since_onset`` says the same without naming it. An antipyretic
    given today while an episode is ongoing is after onset, so it masks today too. Prophylaxis
    and doses before onset never reach this point: the platform does not name them.
    """
    return (a.fever_masked_by is not None or a.anticytokine_or_antipyretic_since_onset
            or (a.crs_ongoing and a.antipyretic_given))


def hypotension_counts(a: Assessment) -> bool:
    return a.hypotension and not a.hypotension_other_cause  # R-CRS-12


def hypoxia_counts(a: Assessment) -> bool:
    return a.hypoxia and not a.hypoxia_other_cause  # R-CRS-6, R-CRS-12


# --- hypotension: R-CRS-7, R-CRS-8, R-CRS-9 ---------------------------------------------------

def hypotension_component(a: Assessment, scale: str) -> Component:
    if not a.hypotension:
        return _known(0)
    if a.hypotension_other_cause:
        return _known(0, "R-CRS-12: hypotension attributed to another cause does not count.")
    agents = a.vasopressors_for_hypotension
    reasons: list[str] = []
    flags: set[str] = set()
    if a.vasopressin_other_indication and "vasopressin" in a.vasopressors:
        reasons.append("R-CRS-7: vasopressin given for another indication is ignored.")
    if agents == ("vasopressin",):
        flags.add(Flag.VASOPRESSIN_ALONE)
    if "angiotensin_ii" in agents:
        flags.add(Flag.ANGIOTENSIN_COUNTED)
        reasons.append("R-CRS-8: angiotensin II is counted as a vasopressor (not addressed by "
                       "ASTCT; flagged).")
    if scale == ASTCT_2019:
        grade, text = _astct_pressor_grade(agents)
    else:
        grade, text = _ctcae_pressor_grade(agents, SCALE_LABELS[scale])
    return _known(grade, *reasons, text, flags=frozenset(flags))


def _astct_pressor_grade(agents: tuple[str, ...]) -> tuple[int, str]:
    counted = [x for x in agents if x != "vasopressin"]  # R-CRS-7: vasopressin never counts
    if not agents:
        return 2, "R-CRS-3: hypotension not requiring vasopressors is grade 2."
    if len(counted) >= 2:  # R-CRS-9: the most agents running at the same time
        return 4, (f"R-CRS-9: {len(counted)} vasopressors at the same time ({_names(counted)}; "
                   f"vasopressin not counted) is grade 4.")
    if not counted:
        return 3, "R-CRS-7: vasopressin alone for hypotension is grade 3 (unusual; flagged)."
    with_vasopressin = " with vasopressin" if "vasopressin" in agents else ""
    return 3, f"R-CRS-9: one vasopressor ({_names(counted)}){with_vasopressin} is grade 3."


def _ctcae_pressor_grade(agents: tuple[str, ...], label: str) -> tuple[int, str]:
    # CTCAE has no vasopressin exception: every agent for hypotension is a pressor.
    if not agents:
        return 2, f"{label}: hypotension responding to fluids (no pressor) is grade 2."
    if len(agents) >= 2:
        return 4, (f"{label}: {len(agents)} pressors ({_names(agents)}) is grade 4 (multiple "
                   f"pressors; vasopressin counts as a pressor in CTCAE).")
    return 3, f"{label}: hypotension managed with one pressor ({_names(agents)}) is grade 3."


# --- hypoxia: R-CRS-4, R-CRS-5, R-CRS-6, R-CRS-10 ---------------------------------------------

def hypoxia_component(a: Assessment, scale: str) -> Component:
    device = a.oxygen_device
    if not a.hypoxia:
        if device == "mechanical_ventilation" and a.intubation_reason == "hypoxia":
            return Component(0, 4, ("R-CRS-6: mechanical ventilation for hypoxia but hypoxia "
                                    "not recorded: contradictory, could be grade 0 to 4.",))
        if device != "none":
            return _known(0, f"R-CRS-6: {DEVICE_NAMES[device]} not needed for an oxygenation "
                             f"deficit does not count.")
        return _known(0)
    if a.hypoxia_other_cause:
        return _known(0, "R-CRS-12: hypoxia attributed to another cause does not count.")
    if device == "none":
        return Component(2, 4, ("R-CRS-15: hypoxia recorded without an oxygen device: could be "
                                "grade 2 to 4.",))
    if scale == CTCAE_V5:
        return _hypoxia_by_fio2(a)
    return _hypoxia_by_device(a)


def _hypoxia_by_device(a: Assessment) -> Component:
    """ASTCT 2019 (and CTCAE v6.0): the oxygen device needed for the deficit decides."""
    device, flow, name = a.oxygen_device, a.oxygen_flow_l_min, DEVICE_NAMES[a.oxygen_device]
    if device == "blow_by":
        return _known(2, "R-CRS-4: blow-by oxygen is low flow (grade 2).")
    if device in ("nasal_cannula", "high_flow_nasal_cannula"):
        if flow is None:
            return Component(2, 3, (f"R-CRS-15: {name} without a recorded flow: could be "
                                    f"grade 2 or 3.",))
        if flow > LOW_FLOW_MAX_L_MIN:
            return _known(3, f"R-CRS-4: {name} at {_fmt(flow)} L/min is high flow (grade 3).")
        if device == "high_flow_nasal_cannula":
            return _known(2, f"R-CRS-5: high-flow nasal cannula at {_fmt(flow)} L/min is low "
                             f"flow by definition (grade 2).")
        return _known(2, f"R-CRS-4: nasal cannula at {_fmt(flow)} L/min is low flow (grade 2).")
    if device in MASKS:
        return _known(3, f"R-CRS-5: {name} is grade 3 at any flow.")
    if device in NON_INVASIVE_POSITIVE_PRESSURE:
        return _known(4, f"R-CRS-5: {name} for hypoxia is positive pressure (grade 4).")
    # mechanical ventilation
    if a.intubation_reason == "hypoxia":
        return _known(4, "R-CRS-5: mechanical ventilation for hypoxia is positive pressure "
                         "(grade 4).")
    return Component(2, 4, (f"R-CRS-10: intubation for {_reason(a)} is not a grade 4 criterion "
                            f"by itself, and the oxygen support the deficit alone needs is not "
                            f"recorded: hypoxia could be grade 2 to 4.",))


def _hypoxia_by_fio2(a: Assessment) -> Component:
    """CTCAE v5.0: positive pressure for hypoxia is grade 4, otherwise FiO2 < 40% / >= 40%."""
    device, fio2 = a.oxygen_device, a.fio2_percent
    reasons: tuple[str, ...] = ()
    if device in NON_INVASIVE_POSITIVE_PRESSURE or (
            device == "mechanical_ventilation" and a.intubation_reason == "hypoxia"):
        return _known(4, f"CTCAE v5.0: positive-pressure ventilation ({DEVICE_NAMES[device]}) "
                         f"for hypoxia is grade 4.")
    if device == "mechanical_ventilation":
        reasons = (f"R-CRS-10: intubation for {_reason(a)} is not a grade 4 criterion by itself.",)
    if fio2 is None:
        return Component(2, 3, reasons + ("CTCAE v5.0: hypoxia without a recorded FiO2 could be "
                                          "grade 2 or 3 (R-CRS-15: v5.0 needs the FiO2).",))
    if fio2 < CTCAE_FIO2_HIGH:
        return _known(2, *reasons, f"CTCAE v5.0: hypoxia on FiO2 {fio2}% (< 40%) is grade 2.")
    return _known(3, *reasons, f"CTCAE v5.0: hypoxia on FiO2 {fio2}% (>= 40%) is grade 3.")


def oxygen_device_flow_conflict(a: Assessment) -> str | None:
    """O2-DEVICE-FLOW-CONFLICT (checks.md): a data question, raised whatever the grade."""
    flow = a.oxygen_flow_l_min
    if flow is None:
        return None
    if a.oxygen_device == "high_flow_nasal_cannula" and flow <= LOW_FLOW_MAX_L_MIN:
        return (f"O2-DEVICE-FLOW-CONFLICT: high-flow nasal cannula at {_fmt(flow)} L/min "
                f"(<= 6 L/min is low flow, R-CRS-5): confirm device and flow.")
    if a.oxygen_device == "nasal_cannula" and flow > NASAL_CANNULA_MAX_L_MIN:
        return (f"O2-DEVICE-FLOW-CONFLICT: nasal cannula at {_fmt(flow)} L/min (above 15 "
                f"L/min): confirm device and flow.")
    return None


# --- wording helpers ----------------------------------------------------------------------

def _names(agents: list[str] | tuple[str, ...]) -> str:
    return ", ".join(AGENT_NAMES.get(x, x) for x in agents)


def _reason(a: Assessment) -> str:
    return (a.intubation_reason or "an unrecorded reason").replace("_", " ")


def _fmt(value: Decimal) -> str:
    """Show a measured value; converted values are truncated (never rounded up to 38.0)."""
    if value.as_tuple().exponent >= -2:  # type: ignore[operator]
        return format(value, "f")
    return f"{value.quantize(Decimal('0.01'), rounding=ROUND_DOWN)}..."
