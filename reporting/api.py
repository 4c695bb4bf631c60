"""Reporting resources of the REST API (api.md)."""
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param
from rest_framework.views import APIView

from trials.models import Trial
from trials.selectors import RoleIndex

from .audit_export import ACTIONS, AuditFilters, AuditScope, Cursor, InvalidCursor, audit_context, audit_page, audited_table
from .deid import disclosure

# ============================================================================================
# Audit trail: GET /api/v1/audit/ (reporting/audit_export.py does the work)
# ============================================================================================

AUDIT_MAX_PAGE_SIZE = 1000
AUDIT_DEFAULT_PAGE_SIZE = 100


class AuditChangeSerializer(serializers.Serializer):
    field = serializers.CharField(help_text="Data-dictionary name of the field (a foreign key gives the id).")
    old = serializers.CharField(allow_null=True, help_text="Value before the change as text; null = no value (or withheld).")
    new = serializers.CharField(allow_null=True, help_text="Value after the change as text; null = no value (or withheld).")


class AuditEntrySerializer(serializers.Serializer):
    history_id = serializers.IntegerField(help_text="Id of the change in its record type's history.")
    at = serializers.DateTimeField(allow_null=True, help_text="When the change was saved (shifted with the subject's dates).")
    user = serializers.CharField(allow_null=True, help_text="Username of who made the change; null for the system.")
    action = serializers.ChoiceField(choices=ACTIONS)
    record_type = serializers.CharField(help_text='Model label of the record, e.g. "toxicity.dailyassessment".')
    record_id = serializers.IntegerField()
    subject = serializers.IntegerField(allow_null=True, help_text="The record's subject id; null for set-up records.")
    reason = serializers.CharField(
        allow_blank=True,
        help_text='Reason for the change; "[withheld]" for sponsor and DSMB unless the system wrote it.',
    )
    changes = AuditChangeSerializer(many=True)


class AuditPageSerializer(serializers.Serializer):
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = AuditEntrySerializer(many=True)


class AuditQuerySerializer(serializers.Serializer):
    trial = serializers.IntegerField(
        required=False, help_text="Trial id; required when you hold roles in more than one trial."
    )
    subject = serializers.IntegerField(required=False, help_text="Only the records of this subject (id).")
    user = serializers.CharField(required=False, help_text="Only changes made by this username.")
    since = serializers.DateTimeField(required=False, help_text="Only changes at or after this time (ISO 8601).")
    record_type = serializers.CharField(required=False, help_text='Only this record type, e.g. "trials.subject".')
    page_size = serializers.IntegerField(
        required=False, min_value=1, help_text=f"Entries per page, up to {AUDIT_MAX_PAGE_SIZE} (default {AUDIT_DEFAULT_PAGE_SIZE})."
    )

    def validate_record_type(self, value):
        if audited_table(value) is None:
            raise serializers.ValidationError(f"'{value}' is not an audited record type.")
        return value


class AuditView(APIView):
    """The audit trail of one trial: who changed what, when, from which value to which, and why.

    One entry per saved change, in (time, record type, history id) order, scoped to what your
    roles see. Sponsor and DSMB roles get the de-identified trail: no birth dates, free text and
    typed reasons withheld, and dates shifted per subject when the trial shifts export dates.
    """

    @extend_schema(
        operation_id="audit_list",
        parameters=[
            AuditQuerySerializer,
            OpenApiParameter("cursor", OpenApiTypes.STR, description="The opaque `next`/`previous` cursor."),
        ],
        responses={200: AuditPageSerializer},
    )
    def get(self, request):
        params = AuditQuerySerializer(data=request.query_params)
        errors = {} if params.is_valid() else dict(params.errors)
        cursor = None
        if request.query_params.get("cursor"):
            try:
                cursor = Cursor.decode(request.query_params["cursor"])
            except InvalidCursor as exc:
                errors["cursor"] = [str(exc)]
        trials = RoleIndex.for_user(request.user).grants
        if "trial" not in errors and params.validated_data.get("trial") is None and len(trials) > 1:
            errors["trial"] = ["You hold roles in more than one trial: choose one with ?trial=<id>."]
        if errors:
            raise ValidationError(errors)
        data = params.validated_data

        trial_id = data.get("trial", next(iter(trials), None))
        if trial_id is None:  # no role anywhere: nothing to see
            return Response({"next": None, "previous": None, "results": []})
        scope = AuditScope.for_user(request.user, trial_id)
        trial = Trial.objects.filter(pk=trial_id).first() if scope is not None else None
        if trial is None:
            raise NotFound()

        try:
            page = audit_page(
                scope=scope,
                ctx=audit_context(disclosure(request.user, trial), trial.pk),
                filters=AuditFilters(
                    subject=data.get("subject"), user=data.get("user"), since=data.get("since"),
                    record_type=data.get("record_type"),
                ),
                cursor=cursor,
                page_size=min(data.get("page_size", AUDIT_DEFAULT_PAGE_SIZE), AUDIT_MAX_PAGE_SIZE),
            )
        except InvalidCursor as exc:
            raise ValidationError({"cursor": [str(exc)]}) from None
        url = request.build_absolute_uri()

        def link(position):
            return None if position is None else replace_query_param(url, "cursor", position.encode())

        body = {
            "next": link(page.next),
            "previous": link(page.previous),
            "results": [entry.as_dict() for entry in page.entries],
        }
        return Response(AuditPageSerializer(body).data)

