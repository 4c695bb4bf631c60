"""Audit trail: each create, update and void leaves exactly one history row with the user, the
reason and the old and new values; later changes need a reason; nothing is hard-deleted."""
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from trials import services
from trials.audit import AuditBypassError, field_changes
from trials.models import Infusion, Subject

from tests.factories import make_subject


def _changes(record):
    newer = record.history.order_by("-history_id")[0]
    return field_changes(newer), newer


def test_create_leaves_one_history_row_with_user_and_no_reason_needed(world):
    user = world.users["coordinator_a"]
    subject = make_subject(user, world.site_a, world.cohort)
    rows = list(subject.history.all())
    assert len(rows) == 1
    assert rows[0].history_type == "+"
    assert rows[0].history_user == user
    assert rows[0].history_change_reason == "initial entry"
    assert rows[0].version == 1


def test_update_leaves_one_history_row_with_old_and_new_values_and_reason(world):
    user = world.users["coordinator_a"]
    subject = world.subject_a
    before = subject.history.count()
    services.subject_update(
        subject=subject, user=user, version=subject.version, reason="transcription error",
        changes={"baseline_weight_kg": Decimal("72.50")},
    )
    assert subject.history.count() == before + 1
    changes, row = _changes(subject)
    assert changes == {"baseline_weight_kg": (Decimal("70.00"), Decimal("72.50")), "version": (subject.version, subject.version + 1)}
    assert row.history_user == user and row.history_change_reason == "transcription error"


@pytest.mark.parametrize("reason", [None, "", "   "])
def test_update_without_a_reason_is_refused_and_nothing_changes(world, reason):
    subject = world.subject_a
    before = subject.history.count()
    with pytest.raises(ValidationError) as exc:
        services.subject_update(
            subject=subject, user=world.users["coordinator_a"], version=subject.version, reason=reason,
            changes={"sex": "male"},
        )
    assert "reason" in exc.value.message_dict
    subject.refresh_from_db()
    assert subject.sex == "female" and subject.history.count() == before


def test_update_that_changes_nothing_writes_nothing(world):
    subject = world.subject_a
    before = (subject.version, subject.history.count())
    services.subject_update(
        subject=subject, user=world.users["coordinator_a"], version=subject.version, reason="no-op", changes={"sex": "female"}
    )
    subject.refresh_from_db()
    assert (subject.version, subject.history.count()) == before


def test_void_marks_entered_in_error_with_reason_and_one_history_row(world):
    user = world.users["coordinator_a"]
    infusion = world.infusion_a
    before = infusion.history.count()
    services.infusion_void(infusion=infusion, user=user, version=infusion.version, reason="entered for the wrong subject")
    infusion.refresh_from_db()
    assert infusion.voided and infusion.void_reason == "entered for the wrong subject"
    assert infusion.history.count() == before + 1
    changes, row = _changes(infusion)
    assert changes["voided"] == (False, True)
    assert row.history_change_reason == "entered in error: entered for the wrong subject"
    assert row.history_user == user
    # the subject's derived day 0 goes with the index infusion, as a system change
    world.subject_a.refresh_from_db()
    assert world.subject_a.day0 is None and world.subject_a.status == "enrolled"
    assert world.subject_a.history.first().history_change_reason.startswith("system: ")


def test_void_needs_a_reason(world):
    with pytest.raises(ValidationError) as exc:
        services.infusion_void(infusion=world.infusion_a, user=world.users["coordinator_a"], version=1, reason="")
    assert "reason" in exc.value.message_dict


def test_voided_record_cannot_be_edited(world):
    user = world.users["coordinator_a"]
    services.infusion_void(infusion=world.infusion_a, user=user, version=1, reason="duplicate")
    with pytest.raises(ValidationError) as exc:
        services.infusion_update(infusion=world.infusion_a, user=user, version=2, reason="fix", changes={"lot_number": "X"})
    assert "voided" in exc.value.message_dict


def test_paths_that_bypass_history_are_impossible(world):
    with pytest.raises(AuditBypassError):
        Subject.objects.filter(pk=world.subject_a.pk).update(sex="male")
    with pytest.raises(AuditBypassError):
        Subject.objects.all().delete()
    with pytest.raises(AuditBypassError):
        world.subject_a.delete()
    with pytest.raises(AuditBypassError):
        Infusion.objects.bulk_update([world.infusion_a], ["lot_number"])
    with pytest.raises(AuditBypassError):
        Infusion.objects.bulk_create([Infusion(subject=world.subject_a)])
    assert Subject.objects.filter(pk=world.subject_a.pk, sex="female").exists()


def test_api_update_and_void_record_user_reason_and_values(world):
    client = world.client("coordinator_a")
    url = f"/api/v1/infusions/{world.infusion_a.pk}/"
    response = client.patch(url, {"version": 1, "reason": "source updated", "lot_number": "LOT-9"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["version"] == 2
    changes, row = _changes(world.infusion_a)
    assert changes["lot_number"] == ("LOT-1", "LOT-9")
    assert row.history_user == world.users["coordinator_a"] and row.history_change_reason == "source updated"
    missing = client.patch(url, {"version": 2, "lot_number": "LOT-10"}, format="json")
    assert missing.status_code == 400 and "reason" in missing.json()
    voided = client.post(f"{url}void/", {"version": 2, "reason": "wrong subject"}, format="json")
    assert voided.status_code == 200 and voided.json()["voided"] is True
    assert world.infusion_a.pk not in {r["id"] for r in client.get("/api/v1/infusions/").json()["results"]}
    listed = client.get("/api/v1/infusions/?include_voided=true").json()["results"]
    assert world.infusion_a.pk in {r["id"] for r in listed}


def test_no_delete_over_the_api(world):
    response = world.client("coordinator_a").delete(f"/api/v1/subjects/{world.subject_a.pk}/")
    assert response.status_code == 405
    assert Subject.objects.filter(pk=world.subject_a.pk).exists()


def test_derived_day0_and_age_follow_the_index_infusion(world):
    subject = world.subject_a
    infusion = world.infusion_a
    assert subject.day0 == infusion.infused_at.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Berlin")).date()
    assert subject.status == "infused"
    from trials.study_day import age_in_years

    assert subject.age_years == age_in_years(subject.date_of_birth, subject.day0)


def test_membership_grant_and_revoke_are_audited(world):
    user = world.users["nobody"]
    membership = services.membership_grant(user=user, role="sponsor", trial=world.trial, granted_by=world.users["data_manager"])
    assert membership.history.get().history_user == world.users["data_manager"]
    assert services.membership_revoke(user=user, role="sponsor", trial=world.trial) == 1
    assert membership.history.model.objects.filter(id=membership.pk, history_type="-").exists()
