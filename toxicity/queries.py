"""Queries: rule-raised from findings (reconciled per subject), manual, and their workflow.

Reconciliation is idempotent: a finding with an open query changes nothing; a finding without
one opens one (unless a monitor closed the same rule on the same values with a justification);
an open rule query whose rule passes is closed automatically, with an audit entry. It runs at
save time for the saved subject and in the consistency job for every subject of a trial, always
under the subject's row lock, and the database allows one open query per (rule, record, field).
"""
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.http import Http404
from django.utils import timezone

from toxicity.checks import Finding, SubjectSnapshot, job_only_rules, run_rules
from toxicity.checks import records as r
from trials.audit import audited_bulk_create  # noqa: F401  (re-exported for generators)
from trials.models import Death, Infusion, Subject
from trials.notifications import notify_on_commit
from trials.roles import DATA_ENTRY_ROLES, Role
from trials.selectors import RoleIndex
from trials.workflow_services import record_model

from .models import (
    ACTIVE_QUERY_STATUSES,
    AnticytokineDose,
    CheckRun,
    CorticosteroidDose,
    DailyAssessment,
    HemofiltrationSession,
    PlasmaExchange,
    Query,
    QueryMessage,
    QueryOrigin,
    QueryStatus,
    TocilizumabDose,
)

SYSTEM = "system"
RAW_FIELDS = (
    "temperature_max_c", "hypotension", "hypoxia", "vasopressors", "oxygen_device", "oxygen_flow_l_min", "fio2_percent",
    "ice_score", "ice_not_assessable", "capd_score", "consciousness", "crs_grade_reported", "icans_grade_reported",
)


# --- snapshots: one subject's records as plain values ---------------------------------------


def load_snapshots(subject_ids: Iterable[int], *, now=None) -> list[SubjectSnapshot]:
    """Snapshots of many subjects with one query per table (the job checks subjects in chunks)."""
    now = now or timezone.now()
    subjects = list(Subject.objects.filter(pk__in=list(subject_ids), voided=False).select_related("trial", "site"))
    ids = [s.pk for s in subjects]
    tz = {s.pk: ZoneInfo(s.site.timezone) for s in subjects}

    def local(subject_id, moment):
        return moment.astimezone(tz[subject_id]).date()

    per = defaultdict(lambda: defaultdict(list))
    for row in DailyAssessment.objects.filter(subject__in=ids, voided=False).values(
        "id", "subject_id", "assessment_date", "study_day", "crs_grade_derived", "icans_grade_derived",
        "ctcae_crs_grade_derived", "flags", "reasons", *RAW_FIELDS,
    ):
        per[row["subject_id"]]["assessments"].append(r.Assessment(
            id=row["id"], day=row["assessment_date"], study_day=row["study_day"], crs_grade=row["crs_grade_derived"],
            icans_grade=row["icans_grade_derived"], ctcae_crs_grade=row["ctcae_crs_grade_derived"],
            flags=tuple(row["flags"]), reasons=tuple(row["reasons"]), raw={k: row[k] for k in RAW_FIELDS},
        ))
    for row in Infusion.objects.filter(subject__in=ids, voided=False).values(
        "id", "subject_id", "infused_at", "dose_cells_per_kg", "weight_kg", "subject__cohort__dose_level_cells_per_kg"
    ):
        per[row["subject_id"]]["infusions"].append(r.Infusion(
            id=row["id"], at=row["infused_at"], day=local(row["subject_id"], row["infused_at"]),
            dose_cells_per_kg=row["dose_cells_per_kg"], cohort_dose_level=row["subject__cohort__dose_level_cells_per_kg"],
            weight_kg=row["weight_kg"],
        ))
    for model, kind, extra in (
        (TocilizumabDose, r.TOCILIZUMAB, ("weight_kg", "indication")),
        (CorticosteroidDose, r.STEROID, ("drug", "indication")),
        (AnticytokineDose, r.ANTICYTOKINE, ("drug", "weight_kg", "indication")),
    ):
        for row in model.objects.filter(subject__in=ids, voided=False).values(
            "id", "subject_id", "administered_at", "dose_mg", *extra
        ):
            per[row["subject_id"]]["doses"].append(r.Dose(
                kind=kind, id=row["id"], at=row["administered_at"], day=local(row["subject_id"], row["administered_at"]),
                dose_mg=row["dose_mg"], drug=row.get("drug", "tocilizumab"), weight_kg=row.get("weight_kg"),
                indication=row["indication"],
            ))
    for row in PlasmaExchange.objects.filter(subject__in=ids, voided=False).values(
        "id", "subject_id", "started_at", "plasma_volume_exchanged_ml", "plasma_volumes_exchanged", "weight_kg"
    ):
        per[row["subject_id"]]["plasma_exchanges"].append(r.PlasmaExchange(
            id=row["id"], at=row["started_at"], day=local(row["subject_id"], row["started_at"]),
            exchanged_ml=row["plasma_volume_exchanged_ml"], plasma_volumes=row["plasma_volumes_exchanged"],
            weight_kg=row["weight_kg"],
        ))
    for row in HemofiltrationSession.objects.filter(subject__in=ids, voided=False).values(
        "id", "subject_id", "started_at", "effluent_rate_ml_h", "effluent_dose_ml_kg_h", "weight_kg"
    ):
        per[row["subject_id"]]["hemofiltrations"].append(r.Hemofiltration(
            id=row["id"], at=row["started_at"], effluent_rate_ml_h=row["effluent_rate_ml_h"],
            dose_ml_kg_h=row["effluent_dose_ml_kg_h"], weight_kg=row["weight_kg"],
        ))
    deaths = {
        row["subject_id"]: r.Death(id=row["id"], day=row["death_date"], primary_cause=row["death_primary_cause"])
        for row in Death.objects.filter(subject__in=ids, voided=False).values(
            "id", "subject_id", "death_date", "death_primary_cause"
        )
    }
    snapshots = []
    for s in subjects:
        records = per[s.pk]
        snapshots.append(SubjectSnapshot(
            id=s.pk, today=now.astimezone(tz[s.pk]).date(), now=now, timezone=s.site.timezone,
            trial=r.Trial(s.trial.daily_assessment_until_day, s.trial.tocilizumab_response_hours),
            status=s.status, day0=s.day0, enrolled_on=s.enrolled_on, baseline_weight_kg=s.baseline_weight_kg,
            assessments=tuple(sorted(records["assessments"], key=lambda a: a.day)),
            infusions=tuple(records["infusions"]), doses=tuple(records["doses"]),
            plasma_exchanges=tuple(records["plasma_exchanges"]), hemofiltrations=tuple(records["hemofiltrations"]),
            death=deaths.get(s.pk),
        ))
    return snapshots


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
    active, suppressed = {}, {}
    relevant = Q(status__in=ACTIVE_QUERY_STATUSES) | Q(suppressed_values__isnull=False)
    for q in Query.objects.filter(relevant, subject__in=ids, origin=QueryOrigin.RULE):
        if q.status in ACTIVE_QUERY_STATUSES:
            active[_key(q)] = q
        else:
            suppressed.setdefault(_key(q), []).append(q.suppressed_values)
    now = timezone.now()
    new, unchanged, current = [], 0, set()
    by_id = {s.pk: s for s in subjects}
    for subject_id, subject_findings in findings.items():
        subject = by_id[subject_id]
        for f in subject_findings:
            current.add(f.key)
            if f.key in active:
                unchanged += 1
            elif f.values in suppressed.get(f.key, []):
                unchanged += 1  # a monitor confirmed these values as correct
            elif f.rule_id not in not_opened_now:
                new.append(Query(
                    trial_id=subject.trial_id, site_id=subject.site_id, subject=subject, record_type=f.record[0],
                    record_id=f.record[1], field=f.field, origin=QueryOrigin.RULE, rule_id=f.rule_id,
                    status=QueryStatus.OPEN, text=f.message, values=f.values, raised_in_run=run, opened_at=now,
                ))
    opened = []
    if new:
        opened = Query.objects.bulk_create(new)
        Query.history.bulk_history_create(opened, default_change_reason="raised by rule")
        QueryMessage.objects.bulk_create(
            [QueryMessage(query=q, role=SYSTEM, action="raise", text=q.text) for q in opened]
        )
    closed = 0
    for key, q in active.items():
        if key not in current:
            q.status, q.closed_at, q.closed_in_run = QueryStatus.CLOSED, now, run
            q._change_reason = "auto-closed: the rule passes"
            q.save()
            QueryMessage.objects.create(query=q, role=SYSTEM, action="auto_close",
                                        text=f"Closed automatically: {q.rule_id} now passes.")
            closed += 1
    if opened:
        _notify_site(opened)
    return Outcome(opened=opened, auto_closed=closed, unchanged=unchanged)


def check_subjects(subject_ids: list[int], *, run: CheckRun | None = None, at_save: bool = False) -> Outcome:
    """Run every soft rule over these subjects and reconcile their queries, in one transaction."""
    with transaction.atomic():
        subjects = list(Subject.objects.select_for_update().filter(pk__in=subject_ids).order_by("pk"))
        findings = {s.pk: [] for s in subjects}  # a voided subject has no findings: its queries close
        findings.update({snap.id: run_rules(snap) for snap in load_snapshots([s.pk for s in subjects])})
        return reconcile(subjects, findings, run=run, at_save=at_save)


def check_subject(subject: Subject) -> Outcome:
    """Save-time checks: the coordinator sees the query at once."""
    return check_subjects([subject.pk], at_save=True)


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
    if field not in {f.name for f in model._meta.fields}:
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
    snapshots = load_snapshots([query.subject_id])
    for f in run_rules(snapshots[0]) if snapshots else []:
        if f.key == _key(query):
            return f
    return None


def open_query_age_days(query: Query, now=None) -> int:
    return ((now or timezone.now()) - query.opened_at) // timedelta(days=1)
