"""Consistency rules of checks.md over a subject's derived course (pure Python, no Django import).

``rules.py`` holds the soft rules, each a function from a derived course
(``toxicity.course.derive.DerivedCourse``) to findings, registered by rule id. The services turn
findings into queries (``toxicity.queries``).
"""
from .rules import RULES, SUPERSEDED, Finding, job_only_rules, run_rules

# Hard rules are rejected at entry (nothing stored): where each one is enforced.
HARD_RULES = {
    "ASSESSMENT-AFTER-DEATH": "toxicity.validation.assessment_errors",
    "TOCI-WEIGHT-MISSING": "toxicity.validation.tocilizumab_errors",
    "TOCI-DOSE-IMPOSSIBLE": "toxicity.validation.tocilizumab_errors",
    "TOCI-DUPLICATE": "toxicity.validation.tocilizumab_errors",
    "STEROID-DOSE-IMPOSSIBLE": "toxicity.validation.corticosteroid_errors (per-kg limits with the weight on or before the dose date)",
    "ANAKINRA-DOSE": "toxicity.validation.anticytokine_errors (above 2400 mg per 24 h)",
    "SILTUXIMAB-DOSE": "toxicity.validation.anticytokine_errors (above 22 mg/kg)",
    "TPE-VOLUME-IMPOSSIBLE": "toxicity.validation.plasma_exchange_errors",
    "CRRT-DOSE-IMPOSSIBLE": "toxicity.validation.hemofiltration_errors",
    "CRRT-OVERLAP": "toxicity.validation.hemofiltration_errors",
    "INFUSION-BEFORE-ENROLMENT": "trials.validation.infusion_errors",
    "FUTURE-DATE": "trials.validation and toxicity.validation (every clinical date and time)",
}

__all__ = ["HARD_RULES", "Finding", "RULES", "SUPERSEDED", "job_only_rules", "run_rules"]
