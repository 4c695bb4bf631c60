"""Source-data verification, locks (423) and investigator e-signatures (workflow.md)."""
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.http import Http404

from trials import services
from trials import workflow_services as wf
from trials.audit import RecordLockedError
from trials.workflow import CasebookSignature, Lock


def edit_subject(world, user="coordinator_a", **changes):
    world.subject_a.refresh_from_db()
    return services.subject_update(subject=world.subject_a, user=world.users[user], version=world.subject_a.version,
                                   reason="source updated", changes=changes or {"baseline_weight_kg": Decimal("71")})


def test_sdv_by_monitor_is_cleared_by_a_later_change(world):
    infusion = world.infusion_a
    verification = wf.form_verify(user=world.users["monitor_a"], record=infusion)
    assert verification.verified_version == infusion.version and wf.sdv_status(infusion) == "verified"
    services.infusion_update(infusion=infusion, user=world.users["coordinator_a"], version=infusion.version,
                             reason="transcription error", changes={"lot_number": "LOT-2"})
    infusion.refresh_from_db()
    assert wf.sdv_status(infusion) == "changed"
    with pytest.raises(Http404):
        wf.form_verify(user=world.users["coordinator_a"], record=infusion)  # only monitors verify
    with pytest.raises(Http404):
        wf.form_verify(user=world.users["monitor_b"], record=infusion)


def test_sdv_api(world):
    body = {"record_type": "trials.infusion", "record_id": world.infusion_a.pk}
    assert world.client("coordinator_a").post("/api/v1/source-verifications/", body, format="json").status_code == 404
    created = world.client("monitor_a").post("/api/v1/source-verifications/", body, format="json")
    assert created.status_code == 201 and created.json()["status"] == "verified"
    assert world.client("monitor_b").post("/api/v1/source-verifications/", body, format="json").status_code == 404


@pytest.mark.parametrize("scope", ["form", "casebook", "trial"])
def test_locked_data_reject_edits_until_unlocked_with_a_reason(world, scope):
    dm = world.users["data_manager"]
    lock = wf.lock_create(user=dm, scope=scope, trial=world.trial, subject=world.subject_a,
                          record=world.subject_a if scope == "form" else None, reason="database lock")
    with pytest.raises(RecordLockedError):
        edit_subject(world)
    if scope != "form":
        with pytest.raises(RecordLockedError):
            services.infusion_update(infusion=world.infusion_a, user=world.users["coordinator_a"], version=1,
                                     reason="x", changes={"lot_number": "L9"})
    with pytest.raises(ValidationError) as exc:
        wf.lock_release(user=dm, lock=lock, reason="")
    assert "reason" in exc.value.message_dict
    wf.lock_release(user=dm, lock=lock, reason="query resolution after lock")
    assert edit_subject(world).baseline_weight_kg == Decimal("71")
    row = Lock.history.filter(id=lock.pk).first()
    assert row.history_change_reason == "unlocked: query resolution after lock" and row.history_user == dm


def test_trial_lock_blocks_new_subjects_and_other_sites_too(world):
    from tests.factories import make_subject

    wf.lock_create(user=world.users["data_manager"], scope="trial", trial=world.trial)
    with pytest.raises(RecordLockedError):
        make_subject(world.users["coordinator_b"], world.site_b, world.cohort)


def test_only_data_managers_lock(world):
    for user in ("coordinator_a", "monitor_a", "investigator_a", "sponsor"):
        with pytest.raises(Http404):
            wf.lock_create(user=world.users[user], scope="trial", trial=world.trial)


def test_lock_api_gives_423_on_writes(world):
    dm = world.client("data_manager")
    created = dm.post("/api/v1/locks/", {"scope": "casebook", "trial": world.trial.pk, "subject": world.subject_a.pk,
                                         "reason": "interim analysis"}, format="json")
    assert created.status_code == 201, created.content
    patch = world.client("coordinator_a").patch(
        f"/api/v1/subjects/{world.subject_a.pk}/", {"version": world.subject_a.version, "reason": "x", "sex": "male"},
        format="json")
    assert patch.status_code == 423
    assert world.client("coordinator_a").get(f"/api/v1/subjects/{world.subject_a.pk}/").json()["sex"] == "female"
    assert dm.post(f"/api/v1/locks/{created.json()['id']}/unlock/", {}, format="json").status_code == 400
    unlocked = dm.post(f"/api/v1/locks/{created.json()['id']}/unlock/", {"reason": "reopened for queries"}, format="json")
    assert unlocked.status_code == 200 and unlocked.json()["active"] is False
    form = dm.post("/api/v1/locks/", {"scope": "form", "trial": world.trial.pk}, format="json")
    assert form.status_code == 400 and "record_id" in form.json()


def test_investigator_signs_with_password_and_a_change_voids_the_signature(world):
    investigator = world.users["investigator_a"]
    with pytest.raises(ValidationError) as exc:
        wf.casebook_sign(user=investigator, subject=world.subject_a, password="wrong")
    assert "password" in exc.value.message_dict
    with pytest.raises(Http404):
        wf.casebook_sign(user=world.users["coordinator_a"], subject=world.subject_a, password="correct-horse-battery")
    signature = wf.casebook_sign(user=investigator, subject=world.subject_a, password="correct-horse-battery")
    assert signature.valid and signature.meaning == "reviewed and approved" and signature.signer_name == "investigator_a"
    with pytest.raises(ValidationError):
        wf.casebook_sign(user=investigator, subject=world.subject_a, password="correct-horse-battery")
    edit_subject(world)
    signature.refresh_from_db()
    assert not signature.valid and signature.void_reason == "signed data changed after signing"
    again = wf.casebook_sign(user=investigator, subject=world.subject_a, password="correct-horse-battery")
    assert again.valid and CasebookSignature.objects.filter(subject=world.subject_a).count() == 2


def test_signature_api(world):
    url = f"/api/v1/signatures/sign/{world.subject_a.pk}/"
    assert world.client("investigator_a").post(url, {"password": "nope"}, format="json").status_code == 400
    assert world.client("investigator_b").post(url, {"password": "correct-horse-battery"}, format="json").status_code == 404
    signed = world.client("investigator_a").post(url, {"password": "correct-horse-battery"}, format="json")
    assert signed.status_code == 201 and signed.json()["valid"] is True
    assert len(world.client("monitor_a").get(f"/api/v1/signatures/?subject={world.subject_a.pk}").json()["results"]) == 1
