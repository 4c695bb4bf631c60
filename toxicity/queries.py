"""Queries: rule-raised from findings (reconciled per subject), manual, and their workflow.

Reconciliation is idempotent: a finding with an open query changes nothing; a finding without
one opens one (unless a monitor closed the same rule on the same values with a justification);
an open rule query whose rule passes is closed automatically, with an audit entry. It runs at
save time for the saved subject and in the consistency job for every subject of a trial, always
under the subject's row lock, and the database allows one open query per (rule, record, field).
"""
import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q, TextField
from django.db.models.functions import Cast
from django.http import Http404
from django.utils import timezone

from toxicity.checks import Finding, SubjectSnapshot, job_only_rules, run_rules
from toxicity.checks import records as r
from trials.audit import tracked_fields
from trials.bulk import bulk_insert
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


def _json_reader():
    """Decode JSON columns read as text, each distinct text once: the flags and reasons of daily
    assessments repeat from day to day and from subject to subject. Returns ``read`` and the
    text -> tuple cache it fills (read(text, True)), for a quick look-up first. Lists come back
    as new lists (the caller may keep them), everything else as decoded (str, numbers, tuples)."""
    tuples, values = {}, {}

    def read(text, as_tuple=False):
        if text is None:
            return None
        cache = tuples if as_tuple else values
        value = cache.get(text)
        if value is None:
            value = json.loads(text)
            if as_tuple:
                value = tuple(value)
            cache[text] = value
        return list(value) if type(value) is list else value

    return read, tuples


def load_snapshots(subject_ids: Iterable[int], *, now=None) -> list[SubjectSnapshot]:
    """Snapshots of many subjects with one query per table (the job checks subjects in chunks).

    Rows are read as plain tuples (JSON columns as text, decoded once per distinct text) and
    ordered within each subject only, without the joins of the models' default orderings.
    """
    now = now or timezone.now()
    subjects = list(Subject.objects.filter(pk__in=list(subject_ids), voided=False).values_list(
        "pk", "status", "day0", "enrolled_on", "baseline_weight_kg", "site__timezone",
        "trial__daily_assessment_until_day", "trial__tocilizumab_response_hours",
    ))
    ids = [s[0] for s in subjects]
    zones, trials = {}, {}
    for s in subjects:
        if s[5] not in zones:
            zones[s[5]] = ZoneInfo(s[5])
        if s[6:8] not in trials:
            trials[s[6:8]] = r.Trial(*s[6:8])
    tz = {s[0]: zones[s[5]] for s in subjects}

    def local(subject_id, moment):
        return moment.astimezone(tz[subject_id]).date()

    read, texts = _json_reader()
    assessments, infusions, doses = defaultdict(list), defaultdict(list), defaultdict(list)
    plasma_exchanges, hemofiltrations = defaultdict(list), defaultdict(list)
    Assessment = r.Assessment
    as_text = [Cast(name, output_field=TextField()) if name == "vasopressors" else name for name in RAW_FIELDS]
    for row in DailyAssessment.objects.filter(subject__in=ids, voided=False).order_by().values_list(
        "id", "subject_id", "assessment_date", "study_day", "crs_grade_derived", "icans_grade_derived",
        "ctcae_crs_grade_derived", Cast("flags", output_field=TextField()), Cast("reasons", output_field=TextField()),
        *as_text,
    ):
        flags, reasons = texts.get(row[7]), texts.get(row[8])
        if flags is None:
            flags = read(row[7], True)
        if reasons is None:
            reasons = read(row[8], True)
        raw = dict(zip(RAW_FIELDS, row[9:]))
        agents = raw["vasopressors"]
        raw["vasopressors"] = [] if agents == "[]" else read(agents)
        assessments[row[1]].append(Assessment(row[0], row[2], row[3], row[4], row[5], row[6], flags, reasons, raw))
    for row in Infusion.objects.filter(subject__in=ids, voided=False).order_by("infusion_number", "id").values(
        "id", "subject_id", "infused_at", "dose_cells_per_kg", "weight_kg", "subject__cohort__dose_level_cells_per_kg"
    ):
        infusions[row["subject_id"]].append(r.Infusion(
            id=row["id"], at=row["infused_at"], day=local(row["subject_id"], row["infused_at"]),
            dose_cells_per_kg=row["dose_cells_per_kg"], cohort_dose_level=row["subject__cohort__dose_level_cells_per_kg"],
            weight_kg=row["weight_kg"],
        ))
    for model, kind, extra in (
        (TocilizumabDose, r.TOCILIZUMAB, ("weight_kg", "indication")),
        (CorticosteroidDose, r.STEROID, ("drug", "indication")),
        (AnticytokineDose, r.ANTICYTOKINE, ("drug", "weight_kg", "indication")),
    ):
        for row in model.objects.filter(subject__in=ids, voided=False).order_by("administered_at", "id").values(
            "id", "subject_id", "administered_at", "dose_mg", *extra
        ):
            doses[row["subject_id"]].append(r.Dose(
                kind=kind, id=row["id"], at=row["administered_at"], day=local(row["subject_id"], row["administered_at"]),
                dose_mg=row["dose_mg"], drug=row.get("drug", "tocilizumab"), weight_kg=row.get("weight_kg"),
                indication=row["indication"],
            ))
    for row in PlasmaExchange.objects.filter(subject__in=ids, voided=False).order_by("started_at", "id").values(
        "id", "subject_id", "started_at", "plasma_volume_exchanged_ml", "plasma_volumes_exchanged", "weight_kg"
    ):
        plasma_exchanges[row["subject_id"]].append(r.PlasmaExchange(
            id=row["id"], at=row["started_at"], day=local(row["subject_id"], row["started_at"]),
            exchanged_ml=row["plasma_volume_exchanged_ml"], plasma_volumes=row["plasma_volumes_exchanged"],
            weight_kg=row["weight_kg"],
        ))
    for row in HemofiltrationSession.objects.filter(subject__in=ids, voided=False).order_by("started_at", "id").values(
        "id", "subject_id", "started_at", "effluent_rate_ml_h", "effluent_dose_ml_kg_h", "weight_kg"
    ):
        hemofiltrations[row["subject_id"]].append(r.Hemofiltration(
            id=row["id"], at=row["started_at"], effluent_rate_ml_h=row["effluent_rate_ml_h"],
            dose_ml_kg_h=row["effluent_dose_ml_kg_h"], weight_kg=row["weight_kg"],
        ))
    deaths = {
        row["subject_id"]: r.Death(id=row["id"], day=row["death_date"], primary_cause=row["death_primary_cause"])
        for row in Death.objects.filter(subject__in=ids, voided=False).order_by().values(
            "id", "subject_id", "death_date", "death_primary_cause"
        )
    }
    today = {}
    snapshots = []
    for pk, status, day0, enrolled_on, baseline_weight_kg, zone, *trial in subjects:
        if zone not in today:
            today[zone] = now.astimezone(zones[zone]).date()
        snapshots.append(SubjectSnapshot(
            id=pk, today=today[zone], now=now, timezone=zone, trial=trials[tuple(trial)],
            status=status, day0=day0, enrolled_on=enrolled_on, baseline_weight_kg=baseline_weight_kg,
            assessments=tuple(sorted(assessments.get(pk, ()), key=_day)),
            infusions=tuple(infusions.get(pk, ())), doses=tuple(doses.get(pk, ())),
            plasma_exchanges=tuple(plasma_exchanges.get(pk, ())), hemofiltrations=tuple(hemofiltrations.get(pk, ())),
            death=deaths.get(pk),
        ))
    return snapshots


def _day(assessment):
    return assessment.day


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
    snapshots = load_snapshots([query.subject_id])
    for f in run_rules(snapshots[0]) if snapshots else []:
        if f.key == _key(query):
            return f
    return None


def open_query_age_days(query: Query, now=None) -> int:
    return ((now or timezone.now()) - query.opened_at) // timedelta(days=1)
