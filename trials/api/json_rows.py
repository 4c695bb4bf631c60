"""List pages written as JSON by PostgreSQL.

Where every field of a read serializer has a SQL form, PostgreSQL builds each row's JSON object
(``json_build_object``) in the serializer's key order and formats, DRF's: ISO 8601 dates, date-times
in UTC with "Z" (no fraction when it is zero), decimals as strings of the column's scale, "NE"
grades. The caller's view is applied in the same SELECT: withheld keys are left out and dates
move by the subject's offset. Python only joins the rows into the page, which saves the type
conversions, the formatting and the JSON encoding of every value (most of a page's time).

Used only on PostgreSQL, for the JSON renderer, in UTC, when all trials a page can hold share one
view; everything else takes the row path (``trials.api.rows``). Tests compare the parsed pages
with the serializer's for every resource, caller and view.
"""
from __future__ import annotations

import json
import re
from collections.abc import Sequence
from functools import cache

from django.db import connection, models
from django.db.models import F, TextField
from django.db.models.expressions import Col, Expression
from django.utils import timezone
from rest_framework import ISO_8601
from rest_framework import fields as drf_fields
from rest_framework.response import Response
from rest_framework.settings import api_settings

from . import rows
from .rows import DATETIME, FORMATTED, PLAIN, STORED, _model_field

# json_build_object writes each value as its type's JSON: numbers, booleans, escaped strings, jsonb
# as it is, dates as ISO 8601. Decimals become strings and date-times DRF's text.
_TEMPLATES = {
    "json": "%(expressions)s",
    "date": "%(expressions)s",
    "decimal": "(%(expressions)s)::text",
    "datetime": "replace(to_char((%(expressions)s) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), '.000000Z', 'Z')",
}
_NATIVE = (models.BooleanField, models.CharField, models.TextField, models.IntegerField, models.ForeignKey,
           models.JSONField)


class JsonObject(Expression):
    """``json_build_object(key, value, ...)::text`` with literal keys; ``items`` are
    ``(key, expression, template)``. Columns of the model's own table come as ``Col`` (no lookup
    to resolve per request: a page's SQL is built in a fraction of the time 45 ``F()`` take)."""

    output_field = TextField()

    def __init__(self, items):
        super().__init__()
        unsafe = [key for key, _, _ in items if not _KEY.fullmatch(key)]
        if unsafe:  # keys are serializer field names, written into the SQL as literals
            raise ValueError(f"not a field name: {unsafe}")
        self.items = items

    def get_source_expressions(self):
        return [expression for _, expression, _ in self.items]

    def set_source_expressions(self, expressions):
        self.items = [(key, e, template) for (key, _, template), e in zip(self.items, expressions)]

    def as_sql(self, compiler, connection):
        parts, params = [], []
        for key, expression, template in self.items:
            sql, more = compiler.compile(expression)
            parts.append(f"'{key}', " + template % {"expressions": sql})
            params.extend(more)
        return f"json_build_object({', '.join(parts)})::text", params


_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class JsonRows(Sequence):
    """A page's rows as the database wrote them: the renderer joins the ``texts``; Python code
    reading ``response.data["results"]`` sees the rows parsed (once, when first read)."""

    def __init__(self, texts: list[str]):
        self.texts = texts
        self._parsed = None

    def parsed(self) -> list[dict]:
        if self._parsed is None:
            self._parsed = [json.loads(text) for text in self.texts]
        return self._parsed

    def __len__(self):
        return len(self.texts)

    def __getitem__(self, index):
        return self.parsed()[index]

    def __eq__(self, other):
        return self.parsed() == (other.parsed() if isinstance(other, JsonRows) else other)

    __hash__ = None

    def __repr__(self):
        return repr(self.parsed())


class JsonRowsPage(dict):
    """A page whose ``results`` are :class:`JsonRows` (rendered by ``trials.api.renderers``)."""

    def parsed(self) -> dict:
        return {**self, "results": self["results"].parsed()}


def _sql_kind(field, kind: int, model_field) -> str | None:
    """The SQL form of one step of a row plan, or None."""
    if kind == PLAIN:  # bool, int, text, a related id, JSON: json_build_object writes what json.dumps would
        return "json" if isinstance(model_field, _NATIVE) else None
    if kind == STORED:
        return getattr(field, "represent_stored_sql", None)
    if kind == DATETIME:
        return "datetime"
    if kind != FORMATTED:
        return None
    method = type(field).to_representation
    if method is drf_fields.DateField.to_representation:
        iso = getattr(field, "format", api_settings.DATE_FORMAT) == ISO_8601
        date_column = isinstance(model_field, models.DateField) and not isinstance(model_field, models.DateTimeField)
        return "date" if iso and date_column else None
    if method is drf_fields.DecimalField.to_representation:
        coerce = getattr(field, "coerce_to_string", api_settings.COERCE_DECIMAL_TO_STRING)
        same_scale = getattr(model_field, "decimal_places", None) == field.decimal_places
        plain = not field.localize and not getattr(field, "normalize_output", False)
        return "decimal" if coerce and plain and same_scale else None
    if method is drf_fields.BigIntegerField.to_representation:
        coerce = getattr(field, "coerce_to_string", api_settings.COERCE_BIGINT_TO_STRING)
        return "json" if not coerce and isinstance(model_field, models.IntegerField) else None
    if method is drf_fields.FloatField.to_representation:
        return "json" if isinstance(model_field, models.FloatField) else None
    return None


@cache
def json_plan(serializer_class) -> tuple[tuple[str, str, str], ...] | None:
    """``(key, column path, SQL form)`` per field, or None if a field has no SQL form."""
    plan = rows.row_plan(serializer_class)
    if plan is None or plan.object_columns or serializer_class.shifted_text_fields:
        return None
    fields = serializer_class().fields
    model = serializer_class.Meta.model
    steps = []
    for key, index, kind, _ in plan.steps:
        field = fields[key]
        form = _sql_kind(field, kind, _model_field(model, field.source_attrs))
        if form is None:
            return None
        steps.append((key, plan.columns[index], form))
    return tuple(steps)


def page_rows(view, queryset, serializer):
    """The queryset as ``(pk, row JSON)`` pairs for this request, or None where the row path must
    serve it (another database, renderer or time zone, or trials with different views)."""
    from reporting.deid import RequestView, ensure_date_shifts
    from reporting.exports import ShiftDate, ShiftDatetime, shift_lookup

    from .renderers import JSONRenderer

    request = view.request
    steps = json_plan(type(serializer))
    if (steps is None or connection.vendor != "postgresql" or timezone.get_current_timezone_name() != "UTC"
            or not isinstance(getattr(request, "accepted_renderer", None), JSONRenderer)):
        return None
    trials = _page_trials(view)
    if not trials:
        return None
    disclosures = {RequestView.of(request).disclosure(t) for t in trials}
    if len(disclosures) != 1:
        return None
    disclosure = disclosures.pop()
    withheld = set(serializer.withheld_fields(disclosure))
    shifted = set(serializer.date_fields()) if disclosure.shift_dates else set()
    if shifted:
        for trial_id in trials:
            ensure_date_shifts(trial_id)  # every subject has an offset before the SELECT joins them
    model = queryset.model
    days = F(shift_lookup(model._meta.get_field("subject").name))
    items = []
    for key, path, form in steps:
        if key in withheld:
            continue
        expression = _column(model, path)
        if key in shifted:
            expression = ShiftDate(expression, days) if form == "date" else ShiftDatetime(expression, days)
        items.append((key, expression, _TEMPLATES.get(form, form)))
    return queryset.values_list("pk", JsonObject(items))


def _column(model, path: str):
    """A column of the model's own table as ``Col`` (its alias is the table's name in every
    query of the model); a column reached through a relation as ``F``, which adds the join."""
    if "__" in path:
        return F(path)
    field = model._meta.get_field(path)
    return Col(model._meta.db_table, field, field)


def _page_trials(view) -> list[int]:
    """The trials whose rows the page can hold: the ``trial`` asked for, else every trial of the caller."""
    from trials.selectors import RoleIndex

    grants = RoleIndex.for_user(view.request.user).grants
    raw = view.request.query_params.get("trial", "")
    filters = getattr(getattr(view, "filterset_class", None), "base_filters", {})
    if "trial" in filters and raw.isdigit() and int(raw) in grants:
        return [int(raw)]
    return sorted(grants)


class RowListMixin:
    """``list()`` through the read serializer's row plan where it has one: the database writes the
    JSON (:func:`page_rows`) where it can, else the rows are formatted in Python (``trials.api.rows``)."""

    def list(self, request, *args, **kwargs):
        plan = rows.row_plan(self.get_serializer_class())
        if plan is None:
            return super().list(request, *args, **kwargs)
        queryset, serializer = self.filter_queryset(self.get_queryset()), self.get_serializer()
        written = page_rows(self, queryset, serializer) if self.paginator is not None else None
        if written is not None:  # PostgreSQL wrote each row's JSON
            response = self.get_paginated_response(JsonRows([row for _, row in self.paginate_queryset(written)]))
            response.data = JsonRowsPage(response.data)
            return response
        values = queryset.values_list(*plan.columns)
        page = self.paginate_queryset(values)
        data = plan.represent(values if page is None else page, serializer)
        return Response(data) if page is None else self.get_paginated_response(data)
