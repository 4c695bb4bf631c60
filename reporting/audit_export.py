"""The audit trail over the API: ``GET /api/v1/audit/`` and the ``audit`` CSV dataset (api.md).

Every audited model (a model of ``trials`` or ``toxicity`` with a django-simple-history
``history`` and ``scope_trial``/``scope_site`` lookups) contributes its history table. One
history row is one entry: who, when, what (created / changed / voided / deleted), which record
and subject, the reason, and the changed fields with their old and new values (workflow.md,
"Corrections and audit"). Like :func:`trials.audit.field_changes`, every tracked column is
diffed, the non-editable ones (``version``, ``voided``) included; unlike it, the previous row
of a record is never looked up one query per row:

* the CSV walks each history table in ``(id, history_id)`` order with a server-side iterator,
  keeping only the previous row of the same record in memory (constant memory, any size);
* a JSON page annotates each row with its previous ``history_id`` and fetches those rows with
  one ``IN`` query per table (a constant number of queries, whatever the page size).

De-identification (reports.md; :mod:`reporting.deid`): ``date_of_birth`` changes only with
``Disclosure.identifiers``; free text (every ``TextField``, ``void_reason``,
``death_cause_other_text``) has its old and new values withheld and the change reason, typed by
a person, becomes ``[withheld]`` (system reasons stay) unless ``Disclosure.free_text``; with
``Disclosure.shift_dates`` every date and date-time of a subject's record, the time of the
change included, moves by the subject's offset. Set-up records (trial, site, cohort) have no
subject and are not shifted.

Values are given as text, in the formats of the CSV exports (``true``/``false``, ISO dates,
UTC date-times ``...Z``, JSON text); ``None`` is "no value" (an empty CSV cell, ``null`` in JSON).
"""
import base64
import binascii
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from types import SimpleNamespace

from django.apps import apps
from django.db import models
from django.db.models import Max, OuterRef, Q, Subquery

from trials.audit import _NOT_DIFFED, SYSTEM_REASON_PREFIX, tracked_fields
from trials.models import Site, Subject
from trials.selectors import RoleIndex

from .deid import FREE_TEXT_FIELDS, IDENTIFIER_FIELDS, Disclosure, redact_values, shift_value, shifts_for
from .exports import DATETIME, INT, TEXT, Column, Dataset

# ============================================================================================
# Audit trail (the ``audit/`` resource and ``exports/audit.csv``)
# ============================================================================================

AUDITED_APPS = ("trials", "toxicity")
WITHHELD = "[withheld]"
INITIAL_ENTRY = "initial entry"  # trials.audit.audited_create's reason for a first save
ITERATOR_CHUNK_ROWS = 2000

CREATED, CHANGED, VOIDED, DELETED = "created", "changed", "voided", "deleted"
ACTIONS = (CREATED, CHANGED, VOIDED, DELETED)

# Value kinds, for the text form of a value and for the date shift.
_BOOL, _DATE, _DATETIME, _DECIMAL, _FLOAT, _JSON, _OTHER = "bool", "date", "datetime", "decimal", "float", "json", "other"
_SHIFTED_KINDS = {_DATE, _DATETIME, _JSON}


# --- the audited tables ---------------------------------------------------------------------


@dataclass(frozen=True)
class AuditField:
    name: str  # data-dictionary name ("subject" for the FK, whose value is the id)
    attname: str
    kind: str
    free_text: bool
    identifier: bool


@dataclass(frozen=True)
class AuditedTable:
    """One audited model and its simple-history table."""

    model: type[models.Model]
    history: type[models.Model]
    label: str  # record_type, e.g. "toxicity.dailyassessment"
    trial_path: str  # scope lookups rewritten for the history table ("pk" -> "id")
    site_path: str | None
    subject_attname: str | None  # history column holding the subject pk ("id" for Subject itself)
    fields: tuple[AuditField, ...]
    columns: tuple[str, ...]  # values_list columns: _HEAD, then the fields
    subject_index: int | None  # where the subject pk is in a row
    voided_index: int | None  # the ``voided`` flag (clinical records) ...
    voided_at_index: int | None  # ... or ``voided_at`` (signatures)

    @property
    def rows(self) -> models.QuerySet:
        return self.history._default_manager.all()

    def subject_of(self, row: tuple) -> int | None:
        return None if self.subject_index is None else row[self.subject_index]


_HEAD = ("history_id", "id", "history_date", "history_type", "history_change_reason", "history_user__username")
_HISTORY_ID, _RECORD_ID, _AT, _TYPE, _REASON, _USER = range(len(_HEAD))


def _history_path(path: str | None) -> str | None:
    """A scope lookup of the model, as a lookup on its history table.

    simple-history keeps foreign keys (without database constraints), so ``subject__trial``
    works as it is; only the record itself moves from ``pk`` (``history_id`` there) to ``id``.
    A column the history does not record has its model's ``history_scope_trial`` instead.
    """
    if path is None:
        return None
    return "id" if path == "pk" else path


def _kind(f: models.Field) -> str:
    if isinstance(f, models.BooleanField):
        return _BOOL
    if isinstance(f, models.DateTimeField):
        return _DATETIME
    if isinstance(f, models.DateField):
        return _DATE
    if isinstance(f, models.DecimalField):
        return _DECIMAL
    if isinstance(f, models.FloatField):
        return _FLOAT
    if isinstance(f, models.JSONField):
        return _JSON
    return _OTHER


def _subject_attname(model) -> str | None:
    if model is Subject:
        return "id"
    try:
        f = model._meta.get_field("subject")
    except Exception:  # noqa: BLE001 - FieldDoesNotExist: a set-up record, no subject
        return None
    return f.attname if f.is_relation and f.related_model is Subject else None


def _table(model) -> AuditedTable:
    fields = tuple(
        AuditField(
            name=f.name, attname=f.attname, kind=_kind(f),
            free_text=isinstance(f, models.TextField) or f.name in FREE_TEXT_FIELDS,
            identifier=f.name in IDENTIFIER_FIELDS,
        )
        # the same columns as trials.audit.field_changes: all tracked fields but the bookkeeping
        for f in tracked_fields(model)
        if f.name not in _NOT_DIFFED and not f.primary_key
    )
    columns = (*_HEAD, *(f.attname for f in fields))
    subject_attname = _subject_attname(model)

    def index(attname):
        return columns.index(attname) if attname in columns[len(_HEAD):] else None

    return AuditedTable(
        model=model, history=model.history.model, label=model._meta.label_lower,
        trial_path=_history_path(getattr(model, "history_scope_trial", model.scope_trial)),
        site_path=_history_path(model.scope_site),
        subject_attname=subject_attname, fields=fields, columns=columns,
        subject_index=_RECORD_ID if subject_attname == "id" else index(subject_attname),
        voided_index=index("voided"), voided_at_index=index("voided_at"),
    )


@cache
def audited_tables() -> tuple[AuditedTable, ...]:
    """Every audited model, found at run time (models added later join by themselves), by label."""
    found = []
    for app in AUDITED_APPS:
        for model in apps.get_app_config(app).get_models():
            if hasattr(model, "history") and hasattr(model, "scope_trial") and hasattr(model, "scope_site"):
                found.append(_table(model))
    return tuple(sorted(found, key=lambda t: t.label))


def audited_table(label: str) -> AuditedTable | None:
    return next((t for t in audited_tables() if t.label == label), None)


# --- scope ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditScope:
    """What a caller reaches of one trial, as a :class:`~trials.selectors.RoleIndex` decides it."""

    trial_id: int
    index: RoleIndex

    @classmethod
    def for_user(cls, user, trial_id: int) -> "AuditScope | None":
        index = RoleIndex.for_user(user)
        return cls(trial_id, index) if trial_id in index.grants else None

    def q(self, table: AuditedTable) -> Q:
        # RoleIndex.q reads only scope_trial/scope_site: hand it the history-table lookups.
        lookups = SimpleNamespace(scope_trial=table.trial_path, scope_site=table.site_path)
        return self.index.q(lookups) & Q(**{table.trial_path: self.trial_id})


# --- one entry ------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditContext:
    disclosure: Disclosure
    shifts: dict[int, int]  # {subject pk: days}; empty unless dates are shifted


def audit_context(disclosure: Disclosure, trial_id: int) -> AuditContext:
    return AuditContext(disclosure, shifts_for(trial_id) if disclosure.shift_dates else {})


@dataclass(frozen=True)
class AuditEntry:
    history_id: int
    at: datetime | None  # None only when a shifted subject has no offset (nothing is shown)
    user: str | None
    action: str
    record_type: str
    record_id: int
    subject: int | None
    reason: str
    changes: list[tuple[str, str | None, str | None]]  # (field, old, new) as text

    def as_dict(self) -> dict:
        data = {k: getattr(self, k) for k in ("history_id", "at", "user", "action", "record_type", "record_id", "subject", "reason")}
        data["changes"] = [{"field": f, "old": o, "new": n} for f, o, n in self.changes]
        return data


def _empty(value) -> bool:
    return value is None or value == "" or value == [] or value == {}


def value_text(kind: str, value) -> str | None:
    """A value as the CSV exports write it; None for no value (blank text included)."""
    if value is None or value == "":
        return None
    if kind == _BOOL:
        return "true" if value else "false"
    if kind == _DATETIME:
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if kind == _DATE:
        return value.isoformat()
    if kind == _FLOAT:
        return "%.15g" % value
    if kind == _JSON:
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def disclosed_reason(reason: str | None, disclosure: Disclosure) -> str:
    """The change reason is free text typed by a person, except the system's own reasons."""
    reason = reason or ""
    if disclosure.free_text or not reason or reason == INITIAL_ENTRY or reason.startswith(SYSTEM_REASON_PREFIX):
        return reason
    return WITHHELD


def _action(table: AuditedTable, row: tuple, prev: tuple | None) -> str:
    kind = row[_TYPE]
    if kind == "+":
        return CREATED
    if kind == "-":
        return DELETED
    if prev is not None:
        i, j = table.voided_index, table.voided_at_index
        if (i is not None and not prev[i] and row[i]) or (j is not None and prev[j] is None and row[j] is not None):
            return VOIDED
    return CHANGED


def build_entry(table: AuditedTable, row: tuple, prev: tuple | None, ctx: AuditContext) -> AuditEntry:
    """The entry of one history row, given the previous row of the same record (or None)."""
    head = len(_HEAD)
    values, before = row[head:], (prev[head:] if prev is not None else None)
    if row[_TYPE] == "-":  # the last values, gone
        raw = [(f, v, None) for f, v in zip(table.fields, values) if not _empty(v)]
    elif before is None:  # first row: every value it has
        raw = [(f, None, v) for f, v in zip(table.fields, values) if not _empty(v)]
    else:
        raw = [(f, o, n) for f, o, n in zip(table.fields, before, values) if o != n]

    disclosure = ctx.disclosure
    subject = table.subject_of(row)
    shift = disclosure.shift_dates and subject is not None
    days = ctx.shifts.get(subject) if shift else None
    at, reason = row[_AT], disclosed_reason(row[_REASON], disclosure)
    if shift:
        at = None if days is None else shift_value(at, days)
        if reason and reason != WITHHELD:
            reason = shift_value(reason, days) if days is not None else WITHHELD  # system reasons may cite dates

    changes = []
    for f, old, new in raw:
        if f.identifier and not disclosure.identifiers:
            continue
        if table.label == "toxicity.query" and f.name == "values":
            old, new = redact_values(old, disclosure), redact_values(new, disclosure)  # shifted below (JSON)
        if f.free_text and not disclosure.free_text:
            old = new = None
        elif shift and f.kind in _SHIFTED_KINDS:
            old, new = (None if days is None else shift_value(v, days) for v in (old, new))
        changes.append((f.name, value_text(f.kind, old), value_text(f.kind, new)))
    return AuditEntry(
        history_id=row[_HISTORY_ID], at=at, user=row[_USER], action=_action(table, row, prev),
        record_type=table.label, record_id=row[_RECORD_ID], subject=subject, reason=reason, changes=changes,
    )


# --- the JSON pages: merged across tables in (history_date, record_type, history_id) order ----


class InvalidCursor(ValueError):
    pass


@dataclass(frozen=True)
class Cursor:
    """A position in the total order (an entry), and which way to read from it.

    It names the entry only (record type, history id): its time is looked up, in scope, when the
    cursor comes back. A time in the cursor would give a sponsor the real time of a date-shifted
    entry (base64 is no secret), and with it the subject's offset.
    """

    forward: bool
    record_type: str
    history_id: int

    def encode(self) -> str:
        raw = json.dumps(["n" if self.forward else "p", self.record_type, self.history_id])
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> "Cursor":
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            direction, record_type, history_id = json.loads(raw)
            if direction not in ("n", "p") or not isinstance(record_type, str) \
                    or not isinstance(history_id, int) or isinstance(history_id, bool):
                raise ValueError
        except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
            raise InvalidCursor("This cursor is not one this endpoint gave out.") from None
        return cls(direction == "n", record_type, history_id)

    def position(self, scope: "AuditScope") -> tuple[datetime, str, int]:
        """(history_date, record_type, history_id) of the entry; one query."""
        table = audited_table(self.record_type)
        at = None
        if table is not None:
            at = table.rows.filter(scope.q(table), history_id=self.history_id).values_list("history_date", flat=True).first()
        if at is None:
            raise InvalidCursor("This cursor is not one this endpoint gave out.")
        return at, self.record_type, self.history_id


@dataclass(frozen=True)
class AuditFilters:
    subject: int | None = None
    user: str | None = None
    since: datetime | None = None
    record_type: str | None = None


def _filtered_tables(filters: AuditFilters) -> list[AuditedTable]:
    tables = audited_tables()
    if filters.record_type:
        tables = [t for t in tables if t.label == filters.record_type]
    if filters.subject is not None:
        tables = [t for t in tables if t.subject_attname is not None]
    return list(tables)


def _filter_q(table: AuditedTable, scope: AuditScope, filters: AuditFilters) -> Q:
    q = scope.q(table)
    if filters.subject is not None:
        q &= Q(**{table.subject_attname: filters.subject})
    if filters.user:
        q &= Q(history_user__username=filters.user)
    if filters.since is not None:
        q &= Q(history_date__gte=filters.since)
    return q


def _cursor_q(table: AuditedTable, position: tuple[datetime, str, int] | None, forward: bool) -> Q:
    """Rows strictly after (forward) or before a position in (history_date, record_type, history_id)."""
    if position is None:
        return Q()
    d, record_type, history_id = position
    label = table.label
    if forward:
        if label == record_type:
            return Q(history_date__gt=d) | Q(history_date=d, history_id__gt=history_id)
        return Q(history_date__gte=d) if label > record_type else Q(history_date__gt=d)
    if label == record_type:
        return Q(history_date__lt=d) | Q(history_date=d, history_id__lt=history_id)
    return Q(history_date__lte=d) if label < record_type else Q(history_date__lt=d)


@dataclass
class AuditPage:
    entries: list[AuditEntry]
    next: Cursor | None
    previous: Cursor | None


def audit_page(*, scope: AuditScope, ctx: AuditContext, filters: AuditFilters, cursor: Cursor | None,
               page_size: int) -> AuditPage:
    """One page; at most two queries per history table (the page's rows, then their previous rows).

    Raises :class:`InvalidCursor` for a cursor naming no entry in scope.
    """
    forward = cursor is None or cursor.forward
    position = cursor.position(scope) if cursor is not None else None
    order = ("history_date", "history_id") if forward else ("-history_date", "-history_id")
    fetched: list[tuple[tuple, AuditedTable, tuple]] = []  # (sort key, table, row)
    for table in _filtered_tables(filters):
        previous_id = Subquery(
            table.rows.filter(id=OuterRef("id"), history_id__lt=OuterRef("history_id"))
            .order_by("-history_id").values("history_id")[:1]
        )
        rows = (
            table.rows.filter(_filter_q(table, scope, filters) & _cursor_q(table, position, forward))
            .annotate(audit_previous_id=previous_id)
            .order_by(*order)
            .values_list(*table.columns, "audit_previous_id")[: page_size + 1]
        )
        fetched.extend(((row[_AT], table.label, row[_HISTORY_ID]), table, row) for row in rows)
    fetched.sort(key=lambda item: item[0], reverse=not forward)
    has_more = len(fetched) > page_size
    fetched = fetched[:page_size]
    if not forward:
        fetched.reverse()

    wanted: dict[str, tuple[AuditedTable, set[int]]] = {}
    for _, table, row in fetched:
        if row[-1] is not None:
            wanted.setdefault(table.label, (table, set()))[1].add(row[-1])
    previous_rows: dict[tuple[str, int], tuple] = {}
    for label, (table, ids) in wanted.items():
        for row in table.rows.filter(history_id__in=sorted(ids)).values_list(*table.columns):
            previous_rows[label, row[_HISTORY_ID]] = row

    entries = [
        build_entry(table, row[:-1], previous_rows.get((table.label, row[-1])), ctx) for _, table, row in fetched
    ]

    def at(item, direction):
        _, label, history_id = item[0]
        return Cursor(direction, label, history_id)

    next_cursor = previous_cursor = None
    if fetched:
        if forward:
            next_cursor = at(fetched[-1], True) if has_more else None
            previous_cursor = at(fetched[0], False) if cursor is not None else None
        else:
            previous_cursor = at(fetched[0], False) if has_more else None
            next_cursor = at(fetched[-1], True)
    return AuditPage(entries, next_cursor, previous_cursor)


# --- the CSV: each history table in (id, history_id) order, constant memory ------------------


def iter_entries(*, scope: AuditScope, ctx: AuditContext, filters: AuditFilters = AuditFilters()) -> Iterator[AuditEntry]:
    """Every entry in scope, table by table, each table in (record id, history_id) order.

    Only the previous row of the record being read is held. With ``since``, a record changed
    since then is read from its last row before ``since`` (the "old" side of its first change).
    The ``user`` filter is applied here, not in SQL: the previous row is the record's, whoever
    wrote it.
    """
    since = filters.since
    for table in _filtered_tables(filters):
        rows = table.rows.filter(_filter_q(table, scope, AuditFilters(subject=filters.subject)))
        if since is not None:
            changed = rows.filter(history_date__gte=since).values("id")
            last_before = (
                table.rows.filter(id__in=changed, history_date__lt=since)
                .order_by().values("id").annotate(last=Max("history_id")).values("last")
            )
            rows = rows.filter(Q(history_date__gte=since) | Q(history_id__in=last_before))
        previous = None
        for row in rows.order_by("id", "history_id").values_list(*table.columns).iterator(chunk_size=ITERATOR_CHUNK_ROWS):
            before = previous if previous is not None and previous[_RECORD_ID] == row[_RECORD_ID] else None
            previous = row
            if since is not None and row[_AT] < since:
                continue
            if filters.user and row[_USER] != filters.user:
                continue
            yield build_entry(table, row, before, ctx)


AUDIT_COLUMNS = (
    Column("history_id", "history_id", INT),
    Column("at", "history_date", DATETIME),
    Column("user", "history_user__username", TEXT),
    Column("action", "history_type", TEXT),
    Column("record_type", "record_type", TEXT),
    Column("record_id", "id", INT),
    Column("subject", "subject", INT),
    Column("field", "field", TEXT),
    Column("old", "old", TEXT),
    Column("new", "new", TEXT),
    Column("reason", "history_change_reason", TEXT),
)


def entry_rows(entry: AuditEntry) -> Iterator[list]:
    """CSV rows of an entry: one per changed field (one with an empty field when none is shown)."""
    head = [entry.history_id, entry.at, entry.user, entry.action, entry.record_type, entry.record_id, entry.subject]
    for field, old, new in entry.changes or [(None, None, None)]:
        yield [*head, field, old, new, entry.reason]


def audit_rows(*, user, trial, disclosure: Disclosure, since: datetime | None = None,
               columns: Iterable[Column] = AUDIT_COLUMNS) -> Iterator[list]:
    """The ``audit`` dataset's raw rows for ``user`` (values in ``columns`` order)."""
    scope = AuditScope.for_user(user, trial.pk)
    if scope is None:
        return iter(())
    return _rows(scope, audit_context(disclosure, trial.pk), since, columns)


def _rows(scope: AuditScope, ctx: AuditContext, since, columns) -> Iterator[list]:
    positions = [[c.name for c in AUDIT_COLUMNS].index(c.name) for c in columns]
    for entry in iter_entries(scope=scope, ctx=ctx, filters=AuditFilters(since=since)):
        for row in entry_rows(entry):
            yield [row[i] for i in positions]


def _export_rows(queryset, columns, disclosure: Disclosure, trial, *, user, since=None):
    """``Dataset.rows`` for ``audit``: every history table the user reaches (the queryset, of
    Site, is not used: the audit spans many tables)."""
    return audit_rows(user=user, trial=trial, disclosure=disclosure, since=since, columns=columns)


def audit_dataset() -> Dataset:
    """The ``audit`` export: rows built from every history table by :func:`_export_rows`.

    The audit spans many tables, so the Dataset's own model is only a carrier of the caller's
    scope: ``Site`` (whose scope lookups are the trial and the site itself) filtered by the
    trial; its rows are never exported. ``modified_since`` is the audit's ``since``.
    """
    return Dataset(
        "audit", Site, "trial", AUDIT_COLUMNS, subject_path=None, modified_path="modified_at", rows=_export_rows,
    )
