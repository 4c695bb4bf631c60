"""The day form's live grade panel (toxicity/preview.py): it grades the form in the context of the
subject's course, so it shows what saving will store - "masked by tocilizumab on 12 Mar", "≥ 3
(oxygen device missing)" - and the same grades the grading API gives for the same input with the
context named (data-dictionary.md, fever_masked_by)."""
import json
from datetime import datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.test import Client
from django.urls import reverse

from toxicity import services
from toxicity.models import DailyAssessment, TocilizumabDose

NORMAL = {"temperature_max_c": "36.8", "ice_score": "10", "consciousness": "alert"}


def client_of(world, name):
    client = Client()
    client.force_login(world.users[name])
    return client


def preview(world, name, n, data):
    day = world.subject_a.day0 + timedelta(days=n)
    url = reverse("assessment-preview", args=[world.subject_a.pk, day.isoformat()])
    return client_of(world, name).post(url, json.dumps(data), content_type="application/json")


def masked_course(world):
    user = world.users["coordinator_a"]
    subject = world.subject_a
    services.assessment_create(user=user, subject=subject, assessment_date=subject.day0 + timedelta(days=1),
                               temperature_max_c=Decimal("39.0"), ice_score=10, consciousness="alert")
    at = datetime.combine(subject.day0 + timedelta(days=1), time(20), tzinfo=ZoneInfo(world.site_a.timezone))
    services.log_create(TocilizumabDose, user=user, subject=subject, administered_at=at, dose_mg=Decimal("560"),
                        weight_kg=Decimal("70"), indication="crs")
    return subject.day0 + timedelta(days=1)


def test_the_panel_names_the_masking_therapy_and_grades_without_fever(world):
    dose_day = masked_course(world)
    response = preview(world, "coordinator_a", 3, {**NORMAL, "temperature_max_c": "37.1", "hypotension": True,
                                                  "vasopressors": ["norepinephrine"]})
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["crs_grade"], body["crs_text"]) == (3, "3")
    assert body["masked_text"] == f"masked by tocilizumab on {dose_day.day} {dose_day:%b}"
    assert body["context"]["fever_masked_by"] == {"drug": "tocilizumab", "date": dose_day.isoformat()}
    assert "CRS-FEVER-MASKED" in body["flags"]


def test_the_panel_shows_the_floor_of_an_ne_grade(world):
    response = preview(world, "coordinator_a", 2, {**NORMAL, "temperature_max_c": "38.8", "hypoxia": True,
                                                  "hypotension": True, "vasopressors": ["norepinephrine"]})
    body = response.json()
    assert (body["crs_grade"], body["minimum_crs_grade"]) == ("NE", 3)
    assert body["crs_text"] == "≥ 3 (oxygen device missing)"
    assert body["masked_text"] == ""


def test_what_the_panel_shows_is_what_the_save_stores_and_the_api_gives(world):
    masked_course(world)
    form = {**NORMAL, "temperature_max_c": "37.4", "hypoxia": True, "oxygen_device": "nasal_cannula",
            "oxygen_flow_l_min": "3"}
    panel = preview(world, "coordinator_a", 4, form).json()
    saved = services.assessment_create(
        user=world.users["coordinator_a"], subject=world.subject_a,
        assessment_date=world.subject_a.day0 + timedelta(days=4), temperature_max_c=Decimal("37.4"), hypoxia=True,
        oxygen_device="nasal_cannula", oxygen_flow_l_min=Decimal("3"), ice_score=10, consciousness="alert")
    saved = DailyAssessment.objects.get(pk=saved.pk)
    assert (panel["crs_grade"], panel["icans_grade"], panel["flags"], panel["reasons"]) == (
        saved.crs_grade_derived, saved.icans_grade_derived, saved.flags, saved.reasons)
    api = world.client("coordinator_a").post("/api/v1/grading/preview/", {
        **form, "age_years": world.subject_a.age_years, **panel["context"],
        "assessment_date": saved.assessment_date.isoformat()}, format="json").json()
    assert (api["crs_grade"], api["icans_grade"], api["flags"]) == (panel["crs_grade"], panel["icans_grade"],
                                                                    panel["flags"])


def test_read_only_roles_get_no_preview_and_bad_input_names_the_field(world):
    assert preview(world, "monitor_a", 2, NORMAL).status_code == 404
    assert preview(world, "data_manager", 2, NORMAL).status_code == 404
    assert preview(world, "coordinator_b", 2, NORMAL).status_code == 404
    response = preview(world, "coordinator_a", 2, {**NORMAL, "temperature_max_c": "46"})
    assert response.status_code == 400 and "temperature_max_c" in response.json()
