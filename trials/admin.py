"""Admin for trial set-up (data managers): trials, sites, cohorts, memberships, with history.

Subjects and clinical data are entered through the CRF screens and the API, which apply the
validation and audit rules; the admin shows them read-only. Nothing is deleted here except a
membership (revoking a role), which the history keeps.
"""
from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from .models import Cohort, Death, Infusion, Membership, Site, Subject, Trial


class NoDeleteMixin:
    def has_delete_permission(self, request, obj=None):
        return False


class SiteInline(admin.TabularInline):
    model = Site
    extra = 0
    fields = ["site_number", "name", "country", "timezone"]
    can_delete = False


class CohortInline(admin.TabularInline):
    model = Cohort
    extra = 0
    fields = ["name", "dose_level_cells_per_kg"]
    can_delete = False


@admin.register(Trial)
class TrialAdmin(NoDeleteMixin, SimpleHistoryAdmin):
    list_display = ["protocol_code", "title", "phase", "status", "crs_scale", "icans_scale"]
    list_filter = ["status", "phase"]
    search_fields = ["protocol_code", "title", "sponsor"]
    inlines = [SiteInline, CohortInline]


@admin.register(Site)
class SiteAdmin(NoDeleteMixin, SimpleHistoryAdmin):
    list_display = ["trial", "site_number", "name", "country", "timezone"]
    list_filter = ["trial", "country"]


@admin.register(Cohort)
class CohortAdmin(NoDeleteMixin, SimpleHistoryAdmin):
    list_display = ["trial", "name", "dose_level_cells_per_kg"]
    list_filter = ["trial"]


@admin.register(Membership)
class MembershipAdmin(SimpleHistoryAdmin):
    list_display = ["user", "trial", "role", "site", "granted_at"]
    list_filter = ["trial", "role", "site"]
    search_fields = ["user__username"]
    autocomplete_fields = ["user"]


class ReadOnlyClinicalAdmin(NoDeleteMixin, SimpleHistoryAdmin):
    """Clinical rows are visible with their history here, never edited outside the services."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Subject)
class SubjectAdmin(ReadOnlyClinicalAdmin):
    list_display = ["subject_id", "trial", "site", "cohort", "status", "day0", "voided"]
    list_filter = ["trial", "site", "status", "voided"]
    search_fields = ["subject_id"]


@admin.register(Infusion)
class InfusionAdmin(ReadOnlyClinicalAdmin):
    list_display = ["subject", "infusion_number", "product", "infused_at", "voided"]
    list_filter = ["subject__trial", "product", "voided"]


@admin.register(Death)
class DeathAdmin(ReadOnlyClinicalAdmin):
    list_display = ["subject", "death_date", "death_primary_cause", "voided"]
