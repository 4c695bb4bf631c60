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

A domain that cannot be evaluated (sedation, missing or wrong tool) is NE. If another domain
shows a finding, that finding sets the grade; otherwise the grade is NE. Both cases raise
ICANS-NOT-EVALUABLE (R-ICANS-3, applied to every not-evaluable domain). Tremor and myoclonus
(R-ICANS-4) and intracranial hemorrhage (R-ICANS-5) are graded with CTCAE, not here.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

from .inputs import CTCAE_V6, ICE_MIN_AGE_YEARS, NE, SCALE_LABELS, Assessment, Flag, ScaleGrade

CONSCIOUSNESS_GRADES = {"awakens_to_voice": 2, "awakens_to_tactile": 3, "unarousable": 4}
CONSCIOUSNESS_WORDS = {
    "awakens_to_voice": "awakens to voice", "awakens_to_tactile": "awakens only to tactile "
    "stimulus", "unarousable": "unarousable",
}


@dataclass(frozen=True)
class Domain:
    """One ICANS domain: grade 0-4, or None when it cannot be evaluated."""

    name: str
    grade: int | None
    reasons: tuple[str, ...] = ()
    flags: frozenset[str] = frozenset()


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
    domains = [encephalopathy_domain(a), consciousness_domain(a), seizure_domain(a),
               motor_domain(a), edema_domain(a)]
    flags: set[str] = set()
    for domain in domains:
        reasons += domain.reasons
        flags |= domain.flags

    worst = max((d.grade for d in domains if d.grade is not None), default=0)
    not_evaluable = [d.name for d in domains if d.grade is None]
    if not not_evaluable:
        reasons.append(_summary(label, worst, domains))
        return ScaleGrade(scale, worst, tuple(reasons), frozenset(flags))

    flags.add(Flag.ICANS_NOT_EVALUABLE)
    names = " and ".join(not_evaluable)
    if worst >= 1:  # R-ICANS-3: the finding in another domain sets the grade
        reasons.append(f"R-ICANS-3: {names} not evaluable; the other findings set {label} ICANS "
                       f"grade {worst}.")
        return ScaleGrade(scale, worst, tuple(reasons), frozenset(flags))
    reasons.append(f"{label} ICANS not evaluable (R-ICANS-3: {names} not evaluable and no "
                   f"finding in another domain).")
    return ScaleGrade(scale, NE, tuple(reasons), frozenset(flags))


def _summary(label: str, grade: int, domains: list[Domain]) -> str:
    if grade == 0:
        return f"{label} ICANS grade 0 (R-ICANS-6: no finding in any domain)."
    worst = ", ".join(d.name for d in domains if d.grade == grade)
    return f"{label} ICANS grade {grade} (R-ICANS-1: the most severe domain: {worst})."


# --- encephalopathy tool: ICE or CAPD (R-ICANS-8) ---------------------------------------------

def encephalopathy_domain(a: Assessment) -> Domain:
    age = a.age_years
    if a.developmental_delay:
        return _with(capd_domain(a), "R-ICANS-8: baseline developmental delay: the CAPD is the "
                                     "tool.")
    if age is None:
        return Domain("ICE/CAPD", None, ("R-ICANS-8: age not recorded: cannot choose between ICE "
                                         "and CAPD.",))
    if age < ICE_MIN_AGE_YEARS:
        if a.capd_recorded:
            return capd_domain(a)
        if a.ice_recorded:
            return Domain("ICE", None, (f"R-ICANS-8: ICE recorded for a child aged {_age(age)} "
                                        f"without a CAPD: not evaluable; record the CAPD.",),
                          frozenset({Flag.ICANS_TOOL_AGE}))
        return Domain("CAPD", None, ("R-ICANS-8: no CAPD recorded for a child under 12: not "
                                     "evaluable.",))

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
    """ICE 10 normal, 7-9 grade 1, 3-6 grade 2, 0-2 grade 3, 0 because unarousable grade 4."""
    score = a.ice_score
    if a.consciousness == "sedated" or a.ice_not_assessable == "sedated":
        return Domain("ICE", None, ("R-ICANS-3: sedated: the ICE score is not evaluable.",))
    if a.ice_not_assessable == "unarousable" or (score == 0 and a.consciousness == "unarousable"):
        if a.consciousness_other_cause:
            return Domain("ICE", None, ("R-ICANS-3: ICE not possible because unarousable from "
                                        "another cause: not evaluable.",))
        return Domain("ICE", 4, ("R-ICANS-2: ICE 0 because unarousable is grade 4.",))
    if a.ice_not_assessable == "other":
        return Domain("ICE", None, ("R-ICANS-1: ICE not assessable for another reason: not "
                                    "evaluable.",))
    if score is None:
        return Domain("ICE", None, ("R-ICANS-1: no ICE score recorded: not evaluable.",))
    if score == 10:
        return Domain("ICE", 0, ("R-ICANS-6: ICE 10 is normal.",))
    if score >= 7:
        return Domain("ICE", 1, (f"R-ICANS-1: ICE {score} (7-9) is grade 1.",))
    if score >= 3:
        return Domain("ICE", 2, (f"R-ICANS-1: ICE {score} (3-6) is grade 2.",))
    if score >= 1:
        return Domain("ICE", 3, (f"R-ICANS-1: ICE {score} (0-2) is grade 3.",))
    return Domain("ICE", 3, ("R-ICANS-2: ICE 0 in an awake patient (e.g. global aphasia) is "
                             "grade 3.",))


def capd_domain(a: Assessment) -> Domain:
    """R-ICANS-8: CAPD 0 normal, 1-8 grade 1 (2 with awakens to voice), >= 9 grade 3, unable 4."""
    score = a.capd_score
    if a.consciousness == "sedated":
        return Domain("CAPD", None, ("R-ICANS-3: sedated: the CAPD is not evaluable.",))
    if a.capd_unable:
        if a.consciousness == "unarousable" and a.consciousness_other_cause:
            return Domain("CAPD", None, ("R-ICANS-3: CAPD not possible because unarousable from "
                                         "another cause: not evaluable.",))
        return Domain("CAPD", 4, ("R-ICANS-8: unable to perform the CAPD is grade 4.",))
    if score is None:
        return Domain("CAPD", None, ("R-ICANS-8: no CAPD score recorded: not evaluable.",))
    if score == 0:
        return Domain("CAPD", 0, ("R-ICANS-8: CAPD 0 is normal.",))
    if score >= 9:
        return Domain("CAPD", 3, (f"R-ICANS-8: CAPD {score} (>= 9, delirium) is grade 3.",))
    reasons = [f"R-ICANS-8: CAPD {score} (1-8) is grade 1 (grade 2 if the child awakens only to "
               f"voice)."]
    flags: frozenset[str] = frozenset()
    if a.capd_baseline is not None and score <= a.capd_baseline:
        flags = frozenset({Flag.CAPD_AT_BASELINE})
        reasons.append(f"R-ICANS-8: CAPD {score} is not above the pre-infusion baseline "
                       f"({a.capd_baseline}): confirm it is new.")
    return Domain("CAPD", 1, tuple(reasons), flags)


# --- the other domains (R-ICANS-1, R-ICANS-3, R-ICANS-5, R-ICANS-6) ---------------------------

def consciousness_domain(a: Assessment) -> Domain:
    name, level = "level of consciousness", a.consciousness
    if level is None:
        return Domain(name, 0)
    if level == "sedated":
        return Domain(name, None, ("R-ICANS-3: sedated: the level of consciousness is not "
                                   "evaluable.",))
    if level == "awakens_spontaneously":
        return Domain(name, 0, ("R-ICANS-6: awakens spontaneously is normal (never grade 1 "
                                "alone).",))
    if a.consciousness_other_cause:
        return Domain(name, 0, ("R-ICANS-3: depressed consciousness attributed to another cause "
                                "(e.g. sedating drugs) does not count.",))
    grade = CONSCIOUSNESS_GRADES[level]
    return Domain(name, grade, (f"R-ICANS-1: {CONSCIOUSNESS_WORDS[level]} is grade {grade}.",))


def seizure_domain(a: Assessment) -> Domain:
    if a.seizure == "none":
        return Domain("seizure", 0)
    if a.seizure_other_cause:
        return Domain("seizure", 0, ("R-ICANS-1: seizure attributed to another cause does not "
                                     "count.",))
    if a.seizure == "rapidly_resolving":
        return Domain("seizure", 3, ("R-ICANS-1: seizure that resolves rapidly (or with "
                                     "intervention) is grade 3.",))
    return Domain("seizure", 4, ("R-ICANS-1: prolonged (> 5 min) or repetitive seizures are "
                                 "grade 4.",))


def motor_domain(a: Assessment) -> Domain:
    if a.motor_weakness == "none":
        return Domain("motor findings", 0)
    if a.motor_other_cause:
        return Domain("motor findings", 0, ("R-ICANS-1: motor weakness attributed to another "
                                            "cause does not count.",))
    return Domain("motor findings", 4, ("R-ICANS-1: deep focal motor weakness (hemiparesis, "
                                        "paraparesis) is grade 4.",))


def edema_domain(a: Assessment) -> Domain:
    if a.cerebral_edema == "none":
        return Domain("cerebral edema", 0)
    if a.cerebral_edema_other_cause:
        return Domain("cerebral edema", 0, ("R-ICANS-5: cerebral edema attributed to another "
                                            "cause (including intracranial hemorrhage) is not "
                                            "ICANS.",))
    if a.cerebral_edema == "focal":
        return Domain("cerebral edema", 3, ("R-ICANS-1: focal or local cerebral edema is grade "
                                            "3.",))
    return Domain("cerebral edema", 4, ("R-ICANS-1: diffuse cerebral edema or its signs "
                                        "(posturing, CN VI palsy, papilledema, Cushing's triad) "
                                        "is grade 4.",))


def _with(domain: Domain, *notes: str, flags: frozenset[str] = frozenset()) -> Domain:
    """The same domain with explanatory notes (and flags) put in front of its reasons."""
    return Domain(domain.name, domain.grade, notes + domain.reasons, domain.flags | flags)


def _age(age: Decimal) -> str:
    """The age as recorded; beyond two decimals truncated, as crs._fmt shows temperatures (an
    age such as 1E-999000 is within the limits and would otherwise print a million digits)."""
    age = age.normalize()
    if age.as_tuple().exponent >= -2:  # type: ignore[operator]
        return format(age, "f")
    return f"{age.quantize(Decimal('0.01'), rounding=ROUND_DOWN)}..."
