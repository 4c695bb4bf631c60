"""Immune effector cell-associated neurotoxicity syndrome (ICANS) grade: ASTCT 2019, CTCAE v6.0.

Source: Lee DW et al., ASTCT consensus grading for cytokine release syndrome and neurologic
toxicity, Biol Blood Marrow Transplant 2019;25:625-638 (ICANS tables for adults and children).
The grade is the most severe of five domains not attributable to another cause (R-ICANS-1):
the encephalopathy tool - ICE score (10 points) from age 12, CAPD (Cornell Assessment of
Pediatric Delirium, 0-32) under 12 or with baseline developmental delay (R-ICANS-8) - depressed
level of consciousness, seizure, motor findings, and raised ICP / cerebral edema.

CTCAE v6.0 (NCI 2025) term "Immune effector cell-associated neurotoxicity syndrome" (MedDRA
10083347): grades 1-3 use the ICE and CAPD bands, grades 4 and 5 as ASTCT. Our reading: the
ASTCT domains are applied unchanged, including the consciousness, seizure and edema criteria
of grades 2-3, so that no finding is dropped; only the scale label differs.

Two kinds of "not evaluable", both flagged ICANS-NOT-EVALUABLE:
- R-ICANS-3: the patient is sedated, or the depressed consciousness has another cause: the
  ICE/CAPD and consciousness domains take no part (a sedated unarousable patient is never ICANS
  3 or 4 by them); a seizure, motor or edema finding sets the grade, otherwise it is NE. An ICE
  "not assessable" for another reason is the same for the ICE alone.
- R-CRS-15 (missing data): a missing ICE/CAPD spans every grade it could give; the grade is NE
  unless the other findings decide it, with ``minimum`` the floor they prove.
R-ICANS-6: ``alert`` is normal; ``awakens_spontaneously`` (drowsy) is grade 1. Tremor and
myoclonus (R-ICANS-4) and intracranial hemorrhage (R-ICANS-5) are graded with CTCAE, not here.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

from .inputs import CTCAE_V6, ICE_MIN_AGE_YEARS, NE, SCALE_LABELS, Assessment, Flag, ScaleGrade

# R-ICANS-6: ``alert`` is normal; ``awakens_spontaneously`` is drowsy but waking on its own (grade 1).
CONSCIOUSNESS_GRADES = {"alert": 0, "awakens_spontaneously": 1, "awakens_to_voice": 2,
                        "awakens_to_tactile": 3, "unarousable": 4}
CONSCIOUSNESS_WORDS = {
    "alert": "alert", "awakens_spontaneously": "drowsy, awakens spontaneously",
    "awakens_to_voice": "awakens to voice", "awakens_to_tactile": "awakens only to tactile "
    "stimulus", "unarousable": "unarousable",
}
DEPRESSED = ("awakens_spontaneously", "awakens_to_voice", "awakens_to_tactile", "unarousable")


@dataclass(frozen=True)
class Domain:
    """One ICANS domain, known to lie in [low, high] (low == high when nothing is missing).

    ``confounded``: not evaluable because the patient is sedated or the depressed consciousness
    has another cause (R-ICANS-3): it takes no part in the grade, which the other findings set.
    A domain missing its data (R-CRS-15) spans every grade the missing value could give.
    """

    name: str
    low: int
    high: int
    reasons: tuple[str, ...] = ()
    flags: frozenset[str] = frozenset()
    confounded: bool = False

    @property
    def grade(self) -> int | None:
        return None if self.confounded or self.low != self.high else self.low


def _known(name: str, grade: int, *reasons: str, flags: frozenset[str] = frozenset()) -> Domain:
    return Domain(name, grade, grade, reasons, flags)


def _missing(name: str, high: int, *reasons: str, flags: frozenset[str] = frozenset()) -> Domain:
    return Domain(name, 0, high, reasons, flags)


def _confounded(name: str, *reasons: str) -> Domain:
    return Domain(name, 0, 0, reasons, confounded=True)


def confounding(a: Assessment) -> str | None:
    """R-ICANS-3: why the ICE/CAPD and consciousness domains cannot be evaluated, or None."""
    if a.consciousness == "sedated" or a.ice_not_assessable == "sedated":
        return "sedated"
    if a.consciousness_other_cause and (a.consciousness in DEPRESSED or a.ice_not_assessable == "unarousable"):
        return "depressed consciousness attributed to another cause (e.g. sedating drugs)"
    return None


def grade_icans(a: Assessment, scale: str) -> ScaleGrade:
    """ICANS grade of one day on `scale` (astct_2019 or ctcae_v6)."""
    label = SCALE_LABELS[scale]
    if a.death_primary_cause == "icans":  # R-ICANS-7
        return ScaleGrade(scale, 5, (f"R-ICANS-7: death principally due to ICANS: {label} ICANS "
                                     f"grade 5.",))
    reasons: list[str] = []
    if a.death_primary_cause is not None:
        reasons.append(f"R-ICANS-7: death from {a.death_primary_cause.replace('_', ' ')} is not "
                       f"ICANS grade 5.")
    if scale == CTCAE_V6:
        reasons.append("CTCAE v6.0 ICANS: graded with the ASTCT 2019 domains (grades 1-3 from "
                       "the ICE/CAPD bands, grade 4 criteria as ASTCT).")
    cause = confounding(a)
    if cause is not None:
        domains = [_confounded("ICE/CAPD", f"R-ICANS-3: {cause}: the ICE/CAPD is not evaluable."),
                   _confounded("level of consciousness",
                               f"R-ICANS-3: {cause}: the level of consciousness is not "
                               f"evaluable (never ICANS 3 or 4 by this domain).")]
    else:
        domains = [encephalopathy_domain(a), consciousness_domain(a)]
    domains += [seizure_domain(a), motor_domain(a), edema_domain(a)]
    flags: set[str] = set()
    for domain in domains:
        reasons += domain.reasons
        flags |= domain.flags

    graded = [d for d in domains if not d.confounded]
    low = max(d.low for d in graded)
    high = max(d.high for d in graded)
    confounded = [d.name for d in domains if d.confounded]
    missing = [d.name for d in graded if d.low != d.high]
    if not confounded and not missing:
        reasons.append(_summary(label, low, domains))
        return ScaleGrade(scale, low, tuple(reasons), frozenset(flags))

    flags.add(Flag.ICANS_NOT_EVALUABLE)
    if confounded and low >= 1 and low == high:  # R-ICANS-3: the finding in another domain sets it
        reasons.append(f"R-ICANS-3: {' and '.join(confounded)} not evaluable; the other findings "
                       f"set {label} ICANS grade {low}.")
        return ScaleGrade(scale, low, tuple(reasons), frozenset(flags))
    if confounded and high == 0:
        reasons.append(f"{label} ICANS not evaluable (R-ICANS-3: {' and '.join(confounded)} not "
                       f"evaluable and no finding in another domain).")
        return ScaleGrade(scale, NE, tuple(reasons), frozenset(flags))
    names = " and ".join(missing)
    if low == high:  # R-CRS-15: the missing value cannot change the grade; still asked for
        reasons.append(f"R-CRS-15: {names} missing, but the other findings set {label} ICANS "
                       f"grade {low} whatever it would show.")
        return ScaleGrade(scale, low, tuple(reasons), frozenset(flags))
    minimum = low if low >= 1 else None
    floor_text = f"; the recorded findings prove at least grade {low}" if minimum else ""
    reasons.append(f"{label} ICANS not evaluable (R-CRS-15: {names} missing: the missing value "
                   f"decides between grade {low} and grade {high}{floor_text}).")
    return ScaleGrade(scale, NE, tuple(reasons), frozenset(flags), minimum)


def _summary(label: str, grade: int, domains: list[Domain]) -> str:
    if grade == 0:
        return f"{label} ICANS grade 0 (R-ICANS-6: no finding in any domain)."
    worst = ", ".join(d.name for d in domains if d.grade == grade)
    return f"{label} ICANS grade {grade} (R-ICANS-1: the most severe domain: {worst})."


# --- encephalopathy tool: ICE or CAPD (R-ICANS-8) ---------------------------------------------

def _tool_missing_high(a: Assessment) -> int:
    """The worst grade a missing ICE/CAPD could give: 4 (unable because unarousable) unless the
    recorded level of consciousness rules unarousable out."""
    return 4 if a.consciousness in (None, "unarousable") else 3


def encephalopathy_domain(a: Assessment) -> Domain:
    age = a.age_years
    if a.developmental_delay:
        return _with(capd_domain(a), "R-ICANS-8: baseline developmental delay: the CAPD is the "
                                     "tool.")
    if age is None:
        return _missing("ICE/CAPD", _tool_missing_high(a),
                        "R-ICANS-8: age not recorded: cannot choose between ICE and CAPD.")
    if age < ICE_MIN_AGE_YEARS:
        if a.capd_recorded:
            return capd_domain(a)
        if a.ice_recorded:
            return _missing("ICE", _tool_missing_high(a),
                            f"R-ICANS-8: ICE recorded for a child aged {_age(age)} without a "
                            f"CAPD: not evaluable; record the CAPD.",
                            flags=frozenset({Flag.ICANS_TOOL_AGE}))
        return _missing("CAPD", _tool_missing_high(a),
                        "R-ICANS-8: no CAPD recorded for a child under 12: not evaluable.")

    # aged 12 or more, no developmental delay: the ICE
    notes: list[str] = []
    if age < ICE_MIN_AGE_YEARS + 1:
        notes.append("R-ICANS-8: age 12: graded with the ICE; confirm the tool (sources differ "
                     "on age 12).")
    if a.capd_recorded:
        notes.append("R-ICANS-8: CAPD recorded for a patient aged 12 or more without "
                     "developmental delay: confirm the tool.")
    if a.ice_recorded or not a.capd_recorded:
        domain = ice_domain(a)
    else:
        domain = _with(capd_domain(a), "R-ICANS-8: no ICE recorded: graded with the CAPD.")
    flags = frozenset({Flag.ICANS_TOOL_AGE}) if notes else frozenset()
    return _with(domain, *notes, flags=flags)


def ice_domain(a: Assessment) -> Domain:
    """ICE 10 normal, 7-9 grade 1, 3-6 grade 2, 0-2 grade 3, 0 because unarousable grade 4.

    Sedation and depressed consciousness from another cause are handled before (R-ICANS-3).
    """
    score = a.ice_score
    if a.ice_not_assessable == "unarousable" or (score == 0 and a.consciousness == "unarousable"):
        return _known("ICE", 4, "R-ICANS-2: ICE 0 because unarousable is grade 4.")
    if a.ice_not_assessable == "other":
        return _confounded("ICE", "R-ICANS-3: ICE not assessable for another reason: not "
                                  "evaluable.")
    if score is None:
        return _missing("ICE", _tool_missing_high(a),
                        "R-CRS-15: no ICE score recorded (and no reason): not evaluable.")
    if score == 10:
        return _known("ICE", 0, "R-ICANS-6: ICE 10 is normal.")
    if score >= 7:
        return _known("ICE", 1, f"R-ICANS-1: ICE {score} (7-9) is grade 1.")
    if score >= 3:
        return _known("ICE", 2, f"R-ICANS-1: ICE {score} (3-6) is grade 2.")
    if score >= 1:
        return _known("ICE", 3, f"R-ICANS-1: ICE {score} (0-2) is grade 3.")
    return _known("ICE", 3, "R-ICANS-2: ICE 0 in an awake patient (e.g. global aphasia) is "
                            "grade 3.")


def capd_domain(a: Assessment) -> Domain:
    """R-ICANS-8: CAPD 0 normal, 1-8 grade 1 (2 with awakens to voice), >= 9 grade 3, unable 4.

    The consciousness domain grades "awakens to voice" (2) and "only to tactile stimulus" (3)
    itself, so the CAPD band stays 1 for a score of 1-8.
    """
    score = a.capd_score
    if a.capd_unable:
        return _known("CAPD", 4, "R-ICANS-8: unable to perform the CAPD is grade 4.")
    if score is None:
        return _missing("CAPD", _tool_missing_high(a),
                        "R-ICANS-8: no CAPD score recorded: not evaluable.")
    if score == 0:
        return _known("CAPD", 0, "R-ICANS-8: CAPD 0 is normal.")
    if score >= 9:
        return _known("CAPD", 3, f"R-ICANS-8: CAPD {score} (>= 9, delirium) is grade 3.")
    reasons = [f"R-ICANS-8: CAPD {score} (1-8) is grade 1 (grade 2 if the child awakens only to "
               f"voice)."]
    flags: frozenset[str] = frozenset()
    if a.capd_baseline is not None and score <= a.capd_baseline:
        flags = frozenset({Flag.CAPD_AT_BASELINE})
        reasons.append(f"R-ICANS-8: CAPD {score} is not above the pre-infusion baseline "
                       f"({a.capd_baseline}): confirm it is new.")
    return Domain("CAPD", 1, 1, tuple(reasons), flags)


# --- the other domains (R-ICANS-1, R-ICANS-3, R-ICANS-5, R-ICANS-6) ---------------------------

def consciousness_domain(a: Assessment) -> Domain:
    """R-ICANS-6: alert 0, awakens spontaneously (drowsy) 1, to voice 2, to touch 3, unarousable 4.

    Not recorded counts as not depressed (the ICE/CAPD carries the encephalopathy). Sedation and
    another cause are handled before (R-ICANS-3).
    """
    name, level = "level of consciousness", a.consciousness
    if level is None:
        return _known(name, 0)
    grade = CONSCIOUSNESS_GRADES[level]
    if grade == 0:
        return _known(name, 0, "R-ICANS-6: alert is normal.")
    rule = "R-ICANS-6" if level == "awakens_spontaneously" else "R-ICANS-1"
    return _known(name, grade, f"{rule}: {CONSCIOUSNESS_WORDS[level]} is grade {grade}.")


def seizure_domain(a: Assessment) -> Domain:
    if a.seizure == "none":
        return _known("seizure", 0)
    if a.seizure_other_cause:
        return _known("seizure", 0, "R-ICANS-1: seizure attributed to another cause does not "
                                    "count.")
    if a.seizure == "rapidly_resolving":
        return _known("seizure", 3, "R-ICANS-1: seizure that resolves rapidly (or with "
                                    "intervention) is grade 3.")
    return _known("seizure", 4, "R-ICANS-1: prolonged (> 5 min) or repetitive seizures are "
                                "grade 4.")


def motor_domain(a: Assessment) -> Domain:
    if a.motor_weakness == "none":
        return _known("motor findings", 0)
    if a.motor_other_cause:
        return _known("motor findings", 0, "R-ICANS-1: motor weakness attributed to another "
                                           "cause does not count.")
    return _known("motor findings", 4, "R-ICANS-1: deep focal motor weakness (hemiparesis, "
                                       "paraparesis) is grade 4.")


def edema_domain(a: Assessment) -> Domain:
    if a.cerebral_edema == "none":
        return _known("cerebral edema", 0)
    if a.cerebral_edema_other_cause:
        return _known("cerebral edema", 0, "R-ICANS-5: cerebral edema attributed to another "
                                           "cause (including intracranial hemorrhage) is not "
                                           "ICANS.")
    if a.cerebral_edema == "focal":
        return _known("cerebral edema", 3, "R-ICANS-1: focal or local cerebral edema is grade "
                                           "3.")
    return _known("cerebral edema", 4, "R-ICANS-1: diffuse cerebral edema or its signs "
                                       "(posturing, CN VI palsy, papilledema, Cushing's triad) "
                                       "is grade 4.")


def _with(domain: Domain, *notes: str, flags: frozenset[str] = frozenset()) -> Domain:
    """The same domain with explanatory notes (and flags) put in front of its reasons."""
    return Domain(domain.name, domain.low, domain.high, notes + domain.reasons,
                  domain.flags | flags, domain.confounded)


def _age(age: Decimal) -> str:
    """The age as recorded; beyond two decimals truncated, as crs._fmt shows temperatures (an
    age such as 1E-999000 is within the limits and would otherwise print a million digits)."""
    age = age.normalize()
    if age.as_tuple().exponent >= -2:  # type: ignore[operator]
        return format(age, "f")
    return f"{age.quantize(Decimal('0.01'), rounding=ROUND_DOWN)}..."
