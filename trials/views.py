"""Browser pages of the trials app: home per role, audit history, signing and locking."""
import functools
from datetime import timedelta
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from trials import selectors
from trials import workflow_services as wf
from trials.audit import field_changes
from trials.models import Subject

from trials.roles import CRF_ROLES, DATA_ENTRY_ROLES
from trials.selectors import RoleIndex, scoped
from trials.services import site_local_date
from trials.workflow import Lock


def in_site_timezone(view):
    """Date-times on a subject's CRF pages are the site's local time: a coordinator in Berlin types
    09:00 and means 09:00 in Berlin (forms parse and show date-times in the active time zone)."""

    @functools.wraps(view)
    def wrapper(request, pk, *args, **kwargs):
        zone = Subject.objects.filter(pk=pk).values_list("site__timezone", flat=True).first()
        if zone is None:
            return view(request, pk, *args, **kwargs)  # the view answers 404 as usual
        with timezone.override(ZoneInfo(zone)):
            return view(request, pk, *args, **kwargs)

    return wrapper


@login_required
def home(request):
    """My trials and sites, subjects needing today's assessment, my open queries, recent grade >= 3 events."""
    from toxicity.models import DailyAssessment, Query

    index = RoleIndex.for_user(request.user)
    trials = [{"trial": t, "roles": sorted(index.roles(t.pk)),
               "sites": [s.site_number for s in selectors.site_list(user=request.user, trial=t)]}
              for t in selectors.trial_list(user=request.user)]
    subjects = list(selectors.subject_list(user=request.user, roles=CRF_ROLES).order_by("trial", "subject_id")[:500])
    due = []
    entered = set(DailyAssessment.objects.filter(subject__in=subjects, voided=False).values_list("subject_id", "assessment_date"))
    for s in subjects:
        if s.day0 is None or s.status in ("died", "withdrawn", "completed"):
            continue
        today = site_local_date(timezone.now(), s.site)
        if 0 <= (today - s.day0).days <= s.trial.daily_assessment_until_day and (s.pk, today) not in entered:
            due.append((s, today))
    open_queries = scoped(request.user, Query.objects.filter(status__in=["open", "answered"]), CRF_ROLES).select_related("subject")
    since = timezone.localdate() - timedelta(days=14)
    severe = (
        DailyAssessment.objects.filter(subject__in=subjects, voided=False, assessment_date__gte=since)
        .filter(crs_grade_derived__gte=3) | DailyAssessment.objects.filter(
            subject__in=subjects, voided=False, assessment_date__gte=since, icans_grade_derived__gte=3)
    ).select_related("subject").order_by("-assessment_date")[:50]
    return render(request, "trials/home.html", {
        "trials": trials, "subjects": subjects, "due": due, "open_queries": open_queries.order_by("opened_at")[:20],
        "open_count": open_queries.count(), "severe": severe,
        "can_enter": any(index.has(DATA_ENTRY_ROLES, t) for t in index.grants),
    })


@login_required
def history(request, record_type, record_pk):
    """The audit trail of one form: who, when, field, old value, new value, reason."""
    model = wf.record_model(record_type)
    record = get_object_or_404(scoped(request.user, model.objects.all(), CRF_ROLES), pk=record_pk)
    subject = wf.record_subject(record)
    identified = selectors.may_see_identifiers(request.user, subject.trial_id, subject.site_id)
    rows = []
    for h in record.history.select_related("history_user").order_by("history_date", "history_id"):
        changes = field_changes(h)
        if not identified:
            changes.pop("date_of_birth", None)
        rows.append({"h": h, "changes": sorted(changes.items())})
    return render(request, "trials/history.html", {"record": record, "subject": subject, "rows": rows,
                                                   "model": model._meta.verbose_name})


@login_required
def sign_casebook(request, pk):
    subject = get_object_or_404(selectors.subject_list(user=request.user, roles=CRF_ROLES), pk=pk)
    error = None
    if request.method == "POST":
        try:
            wf.casebook_sign(user=request.user, subject=subject, password=request.POST.get("password", ""),
                             request=request)
            messages.success(request, "Casebook signed: reviewed and approved.")
            return redirect("casebook", pk=subject.pk)
        except ValidationError as exc:
            error = " ".join(exc.messages)
    elif not RoleIndex.for_user(request.user).has({"investigator"}, subject.trial_id, subject.site_id):
        from django.http import Http404

        raise Http404("No such page.")
    return render(request, "trials/sign.html", {"subject": subject, "error": error})


@login_required
@require_POST
def lock_casebook(request, pk):
    subject = get_object_or_404(selectors.subject_list(user=request.user, roles=CRF_ROLES), pk=pk)
    try:
        wf.lock_create(user=request.user, scope="casebook", trial=subject.trial, subject=subject,
                       reason=request.POST.get("reason", ""))
        messages.success(request, "Casebook locked.")
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect("casebook", pk=subject.pk)


@login_required
@require_POST
def unlock(request, lock_pk):
    lock = get_object_or_404(scoped(request.user, Lock.objects.all(), CRF_ROLES), pk=lock_pk)
    try:
        wf.lock_release(user=request.user, lock=lock, reason=request.POST.get("reason", ""))
        messages.success(request, "Unlocked.")
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect("casebook", pk=lock.subject_id) if lock.subject_id else redirect("home")




def _record_page(request, *, kind, subject=None, record=None, trial=None):
    """Create or correct a subject, an infusion or the death record through the services."""
    from trials import services
    from trials.audit import RecordLockedError, StaleVersionError
    from trials.forms import FORMS, record_form


    model, names = FORMS[kind]
    target_trial = trial or subject.trial
    sites = selectors.writable_sites(user=request.user).filter(trial=target_trial)
    if not sites.exists() or (subject is not None and not sites.filter(pk=subject.site_id).exists()):
        from django.http import Http404

        raise Http404("No such form.")
    cohorts = selectors.cohort_list(user=request.user, trial=target_trial)
    Form = record_form(model, names, sites=sites if kind == "subject" else None, cohorts=cohorts)
    if request.method == "POST":
        form = Form(request.POST)
        if form.is_valid():
            data = {n: form.cleaned_data[n] for n in names}
            version, reason = form.cleaned_data.get("version"), form.cleaned_data.get("change_reason")
            try:
                if kind == "subject":
                    saved = (services.subject_create(user=request.user, **data) if record is None else
                             services.subject_update(subject=record, user=request.user, version=version, reason=reason,
                                                     changes=data))
                elif kind == "infusion":
                    saved = (services.infusion_create(user=request.user, subject=subject, **data) if record is None else
                             services.infusion_update(infusion=record, user=request.user, version=version,
                                                      reason=reason, changes=data))
                else:
                    saved = services.death_record(subject=subject, user=request.user, version=version, reason=reason,
                                                  **data)
                messages.success(request, f"Saved: {model._meta.verbose_name}.")
                return redirect("casebook", pk=saved.pk if kind == "subject" else subject.pk)
            except (ValidationError, StaleVersionError, RecordLockedError) as exc:
                from toxicity.views import _apply_errors

                if isinstance(exc, ValidationError) and "reason" in exc.message_dict:
                    exc = ValidationError({"change_reason": exc.message_dict.pop("reason"), **exc.message_dict})
                _apply_errors(form, exc)
    else:
        initial = {n: getattr(record, n if n not in ("site", "cohort") else f"{n}_id") for n in names} if record else {}
        if record is not None:
            initial["version"] = record.version
        form = Form(initial=initial)

    return render(request, "trials/record_form.html", {
        "form": form, "kind": kind, "record": record, "subject": subject, "trial": target_trial,
        "title": f"{'Correct' if record else 'New'} {model._meta.verbose_name}",
    })


@login_required
def subject_new(request, trial_pk):
    trial = get_object_or_404(selectors.trial_list(user=request.user), pk=trial_pk)
    return _record_page(request, kind="subject", trial=trial)


@login_required
def subject_edit(request, pk):
    subject = get_object_or_404(selectors.subject_list(user=request.user, roles=CRF_ROLES), pk=pk)
    return _record_page(request, kind="subject", subject=subject, record=subject)


@login_required
@in_site_timezone
def infusion_page(request, pk, infusion_pk=None):
    from trials.models import Infusion

    subject = get_object_or_404(selectors.subject_list(user=request.user, roles=CRF_ROLES), pk=pk)
    record = get_object_or_404(Infusion, pk=infusion_pk, subject=subject, voided=False) if infusion_pk else None
    return _record_page(request, kind="infusion", subject=subject, record=record)


@login_required
@in_site_timezone
def death_page(request, pk):
    from trials.models import Death

    subject = get_object_or_404(selectors.subject_list(user=request.user, roles=CRF_ROLES), pk=pk)
    record = Death.objects.filter(subject=subject, voided=False).first()
    return _record_page(request, kind="death", subject=subject, record=record)
