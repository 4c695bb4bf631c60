"""Daily assessments, rescue-therapy logs and adverse events in the admin: read-only, with their history."""
from django.contrib import admin

from trials.admin import ReadOnlyClinicalAdmin

from .models import (
    AdverseEvent,
    AnticytokineDose,
    CorticosteroidDose,
    DailyAssessment,
    HemofiltrationSession,
    IcuStay,
    PlasmaExchange,
    TocilizumabDose,
)


@admin.register(DailyAssessment)
class DailyAssessmentAdmin(ReadOnlyClinicalAdmin):
    list_display = ["subject", "assessment_date", "study_day", "crs_grade_derived", "icans_grade_derived", "voided"]
    list_filter = ["subject__trial", "subject__site", "crs_grade_derived", "icans_grade_derived"]
    search_fields = ["subject__subject_id"]


@admin.register(AdverseEvent)
class AdverseEventAdmin(ReadOnlyClinicalAdmin):
    list_display = ["subject", "ctcae_term", "grade", "onset_date", "resolution_date", "serious", "outcome", "voided"]
    list_filter = ["subject__trial", "serious", "grade", "outcome", "voided"]
    search_fields = ["subject__subject_id", "ctcae_term"]


for model in (TocilizumabDose, CorticosteroidDose, AnticytokineDose, PlasmaExchange, HemofiltrationSession, IcuStay):
    admin.site.register(
        model,
        type(f"{model.__name__}Admin", (ReadOnlyClinicalAdmin,), {
            "list_display": ["subject", *[f.name for f in model._meta.fields if f.name.endswith("_at")][:1], "voided"],
            "list_filter": ["subject__trial", "voided"],
            "search_fields": ["subject__subject_id"],
        }),
    )
