"""The registry of soft rules (checks.md): a rule takes a subject's derived course
(``toxicity.course``) and returns findings; the rule id, field and values of a finding identify
its query (at most one open per rule, record and field). The rules themselves are in
``grading.py`` (grading consistency and seriousness), ``drugs.py`` and ``procedures.py``.

Messages are sentences a coordinator understands, starting with the rule id.
"""
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from bisect import bisect_right
from decimal import Decimal
from typing import Any

from toxicity.course.derive import DerivedCourse


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


RuleFn = Callable[[DerivedCourse], Iterable[Finding]]


@dataclass(frozen=True)
class Rule:
    id: str
    check: RuleFn
    summary: str
    at_save: bool = True  # False: only the background job opens its queries (a save may still close them)


RULES: dict[str, Rule] = {}


def rule(*ids_and_summaries: tuple[str, str], at_save: bool = True):
    def register(fn: RuleFn) -> RuleFn:
        for rule_id, summary in ids_and_summaries:
            RULES[rule_id] = Rule(rule_id, fn, summary, at_save)
        return fn

    return register


def job_only_rules() -> set[str]:
    return {r.id for r in RULES.values() if not r.at_save}


# Rules replaced by another (checks.md): their open queries close as superseded, not as passing.
SUPERSEDED = {"TOCI-EPISODE-MAX": "TOCI-COURSE-MAX"}


def run_rules(course: DerivedCourse) -> list[Finding]:
    """Every soft rule over one derived course, each rule function once, in a stable order."""
    findings, seen = [], set()
    for r in RULES.values():
        if r.check in seen:
            continue
        seen.add(r.check)
        findings.extend(r.check(course))
    return sorted(findings, key=lambda f: (f.rule_id, f.record, f.field))


def num(value):
    """JSON-stable representation of a value at raise time."""
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")  # 700.00 -> "700", 38.50 -> "38.5": stable for comparison
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def values_of(**values):
    return {k: num(v) for k, v in values.items()}


def grade_text(g):
    return "NE" if g is None else g




def window(times: list, moment: datetime, width: timedelta) -> tuple[int, int]:
    """Indexes [lo, hi) of the sorted ``times`` that lie in (moment - width, moment]."""
    return bisect_right(times, moment - width), bisect_right(times, moment)
