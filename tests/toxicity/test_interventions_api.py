"""Rescue-therapy logs and assessments over the API: hard limits of checks.md give 400 naming the
field, nothing is stored, no input gives a 500; derived values are returned; scoping holds."""
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from toxicity.models import (
    AnticytokineDose,
    CorticosteroidDose,
    DailyAssessment,
    HemofiltrationSession,
    IcuStay,
    PlasmaExchange,
    TocilizumabDose,
)


def moment(world, days_after_day0, hour=9, minute=0):
    day = world.subject_a.day0 + timedelta(days=days_after_day0)
    return datetime.combine(day, time(hour, minute), tzinfo=ZoneInfo(world.site_a.timezone)).isoformat()


def post(world, resource, body, user="coordinator_a"):
    return world.client(user).post(f"/api/v1/{resource}/", {"subject": world.subject_a.pk, **body}, format="json")


def toci(world, **overrides):
    return {"administered_at": moment(world, 1), "dose_mg": "560", "weight_kg": "70", "indication": "crs", **overrides}


def tpe(world, **overrides):
    return {"started_at": moment(world, 2, 8), "ended_at": moment(world, 2, 10), "plasma_volume_exchanged_ml": 3000,
            "replacement_fluid": "albumin_5", "hematocrit_fraction": "0.30", "weight_kg": "70", **overrides}


def crrt(world, **overrides):
    return {"modality": "cvvhdf", "started_at": moment(world, 3, 8), "ended_at": moment(world, 4, 8),
            "effluent_rate_ml_h": 1750, "weight_kg": "70", **overrides}


def test_tocilizumab_dose_returns_mg_per_kg_and_expected_dose(world):
    response = post(world, "tocilizumab-doses", toci(world))
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["mg_per_kg"], body["expected_dose_mg"]) == ("8.00", "560.0")
    child = post(world, "tocilizumab-doses", toci(world, administered_at=moment(world, 2), weight_kg="20", dose_mg="240"))
    assert child.json()["expected_dose_mg"] == "240.0"  # 12 mg/kg under 30 kg
    heavy = post(world, "tocilizumab-doses", toci(world, administered_at=moment(world, 3), weight_kg="120", dose_mg="800"))
    assert heavy.json()["expected_dose_mg"] == "800.0"  # capped


@pytest.mark.parametrize(
    "overrides, field, rule",
    [
        ({"dose_mg": "0"}, "dose_mg", "TOCI-DOSE-IMPOSSIBLE"),
        ({"dose_mg": "1600.01", "weight_kg": "200"}, "dose_mg", "TOCI-DOSE-IMPOSSIBLE"),
        ({"dose_mg": "1121", "weight_kg": "70"}, "dose_mg", "TOCI-DOSE-IMPOSSIBLE"),  # 16.01 mg/kg
        ({"weight_kg": None}, "weight_kg", ""),
        ({"weight_kg": "0.4"}, "weight_kg", ""),
        ({"indication": "headache"}, "indication", ""),
    ],
)
def test_tocilizumab_hard_limits(world, overrides, field, rule):
    response = post(world, "tocilizumab-doses", toci(world, **overrides))
    assert response.status_code == 400
    assert field in response.json()
    assert rule in " ".join(response.json()[field])
    assert not TocilizumabDose.objects.exists()


def test_tocilizumab_16_mg_per_kg_is_accepted(world):
    assert post(world, "tocilizumab-doses", toci(world, dose_mg="1120", weight_kg="70")).status_code == 201


@pytest.mark.parametrize("minutes, ok", [(59, False), (60, True)])
def test_tocilizumab_duplicate_within_one_hour(world, minutes, ok):
    assert post(world, "tocilizumab-doses", toci(world)).status_code == 201
    second = post(world, "tocilizumab-doses", toci(world, administered_at=moment(world, 1, 9, 0).replace("T09:00", f"T{9 + minutes // 60:02d}:{minutes % 60:02d}")))
    assert (second.status_code == 201) is ok
    if not ok:
        assert "TOCI-DUPLICATE" in second.json()["administered_at"][0]


@pytest.mark.parametrize(
    "drug, dose, ok",
    [("dexamethasone", "100", True), ("dexamethasone", "100.01", False), ("methylprednisolone", "2000", True),
     ("methylprednisolone", "2000.5", False), ("hydrocortisone", "1000", True), ("hydrocortisone", "1001", False),
     ("prednisone", "0", False)],
)
def test_corticosteroid_impossible_doses(world, drug, dose, ok):
    body = {"drug": drug, "administered_at": moment(world, 1), "dose_mg": dose, "route": "iv", "indication": "icans"}
    response = post(world, "corticosteroid-doses", body)
    assert (response.status_code == 201) is ok, response.content
    if not ok:
        assert "dose_mg" in response.json()


def test_methylprednisolone_over_30_mg_per_kg_for_a_light_subject(world):
    world.client("coordinator_a")  # subject weighs 70 kg: 2000 mg is 28.6 mg/kg and allowed
    from decimal import Decimal

    from toxicity import services
    from tests.factories import make_infusion, make_subject

    user = world.users["coordinator_a"]
    small = make_subject(user, world.site_a, world.cohort, baseline_weight_kg=Decimal("40"))
    make_infusion(user, small, weight_kg=Decimal("40"))
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as exc:
        services.log_create(CorticosteroidDose, user=user, subject=small, drug="methylprednisolone",
                            administered_at=datetime.now(ZoneInfo("UTC")) - timedelta(hours=1), dose_mg=Decimal("1240"),
                            route="iv", indication="icans")
    assert "30 mg/kg" in exc.value.message_dict["dose_mg"][0]


def test_anakinra_24_hour_total(world):
    body = {"drug": "anakinra", "dose_mg": "800", "weight_kg": "70", "route": "iv", "indication": "icans"}
    for hour in (0, 6, 12):
        assert post(world, "anticytokine-doses", {**body, "administered_at": moment(world, 1, hour)}).status_code == 201
    too_much = post(world, "anticytokine-doses", {**body, "dose_mg": "1", "administered_at": moment(world, 1, 18)})
    assert too_much.status_code == 400 and "ANAKINRA-DOSE" in too_much.json()["dose_mg"][0]
    next_day = post(world, "anticytokine-doses", {**body, "administered_at": moment(world, 2, 0, 1)})
    assert next_day.status_code == 201  # the dose at 00:00 of day 1 left the window
    assert AnticytokineDose.objects.count() == 4


@pytest.mark.parametrize("dose_mg_per_kg, ok", [("22", True), ("22.01", False)])
def test_siltuximab_over_22_mg_per_kg(world, dose_mg_per_kg, ok):
    from decimal import Decimal

    dose = str(Decimal(dose_mg_per_kg) * 70)
    body = {"drug": "siltuximab", "dose_mg": dose, "weight_kg": "70", "route": "iv", "indication": "crs",
            "administered_at": moment(world, 1)}
    assert (post(world, "anticytokine-doses", body).status_code == 201) is ok


def test_plasma_exchange_derives_estimated_plasma_volume_and_volumes_exchanged(world):
    response = post(world, "plasma-exchanges", tpe(world))
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["estimated_plasma_volume_ml"] == 3185  # 65 x 70 x (1 - 0.30)
    assert body["plasma_volumes_exchanged"] == "0.94"


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"hematocrit_fraction": "0.09"}, "hematocrit_fraction"),
        ({"hematocrit_fraction": "0.71"}, "hematocrit_fraction"),
        ({"plasma_volume_exchanged_ml": 0}, "plasma_volume_exchanged_ml"),
        ({"plasma_volume_exchanged_ml": 12001, "weight_kg": "200"}, "plasma_volume_exchanged_ml"),
        ({"plasma_volume_exchanged_ml": 9600}, "plasma_volume_exchanged_ml"),  # 3.01 plasma volumes
        ({"ended_at": None}, "ended_at"),
    ],
)
def test_plasma_exchange_hard_limits(world, overrides, field):
    response = post(world, "plasma-exchanges", tpe(world, **overrides))
    assert response.status_code == 400 and field in response.json()
    assert not PlasmaExchange.objects.exists()


def test_plasma_exchange_ending_before_start(world):
    response = post(world, "plasma-exchanges", tpe(world, ended_at=moment(world, 2, 7)))
    assert response.status_code == 400 and "ended_at" in response.json()


def test_hemofiltration_effluent_dose_and_overlap(world):
    first = post(world, "hemofiltration-sessions", crrt(world))
    assert first.status_code == 201 and first.json()["effluent_dose_ml_kg_h"] == "25.0"
    overlap = post(world, "hemofiltration-sessions", crrt(world, started_at=moment(world, 4, 7), ended_at=None))
    assert overlap.status_code == 400 and "CRRT-OVERLAP" in overlap.json()["started_at"][0]
    after = post(world, "hemofiltration-sessions", crrt(world, started_at=moment(world, 4, 8), ended_at=None))
    assert after.status_code == 201  # starts as the first one ends
    assert HemofiltrationSession.objects.count() == 2


@pytest.mark.parametrize("rate, ok", [(7000, True), (7001, False)])
def test_hemofiltration_dose_over_100_ml_kg_h_is_impossible(world, rate, ok):
    response = post(world, "hemofiltration-sessions", crrt(world, effluent_rate_ml_h=rate))
    assert (response.status_code == 201) is ok
    if not ok:
        assert "CRRT-DOSE-IMPOSSIBLE" in response.json()["effluent_rate_ml_h"][0]


def test_icu_stay_discharge_before_admission(world):
    body = {"admitted_at": moment(world, 2), "discharged_at": moment(world, 1), "reason": "crs"}
    response = post(world, "icu-stays", body)
    assert response.status_code == 400 and "discharged_at" in response.json()
    assert not IcuStay.objects.exists()


def test_future_times_are_rejected(world):
    future = (datetime.now(ZoneInfo("UTC")) + timedelta(days=2)).isoformat()
    response = post(world, "icu-stays", {"admitted_at": future, "reason": "crs"})
    assert response.status_code == 400 and "FUTURE-DATE" in response.json()["admitted_at"][0]


ASSESSMENT = {"temperature_max_c": "38.0", "ice_score": 10, "consciousness": "alert"}


def test_assessment_api_returns_derived_grades_and_ne(world):
    client = world.client("coordinator_a")
    body = {"subject": world.subject_a.pk, "assessment_date": str(world.subject_a.day0 + timedelta(days=1)), **ASSESSMENT}
    response = client.post("/api/v1/assessments/", body, format="json")
    assert response.status_code == 201, response.content
    data = response.json()
    assert (data["crs_grade_derived"], data["icans_grade_derived"], data["study_day"]) == (1, 0, 1)
    ne = client.post("/api/v1/assessments/", {**body, "assessment_date": str(world.subject_a.day0 + timedelta(days=2)),
                                              "temperature_max_c": None}, format="json")
    assert ne.json()["crs_grade_derived"] == "NE" and "CRS-NOT-EVALUABLE" in ne.json()["flags"]


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"temperature_max_c": "45.01"}, "temperature_max_c"),
        ({"temperature_max_c": "hot"}, "temperature_max_c"),
        ({"oxygen_flow_l_min": "80.1"}, "oxygen_flow_l_min"),
        ({"fio2_percent": 20}, "fio2_percent"),
        ({"ice_score": -1}, "ice_score"),
        ({"capd_score": 33}, "capd_score"),
        ({"icans_grade_reported": 6}, "icans_grade_reported"),
        ({"vasopressors": ["norepinephrine"]}, "vasopressors"),
        ({"vasopressors": ["milrinone"], "hypotension": True}, "vasopressors"),
        ({"oxygen_device": "mechanical_ventilation", "hypoxia": True}, "intubation_reason"),
        ({"assessment_date": "2999-01-01"}, "assessment_date"),
        ({"assessment_date": "yesterday"}, "assessment_date"),
    ],
)
def test_assessment_hard_limits_return_400_naming_the_field(world, overrides, field):
    body = {"subject": world.subject_a.pk, "assessment_date": str(world.subject_a.day0), **ASSESSMENT, **overrides}
    response = world.client("coordinator_a").post("/api/v1/assessments/", body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()
    assert not DailyAssessment.objects.exists()


@pytest.mark.parametrize(
    "resource",
    ["assessments", "tocilizumab-doses", "corticosteroid-doses", "anticytokine-doses", "plasma-exchanges",
     "hemofiltration-sessions", "icu-stays"],
)
@pytest.mark.parametrize(
    "payload",
    [{}, [], "x", {"subject": "abc"}, {"subject": None}, {"subject": 10**12}, {"dose_mg": "1e999"},
     {"started_at": "2026-13-45T99:00"}, {"vasopressors": "norepinephrine"}, {"weight_kg": {"a": 1}}],
)
def test_no_input_gives_a_500(world, resource, payload):
    response = world.client("coordinator_a").post(f"/api/v1/{resource}/", payload, format="json")
    assert 400 <= response.status_code < 500


def test_toxicity_records_are_scoped_to_the_site(world):
    assert post(world, "icu-stays", {"admitted_at": moment(world, 1), "reason": "crs"}).status_code == 201
    stay = IcuStay.objects.get()
    for user, visible in [("coordinator_a", True), ("monitor_a", True), ("sponsor", True), ("coordinator_b", False),
                          ("monitor_b", False), ("outsider", False)]:
        client = world.client(user)
        assert (client.get(f"/api/v1/icu-stays/{stay.pk}/").status_code == 200) is visible
        assert len(client.get("/api/v1/icu-stays/").json()["results"]) == int(visible)
    assert post(world, "icu-stays", {"admitted_at": moment(world, 1), "reason": "crs"}, user="coordinator_b").status_code == 400
    patch = world.client("monitor_a").patch(f"/api/v1/icu-stays/{stay.pk}/", {"version": 1, "change_reason": "x"},
                                            format="json")
    assert patch.status_code == 404


def test_log_correction_needs_version_and_reason_and_stale_is_409(world):
    created = post(world, "icu-stays", {"admitted_at": moment(world, 1), "reason": "crs"}).json()
    url = f"/api/v1/icu-stays/{created['id']}/"
    client = world.client("coordinator_a")
    missing = client.patch(url, {"version": 1, "reason": "icans", "discharged_at": moment(world, 3)}, format="json")
    assert missing.status_code == 400 and "change_reason" in missing.json()  # icu "reason" is the ICU reason code
    ok = client.patch(url, {"version": 1, "change_reason": "source updated", "reason": "icans",
                            "discharged_at": moment(world, 3)}, format="json")
    assert ok.status_code == 200 and (ok.json()["version"], ok.json()["reason"]) == (2, "icans")
    stale = client.patch(url, {"version": 1, "change_reason": "again", "discharged_at": moment(world, 4)}, format="json")
    assert stale.status_code == 409


def test_grading_preview_saves_nothing(world):
    client = world.client("coordinator_a")
    response = client.post("/api/v1/grading/preview/", {"temperature_max_c": 39.5, "hypotension": True,
                                                        "vasopressors": ["norepinephrine"], "age_years": 40,
                                                        "ice_score": 10}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["crs_grade"] == 3 and response.json()["icans_grade"] == 0
    bad = client.post("/api/v1/grading/preview/", {"temperature_max_c": 46, "ice_score": 12}, format="json")
    assert bad.status_code == 400 and {"temperature_max_c", "ice_score"} <= set(bad.json())
    assert client.post("/api/v1/grading/preview/", [1, 2], format="json").status_code == 400
    assert not DailyAssessment.objects.exists()
    assert world.client("nobody").post("/api/v1/grading/preview/", {}, format="json").status_code == 404
