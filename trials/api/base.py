"""Shared machinery for clinical API resources: scoping, version/reason writes, void.

A resource declares its selector and its services; everything else (404 outside scope, 409
on a stale version, the reason after first save, "entered in error") is the same everywhere.
"""
import copy
from functools import cache

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.permissions import SAFE_METHODS
from rest_framework.response import Response

from trials.models import Subject
from trials.roles import ALL_ROLES, DATA_ENTRY_ROLES
from trials.selectors import RoleIndex

from .json_rows import RowListMixin


VERSION_HELP = "The version you edited; a stale version is refused with 409."
REASON_HELP = "Why the data change, e.g. 'transcription error'."


class VoidSerializer(serializers.Serializer):
    version = serializers.IntegerField(min_value=1, help_text=VERSION_HELP)
    reason = serializers.CharField(help_text="Why the record was entered in error.")


def change_serializer(reason_key: str) -> serializers.Serializer:
    """The fields every later change carries (workflow.md): ``version`` and the reason for change.

    The reason travels as ``reason`` (api.md), or as ``change_reason`` on resources whose own
    data have a field called ``reason`` (icu-stays); ``change_reason`` is accepted everywhere.
    """
    return type("ChangeSerializer", (serializers.Serializer,), {
        "version": serializers.IntegerField(min_value=1, help_text=VERSION_HELP),
        reason_key: serializers.CharField(help_text=REASON_HELP),
    })


class WriteSerializer(serializers.ModelSerializer):
    """Parses types only; limits and cross-field rules run in the service, so one 400 names every field."""

    def build_standard_field(self, field_name, model_field):
        field_class, field_kwargs = super().build_standard_field(field_name, model_field)
        for limit in ("min_value", "max_value", "validators"):
            field_kwargs.pop(limit, None)
        return field_class, field_kwargs


class SubjectDatesSerializer(serializers.ModelSerializer):
    """Sponsor and DSMB views of a trial with ``export_date_shift`` see every date of a subject
    moved by the subject's offset (reports.md, De-identification), as in the CSV exports.

    The representation is the fields' followed by :meth:`deidentify`; list pages compute the
    same from database rows (``trials.api.rows``) unless a subclass overrides ``to_representation``.
    """

    shifted_text_fields: tuple[str, ...] = ()

    def to_representation(self, instance):
        subject_pk = instance.pk if isinstance(instance, Subject) else getattr(instance, "subject_id", None)
        trial_id = instance.trial_id if hasattr(instance, "trial_id") else instance.subject.trial_id
        return self.deidentify(super().to_representation(instance), trial_id=trial_id, subject_pk=subject_pk)

    @classmethod
    def represents_rows(cls) -> bool:
        return cls.to_representation is SubjectDatesSerializer.to_representation

    @classmethod
    def date_fields(cls) -> list[str]:
        found = cls.__dict__.get("_date_fields")
        if found is None:  # once per class, not per row
            found = [n for n, f in cls().fields.items() if isinstance(f, (serializers.DateField, serializers.DateTimeField))]
            cls._date_fields = found
        return found

    def deidentify(self, data: dict, *, trial_id: int, subject_pk: int | None) -> dict:
        steps = self.__dict__.setdefault("_deidentifiers", {})  # once per trial (a list's rows share one child)
        if trial_id not in steps:
            steps[trial_id] = self.deidentifier(trial_id)
        step = steps[trial_id]
        return data if step is None else step(data, subject_pk)

    def withheld_fields(self, disclosure) -> tuple[str, ...]:
        """Keys left out of the representation for a view (``reporting.deid.Disclosure``)."""
        return ()

    def deidentifier(self, trial_id: int):
        """``step(data, subject_pk)``: what the caller's view of ``trial_id`` does to one
        representation (withheld keys, shifted dates), or None when it changes nothing. The SQL
        pages (trials.api.json_rows) apply the same view in their SELECT."""
        from reporting.deid import RequestView, representation_shifter

        request = self.context.get("request")
        if request is None:
            return None
        withheld = self.withheld_fields(RequestView.of(request).disclosure(trial_id))
        shift = representation_shifter(request, trial_id, (*self.date_fields(), *self.shifted_text_fields))
        if not withheld:
            return shift

        def withhold(data: dict, subject_pk: int | None) -> dict:
            for key in withheld:
                data.pop(key, None)
            return data if shift is None else shift(data, subject_pk)

        return withhold


class ClinicalSerializer(SubjectDatesSerializer):
    """Read representation: audit columns plus the model's fields."""

    AUDIT_FIELDS = ("version", "voided", "void_reason", "created_at", "modified_at")

    class Meta:
        read_only_fields = ("id", "version", "voided", "void_reason", "created_at", "modified_at")

    def withheld_fields(self, disclosure) -> tuple[str, ...]:
        # The void reason is typed by the site: withheld from sponsor and DSMB as in the CSV
        # exports (reports.md, De-identification).
        return () if disclosure.free_text else ("void_reason",)


class DetailSerializer(serializers.Serializer):
    detail = serializers.CharField()


class StaleVersionSerializer(serializers.Serializer):
    version = serializers.ListField(child=serializers.CharField(), help_text="Why the change was refused.")
    current_version = serializers.IntegerField(help_text="The stored version: reload, reapply, resend.")


ERROR_RESPONSES = {
    400: OpenApiResponse(OpenApiTypes.OBJECT, description='Every bad field named: {"field_name": ["message"], ...}'),
    404: OpenApiResponse(DetailSerializer, description="No such record, or outside the caller's trials and sites."),
    409: OpenApiResponse(StaleVersionSerializer, description="`version` is stale: someone else changed the record."),
    423: OpenApiResponse(DetailSerializer, description="The record, its casebook or its trial is locked."),
}


@cache
def change_request_serializer(write_serializer_class, reason_key: str):
    """The documented PATCH body: any of the write fields, plus the required ``version`` and reason."""
    change = change_serializer(reason_key)._declared_fields  # the fields partial_update validates
    meta = type("Meta", (write_serializer_class.Meta,), {"fields": [*write_serializer_class.Meta.fields, *change]})
    name = write_serializer_class.__name__.replace("WriteSerializer", "ChangeSerializer")
    return type(name, (write_serializer_class,), {
        "Meta": meta, "required_in_patch": tuple(change), **{k: copy.deepcopy(f) for k, f in change.items()},
    })


class ClinicalSchema(AutoSchema):
    """What ClinicalViewSet writes take and answer (api.md): a PATCH carries ``version`` and the
    reason; create, PATCH and void answer with the record's read representation; errors as api.md."""

    def get_request_serializer(self):
        if self.view.action == "partial_update":
            return change_request_serializer(self.view.write_serializer_class, self.view.change_reason_key())
        return super().get_request_serializer()

    def get_response_serializers(self):
        read, action = self.view.read_serializer_class, self.view.action
        if action == "create":
            return {201: read, 400: ERROR_RESPONSES[400], 404: ERROR_RESPONSES[404], 423: ERROR_RESPONSES[423]}
        if action in ("partial_update", "void"):
            return {200: read, **ERROR_RESPONSES}
        return super().get_response_serializers()

    def _map_basic_serializer(self, serializer, direction):
        # drf-spectacular makes every field of a PATCH body optional; version and reason are not.
        schema = super()._map_basic_serializer(serializer, direction)
        needed = getattr(serializer, "required_in_patch", ())
        if needed and direction == "request":
            schema["required"] = [*schema.get("required", []), *(n for n in needed if n not in schema.get("required", []))]
        return schema


class ClinicalViewSet(RowListMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin,
                      viewsets.GenericViewSet):
    """List, detail, create (POST), PATCH with version and reason, POST .../void/; no DELETE."""

    schema = ClinicalSchema()
    http_method_names = ["get", "post", "put", "patch", "head", "options"]  # PUT only where an action allows it
    write_roles = DATA_ENTRY_ROLES
    read_serializer_class = None
    write_serializer_class = None

    # -- to be provided by each resource
    def selector(self, *, user, roles):  # pragma: no cover - abstract
        raise NotImplementedError

    def service_create(self, *, user, data):  # pragma: no cover - abstract
        raise NotImplementedError

    def service_update(self, instance, *, user, version, reason, changes):  # pragma: no cover - abstract
        raise NotImplementedError

    def service_void(self, instance, *, user, version, reason):  # pragma: no cover - abstract
        raise NotImplementedError

    # -- shared behaviour
    def get_queryset(self):
        roles = ALL_ROLES if self.request.method in SAFE_METHODS else self.write_roles
        qs = self.selector(user=self.request.user, roles=roles)
        if self.action == "list" and self.request.query_params.get("include_voided") not in ("1", "true"):
            qs = qs.filter(voided=False)
        return qs

    def get_serializer_class(self):
        if self.action in ("create", "partial_update"):
            return self.write_serializer_class
        if self.action == "void":
            return VoidSerializer
        return self.read_serializer_class

    def change_reason_key(self) -> str:
        fields = self.write_serializer_class.Meta.fields
        return "change_reason" if "reason" in fields else "reason"

    def _require_write_role(self):
        index = RoleIndex.for_user(self.request.user)
        if not any(index.has(self.write_roles, trial_id) for trial_id in index.grants):
            raise NotFound()

    def create(self, request, *args, **kwargs):
        self._require_write_role()
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        instance = self.service_create(user=request.user, data=dict(serializer.validated_data), reason="")
        return Response(self.read_serializer_class(instance, context=self.get_serializer_context()).data, status=201)

    def partial_update(self, request, *args, **kwargs):
        instance = self.get_object()
        serializer = self.get_serializer(instance, data=request.data, partial=True)
        reason_key = self.change_reason_key()
        if reason_key == "reason" and isinstance(request.data, dict) and "change_reason" in request.data:
            reason_key = "change_reason"
        change = change_serializer(reason_key)(data=request.data)
        valid = [serializer.is_valid(), change.is_valid()]  # both run: the 400 names every bad field
        if not all(valid):
            raise serializers.ValidationError({**serializer.errors, **change.errors})
        instance = self.service_update(
            instance,
            user=request.user,
            version=change.validated_data["version"],
            reason=change.validated_data[reason_key],
            changes=dict(serializer.validated_data),
        )
        return Response(self.read_serializer_class(instance, context=self.get_serializer_context()).data)

    @extend_schema(request=VoidSerializer)
    @action(detail=True, methods=["post"])
    def void(self, request, *args, **kwargs):
        """Mark the record entered in error, with a reason; it stays in the audit trail."""
        instance = self.get_object()
        body = VoidSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        instance = self.service_void(instance, user=request.user, **body.validated_data)
        return Response(self.read_serializer_class(instance, context=self.get_serializer_context()).data, status=status.HTTP_200_OK)
