"""CTCAE v5.0 and v6.0 "Cytokine release syndrome", and the CTCAE v6.0 ICANS term."""

import pytest

from toxicity.grading.engine import grade

NE = "NE"
ADULT = {"age_years": 45, "ice_score": 10}
FEVER = {**ADULT, "temperature_max_c": 38.6}


def hypoxic(device, flow=None, **fields):
    return {"hypoxia": True, "oxygen_device": device, "oxygen_flow_l_min": flow, **fields}


def hypotensive(*agents):
    return {"hypotension": True, "vasopressors": list(agents)}


def v5(**fields):
    """CTCAE v5.0 grade (always returned as ctcae_crs_grade) and flags."""
    result = grade({**FEVER, **fields})
    return result.ctcae_crs_grade, set(result.flags)


# --- CTCAE v5.0: oxygen by FiO2 -------------------------------------------------------------

@pytest.mark.parametrize("device, flow, fio2, expected", [
    ("nasal_cannula", 2, 21, 2),
    ("nasal_cannula", 2, 39, 2),
    ("nasal_cannula", 2, 40, 3),
    ("nasal_cannula", 2, "40", 3),
    ("facemask", None, 39, 2),  # the device does not matter on v5.0 ...
    ("nasal_cannula", 4, 60, 3),
    ("venturi_mask", None, 100, 3),
    ("cpap", None, 30, 4),  # ... except positive pressure
    ("bipap", None, None, 4),
])
def test_v5_hypoxia_by_fio2(device, flow, fio2, expected):
    assert v5(**hypoxic(device, flow, fio2_percent=fio2)) == (expected, set())


@pytest.mark.parametrize("fields", [
    hypoxic("nasal_cannula", 2),
    hypoxic("high_flow_nasal_cannula", 30),
    hypoxic("facemask"),
    hypoxic("mechanical_ventilation", intubation_reason="airway_protection"),
])
def test_v5_hypoxia_without_fio2_is_not_evaluable(fields):
    result = grade({**FEVER, **fields})
    assert result.ctcae_crs_grade == NE
    assert "CRS-NOT-EVALUABLE" in result.flags
    assert any("FiO2" in r for r in result.reasons)


def test_v5_missing_fio2_does_not_matter_when_pressors_decide():
    assert v5(**hypoxic("nasal_cannula", 2), **hypotensive("norepinephrine", "epinephrine")) == (
        4, set())


@pytest.mark.parametrize("reason, hypoxia, fio2, expected", [
    ("hypoxia", True, None, 4),
    ("hypoxia", True, 50, 4),
    ("airway_protection", True, 30, 2),  # not a grade 4 criterion by itself (R-CRS-10)
    ("airway_protection", True, 45, 3),
    ("procedure", False, 21, 1),
])
def test_v5_mechanical_ventilation(reason, hypoxia, fio2, expected):
    fields = {"hypoxia": hypoxia, "oxygen_device": "mechanical_ventilation",
              "intubation_reason": reason, "fio2_percent": fio2}
    assert v5(**fields)[0] == expected


# --- CTCAE v5.0: pressors (no vasopressin exception in CTCAE) --------------------------------

@pytest.mark.parametrize("agents, expected, flags", [
    ((), 2, set()),
    (("norepinephrine",), 3, set()),
    (("vasopressin",), 3, {"VASOPRESSIN-ALONE"}),
    (("angiotensin_ii",), 3, {"ANGIOTENSIN-COUNTED"}),
    (("norepinephrine", "phenylephrine"), 4, set()),
    (("norepinephrine", "vasopressin"), 4, set()),  # ASTCT: 3 (vasopressin not counted)
])
def test_v5_pressors(agents, expected, flags):
    assert v5(**hypotensive(*agents)) == (expected, flags)


def test_norepinephrine_plus_vasopressin_differs_between_scales():
    result = grade({**FEVER, **hypotensive("norepinephrine", "vasopressin")})
    assert (result.crs_grade, result.ctcae_crs_grade) == (3, 4)


@pytest.mark.parametrize("fields, expected", [
    ({}, 1),
    ({"temperature_max_c": 37.9}, 0),
    ({"temperature_max_c": None}, NE),
    ({"death_primary_cause": "crs"}, 5),
    ({"death_primary_cause": "disease_progression"}, 1),
])
def test_v5_fever_and_death(fields, expected):
    assert v5(**fields)[0] == expected


def test_ctcae_v5_as_the_trial_scale():
    result = grade({**FEVER, "crs_scale": "ctcae_v5", **hypoxic("nasal_cannula", 2,
                                                                 fio2_percent=45)})
    assert (result.crs_grade, result.ctcae_crs_grade, result.crs_scale) == (3, 3, "ctcae_v5")
    assert result.as_dict()["crs_scale"] == "ctcae_v5"


# --- CTCAE v6.0: ASTCT oxygen devices for grades 2-3, grade 4 as v5.0 -------------------------

@pytest.mark.parametrize("fields, expected", [
    ({}, 1),
    ({"temperature_max_c": 37.9}, 0),
    (hypoxic("nasal_cannula", 6.0), 2),
    (hypoxic("nasal_cannula", 6.5), 3),
    (hypoxic("blow_by"), 2),
    (hypoxic("high_flow_nasal_cannula", 30), 3),
    (hypoxic("facemask"), 3),
    (hypoxic("non_rebreather"), 3),
    (hypoxic("venturi_mask"), 3),
    (hypoxic("cpap"), 4),
    (hypoxic("bipap"), 4),
    (hypoxic("mechanical_ventilation", intubation_reason="hypoxia"), 4),
    (hypoxic("nasal_cannula"), NE),  # flow missing
    (hypotensive(), 2),
    (hypotensive("norepinephrine"), 3),
    (hypotensive("norepinephrine", "vasopressin"), 4),
    (hypotensive("norepinephrine", "dopamine"), 4),
    ({"death_primary_cause": "crs"}, 5),
])
def test_v6_device_mapping(fields, expected):
    result = grade({**FEVER, "crs_scale": "ctcae_v6", **fields})
    assert result.crs_grade == expected
    assert result.crs_scale == "ctcae_v6"
    assert ("CRS-NOT-EVALUABLE" in result.flags) == (NE in (result.crs_grade,
                                                            result.ctcae_crs_grade))


def test_v6_and_v5_differ_on_oxygen():
    # facemask at FiO2 35%: v6.0 grade 3 (device), v5.0 grade 2 (FiO2 < 40%)
    result = grade({**FEVER, "crs_scale": "ctcae_v6", **hypoxic("facemask", fio2_percent=35)})
    assert (result.crs_grade, result.ctcae_crs_grade) == (3, 2)


# --- CTCAE v6.0 ICANS: the ASTCT bands and grade 4/5 criteria ---------------------------------

@pytest.mark.parametrize("fields, expected", [
    ({"age_years": 40, "ice_score": 10}, 0),
    ({"age_years": 40, "ice_score": 8}, 1),
    ({"age_years": 40, "ice_score": 4}, 2),
    ({"age_years": 40, "ice_score": 2}, 3),
    ({"age_years": 40, "ice_score": 0, "consciousness": "unarousable"}, 4),
    ({"age_years": 40, "ice_score": 9, "seizure": "prolonged_or_repetitive"}, 4),
    ({"age_years": 40, "ice_score": 9, "motor_weakness": "deep_focal"}, 4),
    ({"age_years": 6, "capd_score": 5}, 1),
    ({"age_years": 6, "capd_score": 5, "consciousness": "awakens_to_voice"}, 2),
    ({"age_years": 6, "capd_score": 9}, 3),
    ({"age_years": 6, "capd_unable": True}, 4),
    ({"age_years": 40, "ice_score": 9, "death_primary_cause": "icans"}, 5),
    ({"age_years": 40, "ice_not_assessable": "sedated", "consciousness": "sedated"}, NE),
])
def test_v6_icans_matches_astct_bands(fields, expected):
    v6 = grade({"temperature_max_c": 37.0, "icans_scale": "ctcae_v6", **fields})
    astct = grade({"temperature_max_c": 37.0, **fields})
    assert v6.icans_grade == astct.icans_grade == expected
    assert v6.icans_scale == "ctcae_v6"
    assert any("CTCAE v6.0 ICANS" in r for r in v6.reasons)
