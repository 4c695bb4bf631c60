"""List pages formatted from database rows by the read serializer's own fields.

A DRF ``ModelSerializer`` builds a model instance for every row and walks each field through
``get_attribute`` and ``to_representation``: about 0.3 ms for a 45-field assessment, most of a
100-row page's time. A :class:`RowPlan` compiles a read serializer once: the columns its fields
read (``values_list``), and per field the serializer field's own ``to_representation`` (left out
where that returns the stored value as it is). Each row is then one tuple and one loop, and the
page is the serializer's output, key for key and value for value (tests compare the two for every
resource and every disclosure view).

A serializer is compiled only if all its fields can be (model columns, columns reached through a
foreign key, fields with ``represent_stored``, method fields over the row's own columns) and it
keeps its class's ``deidentify`` step; anything else keeps the serializer path.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from types import SimpleNamespace

from django.conf import settings
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.utils import timezone
from rest_framework import ISO_8601
from rest_framework import fields as drf_fields
from rest_framework import relations, serializers
from rest_framework.settings import api_settings

# Serializer fields whose representation of a non-null value is the value itself, for the model
# columns whose Python values they are given (bool, str, int, JSON).
_NATIVE = {
    drf_fields.BooleanField.to_representation: (models.BooleanField,),
    drf_fields.CharField.to_representation: (models.CharField, models.TextField),
    drf_fields.IntegerField.to_representation: (models.IntegerField,),
    drf_fields.ChoiceField.to_representation: (models.CharField, models.TextField, models.IntegerField),
    drf_fields.JSONField.to_representation: (models.JSONField,),
}
PLAIN, FORMATTED, STORED, METHOD, DATETIME = range(5)


def _identity(field, model_field) -> bool:
    method = type(field).to_representation
    if method is drf_fields.ReadOnlyField.to_representation:
        return True
    if isinstance(field, relations.PrimaryKeyRelatedField):
        return (method is relations.PrimaryKeyRelatedField.to_representation and field.pk_field is None
                and isinstance(model_field.target_field, models.IntegerField))
    if isinstance(field, drf_fields.JSONField) and field.binary:
        return False
    if method is drf_fields.ListField.to_representation:
        return isinstance(model_field, models.JSONField) and type(field.child).to_representation in _NATIVE
    return isinstance(model_field, _NATIVE.get(method, ()))


def _iso(field) -> bool:
    """A DateTimeField with ISO 8601 output in the current time zone (DRF's default)."""
    return (type(field).to_representation is drf_fields.DateTimeField.to_representation
            and getattr(field, "format", api_settings.DATETIME_FORMAT) == ISO_8601 and not hasattr(field, "timezone")
            and settings.USE_TZ)


def _iso_datetime(field, zone):
    """``field.to_representation`` of an aware date-time, as DRF writes it: ISO 8601 in ``zone``
    with "Z" for UTC; anything unusual (naive, out of range) goes to the field itself."""

    def represent(value):
        if value.tzinfo is None:
            return field.to_representation(value)
        try:
            text = value.astimezone(zone).isoformat()
        except OverflowError:
            return field.to_representation(value)
        return text[:-6] + "Z" if text.endswith("+00:00") else text

    return represent


def _model_field(model, source_attrs: list[str]):
    """The column a dotted source reads (``subject.subject_id``), or None if it is not one."""
    f = None
    for i, attr in enumerate(source_attrs):
        try:
            f = model._meta.get_field(attr)
        except FieldDoesNotExist:
            return None
        if f.many_to_many or f.one_to_many or not f.concrete:
            return None
        if i < len(source_attrs) - 1:
            if not f.is_relation:
                return None
            model = f.related_model
    return f


@dataclass(frozen=True)
class RowPlan:
    """How to turn a ``values_list(*columns)`` row into the serializer's representation."""

    serializer_class: type
    columns: tuple[str, ...]  # "pk" first (the cursor position), then the trial and the subject
    steps: tuple[tuple[str, int, int, object], ...]  # (key, column index, kind, formatter)
    object_columns: tuple[tuple[str, int], ...]  # (attname, column index) for method fields

    def represent(self, rows, serializer) -> list[dict]:
        """The page's representations; ``serializer`` is a bound instance (context, methods)."""
        object_columns, deidentify = self.object_columns, serializer.deidentify
        zone = timezone.get_current_timezone()
        steps = [(key, i, FORMATTED, _iso_datetime(fmt, zone)) if kind == DATETIME else (key, i, kind, fmt)
                 for key, i, kind, fmt in self.steps]
        methods = {key: getattr(serializer, fmt) for key, _, kind, fmt in steps if kind == METHOD}
        page = []
        for row in rows:
            data = {}
            obj = SimpleNamespace(**{name: row[i] for name, i in object_columns}) if methods else None
            for key, i, kind, fmt in steps:
                value = row[i]
                if kind == PLAIN:
                    data[key] = value
                elif kind == FORMATTED:
                    data[key] = None if value is None else fmt(value)
                elif kind == STORED:
                    data[key] = fmt(value)
                else:
                    data[key] = methods[key](obj)
            page.append(deidentify(data, trial_id=row[1], subject_pk=row[2]))
        return page


@cache
def row_plan(serializer_class) -> RowPlan | None:
    """The compiled plan of a read serializer, or None where it must build instances."""
    from .base import SubjectDatesSerializer

    if not issubclass(serializer_class, SubjectDatesSerializer) or not serializer_class.represents_rows():
        return None
    model = serializer_class.Meta.model
    try:
        subject = model._meta.get_field("subject")
    except FieldDoesNotExist:
        return None
    columns = ["pk", model.scope_trial, subject.attname]
    steps, methods = [], False

    def column(path):
        if path not in columns:
            columns.append(path)
        return columns.index(path)

    for key, field in serializer_class().fields.items():
        if field.write_only:
            continue
        if isinstance(field, serializers.SerializerMethodField):
            steps.append((key, 0, METHOD, field.method_name))
            methods = True
            continue
        if isinstance(field, serializers.BaseSerializer) or field.source == "*":
            return None
        model_field = _model_field(model, field.source_attrs)
        if model_field is None:
            return None
        path = model_field.attname if len(field.source_attrs) == 1 else "__".join(field.source_attrs)
        stored = getattr(field, "represent_stored", None)
        if stored is not None:
            steps.append((key, column(path), STORED, stored))
        elif _iso(field):
            steps.append((key, column(path), DATETIME, field))
        elif _identity(field, model_field):
            steps.append((key, column(path), PLAIN, None))
        else:
            steps.append((key, column(path), FORMATTED, field.to_representation))
    object_columns = ()
    if methods:  # method fields read the row's own columns, as they would the instance's
        object_columns = tuple((f.attname, column(f.attname)) for f in model._meta.concrete_fields)
    return RowPlan(serializer_class, tuple(columns), tuple(steps), object_columns)

