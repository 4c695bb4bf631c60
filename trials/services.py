"""Writes to trials data: every path (API, forms, admin, commands, tasks) calls these.

Each service validates (model field limits + validation.py), saves with the acting user and
reason in the audit trail, and refreshes the subject's derived values (day 0, age, status).
"""
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404
from django.utils import timezone

from . import validation
from .audit import audited_create, audited_update, audited_void, system_update
from .choices import SubjectStatus
from .models import Death, Infusion, Membership, Site, Subject, Trial
from .roles import DATA_ENTRY_ROLES
from .selectors import RoleIndex
from .notifications import notify_data_managers
from .study_day import age_in_years

# --- the clinical course after a write --------------------------------------------------------
# A subject's grades, episodes and checks depend on its day 0, age, death and own fields. They are
# the clinical course's (toxicity.course), which trials may not import (the import direction is
# trials <- toxicity <- reporting), so the course registers its write sequence here once, at
# start-up (ToxicityConfig.ready), and every write below ends with the one explicit call
# ``after_subject_write``.
_after_subject_write = []


def register_after_subject_write(sequence) -> None:
    """``sequence(subject, *, user, because)``, run at the end of every write of this module."""
    _after_subject_write[:] = [sequence]


def after_subject_write(subject: "Subject", *, user, because: str) -> None:
    for sequence in _after_subject_write:
        sequence(subject, user=user, because=because)


def require_roles(user, roles, trial_id: int, site_id: int | None) -> None:
    """Refuse, as 'not found', a write by a user without one of ``roles`` there (workflow.md)."""
    if not RoleIndex.for_user(user).has(roles, trial_id, site_id):
        raise Http404("No such record.")


def site_local_date(moment: datetime, site: Site) -> date:
    """The calendar date at the site: day 0 and assessment dates are site-local dates."""
    return timezone.localtime(moment, ZoneInfo(site.timezone)).date()


def _today(site: Site | None = None) -> date:
    return site_local_date(timezone.now(), site) if site is not None else timezone.localdate()


# --- subjects -------------------------------------------------------------------------------


def _subject_rules(subject: Subject):
    return validation.subject_errors(
        {
            "trial_id": subject.trial_id,
            "site_trial_id": subject.site.trial_id if subject.site_id else None,
            "cohort_trial_id": subject.cohort.trial_id if subject.cohort_id else None,
            "enrolled_on": subject.enrolled_on,
            "date_of_birth": subject.date_of_birth,
            "capd_baseline": subject.capd_baseline,
            "developmental_delay": subject.developmental_delay,
            "status": subject.status,
            "has_death": subject.pk is not None and Death.objects.filter(subject=subject, voided=False).exists(),
        },
        today=_today(subject.site if subject.site_id else None),
    ) | _subject_id_unique(subject)


def _subject_id_unique(subject: Subject):
    clash = Subject.objects.filter(trial_id=subject.trial_id, subject_id=subject.subject_id).exclude(pk=subject.pk)
    if subject.subject_id and clash.exists():
        return {"subject_id": [f"Subject id {subject.subject_id} already exists in this trial."]}
    return {}


def subject_create(*, user, reason: str = "", **fields: Any) -> Subject:
    site: Site = fields["site"]
    fields.setdefault("trial", site.trial)
    require_roles(user, DATA_ENTRY_ROLES, site.trial_id, site.pk)
    return audited_create(Subject(**fields), user=user, reason=reason, validate=_subject_rules, derive=_derive_subject)


def subject_update(*, subject: Subject, user, version: int | None, reason: str | None, changes: dict) -> Subject:
    require_roles(user, DATA_ENTRY_ROLES, subject.trial_id, subject.site_id)
    if "trial" in changes and changes["trial"] != subject.trial:
        raise validation_error("trial", "A subject cannot move to another trial.")
    if "site" in changes:
        require_roles(user, DATA_ENTRY_ROLES, changes["site"].trial_id, changes["site"].pk)
    with transaction.atomic():
        subject, changed = audited_update(
            Subject,
            subject.pk,
            user=user,
            version=version,
            reason=reason,
            changes=changes,
            validate=_subject_rules,
            derive=_derive_subject,
        )
        if changed:
            after_subject_write(subject, user=user, because="the subject record was corrected")
    return subject


def subject_void(*, subject: Subject, user, version: int | None, reason: str | None) -> Subject:
    require_roles(user, DATA_ENTRY_ROLES, subject.trial_id, subject.site_id)
    with transaction.atomic():
        subject = audited_void(Subject, subject.pk, user=user, version=version, reason=reason)
        after_subject_write(subject, user=user, because="the subject was marked entered in error")
    return subject


def _derived_status(current: str, *, infused: bool, died: bool) -> str:
    if died:
        return SubjectStatus.DIED
    if current == SubjectStatus.DIED:  # the death record was voided
        current = SubjectStatus.INFUSED if infused else SubjectStatus.ENROLLED
    if infused and current in (SubjectStatus.SCREENING, SubjectStatus.ENROLLED):
        return SubjectStatus.INFUSED
    if not infused and current == SubjectStatus.INFUSED:  # the index infusion was voided
        return SubjectStatus.ENROLLED
    return current


def _subject_derived_values(subject: Subject) -> dict[str, Any]:
    """Day 0, age at the index infusion (at enrolment until infused) and status, from the records."""
    index = None
    died = False
    if subject.pk is not None:
        index = subject.infusions.filter(infusion_number=1, voided=False).first()
        died = Death.objects.filter(subject=subject, voided=False).exists()
    day0 = site_local_date(index.infused_at, subject.site) if index else None
    on = day0 or subject.enrolled_on
    return {
        "day0": day0,
        "age_years": age_in_years(subject.date_of_birth, on) if subject.date_of_birth and on else None,
        "status": _derived_status(subject.status, infused=index is not None, died=died),
    }


def _derive_subject(subject: Subject) -> None:
    """On a subject's own save: day 0 and age only; the status the user typed is validated, not replaced."""
    derived = _subject_derived_values(subject)
    subject.day0, subject.age_years = derived["day0"], derived["age_years"]


def subject_refresh_derived(subject: Subject, *, user, because: str) -> Subject:
    """After an infusion or death changed: store the subject's derived values (a system audit row),
    then the clinical course's sequence (the grades depend on day 0, age and death)."""
    with transaction.atomic():
        subject = Subject.objects.select_for_update(of=("self",)).select_related("site", "trial").get(pk=subject.pk)
        system_update(
            subject,
            user=user,
            reason="day 0, age at index infusion and status derived from the subject's records",
            changes=_subject_derived_values(subject),
        )
        after_subject_write(subject, user=user, because=because)
    return subject


# --- infusions ------------------------------------------------------------------------------


def _infusion_rules(infusion: Infusion):
    subject = infusion.subject
    index = (
        Infusion.objects.filter(subject=subject, infusion_number=1, voided=False).exclude(pk=infusion.pk).first()
    )
    errors = validation.infusion_errors(
        {
            "infusion_number": infusion.infusion_number,
            "infused_at": infusion.infused_at,
            "dose_cells_per_kg": infusion.dose_cells_per_kg,
            "lymphodepletion_regimen": infusion.lymphodepletion_regimen,
            "lymphodepletion_start_date": infusion.lymphodepletion_start_date,
            "enrolled_on": subject.enrolled_on,
            "index_infused_at": index.infused_at if index else None,
            "subject_voided": subject.voided,
        },
        now=timezone.now(),
        local_date=site_local_date(infusion.infused_at, subject.site) if infusion.infused_at else None,
    )
    clash = Infusion.objects.filter(subject=subject, infusion_number=infusion.infusion_number, voided=False)
    if infusion.infusion_number and clash.exclude(pk=infusion.pk).exists():
        errors.setdefault("infusion_number", []).append(
            f"Infusion {infusion.infusion_number} is already recorded for this subject."
        )
    return errors


def infusion_create(*, user, subject: Subject, reason: str = "", **fields: Any) -> Infusion:
    require_roles(user, DATA_ENTRY_ROLES, subject.trial_id, subject.site_id)
    with transaction.atomic():
        subject = Subject.objects.select_for_update(of=("self",)).select_related("site").get(pk=subject.pk)  # one writer per subject
        infusion = audited_create(Infusion(subject=subject, **fields), user=user, reason=reason, validate=_infusion_rules)
        subject_refresh_derived(subject, user=user, because=f"infusion {infusion.infusion_number} was entered")
    return infusion


def infusion_update(*, infusion: Infusion, user, version: int | None, reason: str | None, changes: dict) -> Infusion:
    require_roles(user, DATA_ENTRY_ROLES, infusion.subject.trial_id, infusion.subject.site_id)
    changes.pop("subject", None)  # an infusion never moves to another subject
    with transaction.atomic():
        Subject.objects.select_for_update().get(pk=infusion.subject_id)
        infusion, changed = audited_update(
            Infusion, infusion.pk, user=user, version=version, reason=reason, changes=changes, validate=_infusion_rules
        )
        if changed:
            subject_refresh_derived(infusion.subject, user=user, because=f"infusion {infusion.infusion_number} was corrected")
    return infusion


def infusion_void(*, infusion: Infusion, user, version: int | None, reason: str | None) -> Infusion:
    require_roles(user, DATA_ENTRY_ROLES, infusion.subject.trial_id, infusion.subject.site_id)
    with transaction.atomic():
        Subject.objects.select_for_update().get(pk=infusion.subject_id)
        infusion = audited_void(Infusion, infusion.pk, user=user, version=version, reason=reason)
        subject_refresh_derived(infusion.subject, user=user, because=f"infusion {infusion.infusion_number} was voided")
    return infusion


# --- death ----------------------------------------------------------------------------------


def _death_rules(death: Death):
    subject = death.subject
    return validation.death_errors(
        {
            "death_date": death.death_date,
            "death_primary_cause": death.death_primary_cause,
            "death_cause_other_text": death.death_cause_other_text,
            "enrolled_on": subject.enrolled_on,
            "last_assessment_date": last_assessment_date(subject),
        },
        today=_today(subject.site),
    )


def last_assessment_date(subject: Subject) -> date | None:
    """Date of the subject's latest daily assessment, when the toxicity app records any."""
    related = getattr(subject, "assessments", None)
    if related is None:
        return None
    latest = related.filter(voided=False).order_by("-assessment_date").values_list("assessment_date", flat=True).first()
    return latest


def death_record(*, subject: Subject, user, version: int | None = None, reason: str | None = None, **fields) -> Death:
    """Create the subject's death record, or update it (with version and reason) if it exists."""
    require_roles(user, DATA_ENTRY_ROLES, subject.trial_id, subject.site_id)
    with transaction.atomic():
        subject = Subject.objects.select_for_update(of=("self",)).select_related("site").get(pk=subject.pk)
        if subject.voided:
            raise validation_error("subject", "This subject was marked entered in error.")
        existing = Death.objects.filter(subject=subject, voided=False).first()
        if existing is None:
            death = audited_create(Death(subject=subject, **fields), user=user, reason=reason or "", validate=_death_rules)
            notify_data_managers(subject=subject, text=f"death on {death.death_date} ({death.get_death_primary_cause_display()})")
        else:
            death, _ = audited_update(
                Death, existing.pk, user=user, version=version, reason=reason, changes=fields, validate=_death_rules
            )
        subject_refresh_derived(subject, user=user, because="the death record was entered or corrected")
    return death


def death_void(*, death: Death, user, version: int | None, reason: str | None) -> Death:
    require_roles(user, DATA_ENTRY_ROLES, death.subject.trial_id, death.subject.site_id)
    with transaction.atomic():
        death = audited_void(Death, death.pk, user=user, version=version, reason=reason)
        subject_refresh_derived(death.subject, user=user, because="the death record was voided")
    return death


# --- memberships ----------------------------------------------------------------------------


def membership_grant(*, user, role: str, trial: Trial, site: Site | None = None, granted_by=None) -> Membership:
    membership = Membership(user=user, role=role, trial=trial, site=site)
    membership.full_clean(validate_unique=False, validate_constraints=False)
    existing = Membership.objects.filter(user=user, role=role, trial=trial, site=site).first()
    if existing:
        return existing
    membership._history_user = granted_by
    membership._change_reason = f"granted {role}"
    membership.save()
    user.__dict__.pop("_role_index", None)
    return membership


def membership_revoke(*, user, role: str, trial: Trial, site: Site | None = None, revoked_by=None) -> int:
    revoked = 0
    for membership in Membership.objects.filter(user=user, role=role, trial=trial, site=site):
        membership._history_user = revoked_by
        membership._change_reason = f"revoked {role}"
        membership.delete()
        revoked += 1
    user.__dict__.pop("_role_index", None)
    return revoked


def validation_error(field: str, message: str) -> ValidationError:
    return ValidationError({field: [message]})
