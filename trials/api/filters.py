import django_filters

from trials.models import Infusion, Subject


class ModifiedSinceFilterSet(django_filters.FilterSet):
    modified_since = django_filters.IsoDateTimeFilter(
        field_name="modified_at", lookup_expr="gte", help_text="ISO 8601; rows changed at or after this time."
    )


class SubjectFilter(ModifiedSinceFilterSet):
    class Meta:
        model = Subject
        fields = ["trial", "site", "cohort", "status"]


class InfusionFilter(ModifiedSinceFilterSet):
    trial = django_filters.NumberFilter(field_name="subject__trial")
    site = django_filters.NumberFilter(field_name="subject__site")

    class Meta:
        model = Infusion
        fields = ["subject", "trial", "site", "infusion_number"]
