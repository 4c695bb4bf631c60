"""Properties of the grading engine, checked with hypothesis over generated assessments.

(a) Monotonicity: a single observation that worsens never lowers a grade. "Worsens" follows
    the domain (grading.md):
    - temperature up (any measured temperature; attributed fever does not count either way);
    - hypotension false -> true; hypoxia false -> true;
    - vasopressors: one more agent, or vasopressin replaced by an agent not yet listed (the
      ASTCT order: none < vasopressin alone = one vasopressor < multiple; CTCAE counts every
      agent, so both moves are worse or equal there too);
    - a higher ASTCT oxygen tier while hypoxic: none < low flow (blow-by, cannula <= 6 L/min)
      < high flow (cannula > 6 L/min) and masks < positive pressure (CPAP, BiPAP, ventilation
      for hypoxia); a higher flow on a nasal or high-flow cannula; a higher FiO2 (CTCAE v5.0);
    - a lower ICE score; a higher CAPD score, or unable to perform the CAPD;
    - consciousness alert (or not recorded) -> awakens spontaneously -> voice -> tactile ->
      unarousable (R-ICANS-6);
    - seizure none -> rapidly resolving -> prolonged; motor none -> deep focal;
      cerebral edema none -> focal -> diffuse.
    NE is "not known", not a grade, so the exact property is:
    - CRS (trial scale and CTCAE v5.0): whenever both grades are numeric, worse >= base. A
      numeric CRS grade is always exact (an unknown that matters gives NE).
    - ICANS: whenever both grades are numeric and the worse one is exact (no
      ICANS-NOT-EVALUABLE flag), worse >= base. A numeric ICANS grade flagged
      ICANS-NOT-EVALUABLE is a lower bound (R-ICANS-3: "the other findings set the grade"
      while a domain is not evaluable); it can be lower than an exact grade before a worsening
      that made a domain not evaluable - see test_ne_lower_bound_can_be_below_an_exact_grade.
    - A worsening may turn a numeric grade into NE (it can make a missing value matter, e.g.
      fever opens the CRS gate while the cannula flow is unrecorded) and then always with the
      flag. Separately, along a chain of worsenings the exact grades never decrease, however
      many NE days lie between them.
(b) Every grade is an int 0-5 or "NE" on every scale, and every NE comes with its flag; the
    reasons are distinct sentences of at most 300 characters.
(c) grade() raises nothing but GradingInputError on any dict of allowed-shaped values (every
    field of the data dictionary, values within the hard limits in every accepted form, keys
    missing at random, unknown keys added), nor on arbitrary JSON values; and it never raises
    on consistent inputs (the dictionary's hard cross-field rules respected).
"""

from hypothesis import assume, event, example, given
from hypothesis import strategies as st

from tests.toxicity.grading_strategies import (
    ALL_FIELDS, PROPERTY, arbitrary_inputs, consistent_inputs, shaped_inputs,
)
from toxicity.grading.engine import grade
from toxicity.grading.inputs import (
    CEREBRAL_EDEMA, MOTOR_WEAKNESS, SEIZURE, VASOPRESSOR_CODES, GradingInputError,
)

NE = "NE"


def _check_grades(result):
    """(b): the grade types of every scale, and the flag that must come with an NE."""
    for value in (result.crs_grade, result.ctcae_crs_grade, result.icans_grade):
        assert value == NE or (type(value) is int and 0 <= value <= 5), result
    if NE in (result.crs_grade, result.ctcae_crs_grade):
        assert "CRS-NOT-EVALUABLE" in result.flags, result
    if result.icans_grade == NE:
        assert "ICANS-NOT-EVALUABLE" in result.flags, result
    assert list(result.flags) == sorted(set(result.flags))
    assert result.reasons and all(isinstance(r, str) and r for r in result.reasons)
    assert len(set(result.reasons)) == len(result.reasons)  # each sentence said once
    assert all(len(r) <= 300 for r in result.reasons)  # sentences, whatever the input


# --- (c) never anything but GradingInputError ------------------------------------------------

@PROPERTY
@given(shaped_inputs())
@example({"ice_score": 0, "age_years": "1E-210"})  # found it: a 200-digit age (2026.11.2)
def test_allowed_shaped_values_raise_only_grading_input_error(data):
    try:
        result = grade(data)
    except GradingInputError as exc:
        event("input error")
        assert exc.errors and all(field in ALL_FIELDS or field == "non_field_errors"
                                  for field in exc.errors)
        return
    _check_grades(result)


@PROPERTY
@given(arbitrary_inputs())
def test_arbitrary_json_values_raise_only_grading_input_error(data):
    try:
        result = grade(data)
    except GradingInputError:
        return
    _check_grades(result)


@PROPERTY
@given(consistent_inputs())
def test_consistent_inputs_never_raise(data):
    _check_grades(grade(data))


# --- (a) monotonicity ------------------------------------------------------------------------

LEVELS = {None: 0, "alert": 0, "awakens_spontaneously": 1, "awakens_to_voice": 2, "awakens_to_tactile": 3,
          "unarousable": 4}
ORDERED = {"seizure": SEIZURE, "motor_weakness": MOTOR_WEAKNESS, "cerebral_edema": CEREBRAL_EDEMA}
LOW_FLOW_MAX = 6


def oxygen_tier(a):
    """ASTCT 2019 tier of the oxygen support while hypoxic (None when it cannot be told)."""
    device, flow = a["oxygen_device"], a["oxygen_flow_l_min"]
    if device == "none":
        return 0
    if device == "blow_by":
        return 1
    if device in ("nasal_cannula", "high_flow_nasal_cannula"):
        return None if flow is None else 1 if flow <= LOW_FLOW_MAX else 2
    if device in ("facemask", "non_rebreather", "venturi_mask"):
        return 2
    if device in ("cpap", "bipap"):
        return 3
    return 3 if a["intubation_reason"] == "hypoxia" else None  # mechanical ventilation


TIER_SUPPORT = {  # (device, flow, intubation reason) reaching each tier
    1: [("blow_by", None, None), ("nasal_cannula", 6.0, None), ("nasal_cannula", 2.0, None),
        ("high_flow_nasal_cannula", 6.0, None)],
    2: [("nasal_cannula", 6.5, None), ("high_flow_nasal_cannula", 40.0, None),
        ("facemask", None, None), ("non_rebreather", 15.0, None), ("venturi_mask", None, None)],
    3: [("cpap", None, None), ("bipap", None, None),
        ("mechanical_ventilation", None, "hypoxia")],
}


def worsening_options(a):
    """The observations of `a` that can still get worse."""
    options = []
    if a["temperature_max_c"] is not None and a["temperature_max_c"] < 45:
        options.append("temperature")
    if not a["hypotension"]:
        options.append("hypotension")
    elif len(a["vasopressors"]) < len(VASOPRESSOR_CODES):
        options.append("vasopressors")
    if not a["hypoxia"]:
        options.append("hypoxia")
    else:
        tier = oxygen_tier(a)
        if tier is not None and tier < 3:
            options.append("oxygen_device")
        if (a["oxygen_device"] in ("nasal_cannula", "high_flow_nasal_cannula")
                and a["oxygen_flow_l_min"] is not None and a["oxygen_flow_l_min"] < 80):
            options.append("oxygen_flow_l_min")
    if a["fio2_percent"] is not None and a["fio2_percent"] < 100:
        options.append("fio2_percent")
    if a["ice_score"]:
        options.append("ice_score")
    if a["capd_unable"] is False:
        options.append("capd")
    if a["consciousness"] in LEVELS and LEVELS[a["consciousness"]] < 3:
        options.append("consciousness")
    options += [name for name, order in ORDERED.items() if a[name] != order[-1]]
    return options


@st.composite
def worsenings(draw, base):
    """One observation of `base` made worse: (what, worse input). Rejects if none can be."""
    options = worsening_options(base)
    assume(options)
    a = dict(base)
    what = draw(st.sampled_from(options))

    if what == "temperature":
        hundredths = round(a["temperature_max_c"] * 100)
        a["temperature_max_c"] = draw(st.integers(hundredths + 1, 4500)) / 100
    elif what in ("hypotension", "hypoxia"):
        a[what] = True
    elif what == "vasopressors":
        new = draw(st.sampled_from([v for v in VASOPRESSOR_CODES if v not in a["vasopressors"]]))
        if "vasopressin" in a["vasopressors"] and new != "vasopressin" and draw(st.booleans()):
            a["vasopressors"] = [new if v == "vasopressin" else v for v in a["vasopressors"]]
        else:
            a["vasopressors"] = [*a["vasopressors"], new]
    elif what == "oxygen_device":
        tier = draw(st.integers(oxygen_tier(a) + 1, 3))
        device, flow, reason = draw(st.sampled_from(TIER_SUPPORT[tier]))
        a.update(oxygen_device=device, oxygen_flow_l_min=flow,
                 intubation_reason=reason or a["intubation_reason"])
    elif what == "oxygen_flow_l_min":
        tenths = round(a["oxygen_flow_l_min"] * 10)
        a["oxygen_flow_l_min"] = draw(st.integers(tenths + 1, 800)) / 10
    elif what == "fio2_percent":
        a["fio2_percent"] = draw(st.integers(a["fio2_percent"] + 1, 100))
    elif what == "ice_score":
        a["ice_score"] = draw(st.integers(0, a["ice_score"] - 1))
    elif what == "capd":
        score = a["capd_score"]
        if score is None or score == 32 or draw(st.booleans()):
            a.update(capd_score=None, capd_unable=True)
        else:
            a["capd_score"] = draw(st.integers(score + 1, 32))
    elif what == "consciousness":
        level = LEVELS[a["consciousness"]]
        a["consciousness"] = draw(st.sampled_from(
            [code for code, rank in LEVELS.items() if code and rank > level]))
    else:
        order = ORDERED[what]
        a[what] = draw(st.sampled_from(order[order.index(a[what]) + 1:]))
    return what, a


def _exact(result):
    """The grades that are exactly known: numeric, and for ICANS not a lower bound."""
    icans = result.icans_grade
    if icans != NE and "ICANS-NOT-EVALUABLE" in result.flags:
        icans = NE
    return {"crs_grade": result.crs_grade, "ctcae_crs_grade": result.ctcae_crs_grade,
            "icans_grade": icans}


def _numeric(result):
    return {"crs_grade": result.crs_grade, "ctcae_crs_grade": result.ctcae_crs_grade,
            "icans_grade": result.icans_grade}


@st.composite
def worsened_pairs(draw):
    base = draw(consistent_inputs())
    what, worse = draw(worsenings(base))
    return base, what, worse


@PROPERTY
@given(worsened_pairs())
def test_a_single_worsening_never_lowers_a_numeric_grade(pair):
    base, what, worse = pair
    before, after = grade(base), grade(worse)
    _check_grades(after)
    event(f"worsened: {what}")
    b, w = _numeric(before), _exact(after)
    for scale, grade_after in w.items():
        event(f"{scale} compared: {b[scale] != NE and grade_after != NE}")
        if b[scale] != NE and grade_after != NE:
            assert grade_after >= b[scale], (what, scale, before, after)


@PROPERTY
@given(consistent_inputs(), st.data())
def test_exact_grades_never_decrease_along_a_chain_of_worsenings(base, data):
    current, seen, steps = base, [_exact(grade(base))], []
    for _ in range(data.draw(st.integers(1, 6))):
        if not worsening_options(current):
            break
        what, current = data.draw(worsenings(current))
        steps.append(what)
        seen.append(_exact(grade(current)))
    for scale in seen[0]:
        known = [g[scale] for g in seen if g[scale] != NE]
        assert known == sorted(known), (scale, steps, seen)


# --- examples the properties are built around ------------------------------------------------

def test_ne_lower_bound_can_be_below_an_exact_grade():
    # A child unable to perform the CAPD (grade 4), "depressed consciousness from another cause"
    # ticked while no depressed level is recorded, and a rapidly resolving seizure (3). Recording
    # a depressed level (awakens to voice) from that cause makes the CAPD and consciousness
    # domains not evaluable (R-ICANS-3): the seizure sets grade 3 with the flag - a lower bound,
    # not an exact grade, so property (a) excludes it.
    child = {"age_years": 8, "temperature_max_c": 37.0, "capd_unable": True,
             "consciousness_other_cause": True, "seizure": "rapidly_resolving"}
    before = grade(child)
    after = grade({**child, "consciousness": "awakens_to_voice"})
    assert (before.icans_grade, before.flags) == (4, ())
    assert (after.icans_grade, after.flags) == (3, ("ICANS-NOT-EVALUABLE",))


def test_a_worsening_can_make_a_missing_value_matter():
    # fever opens the CRS gate; the unrecorded cannula flow now decides between 2 and 3 (R-CRS-15)
    base = {"age_years": 40, "ice_score": 10, "temperature_max_c": 37.5, "hypoxia": True,
            "oxygen_device": "nasal_cannula", "fio2_percent": 30}
    assert grade(base).crs_grade == 0
    worse = grade({**base, "temperature_max_c": 38.5})
    assert worse.crs_grade == NE
    assert "CRS-NOT-EVALUABLE" in worse.flags
