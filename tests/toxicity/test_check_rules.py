"""Every soft rule of checks.md: a case that fires and a case just inside the limit that does not.
Pure tests over plain snapshots (toxicity/checks has no Django import)."""
import ast
import pathlib
from datetime import timedelta
from decimal import Decimal as D

import pytest

from tests.toxicity.course_builders import (
    DAY0, A, at, course_of, days, drug, episode, full_days, on, snap, toci,
)
from toxicity.checks import HARD_RULES, RULES, run_rules
from toxicity.course import records as r

# Every rule id of ../shared/domain/checks.md (the public contract).
SOFT_IDS = {
    "CRS-GRADE-MISMATCH", "ICANS-GRADE-MISMATCH", "CRS-NOT-EVALUABLE", "ICANS-NOT-EVALUABLE", "CRS-NO-FEVER-AT-ONSET",
    "CRS-FEVER-MASKED", "VASOPRESSIN-ALONE", "ANGIOTENSIN-COUNTED", "O2-DEVICE-FLOW-CONFLICT", "ICANS-TOOL-AGE", "CAPD-AT-BASELINE",
    "CRS-BEFORE-INFUSION", "ONSET-LATE", "DEATH-GRADE", "ASSESSMENT-MISSING", "TOCI-DOSE-DEVIATION",
    "TOCI-DOSE-OVER-800", "TOCI-INTERVAL", "TOCI-24H-MAX", "TOCI-COURSE-MAX", "TOCI-WITHOUT-CRS",
    "ALGORITHM-TOCI-DELAY", "STEROID-DOSE-HIGH", "STEROID-DOSE-HIGH-CHILD", "ANAKINRA-DOSE", "SILTUXIMAB-DOSE", "TPE-VOLUME", "TPE-SAME-DAY",
    "CRRT-DOSE", "INFUSION-DOSE-COHORT", "WEIGHT-CHANGE", "SAE-REVIEW-MISSING",
}
HARD_IDS = {
    "ASSESSMENT-AFTER-DEATH", "TOCI-WEIGHT-MISSING", "TOCI-DOSE-IMPOSSIBLE", "TOCI-DUPLICATE",
    "STEROID-DOSE-IMPOSSIBLE", "ANAKINRA-DOSE", "SILTUXIMAB-DOSE", "TPE-VOLUME-IMPOSSIBLE", "CRRT-DOSE-IMPOSSIBLE",
    "CRRT-OVERLAP", "INFUSION-BEFORE-ENROLMENT", "FUTURE-DATE",
}



def tpe(i, day, hour, ml, volumes):
    return r.PlasmaExchange(i, at(day, hour), at(day, hour + 2), on(day), ml, D(volumes), D("70"))


def fired(course, rule_id):
    return [f for f in run_rules(course) if f.rule_id == rule_id]


CASES = {
    # rule id: (snapshot that fires, snapshot just inside the limit)
    "CRS-GRADE-MISMATCH": (snap(assessments=days({1: A(1, flags=["CRS-GRADE-MISMATCH"], crs_grade_reported=2)})), snap()),
    "ICANS-GRADE-MISMATCH": (snap(assessments=days({1: A(1, flags=["ICANS-GRADE-MISMATCH"])})), snap()),
    "CRS-NOT-EVALUABLE": (snap(assessments=days({1: A(1, crs=None, flags=["CRS-NOT-EVALUABLE"])})), snap()),
    "ICANS-NOT-EVALUABLE": (snap(assessments=days({1: A(1, icans=None, flags=["ICANS-NOT-EVALUABLE"])})), snap()),
    "CRS-NO-FEVER-AT-ONSET": (snap(assessments=days({1: A(1, flags=["CRS-NO-FEVER-AT-ONSET"])})), snap()),
    "CRS-FEVER-MASKED": (snap(assessments=days({1: A(1, crs=2, flags=["CRS-FEVER-MASKED"], temperature_max_c=D("37"),
                                                     hypotension=True)})), snap()),
    "VASOPRESSIN-ALONE": (snap(assessments=days({1: A(1, crs=3, flags=["VASOPRESSIN-ALONE"])})), snap()),
    "ANGIOTENSIN-COUNTED": (snap(assessments=days({1: A(1, crs=3, flags=["ANGIOTENSIN-COUNTED"])})), snap()),
    "O2-DEVICE-FLOW-CONFLICT": (snap(assessments=days({1: A(1, flags=["O2-DEVICE-FLOW-CONFLICT"])})), snap()),
    "ICANS-TOOL-AGE": (snap(assessments=days({1: A(1, flags=["ICANS-TOOL-AGE"], ice_score=10)})), snap()),
    "CAPD-AT-BASELINE": (snap(assessments=days({1: A(1, flags=["CAPD-AT-BASELINE"], capd_score=3)})), snap()),
    "CRS-BEFORE-INFUSION": (
        snap(assessments=(A(-1, crs=1), *full_days())),
        snap(assessments=(A(-1, crs=0), A(0, crs=1), *full_days()[1:])),
    ),
    "ONSET-LATE": (
        snap(assessments=(*full_days(), A(15, crs=1))),
        snap(assessments=days({14: A(14, crs=1)})),
    ),
    "DEATH-GRADE": (
        snap(assessments=days({3: A(3, crs=4)}), death=r.Death(9, on(3), "crs")),
        snap(assessments=days({3: A(3, crs=5)}), death=r.Death(9, on(3), "crs")),
    ),
    "ASSESSMENT-MISSING": (
        snap(assessments=full_days(14)),  # day 14 missing (it has passed)
        snap(assessments=full_days(14), now=at(14, 12)),  # day 14 is today: not yet missing
    ),
    "TOCI-DOSE-DEVIATION": (
        snap(doses=(toci(1, 1, mg="616.01"),)),  # expected 560 for 70 kg; > 10% above
        snap(doses=(toci(1, 1, mg="616"),)),  # exactly 10%
    ),
    "TOCI-DOSE-OVER-800": (
        snap(doses=(toci(1, 1, mg="800.5", kg="120"),)),
        snap(doses=(toci(1, 1, mg="800", kg="120"),)),
    ),
    "TOCI-INTERVAL": (
        snap(doses=(toci(1, 1, 10), toci(2, 1, 17, minute=59))),
        snap(doses=(toci(1, 1, 10), toci(2, 1, 18))),  # exactly 8 h
    ),
    "TOCI-24H-MAX": (
        snap(doses=(toci(1, 1, 0), toci(2, 1, 8), toci(3, 1, 16), toci(4, 1, 23, 59))),
        snap(doses=(toci(1, 1, 0), toci(2, 1, 8), toci(3, 1, 16), toci(4, 2, 0))),  # first left (t-24h, t]
    ),
    "TOCI-COURSE-MAX": (  # counted across episodes and gaps, whatever the indication
        snap(assessments=episode([2, 2, 0, 0, 2, 2]),
             doses=tuple(toci(i, (1, 1, 5, 6, 6)[i], (8, 18, 9, 8, 18)[i], indication="crs" if i else "icans")
                         for i in range(5))),
        snap(assessments=episode([2, 2, 0, 0, 2, 2]),
             doses=tuple(toci(i, (1, 1, 5, 6)[i], (8, 18, 9, 8)[i]) for i in range(4))),
    ),
    "TOCI-WITHOUT-CRS": (
        snap(doses=(toci(1, 3),)),
        snap(assessments=days({2: A(2, crs=1)}), doses=(toci(1, 3),)),  # CRS the day before
    ),
    "ALGORITHM-TOCI-DELAY": (
        snap(assessments=episode([1, 2, 1]), doses=(toci(1, 3, 0, minute=1),)),  # grade 2 on day 2, dose 24h01m later
        snap(assessments=episode([1, 2, 1]), doses=(toci(1, 3, 0),)),  # exactly 24 h after 00:00 of day 2
    ),
    "STEROID-DOSE-HIGH-CHILD": (
        snap(doses=(drug(r.STEROID, "dexamethasone", 1, 1, 8, "10.01", "20"),)),  # 0.5 mg/kg x 20 kg = 10 mg
        snap(doses=(drug(r.STEROID, "dexamethasone", 1, 1, 8, "10", "20"),)),
    ),
    "SAE-REVIEW-MISSING": (
        snap(assessments=episode([1, 3, 1], start=1)),
        snap(assessments=episode([1, 2, 1], start=1)),  # grade 3 is severe; 2 asks nothing
    ),
    "STEROID-DOSE-HIGH": (
        snap(doses=(drug(r.STEROID, "dexamethasone", 1, 1, 8, "20.5"),)),
        snap(doses=(drug(r.STEROID, "dexamethasone", 1, 1, 8, "20"), drug(r.STEROID, "dexamethasone", 2, 1, 14, "20"),
                    drug(r.STEROID, "dexamethasone", 3, 1, 20, "20"), drug(r.STEROID, "dexamethasone", 4, 2, 2, "20"))),
    ),
    "ANAKINRA-DOSE": (
        snap(doses=tuple(drug(r.ANTICYTOKINE, "anakinra", i, 1, 6 * i, "100.01" if i == 3 else "100", "70") for i in range(4))),
        snap(doses=tuple(drug(r.ANTICYTOKINE, "anakinra", i, 1, 6 * i, "100", "70") for i in range(4))),  # 400 / 24 h
    ),
    "SILTUXIMAB-DOSE": (
        snap(doses=(drug(r.ANTICYTOKINE, "siltuximab", 1, 1, 8, "847.1", "70"),)),  # 11 mg/kg = 770; +10% = 847
        snap(doses=(drug(r.ANTICYTOKINE, "siltuximab", 1, 1, 8, "847", "70"),)),
    ),
    "TPE-VOLUME": (
        snap(plasma_exchanges=(tpe(1, 2, 10, 2500, "0.79"),)),
        snap(plasma_exchanges=(tpe(1, 2, 10, 2550, "0.80"),)),
    ),
    "TPE-SAME-DAY": (
        snap(plasma_exchanges=(tpe(1, 2, 8, 3000, "1.0"), tpe(2, 2, 20, 3000, "1.0"))),
        snap(plasma_exchanges=(tpe(1, 2, 8, 3000, "1.0"), tpe(2, 3, 8, 3000, "1.0"))),
    ),
    "CRRT-DOSE": (
        snap(hemofiltrations=(r.Hemofiltration(1, at(3), None, on(3), "cvvhdf", 1393, D("19.9"), D("70")),)),
        snap(hemofiltrations=(r.Hemofiltration(1, at(3), None, on(3), "cvvhdf", 1400, D("20.0"), D("70")),)),
    ),
    "INFUSION-DOSE-COHORT": (
        snap(infusions=(r.Infusion(1, 1, at(0), DAY0, 1.21e6, D("70")),)),
        snap(infusions=(r.Infusion(1, 1, at(0), DAY0, 1.2e6, D("70")),)),
    ),
    "WEIGHT-CHANGE": (
        snap(infusions=(r.Infusion(1, 1, at(0), DAY0, 1.0e6, D("77.01")),)),  # baseline 70 kg
        snap(infusions=(r.Infusion(1, 1, at(0), DAY0, 1.0e6, D("77")),)),
    ),
}


def test_every_rule_id_of_the_catalogue_is_implemented():
    assert set(RULES) == SOFT_IDS
    assert set(HARD_RULES) == HARD_IDS
    assert set(CASES) == SOFT_IDS


@pytest.mark.parametrize("rule_id", sorted(SOFT_IDS))
def test_rule_fires_and_just_inside_the_limit_does_not(rule_id):
    firing, inside = CASES[rule_id]
    findings = fired(firing, rule_id)
    assert findings, f"{rule_id} did not fire"
    for f in findings:
        assert f.message.startswith(rule_id) and f.field and isinstance(f.values, dict)
    assert fired(inside, rule_id) == []


def test_rules_are_deterministic_and_keyed():
    s = CASES["TOCI-24H-MAX"][0]
    assert run_rules(s) == run_rules(s)
    keys = [f.key for f in run_rules(s)]
    assert len(keys) == len(set(keys))


def test_assessment_missing_is_one_per_day_and_stops_at_death_and_withdrawal():
    s = snap(assessments=(A(0), A(2)))
    days = sorted(f.field for f in fired(s, "ASSESSMENT-MISSING"))
    assert days[0] == "assessment_date=2026-03-02" and len(days) == 13  # days 1 and 3..14
    dead = course_of(s, death=r.Death(1, on(3), "infection"))
    assert len(fired(dead, "ASSESSMENT-MISSING")) == 2  # days 1 and 3
    assert fired(course_of(s, subject_fields={"status": "withdrawn"}), "ASSESSMENT-MISSING") == []


def test_algorithm_toci_delay_waits_for_the_window_and_is_off_at_zero_hours():
    s = snap(assessments=episode([2]), now=at(1, 23))  # window of day 1 still open
    assert fired(s, "ALGORITHM-TOCI-DELAY") == []
    off = snap(assessments=episode([2]), trial=r.Trial(tocilizumab_response_hours=0))
    assert fired(off, "ALGORITHM-TOCI-DELAY") == []
    assert len(fired(snap(assessments=episode([2, 3, 2, 0, 2])), "ALGORITHM-TOCI-DELAY")) == 2  # one per episode


def test_anakinra_child_under_40_kg():
    child = snap(doses=(drug(r.ANTICYTOKINE, "anakinra", 1, 1, 8, "100.5", "39.9"),))
    assert "100 mg" in fired(child, "ANAKINRA-DOSE")[0].message
    per_kg = snap(doses=(drug(r.ANTICYTOKINE, "anakinra", 1, 1, 8, "100", "19"),
                         drug(r.ANTICYTOKINE, "anakinra", 2, 1, 14, "100", "19")))
    assert "10 mg/kg" in fired(per_kg, "ANAKINRA-DOSE")[0].message


def test_siltuximab_repeat_within_21_days():
    doses = (drug(r.ANTICYTOKINE, "siltuximab", 1, 1, 8, "770", "70"), drug(r.ANTICYTOKINE, "siltuximab", 2, 21, 7, "770", "70"))
    assert [f.field for f in fired(snap(doses=doses), "SILTUXIMAB-DOSE")] == ["administered_at"]
    later = (doses[0], drug(r.ANTICYTOKINE, "siltuximab", 2, 22, 8, "770", "70"))
    assert fired(snap(doses=later), "SILTUXIMAB-DOSE") == []


def test_checks_package_is_pure():
    for path in pathlib.Path("toxicity/checks").glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(n.split(".")[0] in ("django", "rest_framework") for n in names), path


def test_crs_not_evaluable_only_when_the_trial_scale_grade_is_ne_or_a_required_value_is_missing():
    """A hypoxia day without FiO2 on an ASTCT trial: CTCAE v5.0 is NE, the ASTCT grade is not."""
    flagged = snap(assessments=days({1: A(1, crs=2, flags=["CRS-NOT-EVALUABLE"], hypoxia=True,
                                          oxygen_device="nasal_cannula", oxygen_flow_l_min=D("2"))}))
    assert fired(flagged, "CRS-NOT-EVALUABLE") == []
    ne = snap(assessments=days({1: A(1, crs=None, flags=["CRS-NOT-EVALUABLE"])}))
    assert len(fired(ne, "CRS-NOT-EVALUABLE")) == 1
    # R-CRS-15: high-flow cannula without its flow and one vasopressor is grade 3 whatever the
    # flow; the grade is determined, and the query still asks for the flow
    determined = snap(assessments=days({1: A(1, crs=3, hypoxia=True, oxygen_device="high_flow_nasal_cannula",
                                             hypotension=True, vasopressors=["norepinephrine"])}))
    (finding,) = fired(determined, "CRS-NOT-EVALUABLE")
    assert "oxygen flow is required" in finding.message
