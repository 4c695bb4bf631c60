"""Grading engine: one daily assessment in, CRS and ICANS grades with flags and reasons out.

`crs_grade` is on the trial's CRS scale (ASTCT 2019, CTCAE v5.0 or CTCAE v6.0), `icans_grade`
on its ICANS scale (ASTCT 2019 or CTCAE v6.0), and `ctcae_crs_grade` always on CTCAE v5.0,
which expedited reporting needs (grading.md; data-dictionary.md "Grading input and output").
Every NE comes with a flag; every grade with the sentences that explain it. The scale names and
ENGINE_VERSION travel with the result so a stored grade can always be traced and recomputed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .crs import grade_crs, oxygen_device_flow_conflict
from .icans import grade_icans
from .inputs import CTCAE_V5, NE, SCALE_LABELS, Assessment, Flag, parse_grading_input

# Bump on any change that can change a grade, flag or reason: stored rows keep the version.
ENGINE_VERSION = "2026.11.1"


@dataclass(frozen=True)
class GradingResult:
    """The engine's answer for one assessment. Grades are 0-5 or "NE"."""

    crs_grade: int | str
    icans_grade: int | str
    ctcae_crs_grade: int | str
    flags: tuple[str, ...]  # sorted, unique flag ids (checks.md)
    reasons: tuple[str, ...]  # human sentences citing the rule ids
    crs_scale: str
    icans_scale: str
    ctcae_crs_scale: str = CTCAE_V5
    engine_version: str = ENGINE_VERSION

    def as_dict(self) -> dict[str, Any]:
        """The JSON output of the CLI and of POST /api/v1/grading/preview/."""
        return {
            "crs_grade": self.crs_grade,
            "icans_grade": self.icans_grade,
            "ctcae_crs_grade": self.ctcae_crs_grade,
            "flags": list(self.flags),
            "reasons": list(self.reasons),
            "crs_scale": self.crs_scale,
            "icans_scale": self.icans_scale,
            "engine_version": self.engine_version,
        }


def grade(data: Mapping[str, Any]) -> GradingResult:
    """Grade one grading input (a plain dict). Raises GradingInputError on bad input."""
    return grade_assessment(parse_grading_input(data))


def grade_assessment(a: Assessment) -> GradingResult:
    """Grade an already validated assessment."""
    crs = grade_crs(a, a.crs_scale)
    ctcae_v5 = crs if a.crs_scale == CTCAE_V5 else grade_crs(a, CTCAE_V5)
    icans = grade_icans(a, a.icans_scale)

    flags = set(crs.flags | ctcae_v5.flags | icans.flags)
    reasons = [*crs.reasons, *ctcae_v5.reasons, *icans.reasons]

    conflict = oxygen_device_flow_conflict(a)
    if conflict:
        flags.add(Flag.O2_DEVICE_FLOW_CONFLICT)
        reasons.append(conflict)

    # Reported grades are compared on the trial's scale, never when the derived grade is NE.
    if a.crs_grade_reported is not None and crs.grade != NE and a.crs_grade_reported != crs.grade:
        flags.add(Flag.CRS_GRADE_MISMATCH)
        reasons.append(f"CRS-GRADE-MISMATCH: investigator reported CRS grade "
                       f"{a.crs_grade_reported}; derived {SCALE_LABELS[a.crs_scale]} grade is "
                       f"{crs.grade}.")
    if (a.icans_grade_reported is not None and icans.grade != NE
            and a.icans_grade_reported != icans.grade):
        flags.add(Flag.ICANS_GRADE_MISMATCH)
        reasons.append(f"ICANS-GRADE-MISMATCH: investigator reported ICANS grade "
                       f"{a.icans_grade_reported}; derived {SCALE_LABELS[a.icans_scale]} grade "
                       f"is {icans.grade}.")

    return GradingResult(
        crs_grade=crs.grade,
        icans_grade=icans.grade,
        ctcae_crs_grade=ctcae_v5.grade,
        flags=tuple(sorted(str(f) for f in flags)),
        reasons=tuple(dict.fromkeys(reasons)),  # the scales share some sentences: say them once
        crs_scale=a.crs_scale,
        icans_scale=a.icans_scale,
    )
