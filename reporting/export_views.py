"""Streaming CSV exports and the derived episodes over the API (api.md)."""
import csv
import io
from datetime import UTC

import django_filters
from django.http import StreamingHttpResponse
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, viewsets
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.views import APIView

from trials.api.base import SubjectDatesSerializer
from trials.api.filters import IdFilter, ModifiedSinceFilterSet
from trials.api.json_rows import JsonRows, RowListMixin
from trials.models import Trial
from trials.roles import Role
from trials.selectors import RoleIndex, scoped

from toxicity.models import Episode

from .datasets import datasets
from .deid import disclosure
from .exports import export_csv
from .models import AccessLogEntry

# DSMB members read the DSMB reports, not raw datasets (workflow.md, Roles: least privilege).
EXPORT_ROLES = frozenset(Role) - {Role.DSMB}


class CSVRenderer(BaseRenderer):
    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        """Only errors reach a renderer (exports stream past it): one ``field,message`` line each."""
        if isinstance(data, (bytes, str)):
            return data
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["field", "message"])
        for field, messages in (data or {}).items():
            for message in messages if isinstance(messages, list) else [messages]:
                writer.writerow([field, str(message)])
        return out.getvalue()


def resolve_trial(request, roles=EXPORT_ROLES) -> Trial:
    """The ``trial`` parameter, or the caller's only trial; 404 outside scope, 400 when ambiguous."""
    raw = request.query_params.get("trial")
    trials = scoped(request.user, Trial.objects.all(), roles)
    if raw in (None, ""):
        found = list(trials[:2])
        if len(found) == 1:
            return found[0]
        if not found:
            raise NotFound()
        raise ValidationError({"trial": ["You hold roles in several trials: give the trial id."]})
    if not raw.isdigit():
        raise ValidationError({"trial": [f"'{raw}' is not a trial id (a whole number)."]})
    trial = trials.filter(pk=int(raw)).first()
    if trial is None:
        raise NotFound()
    return trial


def parse_modified_since(request, name="modified_since"):
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return None
    try:
        value = parse_datetime(raw)
    except ValueError:
        value = None
    if value is None or value.tzinfo is None:
        raise ValidationError({name: [f"'{raw}' is not an ISO 8601 date-time with offset, e.g. 2026-11-01T00:00:00Z."]})
    try:
        return value.astimezone(UTC)  # PostgreSQL refuses offsets beyond +-15:59
    except OverflowError:
        raise ValidationError({name: ["This date-time is out of range."]})


def _logged(chunks, export, entry_pk):
    """Pass the chunks through; record the row count (or the interruption) when the stream ends."""
    completed = False
    try:
        yield from chunks
        completed = True
    finally:
        AccessLogEntry.objects.filter(pk=entry_pk).update(row_count=export.rows if completed else None, completed=completed)


def log_access(request, *, resource: str, status_code: int, row_count, trial=None, completed=True) -> AccessLogEntry:
    """``trial``: a Trial or its id."""
    return AccessLogEntry.objects.create(
        user=request.user, trial_id=getattr(trial, "pk", trial), method=request.method, path=request.path[:300],
        query=request.META.get("QUERY_STRING", "")[:1000], resource=resource, status_code=status_code,
        row_count=row_count, completed=completed,
    )


def stream_csv(request, *, dataset_name: str, chunks_for, filename: str, trial):
    """A streamed CSV response whose access-log entry is completed when the last byte is sent."""
    export = chunks_for()
    entry = log_access(request, resource=dataset_name, status_code=200, row_count=None, trial=trial, completed=False)
    response = StreamingHttpResponse(_logged(export.chunks, export, entry.pk), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    getattr(request, "_request", request)._access_logged = True  # the Django request the middleware sees
    return response


EXPORT_PARAMETERS = [
    OpenApiParameter("trial", int, description="Trial id; optional when you hold roles in one trial only."),
    OpenApiParameter("modified_since", OpenApiTypes.DATETIME, description="Rows changed at or after this time."),
]


class ExportView(APIView):
    """Streaming CSV of one dataset, any size, constant memory (reports.md, Exports).

    Datasets: subjects, deaths, infusions, assessments, the six rescue-therapy logs,
    adverse-events, episodes, queries, query-messages, audit. Sponsor views are de-identified.
    """

    renderer_classes = [CSVRenderer, JSONRenderer]

    @extend_schema(parameters=EXPORT_PARAMETERS, responses={(200, "text/csv"): OpenApiTypes.BINARY})
    def get(self, request, dataset):
        spec = datasets().get(dataset)
        if spec is None:
            raise NotFound(f"No dataset '{dataset}'. Datasets: {', '.join(sorted(datasets()))}.")
        trial = resolve_trial(request)
        since = parse_modified_since(request)
        view = disclosure(request.user, trial)
        return stream_csv(
            request, dataset_name=dataset, trial=trial, filename=f"{trial.protocol_code}-{dataset}.csv",
            chunks_for=lambda: export_csv(spec, user=request.user, trial=trial, disclosure=view, modified_since=since),
        )


# --- episodes (read-only, derived) ------------------------------------------------------------


class EpisodeSerializer(SubjectDatesSerializer):
    subject_id = serializers.CharField(source="subject.subject_id", read_only=True)

    class Meta:
        model = Episode
        fields = [
            "id", "subject", "subject_id", "kind", "episode_number", "term", "scale", "onset_date", "onset_study_day",
            "max_grade", "max_grade_date", "resolution_date", "duration_days", "ongoing", "last_assessment_date",
            "has_incomplete_days", "tocilizumab_doses", "corticosteroid_given", "dexamethasone_equivalent_mg",
            "anakinra_doses", "siltuximab_doses", "plasma_exchange_sessions", "plasma_exchange_volume_ml",
            "hemofiltration_sessions", "hemofiltration_hours", "icu_days", "serious", "seriousness",
            "seriousness_derived", "relatedness", "outcome", "review", "review_status", "voided", "created_at",
            "modified_at",
        ]
        read_only_fields = fields


class EpisodeFilter(ModifiedSinceFilterSet):
    trial = IdFilter(field_name="subject__trial")
    site = IdFilter(field_name="subject__site")
    min_grade = django_filters.NumberFilter(field_name="max_grade", lookup_expr="gte")

    class Meta:
        model = Episode
        fields = ["subject", "trial", "site", "kind", "min_grade", "serious", "ongoing", "has_incomplete_days",
                  "review_status"]


class EpisodeViewSet(RowListMixin, viewsets.ReadOnlyModelViewSet):
    """CRS and ICANS episodes derived from the daily grades, each also an adverse event (reports.md).

    Recomputed in the same transaction as every change to a subject's data; an episode that no
    longer follows from the data is ``voided`` (listed with ``include_voided=true``). NE days count
    by their minimum grade: with ``has_incomplete_days`` true, ``max_grade`` is a floor (">= n").
    ``serious`` follows ICH E2A, not severity: the ``seriousness`` criteria are those the data prove
    (``seriousness_derived``: death from the toxicity, life-threatening = grade 4, an ICU stay for
    it) and those the investigator recorded on the episode review (``review_status``).
    """

    serializer_class = EpisodeSerializer
    filterset_class = EpisodeFilter

    def get_queryset(self):
        qs = scoped(self.request.user, Episode.objects.select_related("subject"))
        if self.action == "list" and self.request.query_params.get("include_voided") not in ("1", "true"):
            qs = qs.filter(voided=False)
        return qs


# --- access log of sponsor and DSMB reads -----------------------------------------------------


class AccessLogMiddleware:
    """Record every API read (GET) by a user holding a sponsor or DSMB role: who, what, when, rows."""

    LOGGED_ROLES = {Role.SPONSOR, Role.DSMB}

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.method == "GET" and request.path.startswith("/api/") and not getattr(request, "_access_logged", False):
            user = getattr(request, "user", None)
            if user is not None and user.is_authenticated and self._logged_user(user):
                log_access(request, resource=self._resource(request.path), status_code=response.status_code,
                           row_count=self._rows(response), trial=self._trial(request))
        return response

    def _logged_user(self, user) -> bool:
        return any(set(by_role) & self.LOGGED_ROLES for by_role in RoleIndex.for_user(user).grants.values())

    @staticmethod
    def _resource(path: str) -> str:
        parts = [p for p in path.split("/") if p][2:]  # after api/v1
        return parts[0] if parts else ""

    @staticmethod
    def _rows(response):
        data = getattr(response, "data", None)
        if response.status_code >= 400 or data is None:
            return 0
        if isinstance(data, dict) and isinstance(data.get("results"), (list, JsonRows)):
            return len(data["results"])
        return len(data) if isinstance(data, list) else 1

    @staticmethod
    def _trial(request):
        """The id of the ``trial`` asked for, if the caller holds a role in it (no query)."""
        raw = request.GET.get("trial", "")
        if raw.isdigit() and int(raw) in RoleIndex.for_user(request.user).grants:
            return int(raw)
        return None
