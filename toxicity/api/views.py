"""Toxicity REST resources (api.md): assessments, the rescue-therapy logs, typed-in adverse events and the
grading preview."""
import django_filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers as drf_serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from toxicity import services
from toxicity.choices import Seriousness
from toxicity.grading import GradingInputError, grade
from toxicity.models import (
    AdverseEvent,
    AnticytokineDose,
    CorticosteroidDose,
    DailyAssessment,
    HemofiltrationSession,
    IcuStay,
    PlasmaExchange,
    TocilizumabDose,
)
from trials.api.base import ClinicalViewSet
from trials.api.filters import IdFilter, ModifiedSinceFilterSet
from trials.selectors import RoleIndex, scoped

from .serializers import (
    AssessmentSerializer,
    AssessmentWriteSerializer,
    GradingPreviewSerializer,
    TocilizumabDoseSerializerMixin,
    log_serializers,
)


def subject_filterset(model, extra_fields=()):
    """Filters every subject record has: subject, trial, site, modified_since.

    ``trial`` reads the record's own indexed copy of the subject's trial (``SubjectRecord.subject_trial``):
    through the join, a trial's first page walked the whole primary key of a large table.
    """
    attrs = {
        "trial": IdFilter(field_name="subject_trial"),
        "site": IdFilter(field_name="subject__site"),
        "Meta": type("Meta", (), {"model": model, "fields": ["subject", *extra_fields]}),
    }
    return type(f"{model.__name__}Filter", (ModifiedSinceFilterSet,), attrs)


class AssessmentFilter(subject_filterset(DailyAssessment)):
    date_from = django_filters.DateFilter(field_name="assessment_date", lookup_expr="gte")
    date_to = django_filters.DateFilter(field_name="assessment_date", lookup_expr="lte")


class SubjectRecordViewSet(ClinicalViewSet):
    model = None

    def selector(self, *, user, roles):
        return scoped(user, self.model.objects.select_related("subject", "subject__trial", "subject__site"), roles)


class AssessmentViewSet(SubjectRecordViewSet):
    """Daily CRS/ICANS assessments; each response carries the derived grades, flags and reasons."""

    model = DailyAssessment
    read_serializer_class = AssessmentSerializer
    write_serializer_class = AssessmentWriteSerializer
    filterset_class = AssessmentFilter

    def service_create(self, *, user, data, reason):
        return services.assessment_create(user=user, reason=reason, **data)

    def service_update(self, instance, **kwargs):
        return services.assessment_update(assessment=instance, **kwargs)

    def service_void(self, instance, **kwargs):
        return services.assessment_void(assessment=instance, **kwargs)


def log_viewset(model, fields, derived=(), read_mixin=None):
    read, write = log_serializers(model, fields, derived)
    if read_mixin is not None:
        read = type(read.__name__, (read_mixin, read), {"Meta": type("Meta", (read.Meta,), {
            "fields": [*read.Meta.fields, *read_mixin._declared_fields]})})
        read.Meta.read_only_fields = read.Meta.fields

    class LogViewSet(SubjectRecordViewSet):
        __doc__ = f"{model._meta.verbose_name.capitalize()} log (data-dictionary.md, rescue interventions)."

        def service_create(self, *, user, data, reason):
            return services.log_create(model, user=user, **data)

        def service_update(self, instance, **kwargs):
            return services.log_update(instance, **kwargs)

        def service_void(self, instance, **kwargs):
            return services.log_void(instance, **kwargs)

    LogViewSet.model = model
    LogViewSet.read_serializer_class = read
    LogViewSet.write_serializer_class = write
    LogViewSet.filterset_class = subject_filterset(model)
    LogViewSet.__name__ = f"{model.__name__}ViewSet"
    return LogViewSet


TocilizumabDoseViewSet = log_viewset(
    TocilizumabDose, ["administered_at", "dose_mg", "weight_kg", "indication"], read_mixin=TocilizumabDoseSerializerMixin
)
CorticosteroidDoseViewSet = log_viewset(CorticosteroidDose, ["drug", "administered_at", "dose_mg", "route", "indication"])
AnticytokineDoseViewSet = log_viewset(
    AnticytokineDose, ["drug", "administered_at", "dose_mg", "weight_kg", "route", "indication"]
)
PlasmaExchangeViewSet = log_viewset(
    PlasmaExchange,
    ["started_at", "ended_at", "plasma_volume_exchanged_ml", "replacement_fluid", "hematocrit_fraction", "weight_kg"],
    derived=("estimated_plasma_volume_ml", "plasma_volumes_exchanged"),
)
HemofiltrationSessionViewSet = log_viewset(
    HemofiltrationSession, ["modality", "started_at", "ended_at", "effluent_rate_ml_h", "weight_kg"],
    derived=("effluent_dose_ml_kg_h",),
)
IcuStayViewSet = log_viewset(IcuStay, ["admitted_at", "discharged_at", "reason"])

AE_FIELDS = ["ctcae_term", "ctcae_version", "grade", "onset_date", "resolution_date", "serious", "seriousness",
             "relatedness", "outcome"]


class AdverseEventFilter(subject_filterset(AdverseEvent, extra_fields=("serious",))):
    min_grade = django_filters.NumberFilter(field_name="grade", lookup_expr="gte", help_text="Grade at least (1-5).")


_AdverseEventLog = log_viewset(AdverseEvent, AE_FIELDS)


SERIOUSNESS_HELP = "Every seriousness criterion that applies; required when serious, empty otherwise."


class AdverseEventSerializer(_AdverseEventLog.read_serializer_class):
    seriousness = drf_serializers.ListField(
        child=drf_serializers.ChoiceField(choices=Seriousness.choices), read_only=True, help_text=SERIOUSNESS_HELP
    )

    class Meta(_AdverseEventLog.read_serializer_class.Meta):
        pass


class AdverseEventWriteSerializer(_AdverseEventLog.write_serializer_class):
    seriousness = drf_serializers.ListField(
        child=drf_serializers.ChoiceField(choices=Seriousness.choices), required=False, allow_empty=True,
        help_text=SERIOUSNESS_HELP,
    )

    class Meta(_AdverseEventLog.write_serializer_class.Meta):
        pass


class AdverseEventViewSet(_AdverseEventLog):
    """Typed-in CTCAE adverse events (data-dictionary.md, "Other adverse events").

    `ctcae_term` must be a term of the shipped CTCAE list for `ctcae_version`; CRS and ICANS are
    refused (their episodes are derived from the daily assessments, see `episodes/`).
    Filters: `subject`, `trial`, `site`, `modified_since`, `serious`, `min_grade`.
    """

    read_serializer_class = AdverseEventSerializer
    write_serializer_class = AdverseEventWriteSerializer
    filterset_class = AdverseEventFilter


class GradingPreviewView(APIView):
    """Grade one input without saving anything (the CRF screen's live feedback).

    Input: the grading input of data-dictionary.md (assessment fields plus context).
    Output: the grading output, or 400 naming every bad field.
    """

    @extend_schema(request=OpenApiTypes.OBJECT, responses={200: GradingPreviewSerializer})
    def post(self, request):
        if not RoleIndex.for_user(request.user).grants:
            from rest_framework.exceptions import NotFound

            raise NotFound()
        if not isinstance(request.data, dict):
            raise drf_serializers.ValidationError({"non_field_errors": ["Send one JSON object."]})
        try:
            result = grade(request.data)
        except GradingInputError as exc:
            raise drf_serializers.ValidationError(exc.errors)
        return Response(result.as_dict())
