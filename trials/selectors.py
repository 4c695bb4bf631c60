"""The one place that decides what a user may see or change (workflow.md, Roles).

Every view, API endpoint, export and task scopes its querysets with :func:`scoped`. A model
declares where its trial and site are (``scope_trial``/``scope_site`` lookups); trial roles see
the whole trial, site roles only their sites. Objects outside scope are simply absent (404).
"""
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db.models import Model, Q, QuerySet

from .models import Cohort, Death, Infusion, Membership, Site, Subject, Trial
from .roles import ALL_ROLES, DATA_ENTRY_ROLES, IDENTIFIED_ROLES, SITE_ROLES, Role


@dataclass(frozen=True)
class RoleIndex:
    """A user's memberships, loaded once: ``{trial_id: {role: {site_id or None, ...}}}``."""

    grants: dict[int, dict[str, set[int | None]]] = field(default_factory=dict)

    @classmethod
    def for_user(cls, user) -> "RoleIndex":
        cached = getattr(user, "_role_index", None)
        if cached is not None:
            return cached
        grants: dict[int, dict[str, set[int | None]]] = {}
        if user is not None and user.is_authenticated and user.is_active:
            memberships = Membership.objects.filter(user=user).order_by()  # no join for the model's ordering
            for trial_id, site_id, role in memberships.values_list("trial_id", "site_id", "role"):
                grants.setdefault(trial_id, {}).setdefault(role, set()).add(site_id)
        index = cls(grants)
        if user is not None:
            user._role_index = index  # per-request cache; the user object lives one request
        return index

    def roles(self, trial_id: int, site_id: int | None = None) -> set[str]:
        """Roles that apply to an object of this trial (and site, for site-level objects)."""
        found = set()
        for role, sites in self.grants.get(trial_id, {}).items():
            if role not in SITE_ROLES or site_id is None or site_id in sites:
                found.add(role)
        return found

    def has(self, roles: Iterable[str], trial_id: int, site_id: int | None = None) -> bool:
        return bool(self.roles(trial_id, site_id) & set(roles))

    def q(self, model: type[Model], roles: Iterable[str] = ALL_ROLES) -> Q:
        """A filter matching the rows of ``model`` that these roles reach."""
        roles = set(roles)
        trial_path, site_path = model.scope_trial, model.scope_site
        whole_trials, sites = set(), set()
        for trial_id, by_role in self.grants.items():
            for role, role_sites in by_role.items():
                if role not in roles:
                    continue
                if role in SITE_ROLES and site_path is not None:
                    sites |= role_sites
                else:
                    whole_trials.add(trial_id)
        q = Q(pk__in=[])
        if whole_trials:
            q |= Q(**{f"{trial_path}__in": sorted(whole_trials)})
        if sites:
            q |= Q(**{f"{site_path}__in": sorted(sites)})
        return q


def scoped(user, queryset: QuerySet, roles: Iterable[str] = ALL_ROLES) -> QuerySet:
    """``queryset`` narrowed to what ``user`` reaches through ``roles`` (all roles by default)."""
    return queryset.filter(RoleIndex.for_user(user).q(queryset.model, roles))


def may_see_identifiers(user, trial_id: int, site_id: int) -> bool:
    """``date_of_birth`` never leaves the site roles of the subject's own site."""
    return RoleIndex.for_user(user).has(IDENTIFIED_ROLES, trial_id, site_id)


def may_see_free_text(user, trial_id: int, site_id: int) -> bool:
    """Sponsor and DSMB never see free text typed about a person (reports.md, De-identification)."""
    return bool(RoleIndex.for_user(user).roles(trial_id, site_id) - {Role.SPONSOR, Role.DSMB})


# --- selectors used by several callers ------------------------------------------------------


def trial_list(*, user) -> QuerySet[Trial]:
    return scoped(user, Trial.objects.all())


def site_list(*, user, trial: Trial | None = None) -> QuerySet[Site]:
    qs = scoped(user, Site.objects.select_related("trial"))
    return qs.filter(trial=trial) if trial is not None else qs


def cohort_list(*, user, trial: Trial | None = None) -> QuerySet[Cohort]:
    qs = scoped(user, Cohort.objects.select_related("trial"))
    return qs.filter(trial=trial) if trial is not None else qs


def subject_list(*, user, roles: Iterable[str] = ALL_ROLES, include_voided: bool = False) -> QuerySet[Subject]:
    qs = scoped(user, Subject.objects.select_related("trial", "site", "cohort"), roles)
    return qs if include_voided else qs.filter(voided=False)


def infusion_list(*, user, roles: Iterable[str] = ALL_ROLES, include_voided: bool = False) -> QuerySet[Infusion]:
    qs = scoped(user, Infusion.objects.select_related("subject", "subject__trial", "subject__site"), roles)
    return qs if include_voided else qs.filter(voided=False)


def death_list(*, user, roles: Iterable[str] = ALL_ROLES) -> QuerySet[Death]:
    return scoped(user, Death.objects.select_related("subject"), roles).filter(voided=False)


def writable_sites(*, user) -> QuerySet[Site]:
    """Sites where the user may enter CRFs."""
    return scoped(user, Site.objects.select_related("trial"), DATA_ENTRY_ROLES)
