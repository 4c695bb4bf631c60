"""Queries: rule-raised from findings (reconciled per subject), manual, and their workflow.

Reconciliation is idempotent: a finding with an open query changes nothing; a finding without
one opens one (unless a monitor closed the same rule on the same values with a justification);
an open rule query whose rule passes is closed automatically, with an audit entry (a rule
replaced by another closes as superseded). It runs in the write sequence of every save
(``toxicity.course.write``) and in the consistency job for every subject of a trial, always under
the subject's row lock, and the database allows one open query per (rule, record, field).
"""
from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.http import Http404
from django.utils import timezone

from toxicity.checks import SUPERSEDED, Finding, job_only_rules, run_rules
from toxicity.course.derive import derive_course
from toxicity.course.load import load_course
from trials.audit import tracked_fields
from trials.bulk import bulk_insert
from trials.models import Subject
from trials.notifications import notify_on_commit
from trials.roles import DATA_ENTRY_ROLES, Role
from trials.selectors import RoleIndex
from trials.workflow_services import record_model

from .models import ACTIVE_QUERY_STATUSES, CheckRun, Query, QueryMessage, QueryOrigin, QueryStatus

SYSTEM = "system"


# --- reconciliation -------------------------------------------------------------------------


@dataclass
class Outcome:
    opened: list[Query]
    auto_closed: int
    unchanged: int


def _key(q: Query):
    return (q.rule_id, q.record_type, q.record_id, q.field)


def reconcile(
    subjects: list[Subject], findings: dict[int, list[Finding]], *, run: CheckRun | None = None, at_save: bool = False
) -> Outcome:
    """Open, keep or auto-close the rule queries of these subjects (rows locked by the caller).

    At save time the job-only rules (ASSESSMENT-MISSING) open nothing, but still close.
    """
    not_opened_now = job_only_rules() if at_save else set()
    ids = [s.pk for s in subjects]
    active, suppressed = {}, {}  # active: key -> query id (the rows are loaded only to be closed)
    relevant = Q(status__in=ACTIVE_QUERY_STATUSES) | Q(suppressed_values__isnull=False)
    for pk, rule_id, record_type, record_id, field, status, suppressed_values in (
        Query.objects.filter(relevant, subject__in=ids, origin=QueryOrigin.RULE).order_by().values_list(
            "pk", "rule_id", "record_type", "record_id", "field", "status", "suppressed_values",
        )
    ):
        if status in ACTIVE_QUERY_STATUSES:
            active[(rule_id, record_type, record_id, field)] = pk
        else:
            suppressed.setdefault((rule_id, record_type, record_id, field), []).append(suppressed_values)
    now = timezone.now()
    new, unchanged, current = [], 0, set()
    by_id = {s.pk: s for s in subjects}
    for subject_id, subject_findings in findings.items():
        subject = by_id[subject_id]
        for f in subject_findings:
            key = f.key
            current.add(key)
            if key in active:
                unchanged += 1
            elif f.values in suppressed.get(key, ()):
                unchanged += 1  # a monitor confirmed these values as correct
            elif f.rule_id not in not_opened_now:
                new.append(Query(
                    trial_id=subject.trial_id, site_id=subject.site_id, subject=subject, record_type=f.record[0],
                    record_id=f.record[1], field=f.field, origin=QueryOrigin.RULE, rule_id=f.rule_id,
                    status=QueryStatus.OPEN, text=f.message, values=f.values, raised_in_run=run, opened_at=now,
                ))
    opened = []
    if new:
        # COPY, not bulk_create: a first run over a trial opens thousands. One history row each
        # ("+", "raised by rule", the user simple-history would record) and one "raise" message.
        history_user = Query.history.model.get_default_history_user
        opened = bulk_insert(Query, new, history_reason="raised by rule",
                             history_user_ids=[getattr(history_user(q), "pk", None) for q in new])
        bulk_insert(QueryMessage, [QueryMessage(query_id=q.pk, role=SYSTEM, action="raise", text=q.text) for q in opened])
    closed = 0
    to_close = [pk for key, pk in active.items() if key not in current]
    for q in Query.objects.filter(pk__in=to_close) if to_close else ():  # in the default order, as before
        q.status, q.closed_at, q.closed_in_run = QueryStatus.CLOSED, now, run
        successor = SUPERSEDED.get(q.rule_id)
        q._change_reason = f"auto-closed: superseded by {successor}" if successor else "auto-closed: the rule passes"
        q.save()
        QueryMessage.objects.create(
            query=q, role=SYSTEM, action="auto_close",
            text=f"Closed automatically: {q.rule_id} is superseded by {successor}." if successor
            else f"Closed automatically: {q.rule_id} now passes.")
        closed += 1
    if opened:
        _notify_site(opened)
    return Outcome(opened=opened, auto_closed=closed, unchanged=unchanged)


# --- notifications --------------------------------------------------------------------------


def _notify_site(queries: list[Query]) -> None:
    """E-mail the site's coordinators and investigators about new queries on their subjects."""
    by_site = defaultdict(list)
    for q in queries:
        by_site[(q.trial_id, q.site_id)].append(q)
    for (trial_id, site_id), site_queries in by_site.items():
        lines = [f"- {q.subject.subject_id}: {q.text}" for q in site_queries]
        notify_on_commit(
            trial_id=trial_id, roles=DATA_ENTRY_ROLES, site_id=site_id,
            subject_line=f"{len(site_queries)} new data quer{'y' if len(site_queries) == 1 else 'ies'}",
            body="New queries on your subjects:\n" + "\n".join(lines),
        )


# --- the query workflow (workflow.md) -------------------------------------------------------

SITE = {Role.COORDINATOR, Role.INVESTIGATOR}
REVIEWERS = {Role.MONITOR, Role.DATA_MANAGER}
# action -> (roles allowed, statuses it starts from, status it leads to)
TRANSITIONS = {
    "answer": (SITE, {QueryStatus.OPEN}, QueryStatus.ANSWERED),
    "close": (REVIEWERS, {QueryStatus.OPEN, QueryStatus.ANSWERED}, QueryStatus.CLOSED),
    "reopen": (REVIEWERS, {QueryStatus.ANSWERED, QueryStatus.CLOSED}, QueryStatus.OPEN),
    "cancel": (REVIEWERS, {QueryStatus.OPEN, QueryStatus.ANSWERED}, QueryStatus.CANCELLED),
}


def _acting_role(user, query: Query, allowed) -> str:
    roles = RoleIndex.for_user(user).roles(query.trial_id, query.site_id)
    if not roles:
        raise Http404("No such query.")
    for role in sorted(allowed & roles):
        return role
    raise ValidationError({"action": [f"Your role ({', '.join(sorted(roles))}) may not do this."]})


def allowed_actions(user, query: Query) -> list[str]:
    roles = RoleIndex.for_user(user).roles(query.trial_id, query.site_id)
    actions = [a for a, (allowed, sources, _) in TRANSITIONS.items() if roles & allowed and query.status in sources]
    if query.origin == QueryOrigin.RULE and "cancel" in actions:
        actions.remove("cancel")
    return actions


def query_raise(*, user, record_type: str, record_id: int, field: str, text: str) -> Query:
    """A monitor or data manager raises a manual query on a field of a record."""
    model = record_model(record_type)
    record = model.objects.select_related().filter(pk=record_id).first()
    if record is None:
        raise Http404("No such record.")
    subject = record if isinstance(record, Subject) else record.subject
    role = _acting_role(user, Query(trial_id=subject.trial_id, site_id=subject.site_id), REVIEWERS)
    errors = {}
    if field not in {f.name for f in tracked_fields(model)}:  # the audited fields, not index keys
        errors["field"] = [f"{model._meta.verbose_name} has no field '{field}'."]
    if not (text or "").strip():
        errors["text"] = ["Write the question."]
    if errors:
        raise ValidationError(errors)
    value = getattr(record, field)
    query = Query(
        trial_id=subject.trial_id, site_id=subject.site_id, subject=subject, record_type=model._meta.label_lower,
        record_id=record.pk, field=field, origin=QueryOrigin.MANUAL, text=text.strip(),
        values={field: value if isinstance(value, (int, float, str, bool, list, type(None))) else str(value)},
        raised_by=user,
    )
    with transaction.atomic():
        query._history_user = user
        query._change_reason = "raised"
        query.save()
        QueryMessage.objects.create(query=query, author=user, role=role, action="raise", text=query.text)
        _notify_site([query])
    return query


def query_message(*, user, query: Query, text: str) -> QueryMessage:
    roles = RoleIndex.for_user(user).roles(query.trial_id, query.site_id)
    writers = SITE | REVIEWERS
    role = _acting_role(user, query, writers) if roles else None
    if role is None:
        raise Http404("No such query.")
    if not (text or "").strip():
        raise ValidationError({"text": ["Write a message."]})
    return QueryMessage.objects.create(query=query, author=user, role=role, text=text.strip())


def query_transition(*, user, query: Query, action: str, text: str) -> Query:
    """answer / close / reopen / cancel, each with a text; closing a rule query that still fails
    needs a justification and suppresses that rule for the same values (checks.md)."""
    allowed, sources, target = TRANSITIONS[action]
    with transaction.atomic():
        query = Query.objects.select_for_update().get(pk=query.pk)
        role = _acting_role(user, query, allowed)
        errors = {}
        if not (text or "").strip():
            errors["text"] = ["Justification required." if action == "close" else "Write a text."]
        if query.status not in sources:
            errors["status"] = [f"A query that is {query.status} cannot be {action}ed."]
        if action == "cancel" and query.origin == QueryOrigin.RULE:
            errors["action"] = ["A rule-raised query closes itself when the data are fixed; a monitor may close it."]
        if errors:
            raise ValidationError(errors)
        now = timezone.now()
        if action == "close" and query.origin == QueryOrigin.RULE:
            still_failing = _current_finding(query)
            query.suppressed_values = still_failing.values if still_failing else None
        if action == "reopen":
            if query.origin == QueryOrigin.RULE and Query.objects.filter(
                rule_id=query.rule_id, record_type=query.record_type, record_id=query.record_id, field=query.field,
                origin=QueryOrigin.RULE, status__in=ACTIVE_QUERY_STATUSES,
            ).exclude(pk=query.pk).exists():
                raise ValidationError({"status": ["A newer query on the same rule and field is already open."]})
            query.suppressed_values, query.closed_at = None, None
        if action == "answer":
            query.answered_at = now
        if target in (QueryStatus.CLOSED, QueryStatus.CANCELLED):
            query.closed_at = now
        query.status = target
        query._history_user = user
        query._change_reason = f"{action}: {text.strip()}"
        query.save()
        QueryMessage.objects.create(query=query, author=user, role=role, action=action, text=text.strip())
    return query


def _current_finding(query: Query) -> Finding | None:
    course = load_course(query.subject_id)
    for f in run_rules(derive_course(course, now=timezone.now())) if course is not None else []:
        if f.key == _key(query):
            return f
    return None


def open_query_age_days(query: Query, now=None) -> int:
    return ((now or timezone.now()) - query.opened_at) // timedelta(days=1)
