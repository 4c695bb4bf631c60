"""The engine's fast paths give exactly what the plain reading of the rules gives.

- _parse_plain (plain JSON values) against _parse_careful (every accepted form);
- grade_assessment, which remembers the CRS and ICANS parts by clinical state, against the
  straightforward composition of grade_crs and grade_icans (reference_grade below);
- the memo keys hold every field the graders read;
- GradingResult.as_json against json.dumps(as_dict()).
"""

import json
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.toxicity.grading_strategies import (
    PROPERTY, arbitrary_inputs, consistent_inputs, shaped_inputs,
)
from toxicity.grading import engine
from toxicity.grading.crs import grade_crs, oxygen_device_flow_conflict
from toxicity.grading.engine import GradingResult, grade, grade_assessment
from toxicity.grading.icans import grade_icans
from toxicity.grading.inputs import (
    CTCAE_V5, NE, SCALE_LABELS, Assessment, Flag, GradingInputError, _parse_careful, _parse_plain,
)

ANY_INPUT = st.one_of(consistent_inputs(), shaped_inputs(), arbitrary_inputs())


def _fields(assessment):
    return {name: getattr(assessment, name) for name in Assessment.__dataclass_fields__}


@PROPERTY
@given(ANY_INPUT)
def test_plain_parse_is_the_careful_parse(data):
    plain = _parse_plain(data)
    try:
        careful = _parse_careful(data)
    except GradingInputError:
        assert plain is None
        return
    if plain is not None:
        assert plain == careful
        assert repr(_fields(plain)) == repr(_fields(careful))  # types and Decimal exponents too


def test_plain_parse_takes_plain_json():
    data = {"temperature_max_c": 38.0, "age_years": 40, "ice_score": 10, "hypotension": True,
            "vasopressors": ["norepinephrine"], "oxygen_device": "none",
            "assessment_date": "2026-03-04", "subject_id": "101-0003"}
    assert _parse_plain(data) == _parse_careful(data)
    for other_form in ({"hypotension": "true"}, {"ice_score": "10"}, {"seizure": "NONE"},
                       {"temperature_max_c": 46.0}, {"vasopressors": "norepinephrine"}):
        assert _parse_plain({**data, **other_form}) is None


def reference_grade(a):
    """The engine as the rules read: both CRS scales, ICANS, the data query and mismatches."""
    crs = grade_crs(a, a.crs_scale)
    ctcae_v5 = crs if a.crs_scale == CTCAE_V5 else grade_crs(a, CTCAE_V5)
    icans = grade_icans(a, a.icans_scale)
    flags = set(crs.flags | ctcae_v5.flags | icans.flags)
    reasons = [*crs.reasons, *ctcae_v5.reasons, *icans.reasons]
    conflict = oxygen_device_flow_conflict(a)
    if conflict:
        flags.add(Flag.O2_DEVICE_FLOW_CONFLICT)
        reasons.append(conflict)
    for kind, reported, derived, scale, flag in (
            ("CRS", a.crs_grade_reported, crs.grade, a.crs_scale, Flag.CRS_GRADE_MISMATCH),
            ("ICANS", a.icans_grade_reported, icans.grade, a.icans_scale,
             Flag.ICANS_GRADE_MISMATCH)):
        if reported is not None and derived != NE and reported != derived:
            flags.add(flag)
            reasons.append(f"{kind}-GRADE-MISMATCH: investigator reported {kind} grade "
                           f"{reported}; derived {SCALE_LABELS[scale]} grade is {derived}.")
    return GradingResult(crs_grade=crs.grade, icans_grade=icans.grade,
                         ctcae_crs_grade=ctcae_v5.grade,
                         flags=tuple(sorted(str(f) for f in flags)),
                         reasons=tuple(dict.fromkeys(reasons)), crs_scale=a.crs_scale,
                         icans_scale=a.icans_scale, minimum_crs_grade=crs.minimum,
                         minimum_icans_grade=icans.minimum)


@PROPERTY
@given(st.lists(st.one_of(consistent_inputs(), shaped_inputs()), min_size=1, max_size=4),
       st.integers(2500, 4500))
def test_remembered_states_give_the_reference_result(inputs, hundredths):
    # several inputs per example, and each again at another temperature, so that states are
    # found in the memo with a different temperature, flow and age from the ones stored
    for data in inputs:
        for variant in (data, {**data, "temperature_max_c": hundredths / 100}):
            try:
                a = _parse_careful(variant)
            except GradingInputError:
                continue
            assert grade_assessment(a) == reference_grade(a)
            assert grade(variant) == reference_grade(a)


@pytest.mark.parametrize("temperatures", [
    (38.0, 39.5, 38.04, 41.25), (37.9, 36.0, 37.99, 25.0), (38.0, 38, "38.00", "38.000001"),
])
def test_the_temperature_sentence_is_each_days_own(temperatures):
    base = {"age_years": 40, "ice_score": 10, "hypoxia": True, "oxygen_device": "nasal_cannula",
            "oxygen_flow_l_min": 6.5, "fio2_percent": 30, "crs_scale": "ctcae_v6"}
    for temperature in temperatures:
        a = _parse_careful({**base, "temperature_max_c": temperature})
        assert grade_assessment(a) == reference_grade(a)


class _Recording(Assessment):
    """An Assessment that notes every field read from it, properties included."""

    def __getattribute__(self, name):
        if name in Assessment.__dataclass_fields__:
            object.__getattribute__(self, "__dict__").setdefault("_reads", set()).add(name)
        return object.__getattribute__(self, name)


@PROPERTY
@given(consistent_inputs())
def test_memo_keys_hold_every_field_the_graders_read(data):
    a = _parse_careful(data)
    recording = _Recording(**_fields(a))
    engine._crs_state(recording)
    crs_reads = recording.__dict__.pop("_reads")
    assert crs_reads <= {*engine.CRS_STATE_FIELDS, "temperature_max_c", "oxygen_flow_l_min"}
    grade_icans(recording, recording.icans_scale)
    icans_reads = recording.__dict__.pop("_reads") - {"icans_scale"}
    assert icans_reads <= {*engine.ICANS_STATE_FIELDS, "age_years"}


@PROPERTY
@given(st.one_of(consistent_inputs(), shaped_inputs()), st.data())
def test_ages_alike_as_graded_grade_alike(data, draw):
    """engine.age_as_graded is the only view of the age that grading (input rules included) takes:
    any other age in the same band gives the same result or the same refusal."""
    data = {**data, "age_years": draw.draw(st.one_of(st.integers(12, 130), st.decimals(12, 130, places=1)))}
    band = engine.age_as_graded(data["age_years"])
    low, high = (Decimal(12), Decimal("12.9")) if band == "12" else (Decimal(13), Decimal(130))
    other_age = draw.draw(st.one_of(st.integers(int(low), int(high)).filter(lambda n: n >= low),
                                    st.decimals(low, high, places=1)))
    assert engine.age_as_graded(other_age) == band
    outcomes = []
    for value in (data["age_years"], other_age):  # the reference: no memo to hide a difference
        try:
            outcomes.append(reference_grade(_parse_careful({**data, "age_years": value})))
        except GradingInputError as exc:
            outcomes.append(exc.errors)
    assert outcomes[0] == outcomes[1]


@pytest.mark.parametrize(("age", "graded"), [(None, None), (0, 0), (11, 11), (11.99, 11.99), (12, "12"),
                                             (12.5, "12"), (13, "13+"), (90, "13+")])
def test_age_as_graded_boundaries(age, graded):
    assert engine.age_as_graded(age) == graded


@PROPERTY
@given(consistent_inputs())
def test_as_json_is_compact_json_dumps_of_as_dict(data):
    result = grade(data)
    assert result.as_json() == json.dumps(result.as_dict(), separators=(",", ":"))


def test_as_json_of_a_result_built_by_hand():
    result = GradingResult(crs_grade=NE, icans_grade=2, ctcae_crs_grade=0,
                           flags=(Flag.CRS_NOT_EVALUABLE,), reasons=('a "quoted" é',),
                           crs_scale="astct_2019", icans_scale="ctcae_v6")
    assert result.as_json() == json.dumps(result.as_dict(), separators=(",", ":"))
    odd = GradingResult(crs_grade=True, icans_grade=1.0, ctcae_crs_grade=1, flags=(),
                        reasons=("1",), crs_scale="astct_2019", icans_scale="ctcae_v6")
    assert odd.as_json() == json.dumps(odd.as_dict(), separators=(",", ":"))


def test_long_numbers_are_graded_but_not_remembered():
    # an input may hold a number with a thousand digits: graded all the same, never kept
    for memo in (engine._CRS_MEMO, engine._ICANS_MEMO, engine._SENTENCES):
        memo.clear()
    digits = "0" * 1000 + "1"
    a = _parse_careful({"age_years": f"8.{digits}", "ice_score": 10,
                        "temperature_max_c": f"38.{digits}", "hypoxia": True,
                        "oxygen_device": "nasal_cannula", "oxygen_flow_l_min": f"6.{digits}",
                        "fio2_percent": 30})
    assert grade_assessment(a) == reference_grade(a)
    assert (grade_assessment(a).crs_grade, grade_assessment(a).icans_grade) == (3, NE)
    assert not engine._CRS_MEMO and not engine._ICANS_MEMO and not engine._SENTENCES
