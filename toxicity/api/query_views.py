"""Queries, their threads and transitions, and check runs (api.md)."""
from datetime import timedelta

import django_filters
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from toxicity import check_runs, queries
from toxicity.models import CheckRun, Query, QueryMessage
from trials.models import Trial
from trials.api.filters import UtcIsoDateTimeFilter
from trials.selectors import scoped, trial_list


WITHHELD = "[withheld]"


def deidentified(data: dict, *, request, trial_id: int, subject_pk: int, person_typed: bool) -> dict:
    """Sponsor and DSMB views (reports.md, De-identification): text a person typed is withheld;
    with date shift, dates (also inside rule texts and raise-time values) move with the subject."""
    from reporting.deid import RequestView, deidentify_representation, redact_values

    if request is None:
        return data
    view = RequestView.of(request).disclosure(trial_id)
    if person_typed and not view.free_text:
        data["text"] = WITHHELD
    if "values" in data:
        data["values"] = redact_values(data["values"], view)
    dates = [k for k in ("opened_at", "answered_at", "closed_at", "modified_at", "created_at") if k in data]
    return deidentify_representation(data, request=request, trial_id=trial_id, subject_pk=subject_pk,
                                     date_fields=dates, text_fields=("text", "values"))


class QueryMessageSerializer(serializers.ModelSerializer):
    author = serializers.CharField(source="author.username", default=None, read_only=True)

    class Meta:
        model = QueryMessage
        fields = ["id", "author", "role", "action", "text", "created_at"]
        read_only_fields = fields

    def to_representation(self, instance):
        query = instance.query
        return deidentified(super().to_representation(instance), request=self.context.get("request"),
                            trial_id=query.trial_id, subject_pk=query.subject_id, person_typed=instance.role != "system")


class QuerySerializer(serializers.ModelSerializer):
    subject_id = serializers.CharField(source="subject.subject_id", read_only=True)
    site_number = serializers.CharField(source="site.site_number", read_only=True)
    age_days = serializers.SerializerMethodField(help_text="Days since the query was opened.")
    allowed_actions = serializers.SerializerMethodField(help_text="Transitions the caller may make now.")

    class Meta:
        model = Query
        fields = [
            "id", "trial", "site", "site_number", "subject", "subject_id", "record_type", "record_id", "field",
            "origin", "rule_id", "status", "text", "values", "assignee_role", "opened_at", "answered_at",
            "closed_at", "modified_at", "age_days", "allowed_actions",
        ]
        read_only_fields = fields

    def to_representation(self, instance):
        return deidentified(super().to_representation(instance), request=self.context.get("request"),
                            trial_id=instance.trial_id, subject_pk=instance.subject_id,
                            person_typed=instance.origin == "manual")

    def get_age_days(self, query) -> int:
        return queries.open_query_age_days(query)

    def get_allowed_actions(self, query) -> list[str]:
        return queries.allowed_actions(self.context["request"].user, query)


class QueryDetailSerializer(QuerySerializer):
    messages = QueryMessageSerializer(many=True, read_only=True)

    class Meta(QuerySerializer.Meta):
        fields = [*QuerySerializer.Meta.fields, "messages"]
        read_only_fields = fields


class RaiseQuerySerializer(serializers.Serializer):
    record_type = serializers.CharField(help_text='Model label, e.g. "toxicity.dailyassessment".')
    record_id = serializers.IntegerField(min_value=1)
    field = serializers.CharField()
    text = serializers.CharField()


class TextSerializer(serializers.Serializer):
    text = serializers.CharField(help_text="The message; for close, the justification.")


class QueryFilter(django_filters.FilterSet):
    rule = django_filters.CharFilter(field_name="rule_id")
    min_age_days = django_filters.NumberFilter(method="filter_min_age", help_text="Opened at least this many days ago.")
    modified_since = UtcIsoDateTimeFilter(field_name="modified_at", lookup_expr="gte")

    class Meta:
        model = Query
        fields = ["trial", "site", "subject", "status", "origin", "rule", "record_type", "record_id"]

    def filter_min_age(self, qs, name, value):
        return qs.filter(opened_at__lte=timezone.now() - timedelta(days=float(value)))


class QueryViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet):
    """Queries on fields of records: rule-raised and manual; POST raises a manual query."""

    filterset_class = QueryFilter

    def get_queryset(self):
        qs = scoped(self.request.user, Query.objects.select_related("subject", "site"))
        if self.action == "retrieve":
            qs = qs.prefetch_related("messages__author")
        return qs

    def get_serializer_class(self):
        return {"retrieve": QueryDetailSerializer, "create": RaiseQuerySerializer}.get(self.action, QuerySerializer)

    @extend_schema(request=RaiseQuerySerializer, responses={201: QueryDetailSerializer})
    def create(self, request, *args, **kwargs):
        body = RaiseQuerySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        query = queries.query_raise(user=request.user, **body.validated_data)
        return Response(QueryDetailSerializer(query, context=self.get_serializer_context()).data, status=201)

    @extend_schema(methods=["GET"], responses=QueryMessageSerializer(many=True))
    @extend_schema(methods=["POST"], request=TextSerializer, responses={201: QueryMessageSerializer})
    @action(detail=True, methods=["get", "post"])
    def messages(self, request, pk=None):
        query = self.get_object()
        if request.method == "GET":
            messages = query.messages.select_related("author", "query")
            return Response(QueryMessageSerializer(messages, many=True, context=self.get_serializer_context()).data)
        body = TextSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        message = queries.query_message(user=request.user, query=query, text=body.validated_data["text"])
        return Response(QueryMessageSerializer(message, context=self.get_serializer_context()).data,
                        status=status.HTTP_201_CREATED)

    def _transition(self, request, name):
        query = self.get_object()
        body = TextSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        query = queries.query_transition(user=request.user, query=query, action=name, text=body.validated_data["text"])
        return Response(QueryDetailSerializer(query, context=self.get_serializer_context()).data)

    @extend_schema(request=TextSerializer, responses=QueryDetailSerializer)
    @action(detail=True, methods=["post"])
    def answer(self, request, pk=None):
        """The site answers (coordinator, investigator): open -> answered."""
        return self._transition(request, "answer")

    @extend_schema(request=TextSerializer, responses=QueryDetailSerializer)
    @action(detail=True, methods=["post"])
    def close(self, request, pk=None):
        """Monitor or data manager, with a justification; suppresses the rule for the same values."""
        return self._transition(request, "close")

    @extend_schema(request=TextSerializer, responses=QueryDetailSerializer)
    @action(detail=True, methods=["post"])
    def reopen(self, request, pk=None):
        """Monitor or data manager: answered or closed -> open."""
        return self._transition(request, "reopen")

    @extend_schema(request=TextSerializer, responses=QueryDetailSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """A manual query raised in error (monitor or data manager)."""
        return self._transition(request, "cancel")


class CheckRunSerializer(serializers.ModelSerializer):
    trial = serializers.PrimaryKeyRelatedField(queryset=Trial.objects.none())

    class Meta:
        model = CheckRun
        fields = ["id", "trial", "status", "total", "done", "opened", "auto_closed", "unchanged", "error",
                  "created_at", "started_at", "finished_at"]
        read_only_fields = [f for f in fields if f != "trial"]

    def get_fields(self):
        fields = super().get_fields()
        request = self.context.get("request")
        if request is not None:
            fields["trial"].queryset = trial_list(user=request.user)
        return fields


class CheckRunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet):
    """POST {"trial": id} queues the consistency job (data managers); GET shows status and progress."""

    serializer_class = CheckRunSerializer
    filterset_fields = ["trial", "status"]

    def get_queryset(self):
        return scoped(self.request.user, CheckRun.objects.all())

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        run = check_runs.check_run_create(user=request.user, trial=serializer.validated_data["trial"])
        run.refresh_from_db()
        return Response(self.get_serializer(run).data, status=status.HTTP_202_ACCEPTED)


