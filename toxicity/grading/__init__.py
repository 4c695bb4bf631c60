"""Pure-Python CRS and ICANS grading for CAR-T trials (no Django import anywhere here).

Scales: ASTCT 2019 (Lee DW et al., Biol Blood Marrow Transplant 2019;25:625-638), CTCAE v5.0
and CTCAE v6.0. Rules R-CRS-1..15 and R-ICANS-1..8 are those of grading.md; the input and
output are the contract of data-dictionary.md "Grading input and output".

    from toxicity.grading import grade
    grade({"temperature_max_c": 39.5, "age_years": 40, "ice_score": 10}).as_dict()
"""

from .engine import ENGINE_VERSION, GradingResult, grade, grade_assessment
from .inputs import (
    CRS_SCALES, ICANS_SCALES, NE, Assessment, Flag, GradingInputError, collect_input_errors,
    fahrenheit_to_celsius, parse_grading_input,
)

__all__ = [
    "CRS_SCALES", "ENGINE_VERSION", "ICANS_SCALES", "NE", "Assessment", "Flag",
    "GradingInputError", "GradingResult", "collect_input_errors", "fahrenheit_to_celsius",
    "grade", "grade_assessment", "parse_grading_input",
]
