"""Toxicity API representations: derived grades appear as 0-5 or "NE"."""
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from toxicity.choices import Inotrope, Vasopressor
from toxicity.grading.dosing import mg_per_kg, tocilizumab_expected_dose_mg
from toxicity.models import OBSERVATIONS, DailyAssessment, TocilizumabDose
from trials.api.base import ClinicalSerializer, WriteSerializer
from trials.api.serializers import ScopedPrimaryKeyField
from trials.models import Subject
from trials.roles import DATA_ENTRY_ROLES
from trials.selectors import scoped


@extend_schema_field({"oneOf": [{"type": "integer", "minimum": 0, "maximum": 5}, {"type": "string", "enum": ["NE"]}]})
class GradeField(serializers.Field):
    """A stored grade; NULL means not evaluable."""

    def __init__(self, **kwargs):
        kwargs["read_only"] = True
        super().__init__(**kwargs)

    def get_attribute(self, instance):
        return self.represent_stored(getattr(instance, self.source))  # DRF would render None as null

    represent_stored_sql = "COALESCE(to_json(%(expressions)s), '\"NE\"'::json)"  # trials.api.json_rows

    @staticmethod
    def represent_stored(value):
        """The stored grade as shown, also for list pages built from rows (trials.api.rows)."""
        return "NE" if value is None else value

    def to_representation(self, value):
        return value


def writable_subject_field():
    return ScopedPrimaryKeyField(scope=lambda user: scoped(user, Subject.objects.filter(voided=False), DATA_ENTRY_ROLES))


RAW_ASSESSMENT_FIELDS = ["assessment_date", *OBSERVATIONS]  # the model declares the observed fields once


class AssessmentSerializer(ClinicalSerializer):
    subject_id = serializers.CharField(source="subject.subject_id", read_only=True)
    crs_grade_derived = GradeField()
    icans_grade_derived = GradeField()
    ctcae_crs_grade_derived = GradeField()

    class Meta:
        model = DailyAssessment
        fields = (
            ["id", "subject", "subject_id", "study_day"] + RAW_ASSESSMENT_FIELDS
            + ["crs_grade_derived", "icans_grade_derived", "ctcae_crs_grade_derived", "minimum_crs_grade",
               "minimum_icans_grade", "fever_masked_by", "crs_scale", "icans_scale", "engine_version", "flags",
               "reasons"]
            + list(ClinicalSerializer.AUDIT_FIELDS)
        )
        read_only_fields = fields


class AssessmentWriteSerializer(WriteSerializer):
    subject = writable_subject_field()
    vasopressors = serializers.ListField(
        child=serializers.ChoiceField(choices=Vasopressor.choices), required=False, allow_empty=True,
        help_text="Agents for hypotension running at the same time at the worst moment of the day.",
    )
    inotropes = serializers.ListField(
        child=serializers.ChoiceField(choices=Inotrope.choices), required=False, allow_empty=True,
        help_text="Inotropes running (milrinone, dobutamine, other): recorded, never graded (R-CRS-8).",
    )

    class Meta:
        model = DailyAssessment
        fields = ["subject"] + RAW_ASSESSMENT_FIELDS
        validators = []


def log_serializers(model, fields: list[str], derived: tuple[str, ...] = ()):
    """Read and write serializers of a rescue-therapy log."""
    read_meta = type("Meta", (), {
        "model": model,
        "fields": ["id", "subject", "subject_id", *fields, *derived, *ClinicalSerializer.AUDIT_FIELDS],
    })
    read_meta.read_only_fields = read_meta.fields
    read = type(f"{model.__name__}Serializer", (ClinicalSerializer,), {
        "Meta": read_meta,
        "subject_id": serializers.CharField(source="subject.subject_id", read_only=True),
    })
    write = type(f"{model.__name__}WriteSerializer", (WriteSerializer,), {
        "Meta": type("Meta", (), {"model": model, "fields": ["subject", *fields], "validators": []}),
        "subject": writable_subject_field(),
    })
    return read, write


class TocilizumabDoseSerializerMixin(serializers.Serializer):
    mg_per_kg = serializers.SerializerMethodField(help_text="dose_mg / weight_kg")
    expected_dose_mg = serializers.SerializerMethodField(
        help_text="12 mg/kg under 30 kg, else 8 mg/kg; at most 800 mg (label)."
    )

    @extend_schema_field(OpenApiTypes.DECIMAL)
    def get_mg_per_kg(self, obj: TocilizumabDose):
        return str(mg_per_kg(obj.dose_mg, obj.weight_kg))

    @extend_schema_field(OpenApiTypes.DECIMAL)
    def get_expected_dose_mg(self, obj: TocilizumabDose):
        return str(tocilizumab_expected_dose_mg(obj.weight_kg))


class GradingPreviewSerializer(serializers.Serializer):
    """Documented shape of the preview answer (data-dictionary.md, Grading output)."""

    crs_grade = serializers.JSONField()
    icans_grade = serializers.JSONField()
    ctcae_crs_grade = serializers.JSONField()
    minimum_crs_grade = serializers.IntegerField(
        allow_null=True, help_text="Set when crs_grade is NE but the recorded values prove this floor (R-CRS-15).")
    minimum_icans_grade = serializers.IntegerField(
        allow_null=True, help_text="Set when icans_grade is NE but the recorded values prove this floor (R-CRS-15).")
    flags = serializers.ListField(child=serializers.CharField())
    reasons = serializers.ListField(child=serializers.CharField())
    crs_scale = serializers.CharField()
    icans_scale = serializers.CharField()
    engine_version = serializers.CharField()
