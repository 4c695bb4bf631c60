from datetime import timezone as dt_timezone

import django_filters
from django.core.exceptions import ValidationError
from rest_framework import serializers

from trials.models import Infusion, Subject


class IdFilter(django_filters.NumberFilter):
    """An id reached through a relation (``subject__trial``). Django checks the range of integers
    compared with a column, but not through a relation: beyond 64 bits SQLite raised
    OverflowError (a 500). Out of range is now a 400 naming the filter."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", -(2**63))
        kwargs.setdefault("max_value", 2**63 - 1)
        super().__init__(*args, **kwargs)


class UtcIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    """ISO 8601 with any offset Python accepts, compared in UTC (PostgreSQL refuses offsets beyond
    +-15:59, which a client may legally send: e.g. +20:00 would otherwise fail in the database)."""

    def filter(self, qs, value):
        return super().filter(qs, to_utc(value))


def to_utc(value):
    if value is None:
        return None
    if value.tzinfo is None:
        return value
    try:
        return value.astimezone(dt_timezone.utc)
    except OverflowError:  # year 1 at a positive offset, 9999 at a negative one
        raise serializers.ValidationError({"modified_since": ["This date-time is out of range."]})


class ModifiedSinceFilterSet(django_filters.FilterSet):
    modified_since = UtcIsoDateTimeFilter(
        field_name="modified_at", lookup_expr="gte", help_text="ISO 8601; rows changed at or after this time."
    )


class SubjectFilter(ModifiedSinceFilterSet):
    class Meta:
        model = Subject
        fields = ["trial", "site", "cohort", "status"]


class InfusionFilter(ModifiedSinceFilterSet):
    trial = IdFilter(field_name="subject__trial")
    site = IdFilter(field_name="subject__site")

    class Meta:
        model = Infusion
        fields = ["subject", "trial", "site", "infusion_number"]


class ModifiedSinceBackend:
    """``modified_since`` on every list whose rows carry ``modified_at`` (api.md, Conventions),
    also where a resource declares no filter set of its own; a bad value is a 400 naming it."""

    param = "modified_since"

    def _applies(self, view) -> bool:
        filterset = getattr(view, "filterset_class", None)
        if filterset is not None and self.param in filterset.base_filters:
            return False  # the resource's own filter set handles (and documents) it
        model = getattr(view, "model", None) or _view_model(view)
        return model is not None and any(f.name == "modified_at" for f in model._meta.fields)

    def filter_queryset(self, request, queryset, view):
        raw = request.query_params.get(self.param)
        if raw in (None, "") or not any(f.name == "modified_at" for f in queryset.model._meta.fields):
            return queryset
        form_field = django_filters.IsoDateTimeFilter().field
        try:
            value = form_field.clean(raw)
        except ValidationError:
            raise serializers.ValidationError({self.param: [f"'{raw}' is not an ISO 8601 date-time, e.g. 2026-11-01T00:00:00Z."]})
        return queryset.filter(modified_at__gte=to_utc(value))

    def get_schema_operation_parameters(self, view):
        if not self._applies(view):
            return []
        return [{
            "name": self.param, "required": False, "in": "query",
            "description": "ISO 8601; rows changed at or after this time.",
            "schema": {"type": "string", "format": "date-time"},
        }]


def _view_model(view):
    serializer = getattr(view, "serializer_class", None) or getattr(view, "read_serializer_class", None)
    return getattr(getattr(serializer, "Meta", None), "model", None)
