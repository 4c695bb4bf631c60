"""Grading input parsing: types, hard limits, hard cross-field rules, every bad field named."""

import json
from decimal import Decimal

import pytest

from toxicity.grading.engine import grade
from toxicity.grading.inputs import (
    Assessment, GradingInputError, collect_input_errors, fahrenheit_to_celsius,
    parse_grading_input,
)

NE = "NE"
ADULT = {"age_years": 45, "ice_score": 10}


def errors(**fields):
    with pytest.raises(GradingInputError) as exc:
        parse_grading_input({**ADULT, **fields})
    return exc.value.errors


# --- types -----------------------------------------------------------------------------------

@pytest.mark.parametrize("value, expected", [
    (True, True), (1, True), ("true", True), ("TRUE", True), (" True ", True), ("1", True),
    (False, False), (0, False), ("false", False), ("0", False), ("", False), (None, False),
])
def test_booleans(value, expected):
    assert parse_grading_input({**ADULT, "hypotension": value}).hypotension is expected


@pytest.mark.parametrize("value", ["yes", "maybe", 2, -1, 1.0, [True]])
def test_bad_boolean_is_an_error(value):
    assert list(errors(hypoxia=value)) == ["hypoxia"]


@pytest.mark.parametrize("value, expected", [
    (38, Decimal("38")), (38.0, Decimal("38.0")), (37.9, Decimal("37.9")),
    ("37.9", Decimal("37.9")),
    (" 38.25 ", Decimal("38.25")), (Decimal("38.5"), Decimal("38.5")), (None, None), ("", None),
])
def test_temperature_accepts_numbers_and_numeric_strings(value, expected):
    assert parse_grading_input({**ADULT, "temperature_max_c": value}).temperature_max_c == expected


def test_float_temperature_compares_exactly():
    # 37.9 as a binary float is 37.899999...; parsed via its shortest text it stays 37.9
    assert parse_grading_input({**ADULT, "temperature_max_c": 37.9}).temperature_max_c == \
        Decimal("37.9")


@pytest.mark.parametrize("field, value", [
    ("temperature_max_c", "hot"), ("temperature_max_c", [38]), ("temperature_max_c", True),
    ("temperature_max_c", "nan"), ("temperature_max_c", "Infinity"), ("temperature_max_c", "38,5"),
    ("oxygen_flow_l_min", {"value": 2}), ("fio2_percent", 40.5), ("fio2_percent", "forty"),
    ("ice_score", "7.5"), ("ice_score", True), ("capd_score", 3.2), ("age_years", "adult"),
    ("crs_grade_reported", "II"), ("assessment_date", "05/01/2026"), ("assessment_date", 20260105),
])
def test_wrong_type_is_an_error(field, value):
    assert field in errors(**{field: value})


def test_whole_numbers_may_arrive_as_strings_or_floats():
    a = parse_grading_input({**ADULT, "ice_score": "7", "fio2_percent": 40.0, "capd_score": "3.0",
                             "crs_grade_reported": " 2 "})
    assert (a.ice_score, a.fio2_percent, a.capd_score, a.crs_grade_reported) == (7, 40, 3, 2)


# --- hard limits ------------------------------------------------------------------------------

@pytest.mark.parametrize("field, low, high, below, above", [
    ("temperature_max_c", 25.0, 45.0, 24.9, 45.1),
    ("oxygen_flow_l_min", 0, 80, -0.1, 80.1),
    ("fio2_percent", 21, 100, 20, 101),
    ("ice_score", 0, 10, -1, 11),
    ("capd_score", 0, 32, -1, 33),
    ("capd_baseline", 0, 32, -1, 33),
    ("crs_grade_reported", 0, 5, -1, 6),
    ("icans_grade_reported", 0, 5, -1, 6),
])
def test_hard_limits(field, low, high, below, above):
    for ok in (low, high):
        parse_grading_input({**ADULT, field: ok})
    for bad in (below, above):
        assert list(errors(**{field: bad})) == [field]


def test_negative_age_is_an_error():
    assert "age_years" in errors(age_years=-1)


# --- codes --------------------------------------------------------------------------------

@pytest.mark.parametrize("field, value", [
    ("oxygen_device", "nasal"), ("oxygen_device", "high_flow"), ("oxygen_device", 3),
    ("intubation_reason", "elective"), ("ice_not_assessable", "refused"),
    ("consciousness", "asleep"), ("seizure", "focal"), ("motor_weakness", "mild"),
    ("cerebral_edema", "global"), ("death_primary_cause", "sepsis"),
    ("crs_scale", "lee_2014"), ("crs_scale", "penn"), ("icans_scale", "ctcae_v5"),
    ("vasopressors", "milrinone"),  # R-CRS-8: inotropes are not vasopressors
    ("vasopressors", ["norepinephrine", "dobutamine"]), ("vasopressors", "none"),
    ("vasopressors", ["norepinephrine", 7]), ("vasopressors", 7),
])
def test_unknown_code_is_an_error(field, value):
    fields = {field: value}
    if field == "vasopressors":
        fields["hypotension"] = True
    assert list(errors(**fields)) == [field]


def test_codes_are_trimmed_and_case_insensitive():
    a = parse_grading_input({**ADULT, "oxygen_device": " Nasal_Cannula ", "seizure": "NONE",
                             "crs_scale": "CTCAE_V5"})
    assert (a.oxygen_device, a.seizure, a.crs_scale) == ("nasal_cannula", "none", "ctcae_v5")


@pytest.mark.parametrize("value, expected", [
    (None, ()), ("", ()), ([], ()),
    ("norepinephrine", ("norepinephrine",)),
    ("norepinephrine,vasopressin", ("norepinephrine", "vasopressin")),
    ("norepinephrine; vasopressin;", ("norepinephrine", "vasopressin")),
    (["angiotensin_ii", "other"], ("angiotensin_ii", "other")),
    (("epinephrine", "epinephrine"), ("epinephrine",)),
])
def test_vasopressor_list_forms(value, expected):
    a = parse_grading_input({**ADULT, "hypotension": True, "vasopressors": value})
    assert a.vasopressors == expected


# --- hard cross-field rules ------------------------------------------------------------------

def test_vasopressors_require_hypotension():
    assert errors(vasopressors=["norepinephrine"]) == {
        "vasopressors": ["vasopressors for hypotension require hypotension to be recorded "
                         "(hypotension is false)"]}
    assert "vasopressors" in errors(vasopressors="vasopressin")


def test_vasopressin_for_another_indication_needs_no_hypotension():
    parse_grading_input({**ADULT, "vasopressors": ["vasopressin"],
                         "vasopressin_other_indication": True})
    assert "vasopressors" in errors(vasopressors=["vasopressin", "norepinephrine"],
                                    vasopressin_other_indication=True)


def test_mechanical_ventilation_requires_intubation_reason():
    assert list(errors(oxygen_device="mechanical_ventilation", hypoxia=True)) == [
        "intubation_reason"]
    parse_grading_input({**ADULT, "oxygen_device": "mechanical_ventilation",
                         "intubation_reason": "airway_protection"})


@pytest.mark.parametrize("fields, is_error", [
    ({"age_years": 45}, True),
    ({"age_years": 12}, True),
    ({"age_years": "30", "consciousness": "sedated"}, True),
    ({"age_years": 45, "ice_not_assessable": "sedated"}, False),
    ({"age_years": 45, "ice_not_assessable": "other"}, False),
    ({"age_years": 11}, False),  # the CAPD is the tool
    ({"age_years": 45, "developmental_delay": True}, False),
    ({"age_years": 45, "capd_score": 4}, False),  # graded with the CAPD, flagged
    ({"age_years": 45, "death_primary_cause": "infection"}, False),
    ({}, False),  # age unknown: ICANS NE with a flag instead
])
def test_ice_not_assessable_required_when_ice_applies(fields, is_error):
    found = collect_input_errors(fields)
    assert ("ice_not_assessable" in found) == is_error


def test_ice_score_and_not_assessable_contradict():
    assert list(errors(ice_score=5, ice_not_assessable="sedated")) == ["ice_not_assessable"]
    parse_grading_input({**ADULT, "ice_score": 0, "ice_not_assessable": "unarousable"})


def test_capd_unable_with_a_score_contradicts():
    assert list(errors(age_years=6, capd_score=5, capd_unable=True)) == ["capd_unable"]


# --- every bad field is named --------------------------------------------------------------

def test_every_bad_field_is_named_at_once():
    bad = {
        "temperature_max_c": 46.0, "hypoxia": "maybe", "oxygen_device": "mechanical_ventilation",
        "oxygen_flow_l_min": 81, "fio2_percent": 20, "vasopressors": "norepinephrine, foo",
        "hypotension": True, "ice_score": 11, "capd_score": "x", "consciousness": "dozy",
        "seizure": "grand_mal", "motor_weakness": "yes", "cerebral_edema": 1,
        "crs_grade_reported": 7, "icans_grade_reported": "three", "death_primary_cause": "old_age",
        "crs_scale": "lee", "icans_scale": "ctcae_v5", "age_years": -3, "capd_baseline": 40,
        "crs_ongoing": "sometimes", "assessment_date": "yesterday",
    }
    with pytest.raises(GradingInputError) as exc:
        grade(bad)
    assert set(exc.value.errors) == {
        "temperature_max_c", "hypoxia", "intubation_reason", "oxygen_flow_l_min", "fio2_percent",
        "vasopressors", "ice_score", "capd_score", "consciousness", "seizure", "motor_weakness",
        "cerebral_edema", "crs_grade_reported", "icans_grade_reported", "death_primary_cause",
        "crs_scale", "icans_scale", "age_years", "capd_baseline", "crs_ongoing",
        "assessment_date",
    }
    assert all(isinstance(m, str) and m for msgs in exc.value.errors.values() for m in msgs)
    assert isinstance(exc.value, ValueError)
    assert "temperature_max_c" in str(exc.value)


@pytest.mark.parametrize("data", [None, [], "temperature_max_c=39", 39])
def test_input_must_be_an_object(data):
    with pytest.raises(GradingInputError) as exc:
        grade(data)
    assert list(exc.value.errors) == ["non_field_errors"]


# --- missing means none / not measured -------------------------------------------------------

def test_missing_optional_fields_mean_none():
    a = parse_grading_input({})
    assert a == Assessment()
    assert (a.temperature_max_c, a.vasopressors, a.oxygen_device, a.seizure, a.crs_scale,
            a.icans_scale) == (None, (), "none", "none", "astct_2019", "astct_2019")


def test_nulls_and_empty_strings_mean_missing():
    a = parse_grading_input({**ADULT, "fio2_percent": None, "oxygen_device": "", "seizure": None,
                             "crs_scale": "", "death_primary_cause": ""})
    assert (a.fio2_percent, a.oxygen_device, a.seizure, a.crs_scale,
            a.death_primary_cause) == (None, "none", "none", "astct_2019", None)


def test_missing_flow_is_not_an_input_error_but_not_evaluable():
    result = grade({**ADULT, "temperature_max_c": 39, "hypoxia": True,
                    "oxygen_device": "nasal_cannula", "fio2_percent": 28})
    assert result.crs_grade == NE
    assert "CRS-NOT-EVALUABLE" in result.flags


def test_unknown_keys_are_ignored():
    result = grade({**ADULT, "temperature_max_c": 38.2, "subject_id": "101-0003", "study_day": 3})
    assert result.crs_grade == 1


def test_csv_row_of_strings():
    row = {"assessment_date": "2026-03-04", "temperature_max_c": "39.5", "fever_other_cause": "",
           "hypotension": "1", "vasopressors": "norepinephrine;vasopressin",
           "vasopressin_other_indication": "0", "hypoxia": "true",
           "oxygen_device": "nasal_cannula", "oxygen_flow_l_min": "4.0", "fio2_percent": "32",
           "intubation_reason": "", "ice_score": "6", "ice_not_assessable": "",
           "capd_score": "", "capd_unable": "", "consciousness": "awakens_to_voice",
           "seizure": "none", "motor_weakness": "none", "cerebral_edema": "none",
           "crs_grade_reported": "3", "icans_grade_reported": "2", "age_years": "58",
           "developmental_delay": "false", "crs_ongoing": "false",
           "anticytokine_or_antipyretic_since_onset": "false", "death_primary_cause": "",
           "crs_scale": "astct_2019", "icans_scale": "astct_2019"}
    out = grade(row).as_dict()
    assert (out["crs_grade"], out["ctcae_crs_grade"], out["icans_grade"], out["flags"]) == (
        3, 4, 2, [])


# --- output shape ---------------------------------------------------------------------------

def test_output_shape_is_the_contract():
    result = grade({**ADULT, "temperature_max_c": 39, "hypoxia": True,
                    "oxygen_device": "high_flow_nasal_cannula", "oxygen_flow_l_min": 5,
                    "hypotension": True, "vasopressors": ["vasopressin"], "crs_grade_reported": 1})
    out = result.as_dict()
    assert set(out) == {"crs_grade", "icans_grade", "ctcae_crs_grade", "minimum_crs_grade",
                        "minimum_icans_grade", "flags", "reasons", "crs_scale", "icans_scale",
                        "engine_version"}
    assert out["flags"] == sorted(set(out["flags"]))
    # ASTCT 3 (vasopressin alone), reported 1; HFNC at 5 L/min; CTCAE v5.0 fixed at 3 by the
    # pressor even without FiO2, so no CRS-NOT-EVALUABLE
    assert (out["crs_grade"], out["ctcae_crs_grade"]) == (3, 3)
    assert out["flags"] == ["CRS-GRADE-MISMATCH", "O2-DEVICE-FLOW-CONFLICT", "VASOPRESSIN-ALONE"]
    assert all(isinstance(r, str) for r in out["reasons"])
    assert json.loads(json.dumps(out)) == out  # plain JSON types only


@pytest.mark.parametrize("fahrenheit, celsius", [
    (100.4, Decimal("38")), ("212", Decimal("100")), (32, Decimal("0")), (Decimal("50"),
                                                                          Decimal("10")),
])
def test_fahrenheit_to_celsius(fahrenheit, celsius):
    assert fahrenheit_to_celsius(fahrenheit) == celsius


def test_fahrenheit_to_celsius_rejects_non_numbers():
    with pytest.raises(ValueError):
        fahrenheit_to_celsius("warm")
