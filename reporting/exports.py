"""Streaming CSV exports of every dataset (api.md ``exports/{dataset}.csv``; reports.md, Exports).

A dataset is a model, a trial lookup and a list of :class:`Column`. Two paths give the same bytes:

* PostgreSQL: the scoped SELECT, with every column formatted in SQL, runs as ``COPY (...) TO
  STDOUT WITH (FORMAT csv)`` in storage order (no sort: the first bytes leave at once); its
  output is re-buffered into 256 KiB chunks for the response.
* Anywhere else (the embedded SQLite default): the same rows through a server-side iterator,
  formatted in Python by the same rules.

Formats: booleans ``true``/``false``; dates ``YYYY-MM-DD``; date-times UTC
``YYYY-MM-DDTHH:MM:SS.ffffffZ``; derived grades 0-5 or ``NE``; code lists ``a;b``; JSON as
JSON text; empty cell = no value. Memory is constant whatever the size.
"""
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.db import connection
from django.db.models import DateField, DateTimeField, F, Func, QuerySet, TextField

from trials.selectors import scoped

from .deid import Disclosure, shifts_for

CHUNK_BYTES = 256 * 1024
ITERATOR_CHUNK_ROWS = 2000

# Column kinds; each has a SQL template (PostgreSQL) and a Python formatter giving the same text.
TEXT, INT, DECIMAL, FLOAT, BOOL, DATE, DATETIME, GRADE, CODES, JSON = (
    "text", "int", "decimal", "float", "bool", "date", "datetime", "grade", "codes", "json"
)


@dataclass(frozen=True)
class Column:
    name: str
    path: str  # ORM lookup from the dataset's model
    kind: str = TEXT
    identifier: bool = False  # shown only to site roles of the subject's site (date_of_birth)
    free_text: bool = False  # typed by a person: withheld from sponsor and DSMB
    shift: bool = True  # dates and date-times move with the subject's offset when dates are shifted


@dataclass(frozen=True)
class Dataset:
    name: str
    model: type
    trial_path: str
    columns: tuple[Column, ...]
    subject_path: str | None  # lookup of the subject pk, for the per-subject date shift
    modified_path: str = "modified_at"
    base_filter: dict = field(default_factory=dict)
    # Rows built in Python instead of by the column machinery (queries, audit):
    # ``rows(queryset, visible_columns, disclosure, trial, user=, since=)`` yields raw values in column order.
    rows: Callable | None = None

    def visible_columns(self, disclosure: Disclosure) -> list[Column]:
        return [
            c for c in self.columns
            if (disclosure.identifiers or not c.identifier) and (disclosure.free_text or not c.free_text)
        ]


# --- formatting: Python ---------------------------------------------------------------------

_NEEDS_QUOTES = re.compile(r'[",\r\n]')


def _csv_field(text: str) -> str:
    """Quote as PostgreSQL's COPY CSV does: only when the value holds a comma, quote or line break."""
    return '"' + text.replace('"', '""') + '"' if _NEEDS_QUOTES.search(text) else text


def _fmt_float(value: float) -> str:
    text = "%.15g" % value  # PostgreSQL's float8 -> numeric keeps 15 significant digits
    if "e" in text or "E" in text:
        text = format(Decimal(text), "f")
    return text


def _jsonb_order(value):
    """Key order of PostgreSQL jsonb output: shorter keys first, then bytewise."""
    if isinstance(value, dict):
        return {k: _jsonb_order(value[k]) for k in sorted(value, key=lambda k: (len(k.encode()), k.encode()))}
    if isinstance(value, list):
        return [_jsonb_order(v) for v in value]
    return value


def _python_formatter(kind: str) -> Callable[[object], str]:
    if kind in (TEXT,):
        return lambda v: _csv_field(str(v)) if v not in (None, "") else ""
    if kind in (INT, DECIMAL):
        return lambda v: "" if v is None else str(v)
    if kind == FLOAT:
        return lambda v: "" if v is None else _fmt_float(v)
    if kind == BOOL:
        return lambda v: "" if v is None else ("true" if v else "false")
    if kind == DATE:
        return lambda v: "" if v is None else v.isoformat()
    if kind == DATETIME:
        return lambda v: "" if v is None else v.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if kind == GRADE:
        return lambda v: "NE" if v is None else str(v)
    if kind == CODES:
        return lambda v: ";".join(v) if v else ""
    if kind == JSON:
        return lambda v: "" if v is None else _csv_field(json.dumps(_jsonb_order(v), ensure_ascii=False))
    raise ValueError(kind)


# --- formatting: PostgreSQL -----------------------------------------------------------------

_SQL = {
    TEXT: "NULLIF((%(expressions)s)::text, '')",
    INT: "%(expressions)s",
    DECIMAL: "%(expressions)s",
    FLOAT: "(%(expressions)s)::numeric",
    BOOL: "CASE WHEN %(expressions)s THEN 'true' WHEN NOT %(expressions)s THEN 'false' END",
    DATE: "%(expressions)s",
    DATETIME: "to_char((%(expressions)s) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')",
    GRADE: "COALESCE((%(expressions)s)::text, 'NE')",
    CODES: "NULLIF(replace(translate((%(expressions)s)::text, '[]\"', ''), ', ', ';'), '')",
    JSON: "(%(expressions)s)::text",
}
class _Format(Func):
    output_field = TextField()

    def __init__(self, expression, template):
        super().__init__(expression, template=template)


class ShiftDate(Func):
    """``date + offset days`` (PostgreSQL)."""

    arg_joiner = " + "
    template = "(%(expressions)s)"
    output_field = DateField()


class ShiftDatetime(Func):
    output_field = DateTimeField()
    template = "(%(expressions)s)"

    def as_postgresql(self, compiler, connection, **extra):
        (ts_sql, ts_params), (days_sql, days_params) = (compiler.compile(e) for e in self.source_expressions)
        return f"({ts_sql} + make_interval(days => {days_sql}))", [*ts_params, *days_params]


def _sql_expression(column: Column, shift_path: str | None):
    expr = F(column.path)
    if shift_path and column.shift and column.kind == DATE:
        return ShiftDate(expr, F(shift_path))
    if shift_path and column.shift and column.kind == DATETIME:
        return _Format(ShiftDatetime(expr, F(shift_path)), _SQL[DATETIME])
    return _Format(expr, _SQL[column.kind])


# --- the export itself ----------------------------------------------------------------------


@dataclass
class Export:
    """A prepared export: the header and a chunk iterator; ``rows`` is set when iteration ends."""

    header: list[str]
    chunks: Iterator[bytes]
    rows: int | None = None


def dataset_queryset(dataset: Dataset, *, user, trial, modified_since: datetime | None, ordered: bool = True) -> QuerySet:
    """The caller's rows of the dataset in the trial; ``ordered=False`` leaves storage order, so
    PostgreSQL streams the first row at once instead of sorting the whole result first."""
    qs = scoped(user, dataset.model.objects.filter(**dataset.base_filter))
    qs = qs.filter(**{dataset.trial_path: trial.pk})
    if modified_since is not None:
        qs = qs.filter(**{f"{dataset.modified_path}__gte": modified_since})
    return qs.order_by("pk") if ordered else qs.order_by()


def export_csv(dataset: Dataset, *, user, trial, disclosure: Disclosure, modified_since=None, use_copy=None) -> Export:
    """The dataset as CSV chunks of at least CHUNK_BYTES (the last may be smaller)."""
    columns = dataset.visible_columns(disclosure)
    header = [c.name for c in columns]
    shift = disclosure.shift_dates and dataset.subject_path is not None
    if shift:
        shifts_for(trial.pk)  # every subject has an offset before the SELECT joins them
    if use_copy is None:
        use_copy = connection.vendor == "postgresql"
    qs = dataset_queryset(dataset, user=user, trial=trial, modified_since=modified_since,
                          ordered=not use_copy or dataset.rows is not None)
    export = Export(header=header, chunks=iter(()))
    head = (",".join(header) + "\n").encode()
    if dataset.rows is not None:
        rows = dataset.rows(qs, columns, disclosure, trial, user=user, since=modified_since)
        body = _format_rows(rows, columns, export)
    elif use_copy:
        body = _copy_rows(qs, columns, dataset.subject_path if shift else None, export)
    else:
        body = _python_rows(qs, columns, dataset.subject_path if shift else None, export)
    export.chunks = _rebuffer(head, body)
    return export


def shift_lookup(subject_path: str) -> str:
    return "date_shift__days" if subject_path == "pk" else f"{subject_path}__date_shift__days"


def _copy_rows(qs: QuerySet, columns: list[Column], subject_path: str | None, export: Export) -> Iterator[bytes]:
    shift_path = shift_lookup(subject_path) if subject_path else None
    names = {f"c{i}": _sql_expression(c, shift_path) for i, c in enumerate(columns)}
    sql, params = qs.annotate(**names).values_list(*names).query.sql_with_params()
    with connection.cursor() as cursor:
        raw = cursor.cursor
        with raw.copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)", params) as copy:
            yield from copy
        export.rows = raw.rowcount


def _python_rows(qs: QuerySet, columns: list[Column], subject_path: str | None, export: Export) -> Iterator[bytes]:
    formatters = [_python_formatter(c.kind) for c in columns]
    shiftable = [bool(subject_path) and c.shift and c.kind in (DATE, DATETIME) for c in columns]
    paths = [c.path for c in columns]
    if subject_path:
        paths.append(shift_lookup(subject_path))
    def cell(i, value, days):
        if shiftable[i] and value is not None:
            value = None if days is None else value + timedelta(days=days)  # no offset: no date at all
        return formatters[i](value)

    width = len(columns)

    def line(row):
        days = row[-1] if subject_path else 0
        return ",".join([cell(i, row[i], days) for i in range(width)])

    yield from line_blocks(map(line, qs.values_list(*paths).iterator(chunk_size=ITERATOR_CHUNK_ROWS)), export)


def _rebuffer(head: bytes, blocks: Iterator[bytes]) -> Iterator[bytes]:
    """Large chunks: yielding each small COPY block is several times slower over HTTP."""
    buffer = bytearray(head)
    for block in blocks:
        buffer += block
        if len(buffer) >= CHUNK_BYTES:
            yield bytes(buffer)
            buffer.clear()
    if buffer:
        yield bytes(buffer)


def _format_rows(values: Iterator[list], columns: list[Column], export: Export) -> Iterator[bytes]:
    """Raw values from a Python-built dataset, formatted by their columns' kinds."""
    formatters = [_python_formatter(c.kind) for c in columns]
    yield from line_blocks((",".join([fmt(v) for fmt, v in zip(formatters, row)]) for row in values), export)


def line_blocks(lines: Iterator[str], export: Export, per_block: int = 500) -> Iterator[bytes]:
    """CSV lines joined into blocks of ``per_block`` lines; ``export.rows`` is set at the end."""
    count, block = 0, []
    for line in lines:
        block.append(line)
        count += 1
        if len(block) >= per_block:
            block.append("")
            yield "\n".join(block).encode()
            block = []
    if block:
        block.append("")
        yield "\n".join(block).encode()
    export.rows = count

