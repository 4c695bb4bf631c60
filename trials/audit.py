"""The audit trail and optimistic concurrency shared by every clinical model (workflow.md).

Every clinical row carries a ``version``. Writes go through :func:`audited_create`,
:func:`audited_update` and :func:`audited_void`, which record the acting user and the reason in
django-simple-history and refuse a save based on a stale version. Paths that would bypass the
history (``QuerySet.update()``, ``bulk_update()``, ``bulk_create()``, ``delete()``) raise; the one
sanctioned bulk path, which writes the history rows too, is ``trials.bulk.bulk_insert_with_history``.
"""
from collections.abc import Callable, Mapping
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models, transaction
from simple_history.models import HistoricalRecords

# History change reasons for rows the system writes itself (derived values, recomputations).
SYSTEM_REASON_PREFIX = "system: "


class AuditBypassError(RuntimeError):
    """An operation would change audited data without a history row."""


class StaleVersionError(Exception):
    """The caller edited an older version of the record than the one stored (HTTP 409)."""

    def __init__(self, *, submitted: int, current: int):
        self.submitted = submitted
        self.current = current
        super().__init__(
            f"This record was changed by someone else (you edited version {submitted}, "
            f"the stored version is {current}). Reload it and apply your change again."
        )


class RecordLockedError(Exception):
    """The record, its casebook or its trial is locked (HTTP 423); unlock with a reason first."""


# Called with the list of rows about to be written (locks register here; raise RecordLockedError).
WRITE_GUARDS: list[Callable[[list[models.Model]], None]] = []
# Called with the list of rows just written and the acting user (signatures are voided here).
AFTER_WRITE: list[Callable[[list[models.Model], Any], None]] = []


class AuditedQuerySet(models.QuerySet):
    """A queryset that refuses every write that django-simple-history would not see."""

    def _refuse(self, what):
        raise AuditBypassError(
            f"{what} on {self.model.__name__} would bypass the audit trail; use the service functions."
        )

    def update(self, **kwargs):
        self._refuse("QuerySet.update()")

    def bulk_update(self, *args, **kwargs):
        self._refuse("bulk_update()")

    def bulk_create(self, *args, **kwargs):
        self._refuse("bulk_create()")

    def delete(self):
        self._refuse("delete()")

    def update_or_create(self, *args, **kwargs):
        self._refuse("update_or_create()")


# Columns of some audited models that are derived and never change, so not worth a history column.
NOT_TRACKED = ("subject_trial",)  # toxicity.models.SubjectRecord: the subject's trial, for indexed scoping


class _HistoricalRecords(HistoricalRecords):
    """simple-history with ``excluded_fields`` that only some of the inheriting models have.

    simple-history hands the whole list to every history model, and ``HistoricalX.instance``
    (admin history pages, ``history.as_of()``) looks each name up on the model: FieldDoesNotExist
    on the models without it. Each history model keeps the names its model has.
    """

    def create_history_model(self, model, inherited):
        history = super().create_history_model(model, inherited)
        own = {f.name for f in model._meta.fields}
        history._history_excluded_fields = [name for name in self.excluded_fields if name in own]
        return history


def tracked_fields(model: type[models.Model]) -> list[models.Field]:
    """The concrete fields the history records (the model's, less ``NOT_TRACKED``), in model order."""
    return model.history.model.tracked_fields


class AuditedModel(models.Model):
    """Common columns of audited rows: history, timestamps, and no hard delete."""

    created_at = models.DateTimeField(auto_now_add=True)
    modified_at = models.DateTimeField(auto_now=True, db_index=True)
    history = _HistoricalRecords(inherit=True, excluded_fields=NOT_TRACKED)

    objects = AuditedQuerySet.as_manager()

    class Meta:
        abstract = True

    def delete(self, *args, **kwargs):
        raise AuditBypassError(
            f"{type(self).__name__} rows are never deleted; mark them entered in error (void) with a reason."
        )


class ClinicalModel(AuditedModel):
    """A clinical record: versioned for optimistic concurrency, voided rather than deleted."""

    version = models.PositiveIntegerField(default=1, editable=False)
    voided = models.BooleanField(
        default=False, editable=False, help_text="Entered in error; kept for the audit trail."
    )
    void_reason = models.TextField(blank=True, editable=False)

    class Meta:
        abstract = True


# Bookkeeping columns that change on every save and say nothing about the clinical data.
_NOT_DIFFED = {"modified_at", "created_at"}


def field_changes(history_row) -> dict[str, tuple[Any, Any]]:
    """``{field: (old, new)}`` between a history row and the one before it (all tracked fields).

    simple-history's own ``diff_against`` skips non-editable columns such as ``version`` and
    ``voided``; an audit trail must not.
    """
    previous = history_row.prev_record
    changes = {}
    for f in tracked_fields(history_row.instance_type):
        if f.name in _NOT_DIFFED or f.primary_key:
            continue
        new = getattr(history_row, f.attname)
        old = getattr(previous, f.attname) if previous is not None else None
        if previous is None or old != new:
            changes[f.attname] = (old, new)
    return changes


def _save_with_history(instance: models.Model, *, user, reason: str) -> None:
    for guard in WRITE_GUARDS:
        guard([instance])
    instance._history_user = user
    instance._change_reason = reason
    instance.save()
    for hook in AFTER_WRITE:
        hook([instance], user)


def _clean(instance: models.Model, validate: Callable[[models.Model], Mapping[str, list[str]]] | None):
    """Field validators of the model, then the cross-field rules; raise one error naming every field.

    A foreign key whose object the caller already loaded (the locked subject) is not looked up again:
    the row exists, and the database's foreign key would refuse it otherwise."""
    errors: dict[str, list[str]] = {}
    loaded = [f.name for f in instance._meta.concrete_fields
              if f.is_relation and f.is_cached(instance) and getattr(instance, f.name) is not None]
    try:
        instance.full_clean(exclude=loaded, validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        for field, messages in exc.message_dict.items():
            errors.setdefault(field, []).extend(messages)
    if validate is not None:
        for field, messages in validate(instance).items():
            errors.setdefault(field, []).extend(m for m in messages if m not in errors.get(field, []))
    if errors:
        raise ValidationError(errors)


def audited_create(instance: ClinicalModel | AuditedModel, *, user, reason: str = "", validate=None, derive=None,
                   savepoint: bool = True):
    """First save of a record: no reason required (workflow.md, Corrections and audit).

    ``derive(instance)`` sets derived columns in memory so the write leaves a single history row.
    ``savepoint=False`` inside a caller's transaction that is the write's boundary (the course's
    ``subject_write``): an error then rolls the caller's whole write back, two statements fewer.
    """
    with transaction.atomic(savepoint=savepoint):
        if derive is not None:
            derive(instance)
        _clean(instance, validate)
        _save_with_history(instance, user=user, reason=reason.strip() or "initial entry")
    return instance


def audited_update(
    model: type[ClinicalModel],
    pk: Any,
    *,
    user,
    version: int | None,
    reason: str | None,
    changes: Mapping[str, Any],
    validate=None,
    derive=None,
    require_reason: bool = True,
    savepoint: bool = True,
):
    """Apply ``changes`` to the stored row if ``version`` is current; every later change needs a reason.

    Locks the row (SELECT ... FOR UPDATE) so two edits of the same version cannot both win.
    Returns ``(instance, changed)``; an update that changes nothing writes nothing.
    """
    errors = {}
    if version is None:
        errors["version"] = ["The version you edited is required, so that no one's change is overwritten."]
    if require_reason and not (reason or "").strip():
        errors["reason"] = ["A reason for change is required after the first save (e.g. 'transcription error')."]
    if errors:
        raise ValidationError(errors)
    with transaction.atomic(savepoint=savepoint):
        instance = model.objects.select_for_update().get(pk=pk)
        if instance.version != version:
            raise StaleVersionError(submitted=version, current=instance.version)
        if instance.voided:
            raise ValidationError({"voided": ["This record was marked entered in error and cannot be changed."]})
        changed = {name: value for name, value in changes.items() if getattr(instance, name) != value}
        if not changed:
            return instance, False
        for name, value in changed.items():
            setattr(instance, name, value)
        if derive is not None:
            derive(instance)
        _clean(instance, validate)
        instance.version += 1
        _save_with_history(instance, user=user, reason=(reason or "").strip())
    return instance, True


def audited_void(model: type[ClinicalModel], pk: Any, *, user, version: int | None, reason: str | None,
                 savepoint: bool = True):
    """Mark a record entered in error, with a reason. Nothing clinical is hard-deleted."""
    errors = {}
    if version is None:
        errors["version"] = ["The version you are voiding is required."]
    if not (reason or "").strip():
        errors["reason"] = ["A reason is required to mark a record entered in error."]
    if errors:
        raise ValidationError(errors)
    with transaction.atomic(savepoint=savepoint):
        instance = model.objects.select_for_update().get(pk=pk)
        if instance.version != version:
            raise StaleVersionError(submitted=version, current=instance.version)
        if instance.voided:
            raise ValidationError({"voided": ["This record is already marked entered in error."]})
        instance.voided = True
        instance.void_reason = reason.strip()
        instance.version += 1
        _save_with_history(instance, user=user, reason=f"entered in error: {reason.strip()}")
    return instance


def system_update(instance: ClinicalModel, *, user, reason: str, changes: Mapping[str, Any]) -> bool:
    """Store values the system derives (day 0, age, status) with an audit row; no-op when unchanged.

    Must run inside the caller's transaction, on a row the caller has locked or just written.
    """
    changed = {name: value for name, value in changes.items() if getattr(instance, name) != value}
    if not changed:
        return False
    for name, value in changed.items():
        setattr(instance, name, value)
    instance.version += 1
    _save_with_history(instance, user=user, reason=SYSTEM_REASON_PREFIX + reason)
    return True
