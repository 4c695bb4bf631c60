"""Consistency rules of checks.md over plain records (pure Python, no Django import).

``records.py`` holds the plain snapshot of one subject's data; ``rules.py`` the soft rules,
each a function from a snapshot to findings, registered by rule id. The services build the
snapshot from the database and turn findings into queries.
"""
from .records import Finding, SubjectSnapshot
from .rules import RULES, job_only_rules, run_rules

__all__ = ["Finding", "RULES", "SubjectSnapshot", "job_only_rules", "run_rules"]
