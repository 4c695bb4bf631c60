"""Report builds as database rows (ReportRun): queued -> running -> done / failed.

A run freezes a data cut: :func:`build_report` reconstructs the trial as it stood at the cut
(:func:`reporting.snapshot.load_snapshot`), computes the report, renders the PDF and stores it in
the row with the hash of the data used, so the same cut always gives the same numbers and hash
(reports.md, "DSMB report"). Progress is written to the row as the job goes, with plain updates:
a ReportRun is job bookkeeping, not clinical data, and has no history.

Who may request (and see) which kind follows workflow.md, least privilege: the AE report and the
open DSMB report are for data managers, sponsor and DSMB; the closed DSMB report, which breaks
down by cohort/arm, only for DSMB members. Everyone else gets a 404, never a 403.
"""
import dataclasses
import logging
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

from django.core.exceptions import ValidationError
from django.db import InterfaceError, OperationalError, transaction
from django.db.models import Q, QuerySet
from django.http import Http404
from django.utils import timezone

from trials.models import Trial
from trials.roles import Role
from trials.selectors import RoleIndex

from .models import ReportKind, ReportRun, ReportRunStatus

logger = logging.getLogger(__name__)

REQUEST_ROLES: dict[str, frozenset[str]] = {
    ReportKind.AE_REPORT: frozenset({Role.DATA_MANAGER, Role.SPONSOR, Role.DSMB}),
    ReportKind.DSMB_OPEN: frozenset({Role.DATA_MANAGER, Role.SPONSOR, Role.DSMB}),
    ReportKind.DSMB_CLOSED: frozenset({Role.DSMB}),
}
# Any role that may request some kind: who sees the reports pages at all.
REPORT_ROLES = frozenset().union(*REQUEST_ROLES.values())
FINISHED = (ReportRunStatus.DONE, ReportRunStatus.FAILED)
# A data cut a few seconds ahead is clock skew between the browser and the server, not the future.
CLOCK_SKEW = timedelta(seconds=5)


def kinds_for(user, trial_id: int) -> list[str]:
    """The report kinds ``user`` may request and see in this trial, in ReportKind order."""
    index = RoleIndex.for_user(user)
    return [kind for kind in ReportKind.values if index.has(REQUEST_ROLES[kind], trial_id)]


def report_run_list(*, user) -> QuerySet[ReportRun]:
    """Runs of the kinds the user may request, in the user's trials (the file column deferred)."""
    index = RoleIndex.for_user(user)
    q = Q(pk__in=[])
    for kind, roles in REQUEST_ROLES.items():
        q |= Q(kind=kind) & index.q(ReportRun, roles)
    return ReportRun.objects.filter(q).select_related("trial", "requested_by").defer("file")


def validate_data_cut(trial: Trial, data_cut: datetime | None) -> datetime:
    """The cut to use: now when absent; never in the future, never before the trial existed."""
    now = timezone.now()
    if data_cut is None:
        return now
    if timezone.is_naive(data_cut):
        raise ValidationError({"data_cut": ["Give the data cut with a UTC offset, e.g. 2026-11-01T00:00:00Z."]})
    if data_cut > now + CLOCK_SKEW:
        raise ValidationError({"data_cut": ["The data cut may not be in the future."]})
    if data_cut < trial.created_at:
        raise ValidationError({"data_cut": [
            f"The data cut may not be before the trial was set up ({trial.created_at.isoformat()})."]})
    return min(data_cut, now)


def request_report(user, trial: Trial, kind: str, data_cut: datetime | None = None) -> ReportRun:
    """Queue a report build; the task starts when the surrounding transaction commits."""
    if kind not in REQUEST_ROLES or not RoleIndex.for_user(user).has(REQUEST_ROLES[kind], trial.pk):
        raise Http404("No such trial.")
    cut = validate_data_cut(trial, data_cut)
    run = ReportRun.objects.create(trial=trial, kind=kind, data_cut=cut, requested_by=user,
                                   step="Waiting for a worker")
    from .tasks import report_run_build  # tasks import this module

    transaction.on_commit(lambda: report_run_build.delay(run.pk))
    return run


# --- the job ---------------------------------------------------------------------------------


def _update(run_pk: int, **fields) -> None:
    """Write progress while running; a run another delivery already finished is left alone."""
    ReportRun.objects.filter(pk=run_pk, status=ReportRunStatus.RUNNING).update(**fields)


def _begin(run_pk: int) -> ReportRun | None:
    """Mark the run running; None when it is already finished (a re-delivered task does nothing)."""
    with transaction.atomic():
        run = ReportRun.objects.select_for_update(of=("self",)).select_related("trial").get(pk=run_pk)
        if run.status in FINISHED:
            return None
        # queued, or running when a worker died mid-build: (re)start from the beginning
        run.status, run.started_at = ReportRunStatus.RUNNING, run.started_at or timezone.now()
        run.progress_done, run.progress_total, run.step, run.error = 0, 4, "Loading the data as of the cut", ""
        run.save(update_fields=["status", "started_at", "progress_done", "progress_total", "step", "error"])
    return run


def build_report(run_pk: int) -> None:
    """Build the report of one run and store the PDF (idempotent: a finished run is not rebuilt).

    A deterministic failure (a bug, bad data) is recorded on the row at once; a database outage is
    re-raised so the task retries it (reporting.tasks), and marked failed only when retries run out.
    """
    run = _begin(run_pk)
    if run is None:
        return
    try:
        pdf, digest = _render(run)
    except (OperationalError, InterfaceError):
        raise
    except Exception as exc:  # noqa: BLE001 - recorded on the row for the user, logged with the traceback
        logger.exception("report run %s failed", run_pk)
        report_run_fail(run_pk, f"{type(exc).__name__}: {exc}")
        return
    with transaction.atomic():
        locked = ReportRun.objects.select_for_update().get(pk=run_pk)
        if locked.status != ReportRunStatus.RUNNING:
            return  # another delivery finished it first
        locked.file, locked.size_bytes, locked.data_hash = pdf, len(pdf), digest
        locked.filename = _filename(run)
        locked.status, locked.finished_at = ReportRunStatus.DONE, timezone.now()
        locked.progress_done = locked.progress_total = max(locked.progress_total, locked.progress_done)
        locked.step = "Done"
        locked.save()


def report_run_fail(run_pk: int, error: str) -> None:
    with transaction.atomic():
        run = ReportRun.objects.select_for_update().get(pk=run_pk)
        if run.status != ReportRunStatus.DONE:
            run.status, run.error, run.finished_at = ReportRunStatus.FAILED, error[:2000], timezone.now()
            run.step = "Failed"
            run.save(update_fields=["status", "error", "finished_at", "step"])


def _filename(run: ReportRun) -> str:
    cut = run.data_cut.astimezone(dt_timezone.utc)
    return f"{run.trial.protocol_code}_{run.kind}_{cut:%Y%m%dT%H%M%SZ}.pdf"


def _render(run: ReportRun) -> tuple[bytes, str]:
    from . import pdf  # written alongside; imported late so this module imports without it
    from .ae_report import build_ae_report
    from .dsmb import build_dsmb_report
    from .snapshot import load_snapshot

    snapshot = load_snapshot(run.trial, run.data_cut)
    _update(run.pk, progress_done=1, step="Computing the tables")
    shifts = report_shifts(run.trial)
    if run.kind == ReportKind.AE_REPORT:
        report = shift_ae_report(build_ae_report(snapshot, by_cohort=True), snapshot, shifts)
        _update(run.pk, progress_done=2, step="Rendering the PDF")
        filters = "All sites and cohorts" + ("; dates shifted per subject (de-identified)" if shifts else "")
        data = pdf.render_ae_pdf(report, title=f"{run.trial.protocol_code}: adverse-event report",
                                 filters_text=filters)
        _update(run.pk, progress_done=3, step="Storing the PDF")
        return data, report.digest
    report = shift_dsmb_report(build_dsmb_report(snapshot, closed=run.kind == ReportKind.DSMB_CLOSED), snapshot, shifts)
    prep, final = 2, 1
    _update(run.pk, progress_done=prep, step="Rendering the PDF")

    def progress(done: int, total: int, step_name: str) -> None:
        _update(run.pk, progress_done=prep + min(done, total), progress_total=prep + total + final,
                step=str(step_name)[:200])

    data = pdf.render_dsmb_pdf(report, progress=progress)
    ReportRun.objects.filter(pk=run.pk, status=ReportRunStatus.RUNNING).update(step="Storing the PDF")
    return data, report.digest


# --- de-identified dates -----------------------------------------------------------------------


def report_shifts(trial: Trial) -> dict[int, int] | None:
    """Per-subject date offsets when the trial shifts dates for de-identified roles, else None.

    Report PDFs are shared by every role that may read the kind, and each kind is read by sponsor
    or DSMB members, so with the trial setting on, their dates are shifted for everyone. Study days,
    durations and every count are unchanged.
    """
    if not trial.export_date_shift:
        return None
    from .deid import shifts_for

    return shifts_for(trial.pk)


def _shift_iso(text: str, days: int | None) -> str:
    if not text or not days:
        return text
    from .deid import shift_value

    return shift_value(text, days)


def shift_listing(rows: list, snapshot, shifts: dict[int, int] | None) -> list:
    if shifts is None:
        return rows
    pk_of = {s.subject_id: s.pk for s in snapshot.subjects}
    out = []
    for row in rows:
        days = shifts.get(pk_of.get(row.subject_id))
        out.append(dataclasses.replace(row, onset_date=_shift_iso(row.onset_date, days),
                                       resolution_date=_shift_iso(row.resolution_date, days)))
    return out


def shift_ae_report(report, snapshot, shifts: dict[int, int] | None):
    if shifts is None:
        return report
    return dataclasses.replace(report, listing=shift_listing(report.listing, snapshot, shifts))


def shift_dsmb_report(report, snapshot, shifts: dict[int, int] | None):
    if shifts is None:
        return report
    pk_of = {s.subject_id: s.pk for s in snapshot.subjects}
    deaths = [(sid, _shift_iso(day, shifts.get(pk_of.get(sid))), cause, study_day)
              for sid, day, cause, study_day in report.deaths]
    return dataclasses.replace(
        report, ae=shift_ae_report(report.ae, snapshot, shifts), deaths=deaths,
        grade3_listing=shift_listing(report.grade3_listing, snapshot, shifts),
        sae_listing=shift_listing(report.sae_listing, snapshot, shifts),
        oldest_missing=_oldest_missing_shifted(snapshot, shifts),
    )


def _oldest_missing_shifted(snapshot, shifts: dict[int, int]):
    """The oldest missing daily assessment on the shifted calendar (each day moved by its subject's offset)."""
    from .snapshot import expected_days

    oldest = None
    for s in snapshot.subjects:
        death = snapshot.death(s.pk)
        want = expected_days(s, until_day=snapshot.daily_assessment_until_day, today=snapshot.site_today[s.site_id],
                             death=death.day if death else None)
        have = {d.day for d in snapshot.days(s.pk)}
        missing = [d for d in want if d not in have]
        if missing:
            day = missing[0] + timedelta(days=shifts.get(s.pk, 0))
            oldest = day if oldest is None else min(oldest, day)
    return oldest
