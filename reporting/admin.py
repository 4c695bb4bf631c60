from django.contrib import admin

from toxicity.models import Episode

from .models import AccessLogEntry


class ReadOnlyAdmin(admin.ModelAdmin):
    """Derived or append-only rows: visible to administrators, never edited by hand."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AccessLogEntry)
class AccessLogEntryAdmin(ReadOnlyAdmin):
    list_display = ("at", "user", "trial", "method", "resource", "status_code", "row_count", "completed")
    list_filter = ("resource", "trial", "completed")
    search_fields = ("user__username", "path")
    date_hierarchy = "at"


@admin.register(Episode)
class EpisodeAdmin(ReadOnlyAdmin):
    list_display = ("subject", "kind", "episode_number", "max_grade", "onset_date", "resolution_date", "serious", "outcome", "voided")
    list_filter = ("kind", "max_grade", "serious", "voided")
    search_fields = ("subject__subject_id",)
