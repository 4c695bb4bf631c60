"""The query workflow (workflow.md, checks.md): rule queries raised at save time and reconciled
idempotently, auto-closed with history, closed by a monitor with justification (suppressing the
same values), manual queries, every transition per role, filters, and notifications."""
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.http import Http404

from toxicity import queries, services
from toxicity.course.write import check_subjects
from toxicity.models import Query, QueryMessage, TocilizumabDose
from tests.toxicity.test_assessment_services import NORMAL, assess, at


def toci(world, mg="700", day=1, hour=9):
    return services.log_create(TocilizumabDose, user=world.users["coordinator_a"], subject=world.subject_a,
                               administered_at=at(world, day, hour), dose_mg=Decimal(mg), weight_kg=Decimal("70"),
                               indication="crs")


def rule_queries(world, rule=None):
    qs = Query.objects.filter(subject=world.subject_a, origin="rule")
    return qs.filter(rule_id=rule) if rule else qs


def test_soft_rule_raises_a_query_at_save_with_values_and_a_sentence(world):
    dose = toci(world, mg="700")  # 12.5 % above 560 mg expected for 70 kg
    q = rule_queries(world, "TOCI-DOSE-DEVIATION").get()
    assert (q.status, q.record_type, q.record_id, q.field) == ("open", "toxicity.tocilizumabdose", dose.pk, "dose_mg")
    assert q.values == {"dose_mg": "700", "weight_kg": "70", "expected_dose_mg": "560"}
    assert q.text.startswith("TOCI-DOSE-DEVIATION: 700.00 mg for 70.00 kg")
    assert q.messages.get().action == "raise"


def test_reconcile_is_idempotent_and_fixing_the_data_auto_closes_with_history(world):
    dose = toci(world, mg="700")
    before = Query.objects.count()
    outcome = check_subjects([world.subject_a.pk], at_save=True)
    assert (len(outcome.opened), outcome.auto_closed) == (0, 0) and Query.objects.count() == before
    services.log_update(dose, user=world.users["coordinator_a"], version=dose.version, reason="transcription error",
                        changes={"dose_mg": Decimal("560")})
    q = rule_queries(world, "TOCI-DOSE-DEVIATION").get()
    assert q.status == "closed" and q.closed_at is not None
    assert q.history.first().history_change_reason == "auto-closed: the rule passes"
    assert q.messages.last().action == "auto_close"


def test_at_most_one_open_query_per_rule_record_field_in_the_database(world):
    toci(world, mg="700")
    q = rule_queries(world, "TOCI-DOSE-DEVIATION").get()
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        Query.objects.create(trial=q.trial, site=q.site, subject=q.subject, record_type=q.record_type,
                             record_id=q.record_id, field=q.field, origin="rule", rule_id=q.rule_id, text="dup")


def test_site_cannot_close_a_rule_query_monitor_can_with_justification_and_it_stays_closed(world):
    dose = toci(world, mg="700")
    q = rule_queries(world, "TOCI-DOSE-DEVIATION").get()
    with pytest.raises(ValidationError) as exc:
        queries.query_transition(user=world.users["coordinator_a"], query=q, action="close", text="it is right")
    assert "action" in exc.value.message_dict
    with pytest.raises(ValidationError) as exc:
        queries.query_transition(user=world.users["monitor_a"], query=q, action="close", text=" ")
    assert exc.value.message_dict["text"] == ["Justification required."]
    queries.query_transition(user=world.users["monitor_a"], query=q, action="close",
                             text="confirmed correct: 10 mg/kg per protocol amendment 3")
    q.refresh_from_db()
    assert q.status == "closed" and q.suppressed_values == q.values
    check_subjects([world.subject_a.pk], at_save=True)  # the same values: the rule does not reopen it
    assert rule_queries(world, "TOCI-DOSE-DEVIATION").count() == 1
    services.log_update(dose, user=world.users["coordinator_a"], version=dose.version, reason="source updated",
                        changes={"dose_mg": Decimal("720")})
    new = rule_queries(world, "TOCI-DOSE-DEVIATION").filter(status="open")
    assert new.count() == 1 and new.get().values["dose_mg"] == "720"  # different values: a new query


@pytest.mark.parametrize(
    "user, action, allowed",
    [
        ("coordinator_a", "answer", True), ("investigator_a", "answer", True), ("monitor_a", "answer", False),
        ("data_manager", "answer", False), ("sponsor", "answer", False),
        ("monitor_a", "close", True), ("data_manager", "close", True), ("coordinator_a", "close", False),
        ("investigator_a", "close", False), ("dsmb", "close", False),
        ("monitor_a", "cancel", True), ("data_manager", "cancel", True), ("coordinator_a", "cancel", False),
    ],
)
def test_transitions_per_role_on_a_manual_query(world, user, action, allowed):
    q = queries.query_raise(user=world.users["monitor_a"], record_type="trials.subject", record_id=world.subject_a.pk,
                            field="baseline_weight_kg", text="Weight differs from the chart (68 kg)?")
    if allowed:
        q = queries.query_transition(user=world.users[user], query=q, action=action, text="done")
        assert q.status == {"answer": "answered", "close": "closed", "cancel": "cancelled"}[action]
        assert q.messages.last().role in ("coordinator", "investigator", "monitor", "data_manager")
    else:
        with pytest.raises(ValidationError):
            queries.query_transition(user=world.users[user], query=q, action=action, text="done")
        q.refresh_from_db()
        assert q.status == "open"


def test_reopen_after_answer_and_after_close_only_by_reviewers(world):
    q = queries.query_raise(user=world.users["monitor_a"], record_type="trials.subject", record_id=world.subject_a.pk,
                            field="sex", text="Please check sex against source.")
    queries.query_transition(user=world.users["coordinator_a"], query=q, action="answer", text="Checked, correct.")
    with pytest.raises(ValidationError):
        queries.query_transition(user=world.users["coordinator_a"], query=q, action="reopen", text="again")
    q = queries.query_transition(user=world.users["monitor_a"], query=q, action="reopen", text="Source says male.")
    assert q.status == "open"
    q = queries.query_transition(user=world.users["monitor_a"], query=q, action="close", text="resolved")
    q = queries.query_transition(user=world.users["data_manager"], query=q, action="reopen", text="audit finding")
    assert q.status == "open"
    assert [m.action for m in q.messages.all()] == ["raise", "answer", "reopen", "close", "reopen"]


def test_rule_query_cannot_be_cancelled(world):
    toci(world, mg="700")
    q = rule_queries(world, "TOCI-DOSE-DEVIATION").get()
    with pytest.raises(ValidationError):
        queries.query_transition(user=world.users["monitor_a"], query=q, action="cancel", text="no")


def test_manual_query_needs_a_reviewer_a_real_field_and_the_right_site(world):
    with pytest.raises(ValidationError):
        queries.query_raise(user=world.users["coordinator_a"], record_type="trials.subject",
                            record_id=world.subject_a.pk, field="sex", text="?")
    with pytest.raises(ValidationError) as exc:
        queries.query_raise(user=world.users["monitor_a"], record_type="trials.subject",
                            record_id=world.subject_a.pk, field="shoe_size", text="?")
    assert "field" in exc.value.message_dict
    with pytest.raises(Http404):
        queries.query_raise(user=world.users["monitor_b"], record_type="trials.subject",
                            record_id=world.subject_a.pk, field="sex", text="?")
    with pytest.raises(Http404):
        queries.query_raise(user=world.users["monitor_a"], record_type="auth.user", record_id=1, field="email", text="?")


def test_new_query_emails_the_site_and_high_grade_emails_data_managers(world, django_capture_on_commit_callbacks,
                                                                        celery_eager):
    with django_capture_on_commit_callbacks(execute=True):
        toci(world, mg="700")
    site_mail = [m for m in mail.outbox if "new data quer" in m.subject]
    assert site_mail and set(site_mail[0].to) == {"coordinator_a@example.org", "investigator_a@example.org"}
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assess(world, 2, temperature_max_c=Decimal("39.4"), hypotension=True,
               vasopressors=["norepinephrine", "epinephrine"])
    alerts = [m for m in mail.outbox if "grade 4" in m.subject]
    assert alerts and alerts[0].to == ["data_manager@example.org"]
    mail.outbox.clear()
    from trials import services as trial_services

    with django_capture_on_commit_callbacks(execute=True):
        trial_services.death_record(subject=world.subject_a, user=world.users["coordinator_a"],
                                    death_date=world.subject_a.day0 + timedelta(days=2), death_primary_cause="crs")
    assert any("death on" in m.subject and m.to == ["data_manager@example.org"] for m in mail.outbox)


# --- API ----------------------------------------------------------------------------------------


def test_query_api_list_filters_thread_and_transitions(world):
    toci(world, mg="700")
    assess(world, 1, **{**NORMAL, "crs_grade_reported": 2})  # CRS-GRADE-MISMATCH
    coordinator, monitor = world.client("coordinator_a"), world.client("monitor_a")
    listed = coordinator.get(f"/api/v1/queries/?trial={world.trial.pk}&status=open").json()["results"]
    assert {q["rule_id"] for q in listed} >= {"TOCI-DOSE-DEVIATION", "CRS-GRADE-MISMATCH"}
    q = next(q for q in listed if q["rule_id"] == "TOCI-DOSE-DEVIATION")
    assert q["allowed_actions"] == ["answer"] and q["age_days"] == 0
    assert coordinator.get("/api/v1/queries/?rule=CRS-GRADE-MISMATCH").json()["results"][0]["field"] == "crs_grade_reported"
    assert coordinator.get("/api/v1/queries/?origin=manual").json()["results"] == []
    assert coordinator.get("/api/v1/queries/?min_age_days=1").json()["results"] == []
    Query.objects.filter(pk=q["id"]).update(opened_at=q["opened_at"].replace("2026", "2025"))  # noqa: not audited model
    assert [r["id"] for r in coordinator.get("/api/v1/queries/?min_age_days=300").json()["results"]] == [q["id"]]
    url = f"/api/v1/queries/{q['id']}/"
    assert coordinator.post(url + "messages/", {"text": "Checking the chart."}, format="json").status_code == 201
    assert coordinator.post(url + "close/", {"text": "fine"}, format="json").status_code == 400
    assert coordinator.post(url + "answer/", {"text": "Dose confirmed on the MAR."}, format="json").status_code == 200
    closed = monitor.post(url + "close/", {"text": "confirmed correct: MAR reviewed"}, format="json")
    assert closed.status_code == 200 and closed.json()["status"] == "closed"
    thread = coordinator.get(url + "messages/").json()
    assert [m["action"] for m in thread] == ["raise", "message", "answer", "close"]
    assert thread[1]["author"] == "coordinator_a" and thread[1]["role"] == "coordinator"


def test_query_api_scoping_and_manual_raise(world):
    toci(world, mg="700")
    q = rule_queries(world).first()
    assert world.client("coordinator_b").get(f"/api/v1/queries/{q.pk}/").status_code == 404
    assert world.client("coordinator_b").post(f"/api/v1/queries/{q.pk}/answer/", {"text": "x"}, format="json").status_code == 404
    assert world.client("outsider").get("/api/v1/queries/").json()["results"] == []
    raised = world.client("monitor_a").post("/api/v1/queries/", {
        "record_type": "trials.infusion", "record_id": world.infusion_a.pk, "field": "lot_number",
        "text": "Lot number differs from the pharmacy record."}, format="json")
    assert raised.status_code == 201 and raised.json()["origin"] == "manual"
    assert raised.json()["values"] == {"lot_number": "LOT-1"}
    bad = world.client("monitor_a").post("/api/v1/queries/", {"record_type": "trials.infusion", "record_id": 0,
                                                              "field": "", "text": ""}, format="json")
    assert bad.status_code == 400 and {"record_id", "field", "text"} <= set(bad.json())
    assert QueryMessage.objects.filter(query_id=raised.json()["id"]).count() == 1
