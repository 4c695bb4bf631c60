"""Consistency rules of checks.md over plain records (pure Python, no Django import).

``records.py`` holds the plain snapshot of one subject's data; ``rules.py`` the soft rules,
each a function from a snapshot to findings, registered by rule id. The services build the
snapshot from the database and turn findings into queries.
"""
from .records import Finding, SubjectSnapshot
from .rules import RULES, job_only_rules, run_rules

# Hard rules are rejected at entry (nothing stored): where each one is enforced.
HARD_RULES = {
    "ASSESSMENT-AFTER-DEATH": "toxicity.validation.assessment_errors",
    "TOCI-WEIGHT-MISSING": "toxicity.validation.tocilizumab_errors",
    "TOCI-DOSE-IMPOSSIBLE": "toxicity.validation.tocilizumab_errors",
    "TOCI-DUPLICATE": "toxicity.validation.tocilizumab_errors",
    "STEROID-DOSE-IMPOSSIBLE": "toxicity.validation.corticosteroid_errors",
    "ANAKINRA-DOSE": "toxicity.validation.anticytokine_errors (above 2400 mg per 24 h)",
    "SILTUXIMAB-DOSE": "toxicity.validation.anticytokine_errors (above 22 mg/kg)",
    "TPE-VOLUME-IMPOSSIBLE": "toxicity.validation.plasma_exchange_errors",
    "CRRT-DOSE-IMPOSSIBLE": "toxicity.validation.hemofiltration_errors",
    "CRRT-OVERLAP": "toxicity.validation.hemofiltration_errors",
    "INFUSION-BEFORE-ENROLMENT": "trials.validation.infusion_errors",
    "FUTURE-DATE": "trials.validation and toxicity.validation (every clinical date and time)",
}

__all__ = ["HARD_RULES", "Finding", "RULES", "SubjectSnapshot", "job_only_rules", "run_rules"]
