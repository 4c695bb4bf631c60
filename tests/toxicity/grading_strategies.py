"""Hypothesis strategies for grading inputs, shared by the grading property tests.

shaped_inputs(): every field of the data dictionary in every accepted form (JSON types, text,
Decimal), values within the hard limits, any key missing, unknown keys added; the hard
cross-field rules may be broken. consistent_inputs(): what the CLI receives from a CRF - plain
JSON values that respect the hard cross-field rules. arbitrary_inputs(): any JSON in any field.
"""

import os
from datetime import date
from decimal import Decimal

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from toxicity.grading.inputs import (
    BOOLEAN_FIELDS, CEREBRAL_EDEMA, CONSCIOUSNESS, CRS_SCALES, DEATH_CAUSES, ICANS_SCALES,
    ICE_NOT_ASSESSABLE, INTUBATION_REASONS, MASKING_DRUGS, MOTOR_WEAKNESS, OXYGEN_DEVICES, SEIZURE,
    VASOPRESSOR_CODES,
)

# GRADING_PROPERTY_EXAMPLES=20000 for a deeper search than the suite's (< 60 s a file)
PROPERTY = settings(max_examples=int(os.environ.get("GRADING_PROPERTY_EXAMPLES", 500)),
                    deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow])

CODE_FIELDS = {
    "oxygen_device": OXYGEN_DEVICES, "intubation_reason": INTUBATION_REASONS,
    "ice_not_assessable": ICE_NOT_ASSESSABLE, "consciousness": CONSCIOUSNESS, "seizure": SEIZURE,
    "motor_weakness": MOTOR_WEAKNESS, "cerebral_edema": CEREBRAL_EDEMA,
    "death_primary_cause": DEATH_CAUSES, "crs_scale": CRS_SCALES, "icans_scale": ICANS_SCALES,
}
# field: (low, high, decimal places) - the hard limits of data-dictionary.md
NUMBER_FIELDS = {
    "temperature_max_c": (25, 45, 2), "oxygen_flow_l_min": (0, 80, 1), "age_years": (0, 100, 2),
}
INTEGER_FIELDS = {
    "fio2_percent": (21, 100), "ice_score": (0, 10), "capd_score": (0, 32),
    "capd_baseline": (0, 32), "crs_grade_reported": (0, 5), "icans_grade_reported": (0, 5),
}
ALL_FIELDS = ({*BOOLEAN_FIELDS, *CODE_FIELDS, *NUMBER_FIELDS, *INTEGER_FIELDS}
              | {"vasopressors", "assessment_date"})



# --- every accepted form, within the hard limits ---------------------------------------------

MISSING = st.sampled_from([None, ""])


def _bool_forms():
    return st.sampled_from([True, False, None, 0, 1, "true", "false", "TRUE", " 1 ", "0", ""])


def _number_forms(low, high, places):
    scale = 10 ** places
    decimals = st.integers(low * scale, high * scale).map(lambda i: Decimal(i).scaleb(-places))
    # just above the lower limit with up to 999000 decimals: within the limits all the same
    tiny = st.builds(lambda m, e: str(low + Decimal(m).scaleb(-e)), st.integers(1, 99),
                     st.integers(3, 999_000))
    return st.one_of(
        decimals, decimals.map(float), st.integers(low, high), decimals.map(str),
        decimals.map(lambda d: f" {d:E} "), tiny, MISSING,
    )


def _integer_forms(low, high):
    ints = st.integers(low, high)
    return st.one_of(ints, ints.map(float), ints.map(str), ints.map(Decimal), MISSING)


def _code_forms(codes):
    code = st.sampled_from(codes)
    return st.one_of(code, code.map(str.upper), code.map(lambda c: f" {c} "), MISSING)


def _vasopressor_forms():
    codes = st.lists(st.sampled_from(VASOPRESSOR_CODES), max_size=4)
    return st.one_of(codes, codes.map(tuple), codes.map(";".join), codes.map(", ".join), MISSING)


JSON_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(),
                         st.text(max_size=12))
JSON_VALUES = st.recursive(JSON_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)),
    max_leaves=6)

SHAPED = {
    **{name: _bool_forms() for name in BOOLEAN_FIELDS},
    **{name: _code_forms(codes) for name, codes in CODE_FIELDS.items()},
    **{name: _number_forms(*limits) for name, limits in NUMBER_FIELDS.items()},
    **{name: _integer_forms(*limits) for name, limits in INTEGER_FIELDS.items()},
    "vasopressors": _vasopressor_forms(),
    "assessment_date": st.one_of(st.dates().map(str), st.dates(), MISSING),
}
EXTRA_KEYS = st.dictionaries(st.text(max_size=12).filter(lambda k: k not in ALL_FIELDS),
                             JSON_VALUES, max_size=3)


@st.composite
def shaped_inputs(draw):
    return {**draw(EXTRA_KEYS), **draw(st.fixed_dictionaries({}, optional=SHAPED))}


def arbitrary_inputs():
    return st.fixed_dictionaries({}, optional={name: JSON_VALUES for name in ALL_FIELDS})


# --- consistent inputs: plain JSON values, the hard cross-field rules respected ----------------

def _hundredths(low, high):
    return st.integers(low * 100, high * 100).map(lambda i: i / 100)


@st.composite
def consistent_inputs(draw):
    """A valid grading input as the CLI receives it (JSON numbers, booleans and codes)."""
    maybe = lambda strategy: draw(st.one_of(st.none(), strategy))  # noqa: E731
    # mostly false, as on a CRF: an attribution on every other field would hide the grading
    a = {name: draw(st.sampled_from((False, False, True))) for name in BOOLEAN_FIELDS}
    a.update(
        temperature_max_c=maybe(_hundredths(35, 42)),
        vasopressors=draw(st.lists(st.sampled_from(VASOPRESSOR_CODES), max_size=3, unique=True)),
        # the cannulas more often: their flow is where R-CRS-4 and R-CRS-5 meet
        oxygen_device=draw(st.sampled_from(
            OXYGEN_DEVICES + ("nasal_cannula", "high_flow_nasal_cannula") * 2)),
        oxygen_flow_l_min=maybe(st.integers(0, 300).map(lambda i: i / 10)),
        fio2_percent=maybe(st.integers(21, 100)),
        intubation_reason=maybe(st.sampled_from(INTUBATION_REASONS)),
        ice_score=maybe(st.integers(0, 10)),
        ice_not_assessable=maybe(st.sampled_from(ICE_NOT_ASSESSABLE)),
        capd_score=maybe(st.integers(0, 32)),
        capd_baseline=maybe(st.integers(0, 12)),
        consciousness=maybe(st.sampled_from(CONSCIOUSNESS)),
        seizure=draw(st.sampled_from(SEIZURE)),
        motor_weakness=draw(st.sampled_from(MOTOR_WEAKNESS)),
        cerebral_edema=draw(st.sampled_from(CEREBRAL_EDEMA)),
        crs_grade_reported=maybe(st.integers(0, 5)),
        icans_grade_reported=maybe(st.integers(0, 5)),
        age_years=maybe(st.one_of(st.integers(0, 90), _hundredths(0, 20))),
        death_primary_cause=maybe(st.sampled_from(DEATH_CAUSES)),
        # R-CRS-2: the therapy whose masking window covers the day, as the platform names it
        fever_masked_by=maybe(st.fixed_dictionaries({
            "drug": st.sampled_from(MASKING_DRUGS),
            "date": st.dates(date(2025, 1, 1), date(2027, 12, 31)).map(date.isoformat)})),
        crs_scale=draw(st.sampled_from(CRS_SCALES)),
        icans_scale=draw(st.sampled_from(ICANS_SCALES)),
    )
    return _make_consistent(a, draw)


def _make_consistent(a, draw):
    """Repair a draw so that it respects the hard cross-field rules of the data dictionary."""
    counted = [v for v in a["vasopressors"]
               if not (v == "vasopressin" and a["vasopressin_other_indication"])]
    if counted and not a["hypotension"]:
        a["hypotension"] = True
    if a["oxygen_device"] == "mechanical_ventilation" and a["intubation_reason"] is None:
        a["intubation_reason"] = draw(st.sampled_from(INTUBATION_REASONS))
    if a["ice_score"]:
        a["ice_not_assessable"] = None
    if a["capd_unable"]:
        a["capd_score"] = None
    if (a["ice_score"] is None and a["ice_not_assessable"] is None and a["age_years"] is not None
            and a["age_years"] >= 12 and not a["developmental_delay"] and a["capd_score"] is None
            and not a["capd_unable"] and a["death_primary_cause"] is None):
        a["ice_not_assessable"] = draw(st.sampled_from(ICE_NOT_ASSESSABLE))
    return a
