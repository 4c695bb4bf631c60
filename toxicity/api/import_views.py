"""POST /api/v1/imports/{dataset}/: bulk import of a CSV file (toxicity/imports.py, docs/imports.md)."""
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.parsers import BaseParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from toxicity import imports
from trials.models import Trial
from trials.roles import DATA_ENTRY_ROLES
from trials.selectors import RoleIndex


class CsvParser(BaseParser):
    """A ``text/csv`` body is the file itself; it is read as a stream, not held as a string."""

    media_type = "text/csv"

    def parse(self, stream, media_type=None, parser_context=None):
        return {"file": stream}


class ImportUploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="The CSV file: header row of data-dictionary column names, UTF-8.")
    trial = serializers.IntegerField(required=False, help_text="Trial id (also accepted as a query parameter).")
    dry_run = serializers.BooleanField(
        required=False, help_text="Check every row, store nothing (also a query parameter)."
    )


class ImportParamsSerializer(serializers.Serializer):
    trial = serializers.IntegerField(help_text="Trial id; you need a coordinator or investigator role in it.")
    dry_run = serializers.BooleanField(default=False, help_text="true: check every row and store nothing.")


class ImportErrorSerializer(serializers.Serializer):
    row = serializers.IntegerField(help_text="Spreadsheet row number: the header is row 1, the first data row 2.")
    field = serializers.CharField(help_text="The column (data-dictionary name) or 'non_field_errors'.")
    message = serializers.CharField()


class ImportReportSerializer(serializers.Serializer):
    dataset = serializers.CharField()
    dry_run = serializers.BooleanField()
    committed = serializers.BooleanField(help_text="True when every row was stored.")
    rows = serializers.IntegerField(help_text="Data rows read (blank rows not counted).")
    created = serializers.IntegerField(help_text="Rows that passed every check (and were stored, when committed).")
    errors = ImportErrorSerializer(many=True)
    file = serializers.ListField(
        child=serializers.CharField(), required=False,
        help_text="On a 400: why the file was refused (file-level problems carry only this field).",
    )


def _param(request, name):
    if name in request.query_params:
        return request.query_params[name]
    data = request.data
    return data.get(name) if hasattr(data, "get") and name != "file" else None


class ImportView(APIView):
    """Bulk import of daily assessments or a rescue-therapy log from CSV.

    Columns: `subject_id` (e.g. "101-0003") and the resource's data-dictionary fields. Every row
    goes through the same checks, derived grades, audit and save-time queries as a single POST
    to the resource. All or nothing: with `dry_run=true`, or when any row fails, nothing is
    stored. Imports only create records; correct them afterwards with PATCH (`version`, `reason`).
    200: dry run (errors listed, if any) or every row stored; 400: rows failed (nothing stored)
    or the file was refused (`file`); 404: unknown dataset, or no data-entry role in the trial.
    """

    parser_classes = [MultiPartParser, CsvParser]

    @extend_schema(
        operation_id="imports_create",
        parameters=[
            OpenApiParameter("dataset", OpenApiTypes.STR, OpenApiParameter.PATH, enum=sorted(imports.DATASETS),
                             description="The resource to import into (its API name)."),
            OpenApiParameter("trial", OpenApiTypes.INT, OpenApiParameter.QUERY, required=False,
                             description="Trial id (required here or as a form field)."),
            OpenApiParameter("dry_run", OpenApiTypes.BOOL, OpenApiParameter.QUERY, required=False,
                             description="true: check every row and store nothing (default false)."),
        ],
        request={
            "multipart/form-data": ImportUploadSerializer,
            "text/csv": {"type": "string", "format": "binary"},
        },
        responses={
            200: ImportReportSerializer,
            400: OpenApiResponse(
                ImportReportSerializer, description="Rows failed or the file was refused; nothing stored."
            ),
            404: OpenApiResponse(description="Unknown dataset, or no coordinator/investigator role in the trial."),
        },
        examples=[OpenApiExample("A row error", response_only=True, status_codes=["400"], value={
            "dataset": "assessments", "dry_run": False, "committed": False, "rows": 2, "created": 1,
            "errors": [{"row": 3, "field": "temperature_max_c",
                        "message": "Ensure this value is less than or equal to 45.0."}],
            "file": ["1 row has errors; nothing was stored."],
        })],
    )
    def post(self, request, dataset):
        if dataset not in imports.DATASETS:
            raise NotFound()
        params = ImportParamsSerializer(data={
            k: v for k in ("trial", "dry_run") if (v := _param(request, k)) not in (None, "")
        })
        params.is_valid(raise_exception=True)
        trial_id, dry_run = params.validated_data["trial"], params.validated_data["dry_run"]
        if not RoleIndex.for_user(request.user).has(DATA_ENTRY_ROLES, trial_id):
            raise NotFound()
        trial = Trial.objects.filter(pk=trial_id).first()
        if trial is None:
            raise NotFound()
        upload = request.FILES.get("file") if hasattr(request, "FILES") else None
        if upload is None and isinstance(request.data, dict):
            upload = request.data.get("file")
        if upload is None:
            raise serializers.ValidationError(
                {"file": ["Send the CSV as a multipart field 'file' or as a text/csv body."]}
            )
        report = imports.import_csv(user=request.user, trial=trial, dataset=dataset, stream_or_text=upload,
                                    dry_run=dry_run)
        body = report.as_dict()
        if dry_run or report.committed:
            return Response(body, status=status.HTTP_200_OK)
        n = len(report.failed_rows)
        body["file"] = [f"{n} row{'s' if n != 1 else ''} ha{'ve' if n != 1 else 's'} errors; nothing was stored."]
        return Response(body, status=status.HTTP_400_BAD_REQUEST)
