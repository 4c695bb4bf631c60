"""The query inbox / worklist pages: list (with CSV), one query's thread, raising a query on a field.
Thin: scoping from trials.selectors, the workflow from toxicity.queries."""
import csv
from datetime import timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone

from reporting.deid import IDENTIFIER_FIELDS
from toxicity import queries
from toxicity.forms import LOG_KINDS
from toxicity.models import DailyAssessment, Query, QueryStatus
from toxicity.views import _roles
from trials import workflow_services as wf
from trials.models import Subject
from trials.roles import CRF_ROLES, DATA_ENTRY_ROLES
from trials.selectors import RoleIndex, may_see_identifiers, scoped

SORTS = {"age": "opened_at", "-age": "-opened_at", "subject": "subject__subject_id", "rule": "rule_id",
         "status": "status", "site": "site__site_number"}


def _query_list(request):
    qs = scoped(request.user, Query.objects.select_related("subject", "site", "trial"), CRF_ROLES)
    f = request.GET
    if f.get("trial"):
        qs = qs.filter(trial_id=f["trial"])
    if f.get("site"):
        qs = qs.filter(site__site_number=f["site"])
    status = f.get("status", "active")
    if status == "active":
        qs = qs.filter(status__in=[QueryStatus.OPEN, QueryStatus.ANSWERED])
    elif status in QueryStatus.values:
        qs = qs.filter(status=status)
    if f.get("rule"):
        qs = qs.filter(rule_id=f["rule"])
    if f.get("min_age_days", "").isdigit():
        qs = qs.filter(opened_at__lte=timezone.now() - timedelta(days=int(f["min_age_days"])))
    return qs.order_by(SORTS.get(f.get("sort", "-age"), "-opened_at"), "pk"), status


@login_required
def query_list(request):
    qs, status = _query_list(request)
    if request.GET.get("format") == "csv":
        response = HttpResponse(content_type="text/csv")
        response["Content-Disposition"] = 'attachment; filename="queries.csv"'
        writer = csv.writer(response)
        writer.writerow(["id", "trial", "site", "subject", "record_type", "record_id", "field", "origin", "rule_id",
                         "status", "age_days", "opened_at", "text"])
        for q in qs[:50000]:
            writer.writerow([q.pk, q.trial.protocol_code, q.site.site_number, q.subject.subject_id, q.record_type,
                             q.record_id, q.field, q.origin, q.rule_id, q.status, queries.open_query_age_days(q),
                             q.opened_at.isoformat(), q.text])
        return response
    index = RoleIndex.for_user(request.user)
    site_user = any(index.has(DATA_ENTRY_ROLES, t) for t in index.grants)
    rules = sorted(set(scoped(request.user, Query.objects.exclude(rule_id=""), CRF_ROLES).values_list("rule_id", flat=True)))
    return render(request, "toxicity/query_list.html", {
        "queries": qs[:500], "total": qs.count(), "status": status, "filters": request.GET, "rules": rules,
        "title": "Site inbox" if site_user else "Query worklist", "statuses": ["active", *QueryStatus.values, "all"],
        "sorts": SORTS,
    })


def record_url(q) -> str:
    if q.record_type == "toxicity.dailyassessment":
        a = DailyAssessment.objects.filter(pk=q.record_id).first()
        if a:
            return reverse("assessment-day", args=[q.subject_id, a.assessment_date.isoformat()])
    if q.field.startswith("assessment_date="):
        return reverse("assessment-day", args=[q.subject_id, q.field.split("=")[1]])
    for slug, (model, _, _) in LOG_KINDS.items():
        if model._meta.label_lower == q.record_type:
            return reverse("log-record", args=[q.subject_id, slug, q.record_id])
    return reverse("casebook", args=[q.subject_id])


@login_required
def query_detail(request, query_pk):
    q = get_object_or_404(scoped(request.user, Query.objects.select_related("subject", "site"), CRF_ROLES), pk=query_pk)
    if request.method == "POST" and not _roles(request, q.subject) & (queries.SITE | queries.REVIEWERS):
        raise Http404("No such query.")  # the site's data entry and the reviewers write in a thread
    if request.method == "POST":
        action, text = request.POST.get("action"), request.POST.get("text", "")
        try:
            if action == "message":
                queries.query_message(user=request.user, query=q, text=text)
            elif action in queries.TRANSITIONS:
                queries.query_transition(user=request.user, query=q, action=action, text=text)
            else:
                raise ValidationError({"action": ["Unknown action."]})
            messages.success(request, "Done.")
            return redirect("query-page", query_pk=q.pk)
        except ValidationError as exc:
            for field, msgs in exc.message_dict.items():
                for m in msgs:
                    messages.error(request, f"{field}: {m}")
    return render(request, "toxicity/query_detail.html", {
        "q": q, "thread": q.messages.select_related("author"), "actions": queries.allowed_actions(request.user, q),
        "record_url": record_url(q), "can_write": bool(_roles(request, q.subject) & (queries.SITE | queries.REVIEWERS)),
    })


@login_required
def query_raise(request):
    source = request.POST if request.method == "POST" else request.GET
    record_type, record_id, field = source.get("record_type", ""), source.get("record_id", ""), source.get("field", "")
    if not record_id.isdigit():
        raise Http404("No such record.")
    model = wf.record_model(record_type)
    # Raising a query is a reviewer's act (workflow.md): monitors of the record's site, data managers.
    record = get_object_or_404(scoped(request.user, model.objects.all(), queries.REVIEWERS), pk=record_id)
    subject = record if isinstance(record, Subject) else getattr(record, "subject", None)
    shown = field not in IDENTIFIER_FIELDS or (
        subject is not None and may_see_identifiers(request.user, subject.trial_id, subject.site_id))
    error = None
    if request.method == "POST":
        try:
            q = queries.query_raise(user=request.user, record_type=record_type, record_id=int(record_id),
                                    field=field, text=request.POST.get("text", ""))
            messages.success(request, "Query raised.")
            return redirect("query-page", query_pk=q.pk)
        except ValidationError as exc:
            error = "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
    return render(request, "toxicity/query_raise.html", {
        "record": record, "record_type": record_type, "field": field, "error": error,
        "value": getattr(record, field, "") if shown else "(not shown: identifying data)",
        "text": request.POST.get("text", ""),
    })
