"""Reports are computed from the data as they stood at the cut (audit history): a rebuild for the
same cut after later edits gives the same tables and hash; hand-computed summary numbers; the
registry items."""
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from reporting.ae_report import build_ae_report, summary_csv_rows
from reporting.dsmb import build_dsmb_report
from reporting.registry import HEADER, registry_rows
from reporting.snapshot import load_snapshot
from toxicity import services
from trials import services as trial_services

NORMAL = dict(temperature_max_c=Decimal("36.8"), ice_score=10, consciousness="alert")
SHOCK = dict(temperature_max_c=Decimal("39.2"), hypotension=True, vasopressors=["norepinephrine"])


def assess(world, n, subject=None, user="coordinator_a", **fields):
    subject = subject or world.subject_a
    return services.assessment_create(user=world.users[user], subject=subject,
                                      assessment_date=subject.day0 + timedelta(days=n), **{**NORMAL, **fields})


@pytest.fixture
def grade3(world):
    """Subject A: CRS grade 1 on day 1, grade 3 on day 2 (norepinephrine), resolved on day 4."""
    assess(world, 0)
    assess(world, 1, temperature_max_c=Decimal("38.4"))
    day2 = assess(world, 2, **SHOCK)
    assess(world, 3, temperature_max_c=Decimal("38.1"))
    assess(world, 4)
    assess(world, 0, subject=world.subject_b, user="coordinator_b")
    return world, day2


def test_summary_numbers_match_a_hand_computed_table(grade3):
    world, _ = grade3
    report = build_ae_report(load_snapshot(world.trial))
    overall = report.groups[-1]
    assert overall.n == 2
    assert (overall.any_grade["crs"].count, overall.grade3["crs"].count) == (1, 1)
    # exact 95% interval of 1/2: (0.0126, 0.9874)
    assert round(overall.grade3["crs"].low, 4) == 0.0126 and round(overall.grade3["crs"].high, 4) == 0.9874
    assert overall.max_grade_counts["crs"] == [1, 0, 0, 1, 0, 0]
    assert overall.max_grade_counts["icans"] == [2, 0, 0, 0, 0, 0]
    assert overall.onset_day["crs"] == (1, 1, 1) and overall.duration_days["crs"] == (3, 3, 3)
    (row,) = report.listing
    # grade 3 is severe, not serious (ICH E2A: no death, no grade 4, no ICU stay, no review)
    assert (row.subject_id, row.grade, row.onset_study_day, row.duration_days, row.serious, row.outcome) == (
        world.subject_a.subject_id, 3, 1, 3, False, "recovered")
    table = {r[0]: r[1:] for r in summary_csv_rows(report)}
    assert table["CRS grade >= 3"][-1] == "1/2 (50.0%; 95% CI 1.3-98.7)"


def test_a_report_for_a_cut_is_unchanged_by_later_edits(grade3):
    world, day2 = grade3
    cut = timezone.now()
    before = load_snapshot(world.trial, cut)
    dsmb_before = build_dsmb_report(before, closed=True)
    user = world.users["coordinator_a"]
    services.assessment_update(assessment=day2, user=user, version=day2.version, reason="source updated",
                               changes={"vasopressors": [], "hypotension": False})
    assess(world, 5, temperature_max_c=Decimal("38.9"))
    b0 = world.subject_b.assessments.get()
    services.assessment_void(assessment=b0, user=world.users["coordinator_b"], version=b0.version, reason="wrong day")
    trial_services.subject_update(subject=world.subject_b, user=world.users["coordinator_b"],
                                  version=world.subject_b.version, reason="typo", changes={"sex": "male"})

    again = load_snapshot(world.trial, cut)
    assert again.digest() == before.digest()
    dsmb_again = build_dsmb_report(again, closed=True)
    assert summary_csv_rows(dsmb_again.ae) == summary_csv_rows(dsmb_before.ae)
    assert dsmb_again.lanes == dsmb_before.lanes and dsmb_again.digest == dsmb_before.digest

    now = load_snapshot(world.trial)
    assert now.digest() != before.digest()
    assert build_ae_report(now).groups[-1].grade3["crs"].count == 0  # the correction took grade 3 away


def test_dsmb_content_stopping_rule_and_currency(grade3):
    world, _ = grade3
    report = build_dsmb_report(load_snapshot(world.trial), closed=False)
    crs = report.stopping["crs"]
    assert (crs.n, crs.events) == (2, 1)
    # posterior Beta(1 + 1, 1 + 1): P(rate > 0.3) = 1 - (3 * 0.3**2 - 2 * 0.3**3) = 0.784
    assert round(crs.probability, 6) == 0.784
    assert crs.boundary[:4] == [(1, 1), (2, 2), (3, 2), (4, 3)]
    assert not crs.crossed
    assert [e.cohort for e in report.enrolment] == ["all arms", "all arms"]  # the open report pools arms
    assert report.entered_assessments == 6 and report.expected_assessments > 6
    assert report.oldest_missing == world.subject_b.day0 + timedelta(days=1)  # B has only day 0


def test_registry_items(grade3):
    world, _ = grade3
    header, rows = registry_rows(load_snapshot(world.trial))
    assert header == HEADER
    a = dict(zip(header, next(r for r in rows if r[0] == world.subject_a.subject_id)))
    day0 = world.subject_a.day0
    assert a["crs"] == "yes" and a["crs_onset_date"] == (day0 + timedelta(days=1)).isoformat()
    assert a["crs_resolution_date"] == (day0 + timedelta(days=4)).isoformat() and a["crs_ongoing"] == "no"
    assert a["crs_max_grade"] == "3" and a["crs_grade_scale"] == "astct_2019"
    assert (a["crs_hypotension"], a["crs_vasopressors"], a["crs_hypoxia"], a["crs_positive_pressure"]) == (
        "yes", "yes", "no", "no")
    assert a["icans"] == "no" and a["icans_max_grade"] == "0"
    b = dict(zip(header, next(r for r in rows if r[0] == world.subject_b.subject_id)))
    assert b["crs"] == "no"
    shifted = dict(zip(header, next(r for r in registry_rows(load_snapshot(world.trial),
                                                             shifts={world.subject_a.pk: 10})[1])))
    assert shifted["crs_onset_date"] == (day0 + timedelta(days=11)).isoformat()
