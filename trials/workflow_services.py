"""Source-data verification, locks and signatures: the writes and the guards (workflow.md)."""
from django.apps import apps
from django.core.exceptions import PermissionDenied, ValidationError
from django.contrib.auth import authenticate
from django.db import transaction
from django.db.models import Q
from django.http import Http404
from django.utils import timezone

from .audit import AFTER_WRITE, WRITE_GUARDS, ClinicalModel, RecordLockedError
from .models import Subject, Trial
from .roles import Role
from .selectors import RoleIndex
from .workflow import CasebookSignature, Lock, LockScope, SourceVerification


def record_model(record_type: str) -> type[ClinicalModel]:
    """The clinical model named by a label such as "toxicity.dailyassessment"; 404 otherwise."""
    try:
        model = apps.get_model(record_type)
    except (LookupError, ValueError):
        raise Http404("No such record type.")
    if not issubclass(model, ClinicalModel):
        raise Http404("No such record type.")
    return model


def record_subject(record) -> Subject:
    return record if isinstance(record, Subject) else record.subject


def _require(user, roles, trial_id, site_id=None):
    if not RoleIndex.for_user(user).has(roles, trial_id, site_id):
        raise Http404("No such record.")


# --- guards and hooks on every audited write ------------------------------------------------


def _subject_ids(instances) -> set[int]:
    return {i.pk if isinstance(i, Subject) else getattr(i, "subject_id", None) for i in instances} - {None}


def refuse_locked_writes(instances) -> None:
    """A write to a locked form, casebook or trial is refused (HTTP 423)."""
    subjects = _subject_ids(instances)
    trials = {i.trial_id for i in instances if isinstance(i, Subject) and i.trial_id}
    # the subjects' trials: from the rows in memory (subject_trial, or the subject loaded with the
    # write), else one query
    known = {i.subject_id: i.subject_trial_id for i in instances if getattr(i, "subject_trial_id", None)}
    known.update({i.subject_id: i.subject.trial_id for i in instances
                  if i.subject_id not in known and "subject" in getattr(i, "_state").fields_cache})
    known.update({i.pk: i.trial_id for i in instances if isinstance(i, Subject)})
    trials |= set(known.values())
    unknown = subjects - set(known)
    if unknown:
        trials |= set(Subject.objects.filter(pk__in=unknown).values_list("trial_id", flat=True))
    if not trials:
        return
    forms = Q(pk__in=[])
    for i in instances:
        if i.pk is not None:
            forms |= Q(scope=LockScope.FORM, record_type=i._meta.label_lower, record_id=i.pk)
    lock = (
        Lock.objects.filter(unlocked_at__isnull=True)
        .filter(Q(scope=LockScope.TRIAL, trial__in=trials) | Q(scope=LockScope.CASEBOOK, subject__in=subjects) | forms)
        .first()
    )
    if lock is not None:
        what = {"trial": "The trial", "casebook": "This subject's casebook", "form": "This form"}[lock.scope]
        raise RecordLockedError(f"{what} is locked (since {lock.locked_at:%Y-%m-%d %H:%M} UTC); ask a data manager to unlock it.")


def void_signatures_on_change(instances, user) -> None:
    """A change to signed data voids the casebook signature; it then needs re-signing."""
    subjects = _subject_ids(instances)
    for signature in CasebookSignature.objects.filter(subject__in=subjects, voided_at__isnull=True):
        signature.voided_at = timezone.now()
        signature.void_reason = "signed data changed after signing"
        signature._history_user = user
        signature._change_reason = "voided: signed data changed"
        signature.save()


WRITE_GUARDS.append(refuse_locked_writes)
AFTER_WRITE.append(void_signatures_on_change)


# --- source-data verification ---------------------------------------------------------------


def form_verify(*, user, record) -> SourceVerification:
    subject = record_subject(record)
    _require(user, {Role.MONITOR}, subject.trial_id, subject.site_id)
    if record.voided:
        raise ValidationError({"record_id": ["A record entered in error is not verified."]})
    verification = SourceVerification(
        subject=subject, record_type=record._meta.label_lower, record_id=record.pk,
        verified_version=record.version, verified_by=user,
    )
    verification._history_user = user
    verification.save()
    return verification


def sdv_status(record, verification: SourceVerification | None = None) -> str:
    """'verified' for the current version; 'changed' when edited after verification; else 'not_verified'."""
    if verification is None:
        verification = SourceVerification.objects.filter(
            record_type=record._meta.label_lower, record_id=record.pk
        ).first()
    if verification is None:
        return "not_verified"
    return "verified" if verification.verified_version == record.version else "changed"


# --- locks ----------------------------------------------------------------------------------


def lock_create(*, user, scope: str, trial: Trial, subject: Subject | None = None, record=None, reason: str = "") -> Lock:
    _require(user, {Role.DATA_MANAGER}, trial.pk)
    if scope == LockScope.FORM and record is None:
        raise ValidationError({"record_id": ["Name the form to lock."]})
    if scope == LockScope.CASEBOOK and subject is None:
        raise ValidationError({"subject": ["Name the subject whose casebook to lock."]})
    if record is not None:
        subject = record_subject(record)
    if subject is not None and subject.trial_id != trial.pk:
        raise ValidationError({"subject": ["This subject belongs to another trial."]})
    lock = Lock(
        scope=scope, trial=trial, subject=subject if scope != LockScope.TRIAL else None,
        site=subject.site if subject is not None and scope != LockScope.TRIAL else None,
        record_type=record._meta.label_lower if scope == LockScope.FORM else "",
        record_id=record.pk if scope == LockScope.FORM else None,
        locked_by=user, lock_reason=reason,
    )
    active = Lock.objects.filter(unlocked_at__isnull=True, scope=scope, trial=trial)
    if scope != LockScope.TRIAL:
        active = active.filter(subject=lock.subject, record_type=lock.record_type, record_id=lock.record_id)
    if active.exists():
        raise ValidationError({"scope": ["This is already locked."]})
    lock._history_user = user
    lock._change_reason = f"locked {scope}"
    lock.save()
    return lock


def lock_release(*, user, lock: Lock, reason: str) -> Lock:
    """Unlocking is audited with a reason (workflow.md)."""
    _require(user, {Role.DATA_MANAGER}, lock.trial_id)
    if not (reason or "").strip():
        raise ValidationError({"reason": ["A reason is required to unlock."]})
    with transaction.atomic():
        lock = Lock.objects.select_for_update().get(pk=lock.pk)
        if lock.unlocked_at is not None:
            raise ValidationError({"lock": ["This lock was already released."]})
        lock.unlocked_at, lock.unlocked_by, lock.unlock_reason = timezone.now(), user, reason.strip()
        lock._history_user = user
        lock._change_reason = f"unlocked: {reason.strip()}"
        lock.save()
    return lock


# --- signatures -----------------------------------------------------------------------------


def _password_confirmed(user, password: str, request) -> bool:
    """The password re-entered, checked through the authentication backends, so failures count
    towards the lockout like failed logins (django-axes needs the request)."""
    if not password:
        return False
    if request is None:  # a call outside a web request (scripts, tests): nothing to count against
        return user.check_password(password)
    try:
        confirmed = authenticate(request, username=user.get_username(), password=password)
    except PermissionDenied:  # locked out after repeated failures
        raise ValidationError({"password": ["Too many failed attempts: signing is blocked for a while. Try again later."]})
    return confirmed is not None and confirmed.pk == user.pk


def casebook_sign(*, user, subject: Subject, password: str, request=None) -> CasebookSignature:
    """An investigator signs a casebook by re-entering the password (21 CFR Part 11 style)."""
    _require(user, {Role.INVESTIGATOR}, subject.trial_id, subject.site_id)
    if not _password_confirmed(user, password, request):
        raise ValidationError({"password": ["The password is not correct: the casebook was not signed."]})
    with transaction.atomic():
        Subject.objects.select_for_update().get(pk=subject.pk)
        if CasebookSignature.objects.filter(subject=subject, voided_at__isnull=True).exists():
            raise ValidationError({"subject": ["This casebook is already signed and unchanged since."]})
        signature = CasebookSignature(subject=subject, signer=user, signer_name=user.get_full_name() or user.username)
        signature._history_user = user
        signature._change_reason = CasebookSignature.MEANING
        signature.save()
    return signature
