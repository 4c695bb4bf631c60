"""SDTM-style datasets over the API (api.md ``sdtm/{domain}.csv``) and their data definition.

``GET /api/v1/sdtm/{domain}.csv?trial=<id>`` streams DM, EX, AE, FA, CM or PR; ``GET
/api/v1/sdtm/define.json?trial=<id>`` describes them (variables, labels, types, codelists, the
toxicity scales). Same roles, scoping, de-identification and access log as the other exports.
"""
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from . import sdtm
from .deid import disclosure
from .export_views import CSVRenderer, resolve_trial, stream_csv
from .sdtm_data import define, sdtm_csv

DOMAINS = tuple(code.lower() for code in sdtm.DOMAIN_CODES)
TRIAL_PARAMETER = OpenApiParameter("trial", int, description="Trial id; optional when you hold roles in one trial only.")


class SdtmDomainView(APIView):
    """One SDTM-style dataset of a trial as streaming CSV, any size, constant memory (reports.md, Exports).

    DM (subjects; AGE, never the birth date), EX (CAR-T infusions, EXDOSE in cells/kg), AE (derived
    CRS/ICANS episodes, then typed-in CTCAE events; AETOXGR = grade number, AETOXSCL = its scale),
    FA (daily grades and raw components of each episode), CM (tocilizumab, corticosteroids,
    anakinra, siltuximab, vasopressors), PR (plasma exchange, hemofiltration, oxygen support,
    mechanical ventilation). --DY has no day 0. The header is exactly the dataset's variables in
    ``sdtm/define.json``. Sponsor views have every date of a subject shifted when the trial says so.
    """

    renderer_classes = [CSVRenderer, JSONRenderer]

    @extend_schema(
        operation_id="sdtm_dataset_csv",
        parameters=[
            OpenApiParameter("domain", str, OpenApiParameter.PATH, enum=list(DOMAINS), description="SDTM domain."),
            TRIAL_PARAMETER,
        ],
        responses={(200, "text/csv"): OpenApiTypes.BINARY},
    )
    def get(self, request, domain):
        domain = domain.lower()
        if domain not in DOMAINS:
            raise NotFound(f"No SDTM domain '{domain}'. Domains: {', '.join(DOMAINS)}.")
        trial = resolve_trial(request)
        view = disclosure(request.user, trial)
        return stream_csv(
            request, dataset_name=f"sdtm-{domain}", trial=trial, filename=f"{trial.protocol_code}-{domain}.csv",
            chunks_for=lambda: sdtm_csv(domain, user=request.user, trial=trial, disclosure=view),
        )


# --- define.json: documented with serializers so the OpenAPI document shows its shape ---------


class DefineVariableSerializer(serializers.Serializer):
    name = serializers.CharField()
    label = serializers.CharField()
    type = serializers.CharField(help_text="Char or Num.")
    role = serializers.CharField()
    codelist = serializers.CharField(allow_null=True, help_text="Name of an entry of ``codelists``.")
    origin = serializers.CharField(help_text="CRF, Derived, Assigned or Protocol.")
    standard = serializers.BooleanField(help_text="False for a non-standard variable (SUPP-- in a submission).")
    comment = serializers.CharField(allow_blank=True)
    toxicity_scales = serializers.JSONField(required=False, help_text="AETOXGR only: the scale of each category.")


class DefineValueLevelSerializer(serializers.Serializer):
    where = serializers.CharField(help_text='e.g. "FATESTCD = TEMP"')
    applies_to = serializers.ListField(child=serializers.CharField())
    type = serializers.CharField(help_text="Char or Num.")
    unit = serializers.CharField(allow_null=True)
    values = serializers.ListField(child=serializers.CharField())
    comment = serializers.CharField(allow_blank=True)
    toxicity_scale = serializers.JSONField(required=False)


class DefineDatasetSerializer(serializers.Serializer):
    name = serializers.CharField()
    label = serializers.CharField()
    structure = serializers.CharField()
    keys = serializers.ListField(child=serializers.CharField())
    file = serializers.CharField(help_text="sdtm/<file> under /api/v1/.")
    variables = DefineVariableSerializer(many=True)
    value_level = DefineValueLevelSerializer(many=True, required=False, help_text="FA only: per FATESTCD.")

    def get_fields(self):
        """``class`` is a Python keyword, so it cannot be declared as an attribute."""
        fields = super().get_fields()
        ordered = list(fields.items())
        ordered.insert(2, ("class", serializers.CharField(help_text="SDTM observation class.")))
        return dict(ordered)


class DefineTermSerializer(serializers.Serializer):
    code = serializers.CharField()
    decode = serializers.CharField()


class DefineCodelistSerializer(serializers.Serializer):
    name = serializers.CharField()
    label = serializers.CharField()
    source = serializers.CharField()
    terms = DefineTermSerializer(many=True)


class DefineSerializer(serializers.Serializer):
    study = serializers.JSONField()
    standard = serializers.CharField()
    conventions = serializers.DictField(child=serializers.CharField())
    toxicity_scales = serializers.JSONField()
    datasets = DefineDatasetSerializer(many=True)
    codelists = DefineCodelistSerializer(many=True)


class SdtmDefineView(APIView):
    """The data definition of the SDTM-style datasets of a trial.

    Per dataset its variables in CSV column order (name, label, type Char/Num, role, codelist,
    origin), value-level metadata of the FA tests, the codelists, the conventions (dates,
    site-local date-times, study day without day 0, date shift) and the CRS / ICANS toxicity
    scales AETOXGR is graded on.
    """

    renderer_classes = [JSONRenderer]

    @extend_schema(operation_id="sdtm_define", parameters=[TRIAL_PARAMETER], responses=DefineSerializer)
    def get(self, request):
        trial = resolve_trial(request)
        return Response(define(trial, disclosure=disclosure(request.user, trial)))
