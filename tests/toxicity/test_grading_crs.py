"""ASTCT 2019 CRS grading (R-CRS-1..15): one parametrize row per boundary."""

from decimal import Decimal

import pytest

from toxicity.grading.engine import grade
from toxicity.grading.inputs import fahrenheit_to_celsius

NE = "NE"
# An adult with a normal ICE, so that ICANS needs nothing more (ice_not_assessable is required
# for an adult without an ICE score).
ADULT = {"age_years": 45, "ice_score": 10}
FEVER = {**ADULT, "temperature_max_c": 39.0}
EXEMPT = {**ADULT, "crs_ongoing": True, "anticytokine_or_antipyretic_since_onset": True}


def crs(**fields):
    """ASTCT CRS grade and flags for the fields on top of a febrile adult."""
    result = grade({**FEVER, **fields})
    return result.crs_grade, set(result.flags)


def hypoxic(device, flow=None, **fields):
    # FiO2 recorded so that the CTCAE v5.0 grade (always computed) is not NE here
    return {"hypoxia": True, "oxygen_device": device, "oxygen_flow_l_min": flow,
            "fio2_percent": 30, **fields}


def hypotensive(*agents, **fields):
    return {"hypotension": True, "vasopressors": list(agents), **fields}


# --- R-CRS-1 fever -------------------------------------------------------------------------

@pytest.mark.parametrize("temperature, expected", [
    (37.9, 0),
    (38.0, 1),
    (38, 1),
    ("38.0", 1),
    ("37.9", 0),
    (Decimal("37.99"), 0),
    (41.9, 1),  # R-CRS-11: the height of the fever never changes the grade
])
def test_fever_boundary_celsius(temperature, expected):
    result = grade({**ADULT, "temperature_max_c": temperature})
    assert result.crs_grade == expected
    assert result.flags == ()


@pytest.mark.parametrize("fahrenheit, expected", [
    (100.3, 0),  # 37.94 C
    (100.4, 1),  # 38.0 C exactly
    ("100.4", 1),
    (104.0, 1),
])
def test_fever_boundary_fahrenheit(fahrenheit, expected):
    celsius = fahrenheit_to_celsius(fahrenheit)
    assert grade({**ADULT, "temperature_max_c": celsius}).crs_grade == expected


def test_fahrenheit_conversion_is_exact():
    assert fahrenheit_to_celsius(100.4) == Decimal("38")
    assert fahrenheit_to_celsius("100.3") < Decimal("38")
    assert fahrenheit_to_celsius(100.3) > Decimal("37.94")
    assert fahrenheit_to_celsius(32) == 0
    assert fahrenheit_to_celsius(98.6) == Decimal("37")


# --- R-CRS-4 / R-CRS-5 / R-CRS-6 oxygen devices -----------------------------------------------

@pytest.mark.parametrize("device, flow, expected, extra_flags", [
    ("nasal_cannula", 1, 2, set()),
    ("nasal_cannula", 6, 2, set()),
    ("nasal_cannula", 6.0, 2, set()),
    ("nasal_cannula", "6.0", 2, set()),
    ("nasal_cannula", 6.05, 3, set()),
    ("nasal_cannula", 6.5, 3, set()),
    ("nasal_cannula", 15, 3, set()),
    ("nasal_cannula", 15.5, 3, {"O2-DEVICE-FLOW-CONFLICT"}),
    ("blow_by", None, 2, set()),
    ("blow_by", 10, 2, set()),
    ("high_flow_nasal_cannula", 6.5, 3, set()),
    ("high_flow_nasal_cannula", 40, 3, set()),
    ("high_flow_nasal_cannula", 6.0, 2, {"O2-DEVICE-FLOW-CONFLICT"}),
    ("facemask", None, 3, set()),
    ("facemask", 2, 3, set()),
    ("non_rebreather", 15, 3, set()),
    ("venturi_mask", None, 3, set()),
    ("cpap", None, 4, set()),
    ("bipap", None, 4, set()),
])
def test_oxygen_device_and_flow(device, flow, expected, extra_flags):
    grade_, flags = crs(**hypoxic(device, flow))
    assert grade_ == expected
    assert flags == extra_flags


def test_flow_boundary_reason_cites_rule():
    result = grade({**FEVER, **hypoxic("nasal_cannula", 6.5)})
    assert "R-CRS-4: nasal cannula at 6.5 L/min is high flow (grade 3)." in result.reasons


@pytest.mark.parametrize("intubation_reason, hypoxia, expected, flags", [
    ("hypoxia", True, 4, set()),
    ("airway_protection", False, 1, set()),  # R-CRS-10: not a grade 4 criterion by itself
    ("procedure", False, 1, set()),
    ("other", False, 1, set()),
    # ventilated for airway protection *and* hypoxic: the support the deficit alone needs is
    # unknown (grade 2 to 4): NE, never a guess (R-CRS-15)
    ("airway_protection", True, NE, {"CRS-NOT-EVALUABLE"}),
    # contradictory: ventilated "for hypoxia" but no hypoxia recorded
    ("hypoxia", False, NE, {"CRS-NOT-EVALUABLE"}),
])
def test_mechanical_ventilation_for_hypoxia_vs_airway_protection(
        intubation_reason, hypoxia, expected, flags):
    fields = {"hypoxia": hypoxia, "oxygen_device": "mechanical_ventilation",
              "intubation_reason": intubation_reason}
    assert crs(**fields) == (expected, flags)


@pytest.mark.parametrize("device", ["cpap", "bipap", "facemask", "nasal_cannula"])
def test_oxygen_not_needed_for_a_deficit_does_not_count(device):
    # R-CRS-6: e.g. CPAP for sleep apnoea, oxygen given out of habit
    assert crs(hypoxia=False, oxygen_device=device, oxygen_flow_l_min=10) == (1, set())


def test_airway_protection_with_two_pressors_is_still_graded():
    # the unknown hypoxia grade (2-4) cannot change a grade already 4 from hypotension
    fields = {**hypoxic("mechanical_ventilation", intubation_reason="airway_protection"),
              **hypotensive("norepinephrine", "epinephrine")}
    assert crs(**fields) == (4, set())


# --- R-CRS-7 / R-CRS-8 / R-CRS-9 vasopressors -------------------------------------------------

@pytest.mark.parametrize("agents, expected, flags", [
    ((), 2, set()),
    (("norepinephrine",), 3, set()),
    (("phenylephrine",), 3, set()),
    (("norepinephrine", "vasopressin"), 3, set()),
    (("vasopressin",), 3, {"VASOPRESSIN-ALONE"}),
    (("norepinephrine", "phenylephrine"), 4, set()),
    (("norepinephrine", "phenylephrine", "vasopressin"), 4, set()),
    (("epinephrine", "dopamine"), 4, set()),
    (("epinephrine", "other"), 4, set()),
    (("angiotensin_ii",), 3, {"ANGIOTENSIN-COUNTED"}),
    (("norepinephrine", "angiotensin_ii"), 4, {"ANGIOTENSIN-COUNTED"}),
    (("norepinephrine", "norepinephrine"), 3, set()),  # the same agent twice is one agent
])
def test_vasopressor_count(agents, expected, flags):
    assert crs(**hypotensive(*agents)) == (expected, flags)


@pytest.mark.parametrize("vasopressors", [
    "norepinephrine,vasopressin", "norepinephrine; vasopressin", ["Norepinephrine", "vasopressin"],
])
def test_norepinephrine_plus_vasopressin_in_any_list_form_is_3(vasopressors):
    assert crs(hypotension=True, vasopressors=vasopressors) == (3, set())


@pytest.mark.parametrize("fields, expected, flags", [
    # vasopressin for diabetes insipidus beside norepinephrine: one vasopressor, no flag
    (hypotensive("norepinephrine", "vasopressin", vasopressin_other_indication=True), 3, set()),
    # vasopressin for DI only: hypotension not requiring vasopressors
    (hypotensive("vasopressin", vasopressin_other_indication=True), 2, set()),
    # vasopressin for DI, no hypotension at all: valid input, fever only
    ({"vasopressors": ["vasopressin"], "vasopressin_other_indication": True}, 1, set()),
])
def test_vasopressin_for_another_indication_is_ignored(fields, expected, flags):
    assert crs(**fields) == (expected, flags)


# --- R-CRS-3 worse event wins ---------------------------------------------------------------

@pytest.mark.parametrize("fields, expected", [
    # the paper's example: 39.5 C, one vasopressor and low-flow oxygen = grade 3
    ({"temperature_max_c": 39.5, **hypotensive("norepinephrine"), **hypoxic("nasal_cannula", 2)},
     3),
    ({**hypotensive(), **hypoxic("facemask")}, 3),
    ({**hypotensive("norepinephrine", "epinephrine"), **hypoxic("nasal_cannula", 2)}, 4),
    ({**hypotensive(), **hypoxic("blow_by")}, 2),
    ({**hypotensive("vasopressin"), **hypoxic("bipap")}, 4),
])
def test_worse_event_wins(fields, expected):
    assert crs(**fields)[0] == expected


# --- R-CRS-2 fever exemption, R-CRS-14 onset gate and resolution ------------------------------

MASKED = {"CRS-FEVER-MASKED"}
TOCI = {"fever_masked_by": {"drug": "tocilizumab", "date": "2026-03-12"}}


@pytest.mark.parametrize("fields, expected, flags", [
    # R-CRS-2: inside a masking window hypotension / hypoxia grade CRS without fever, flagged
    ({**EXEMPT, "temperature_max_c": 37.0, **hypotensive()}, 2, MASKED),
    ({**EXEMPT, "temperature_max_c": 37.0, **hypoxic("nasal_cannula", 8)}, 3, MASKED),
    ({**EXEMPT, **hypoxic("nasal_cannula", 8)}, 3, MASKED),  # no temperature needed
    ({**EXEMPT, "temperature_max_c": 36.8, **hypotensive("norepinephrine", "dopamine")}, 4, MASKED),
    # the platform names the therapy (fever_masked_by): the same, whatever crs_ongoing says
    ({**ADULT, **TOCI, "temperature_max_c": 37.0, **hypotensive("norepinephrine")}, 3, MASKED),
    ({**ADULT, **TOCI, "crs_ongoing": True, "temperature_max_c": 37.9, **hypotensive()}, 2, MASKED),
    # antipyretic given today, CRS ongoing since an earlier day: masked too
    ({**ADULT, "crs_ongoing": True, "antipyretic_given": True, "temperature_max_c": 37.2,
      **hypotensive("norepinephrine")}, 3, MASKED),
    # masked day with nothing: grade 0, no flag
    ({**EXEMPT, "temperature_max_c": 37.0}, 0, set()),
    ({**EXEMPT}, 0, set()),
    ({**ADULT, **TOCI}, 0, set()),
    # masked day with fever still present: graded with fever, nothing to confirm
    ({**EXEMPT, "temperature_max_c": 38.4}, 1, set()),
    ({**ADULT, **TOCI, "temperature_max_c": 38.0, **hypotensive()}, 2, set()),
    # not masked: CRS ongoing but no anti-cytokine or antipyretic therapy
    ({**ADULT, "crs_ongoing": True, "temperature_max_c": 37.0, **hypotensive()}, 0,
     {"CRS-NO-FEVER-AT-ONSET"}),
    # an antipyretic today without an ongoing episode and without the platform naming a window
    # (prophylaxis, or before onset): not masked
    ({**ADULT, "antipyretic_given": True, "temperature_max_c": 37.0, **hypotensive()}, 0,
     {"CRS-NO-FEVER-AT-ONSET"}),
])
def test_fever_exemption(fields, expected, flags):
    result = grade(fields)
    assert (result.crs_grade, set(result.flags)) == (expected, flags)


def test_the_masked_day_names_the_drug_and_date():
    result = grade({**ADULT, **TOCI, "temperature_max_c": 37.0, **hypotensive("norepinephrine")})
    assert any("masking window of tocilizumab on 2026-03-12" in r and r.startswith("CRS-FEVER-MASKED")
               for r in result.reasons)


@pytest.mark.parametrize("masked_by, field", [
    ({"drug": "aspirin", "date": "2026-03-12"}, "fever_masked_by"),
    ({"drug": "tocilizumab"}, "fever_masked_by"),
    ({"drug": "tocilizumab", "date": "12 March"}, "fever_masked_by"),
    ("tocilizumab", "fever_masked_by"),
    ({"drug": "tocilizumab", "date": "2026-03-12", "dose": 8}, "fever_masked_by"),
])
def test_fever_masked_by_is_validated(masked_by, field):
    from toxicity.grading import GradingInputError

    with pytest.raises(GradingInputError) as exc:
        grade({**ADULT, "temperature_max_c": 37.0, "fever_masked_by": masked_by})
    assert field in exc.value.errors


@pytest.mark.parametrize("fields, grade_, minimum", [
    # R-CRS-15: fever and one vasopressor with the oxygen device missing: NE, at least 3
    ({"temperature_max_c": 39.0, **hypotensive("norepinephrine"), "hypoxia": True}, "NE", 3),
    # fever and hypoxia without a device: NE, at least 2
    ({"temperature_max_c": 39.0, "hypoxia": True}, "NE", 2),
    # the missing device cannot change grade 4 (two vasopressors): determined
    ({"temperature_max_c": 39.0, **hypotensive("norepinephrine", "epinephrine"), "hypoxia": True}, 4, None),
    # high-flow cannula without its flow (2 or 3) and one vasopressor (3): grade 3
    ({"temperature_max_c": 39.0, **hypotensive("norepinephrine"), "hypoxia": True,
      "oxygen_device": "high_flow_nasal_cannula"}, 3, None),
    # temperature not measured, outside a masking window: NE without a floor (maybe no CRS at all)
    ({"temperature_max_c": None, **hypotensive("norepinephrine")}, "NE", None),
    # inside a masking window a missing temperature is no obstacle
    ({"temperature_max_c": None, **TOCI, **hypotensive("norepinephrine")}, 3, None),
])
def test_minimum_grade_of_an_ne_day(fields, grade_, minimum):
    result = grade({**ADULT, **fields})
    assert (result.crs_grade, result.minimum_crs_grade) == (grade_, minimum)
    assert ("CRS-NOT-EVALUABLE" in result.flags) == (grade_ == "NE")


@pytest.mark.parametrize("fields, flags", [
    ({**hypotensive()}, {"CRS-NO-FEVER-AT-ONSET"}),
    ({**hypotensive("norepinephrine")}, {"CRS-NO-FEVER-AT-ONSET"}),
    ({**hypoxic("nasal_cannula", 2)}, {"CRS-NO-FEVER-AT-ONSET"}),
    ({}, set()),
    # already attributed to another cause: nothing left to confirm
    ({**hypotensive(), "hypotension_other_cause": True}, set()),
])
def test_no_fever_means_no_crs(fields, flags):
    result = grade({**ADULT, "temperature_max_c": 37.5, **fields})
    assert (result.crs_grade, set(result.flags)) == (0, flags)


# --- R-CRS-12 attribution ---------------------------------------------------------------------

@pytest.mark.parametrize("fields, expected, flags", [
    ({"fever_other_cause": True}, 0, set()),
    ({"fever_other_cause": True, **hypotensive()}, 0, {"CRS-NO-FEVER-AT-ONSET"}),
    ({**hypotensive("norepinephrine", "epinephrine"), "hypotension_other_cause": True}, 1, set()),
    ({**hypotensive("vasopressin"), "hypotension_other_cause": True}, 1, set()),
    ({**hypoxic("cpap"), "hypoxia_other_cause": True}, 1, set()),
    ({**hypotensive("norepinephrine"), "hypotension_other_cause": True,
      **hypoxic("nasal_cannula", 3)}, 2, set()),
    ({**hypotensive("norepinephrine"), **hypoxic("facemask"), "hypoxia_other_cause": True}, 3,
     set()),
])
def test_attribution_to_another_cause(fields, expected, flags):
    assert crs(**fields) == (expected, flags)


# --- R-CRS-15 missing data ----------------------------------------------------------------

@pytest.mark.parametrize("fields, expected", [
    ({"temperature_max_c": None}, NE),
    ({"temperature_max_c": ""}, NE),
    ({"temperature_max_c": None, **hypotensive("norepinephrine")}, NE),
    ({**hypoxic("nasal_cannula")}, NE),
    ({**hypoxic("high_flow_nasal_cannula")}, NE),
    ({**hypoxic("none")}, NE),  # hypoxia without a device
    ({"hypoxia": True}, NE),
    # the missing flow cannot change a grade already 3 from a vasopressor
    ({**hypoxic("nasal_cannula"), **hypotensive("norepinephrine")}, 3),
    # fever attributed to another cause: the temperature cannot matter
    ({"temperature_max_c": None, "fever_other_cause": True}, 0),
])
def test_missing_data_gives_not_evaluable_with_flag(fields, expected):
    result = grade({**FEVER, **fields})
    assert result.crs_grade == expected
    assert ("CRS-NOT-EVALUABLE" in result.flags) == (expected == NE)


def test_missing_fio2_flags_the_ctcae_grade_on_an_astct_trial():
    # ctcae_crs_grade (CTCAE v5.0) is always derived; its NE carries the flag too
    result = grade({**FEVER, **hypoxic("nasal_cannula", 3, fio2_percent=None)})
    assert (result.crs_grade, result.ctcae_crs_grade) == (2, NE)
    assert result.flags == ("CRS-NOT-EVALUABLE",)


def test_missing_temperature_reason():
    result = grade({**ADULT})
    assert result.crs_grade == NE
    assert "CRS-NOT-EVALUABLE" in result.flags
    assert any(r.startswith("R-CRS-15") for r in result.reasons)


# --- R-CRS-13 grade 5 ---------------------------------------------------------------------

@pytest.mark.parametrize("cause, fields, expected", [
    ("crs", {}, 5),
    ("crs", {"temperature_max_c": None}, 5),
    ("disease_progression", hypotensive("norepinephrine", "epinephrine"), 4),
    ("infection", {}, 1),
    ("icans", hypoxic("nasal_cannula", 3), 2),
    ("other", {}, 1),
])
def test_grade_5_only_when_crs_is_the_principal_cause_of_death(cause, fields, expected):
    result = grade({**FEVER, "death_primary_cause": cause, **fields})
    assert result.crs_grade == expected
    assert result.ctcae_crs_grade == expected


# --- CRS-GRADE-MISMATCH -------------------------------------------------------------------

@pytest.mark.parametrize("reported, fields, mismatch", [
    (2, hypotensive("norepinephrine"), True),
    (3, hypotensive("norepinephrine"), False),
    ("3", hypotensive("norepinephrine"), False),
    (0, {}, True),
    (1, {"temperature_max_c": None}, False),  # derived NE: no mismatch, CRS-NOT-EVALUABLE instead
    (None, {}, False),
])
def test_reported_grade_mismatch(reported, fields, mismatch):
    result = grade({**FEVER, "crs_grade_reported": reported, **fields})
    assert ("CRS-GRADE-MISMATCH" in result.flags) == mismatch


def test_result_carries_scales_and_version():
    result = grade({**FEVER})
    assert (result.crs_scale, result.icans_scale, result.ctcae_crs_scale) == (
        "astct_2019", "astct_2019", "ctcae_v5")
    assert result.engine_version
    out = result.as_dict()
    assert out["crs_scale"] == "astct_2019"
    assert out["engine_version"] == result.engine_version


def test_every_reason_cites_a_rule_or_scale():
    result = grade({"temperature_max_c": 39.5, "age_years": 30, "ice_score": 3,
                    "seizure": "rapidly_resolving", **hypotensive("norepinephrine", "vasopressin"),
                    **hypoxic("high_flow_nasal_cannula", 5), "crs_grade_reported": 2})
    prefixes = ("R-CRS-", "R-ICANS-", "ASTCT 2019", "CTCAE v5.0", "CTCAE v6.0",
                "O2-DEVICE-FLOW-CONFLICT", "CRS-GRADE-MISMATCH", "ICANS-GRADE-MISMATCH")
    assert result.reasons
    assert all(r.startswith(prefixes) for r in result.reasons), result.reasons
    assert len(result.reasons) == len(set(result.reasons))
