"""Trials API representations. Sponsor and DSMB never receive date_of_birth or free text."""
from rest_framework import serializers

from trials.models import Cohort, Death, Infusion, Site, Subject, Trial
from trials.selectors import may_see_free_text, may_see_identifiers, scoped, writable_sites
from trials.roles import DATA_ENTRY_ROLES

from .base import ClinicalSerializer, WriteSerializer


class TrialSerializer(serializers.ModelSerializer):
    class Meta:
        model = Trial
        fields = [
            "id", "protocol_code", "title", "phase", "sponsor", "crs_scale", "icans_scale",
            "daily_assessment_until_day", "followup_days", "tocilizumab_response_hours",
            "stopping_toxicity_threshold", "stopping_posterior_cutoff", "stopping_prior_a", "stopping_prior_b",
            "export_date_shift", "status", "modified_at",
        ]


class SiteSerializer(serializers.ModelSerializer):
    class Meta:
        model = Site
        fields = ["id", "trial", "site_number", "name", "country", "timezone", "modified_at"]


class CohortSerializer(serializers.ModelSerializer):
    class Meta:
        model = Cohort
        fields = ["id", "trial", "name", "dose_level_cells_per_kg", "modified_at"]


class ScopedPrimaryKeyField(serializers.PrimaryKeyRelatedField):
    """A related id the caller may reference; anything else reads as 'does not exist'."""

    def __init__(self, *, scope, **kwargs):
        self.scope = scope
        super().__init__(**kwargs)

    def get_queryset(self):
        request = self.context.get("request")
        return self.scope(request.user if request else None)


SUBJECT_FIELDS = [
    "id", "trial", "subject_id", "site", "site_number", "cohort", "cohort_name", "enrolled_on", "sex",
    "date_of_birth", "age_years", "diagnosis", "baseline_weight_kg", "developmental_delay", "capd_baseline",
    "status", "day0",
]


class SubjectSerializer(ClinicalSerializer):
    site_number = serializers.CharField(source="site.site_number", read_only=True)
    cohort_name = serializers.CharField(source="cohort.name", read_only=True)

    class Meta:
        model = Subject
        fields = SUBJECT_FIELDS + list(ClinicalSerializer.AUDIT_FIELDS)
        read_only_fields = fields

    def to_representation(self, instance):
        data = super().to_representation(instance)
        user = self.context["request"].user
        if not may_see_identifiers(user, instance.trial_id, instance.site_id):
            data.pop("date_of_birth", None)
        return data


class SubjectWriteSerializer(WriteSerializer):
    site = ScopedPrimaryKeyField(scope=lambda user: writable_sites(user=user))
    cohort = ScopedPrimaryKeyField(scope=lambda user: scoped(user, Cohort.objects.all(), DATA_ENTRY_ROLES))

    class Meta:
        model = Subject
        fields = [
            "subject_id", "site", "cohort", "enrolled_on", "sex", "date_of_birth", "diagnosis",
            "baseline_weight_kg", "developmental_delay", "capd_baseline", "status",
        ]
        validators = []  # uniqueness is checked by the service, naming the field


class InfusionSerializer(ClinicalSerializer):
    subject_id = serializers.CharField(source="subject.subject_id", read_only=True)

    class Meta:
        model = Infusion
        fields = [
            "id", "subject", "subject_id", "infusion_number", "product", "lot_number", "infused_at",
            "dose_cells_per_kg", "weight_kg", "lymphodepletion_regimen", "lymphodepletion_start_date",
        ] + list(ClinicalSerializer.AUDIT_FIELDS)
        read_only_fields = fields


class InfusionWriteSerializer(WriteSerializer):
    subject = ScopedPrimaryKeyField(
        scope=lambda user: scoped(user, Subject.objects.filter(voided=False), DATA_ENTRY_ROLES)
    )

    class Meta:
        model = Infusion
        fields = [
            "subject", "infusion_number", "product", "lot_number", "infused_at", "dose_cells_per_kg",
            "weight_kg", "lymphodepletion_regimen", "lymphodepletion_start_date",
        ]
        validators = []


class DeathSerializer(ClinicalSerializer):
    class Meta:
        model = Death
        fields = ["id", "subject", "death_date", "death_primary_cause", "death_cause_other_text"] + list(
            ClinicalSerializer.AUDIT_FIELDS
        )
        read_only_fields = fields

    def to_representation(self, instance):
        data = super().to_representation(instance)
        subject = instance.subject
        if not may_see_free_text(self.context["request"].user, subject.trial_id, subject.site_id):
            data.pop("death_cause_other_text", None)
        return data


class DeathWriteSerializer(WriteSerializer):
    version = serializers.IntegerField(required=False, min_value=1, help_text="Required to change an existing record.")
    reason = serializers.CharField(required=False, allow_blank=True, help_text="Required to change an existing record.")

    class Meta:
        model = Death
        fields = ["death_date", "death_primary_cause", "death_cause_other_text", "version", "reason"]

