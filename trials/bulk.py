"""Fast bulk writes of audited rows, each with its history row (synthetic trials, imports, and the
grades the course derivation stores).

Django's ``bulk_create`` spends ~10 µs per value compiling SQL; this path converts each value
once and streams the rows with ``COPY ... FROM STDIN`` on PostgreSQL (``executemany`` on the
embedded SQLite). Primary keys are reserved up front so the history rows and child rows can
refer to them. Guards (locks) and after-write hooks (signatures) run as for any audited write;
``bulk_insert`` is the same path without them, for rows that are not clinical data (the
consistency job's queries and their messages).
"""
import json
from datetime import datetime, timezone as dt_timezone
from operator import attrgetter

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models, transaction
from django.utils import timezone

from .audit import AFTER_WRITE, WRITE_GUARDS, tracked_fields


def _converter(field, vendor):
    """A cheap value converter for one column, chosen once per field; None: the value as it is."""
    if isinstance(field, models.JSONField):
        return lambda v: None if v is None else json.dumps(v, cls=DjangoJSONEncoder)
    if vendor == "postgresql":
        return None  # psycopg adapts int, str, bool, Decimal, date and aware datetime itself
    if isinstance(field, models.DateTimeField):
        def to_sqlite(v):
            if v is None:
                return None
            return v.astimezone(dt_timezone.utc).replace(tzinfo=None).isoformat(" ")
        return to_sqlite
    if isinstance(field, (models.DateField, models.DecimalField)):
        return lambda v: None if v is None else str(v)
    return None


def _reserve_ids(model, n, cursor):
    table = model._meta.db_table
    if connection.vendor == "postgresql":
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)", [table, model._meta.pk.column, n]
        )
        return [row[0] for row in cursor.fetchall()]
    cursor.execute(f'SELECT COALESCE(MAX("{model._meta.pk.column}"), 0) FROM "{table}"')
    start = cursor.fetchone()[0] + 1
    return list(range(start, start + n))


def _write(cursor, table, columns, rows):
    quoted = ", ".join(f'"{c}"' for c in columns)
    if connection.vendor == "postgresql":
        with cursor.copy(f'COPY "{table}" ({quoted}) FROM STDIN') as copy:
            for row in rows:
                copy.write_row(row)
    else:
        marks = ", ".join("?" for _ in columns)
        cursor.executemany(f'INSERT INTO "{table}" ({quoted}) VALUES ({marks})', rows)


def bulk_insert_with_history(model, objs: list, *, user, reason: str) -> list:
    """Insert new rows of an audited model and one history row each ("+", user, reason)."""
    if not objs:
        return objs
    for guard in WRITE_GUARDS:
        guard(objs)
    with transaction.atomic():
        bulk_insert(model, objs, history_user_id=getattr(user, "pk", None), history_reason=reason)
        for hook in AFTER_WRITE:
            hook(objs, user)
    return objs


def bulk_insert(model, objs: list, *, history_reason: str | None = None, history_user_id=None,
                history_user_ids: list | None = None) -> list:
    """Insert new rows as they stand (no write guards, no hooks) and, with ``history_reason``, one
    "+" history row each, by ``history_user_id`` (or ``history_user_ids``, one per row). Sets the
    primary keys; ``auto_now`` / ``auto_now_add`` columns get the same moment, as the history date.
    A model's ``before_bulk_insert(objs)`` fills what its ``save()`` would (``SubjectRecord.subject_trial``)."""
    if not objs:
        return objs
    if hasattr(model, "before_bulk_insert"):
        model.before_bulk_insert(objs)
    now = timezone.now()
    fields = [f for f in model._meta.local_concrete_fields]
    stamped = [f.attname for f in fields if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False)]
    for obj in objs:
        for name in stamped:
            setattr(obj, name, now)
    tracked = [f.attname for f in fields]
    values = attrgetter(*tracked) if len(tracked) > 1 else (lambda obj: (getattr(obj, tracked[0]),))
    converted = [(i, c) for i, c in enumerate(_converter(f, connection.vendor) for f in fields) if c is not None]
    with transaction.atomic(), connection.cursor() as wrapper:
        cursor = wrapper.cursor if connection.vendor == "postgresql" else wrapper
        for obj, pk in zip(objs, _reserve_ids(model, len(objs), wrapper)):
            obj.pk = pk
            obj._state.adding, obj._state.db = False, connection.alias
        rows = [[*values(obj)] for obj in objs]
        for row in rows if converted else ():
            for i, convert in converted:
                row[i] = convert(row[i])
        _write(cursor, model._meta.db_table, [model._meta.get_field(f.name).column for f in fields], rows)
        if history_reason is not None:
            history = model.history.model
            history_date = now if connection.vendor == "postgresql" else convert_datetime_sqlite(now)
            users = history_user_ids if history_user_ids is not None else [history_user_id] * len(rows)
            recorded = {f.name for f in tracked_fields(model)}
            keep = [i for i, f in enumerate(fields) if f.name in recorded]
            if len(keep) < len(fields):  # columns the history does not record (trials.audit.NOT_TRACKED)
                rows = ([row[i] for i in keep] for row in rows)
            _write(
                cursor, history._meta.db_table,
                [history._meta.get_field(fields[i].name).column for i in keep]
                + ["history_date", "history_change_reason", "history_type", "history_user_id"],
                [row + [history_date, history_reason, "+", user] for row, user in zip(rows, users)],
            )
    return objs


def bulk_update_with_history(model, objs: list, fields: list[str], *, user, reason: str) -> list:
    """Store changed columns of existing audited rows, and one "~" history row each (the whole row
    as it now stands, by ``user``, with ``reason``): one UPDATE and one history insert however many
    rows, instead of a save and a history insert per row. Each row's ``version`` goes up by one.
    Guards (locks) and after-write hooks (signatures) run as for any audited write."""
    if not objs:
        return objs
    for guard in WRITE_GUARDS:
        guard(objs)
    now = timezone.now()
    for obj in objs:
        obj.version += 1
        obj.modified_at = now
    with transaction.atomic(), connection.cursor() as wrapper:
        # The sanctioned bypass of AuditedQuerySet.bulk_update: the history rows follow here.
        models.QuerySet(model).bulk_update(objs, [*fields, "version", "modified_at"])
        cursor = wrapper.cursor if connection.vendor == "postgresql" else wrapper
        history = model.history.model
        recorded = tracked_fields(model)
        converters = [_converter(f, connection.vendor) for f in recorded]
        rows = []
        for obj in objs:
            row = [getattr(obj, f.attname) for f in recorded]
            for i, convert in enumerate(converters):
                if convert is not None:
                    row[i] = convert(row[i])
            rows.append(row)
        history_date = now if connection.vendor == "postgresql" else convert_datetime_sqlite(now)
        user_id = getattr(user, "pk", None)
        _write(
            cursor, history._meta.db_table,
            [history._meta.get_field(f.name).column for f in recorded]
            + ["history_date", "history_change_reason", "history_type", "history_user_id"],
            [row + [history_date, reason, "~", user_id] for row in rows],
        )
        for hook in AFTER_WRITE:
            hook(objs, user)
    return objs


def convert_datetime_sqlite(moment: datetime) -> str:
    return moment.astimezone(dt_timezone.utc).replace(tzinfo=None).isoformat(" ")
