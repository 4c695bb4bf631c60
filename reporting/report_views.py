"""Report runs and the registry summary over the API (api.md ``report-runs/``).

``POST /api/v1/report-runs/`` queues a report build (reporting.report_runs); GET shows the run's
status and progress, and ``report-runs/{id}/download/`` returns the PDF once it is done.
``GET /api/v1/registry/summary.csv`` is the per-subject registry summary (EBMT Day-100 / CIBMTR
form 4100 toxicity items) at a data cut, as CSV.
"""
import csv
import io
import json

from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from trials.roles import Role
from trials.selectors import trial_list

from . import report_runs
from .export_views import CSVRenderer, log_access, parse_modified_since, resolve_trial
from .models import ReportKind, ReportRun, ReportRunStatus


class PDFRenderer(BaseRenderer):
    media_type = "application/pdf"
    format = "pdf"
    charset = None
    render_style = "binary"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        """Only errors reach a renderer (the file is sent as is): JSON text then."""
        if isinstance(data, bytes):
            return data
        return json.dumps(data).encode()


class NotReady(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The report is not built yet: wait until its status is done."
    default_code = "not_ready"


class ReportRunProgressSerializer(serializers.Serializer):
    done = serializers.IntegerField(source="progress_done", help_text="Steps finished.")
    total = serializers.IntegerField(source="progress_total", help_text="Steps in all (0 until the job starts).")


class ReportRunSerializer(serializers.ModelSerializer):
    protocol_code = serializers.CharField(source="trial.protocol_code", read_only=True)
    requested_by = serializers.CharField(source="requested_by.username", default=None, allow_null=True, read_only=True)
    progress = ReportRunProgressSerializer(source="*", read_only=True)
    download_url = serializers.SerializerMethodField(help_text="The PDF, once the status is done; else null.")

    class Meta:
        model = ReportRun
        fields = ["id", "trial", "protocol_code", "kind", "data_cut", "status", "progress", "step", "error",
                  "requested_by", "created_at", "started_at", "finished_at", "data_hash", "filename", "size_bytes",
                  "download_url"]
        read_only_fields = fields

    def get_download_url(self, run) -> str | None:
        if run.status != ReportRunStatus.DONE:
            return None
        return reverse("report-run-download", args=[run.pk], request=self.context.get("request"))


# Documented as the request body of ReportRun ("ReportRunRequest"), so both share one kind enum.
@extend_schema_serializer(component_name="ReportRun")
class ReportRunRequestSerializer(serializers.Serializer):
    trial = serializers.IntegerField(min_value=1, help_text="Trial id.")
    kind = serializers.ChoiceField(
        choices=ReportKind.choices,
        help_text="ae_report and dsmb_open: data managers, sponsor, DSMB; dsmb_closed: DSMB members only.",
    )
    data_cut = serializers.DateTimeField(
        required=False, allow_null=True,
        help_text="Report the data as they stood at this moment (ISO 8601 with offset); default now. "
                  "Not in the future, not before the trial was set up.",
    )


class ReportRunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet):
    """Report builds (AE report, open and closed DSMB report) at a data cut: status, progress, the PDF.

    A caller sees the runs of the kinds they may request in their trials; the closed DSMB report
    only DSMB members.
    """

    serializer_class = ReportRunSerializer
    filterset_fields = ["trial", "kind", "status"]

    def get_queryset(self):
        return report_runs.report_run_list(user=self.request.user)

    @extend_schema(request=ReportRunRequestSerializer, responses={201: ReportRunSerializer})
    def create(self, request, *args, **kwargs):
        """Queue a report build; poll the run until its status is done, then download it."""
        body = ReportRunRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        trial = get_object_or_404(trial_list(user=request.user), pk=body.validated_data["trial"])
        run = report_runs.request_report(request.user, trial, body.validated_data["kind"],
                                         body.validated_data.get("data_cut"))
        run = self.get_queryset().get(pk=run.pk)  # as it stands after the commit (eager tasks have run)
        return Response(self.get_serializer(run).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        responses={
            (200, "application/pdf"): OpenApiTypes.BINARY,
            409: OpenApiResponse(description="Not built yet (queued, running or failed)."),
        },
    )
    @action(detail=True, methods=["get"], renderer_classes=[JSONRenderer, PDFRenderer])
    def download(self, request, pk=None):
        """The report PDF as an attachment, once the run is done."""
        run = self.get_object()
        if run.status != ReportRunStatus.DONE:
            raise NotReady(f"The report is {run.status}, not done: nothing to download yet.")
        data = ReportRun.objects.values_list("file", flat=True).get(pk=run.pk)
        response = HttpResponse(bytes(data), content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="{run.filename}"'
        response["Cache-Control"] = "no-store"
        return response


# --- registry summary ----------------------------------------------------------------------------

REGISTRY_ROLES = frozenset({Role.DATA_MANAGER, Role.SPONSOR})


class RegistrySummaryView(APIView):
    """The registry summary per infused subject at a data cut, as CSV (data managers, sponsor).

    The EBMT Day-100 CAR-T toxicity items (CRS and ICANS onset, resolution, highest grade with its
    scale) and the CIBMTR form 4100 items held here (CRS yes/no and date, therapy, hypotension,
    vasopressors, hypoxia, positive pressure). Sponsor views have dates shifted when the trial says so.
    """

    renderer_classes = [CSVRenderer, JSONRenderer]

    @extend_schema(
        operation_id="registry_summary_csv",
        parameters=[
            OpenApiParameter("trial", int, description="Trial id; optional when you hold roles in one trial only."),
            OpenApiParameter("data_cut", OpenApiTypes.DATETIME,
                             description="The data as they stood at this moment (ISO 8601 with offset); default now."),
        ],
        responses={(200, "text/csv"): OpenApiTypes.BINARY},
    )
    def get(self, request):
        from .deid import disclosure, shifts_for
        from .registry import registry_rows
        from .snapshot import load_snapshot

        trial = resolve_trial(request, roles=REGISTRY_ROLES)
        cut = report_runs.validate_data_cut(trial, parse_modified_since(request, "data_cut"))
        shifts = shifts_for(trial.pk) if disclosure(request.user, trial).shift_dates else None
        header, rows = registry_rows(load_snapshot(trial, cut), shifts=shifts)
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(header)
        writer.writerows(rows)
        response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{trial.protocol_code}-registry-summary.csv"'
        response["Cache-Control"] = "no-store"
        log_access(request, resource="registry-summary", status_code=200, row_count=len(rows), trial=trial)
        request._request._access_logged = True  # the middleware sees the Django request, not DRF's wrapper
        return response
