"""Every soft rule of checks.md, registered by importing the modules that define them."""
from . import drugs, grading, procedures  # noqa: F401  (each registers its rules)
from .registry import RULES, SUPERSEDED, Finding, Rule, job_only_rules, run_rules, values_of

__all__ = ["RULES", "SUPERSEDED", "Finding", "Rule", "job_only_rules", "run_rules", "values_of"]
