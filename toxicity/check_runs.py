"""The consistency job as database rows (CheckRun): queued -> running -> succeeded / failed.

A run lists the trial's subjects, splits them into chunks and each chunk is checked in its own
transaction (toxicity.queries.check_subjects). Chunk completion is recorded by index on the
locked run row, so a chunk delivered twice counts once; the counts of opened and auto-closed
queries come from the queries themselves, so they are exact whatever was retried.
"""
import gc
from contextlib import contextmanager

from django.conf import settings
from django.db import transaction
from django.http import Http404
from django.utils import timezone

from trials.models import Subject, Trial
from trials.roles import Role
from trials.selectors import RoleIndex

from .models import ACTIVE_QUERY_STATUSES, CheckRun, CheckRunStatus, Query, QueryOrigin
from .course.write import check_subjects


def check_run_create(*, user, trial: Trial) -> CheckRun:
    """Queue a run (data managers; ``user=None`` for the nightly schedule and the command line)."""
    if user is not None and not RoleIndex.for_user(user).has({Role.DATA_MANAGER}, trial.pk):
        raise Http404("No such trial.")
    run = CheckRun.objects.create(trial=trial, requested_by=user)
    from .tasks import check_run_start  # tasks import this module

    transaction.on_commit(lambda: check_run_start.delay(run.pk))
    return run


def check_run_begin(run_id: int) -> list[list[int]]:
    """Mark the run running and return its chunks of subject ids (the same chunks if called again)."""
    with transaction.atomic():
        run = CheckRun.objects.select_for_update().get(pk=run_id)
        if run.status in (CheckRunStatus.SUCCEEDED, CheckRunStatus.FAILED):
            return []
        ids = list(Subject.objects.filter(trial_id=run.trial_id).order_by("pk").values_list("pk", flat=True))
        size = settings.CHECKS_CHUNK_SIZE
        chunks = [ids[i:i + size] for i in range(0, len(ids), size)]
        if run.status == CheckRunStatus.QUEUED:
            run.status, run.started_at = CheckRunStatus.RUNNING, timezone.now()
            run.total, run.chunks_total = len(ids), len(chunks)
            run.save()
        if not chunks:
            _finish(run)
        return chunks


@contextmanager
def _cycle_collector_paused():
    """A chunk makes some 10^5 short-lived records that reference counting frees as it goes; the
    cycle collector would meanwhile scan the long-lived heap (the grading memo) again and again, a
    fifth of a run. It is paused for the chunk; whatever the chunk left in cycles goes at the
    collector's next pass after it resumes."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def check_run_chunk(run_id: int, index: int, subject_ids: list[int]) -> None:
    run = CheckRun.objects.get(pk=run_id)
    if run.status != CheckRunStatus.RUNNING or index in run.chunks_done:
        return  # finished, failed, or this chunk was already counted
    with _cycle_collector_paused():
        check_subjects(subject_ids, run=run)
    with transaction.atomic():
        run = CheckRun.objects.select_for_update().get(pk=run_id)
        if index in run.chunks_done or run.status != CheckRunStatus.RUNNING:
            return
        run.chunks_done = sorted([*run.chunks_done, index])
        run.done += len(subject_ids)
        if len(run.chunks_done) >= run.chunks_total:
            _finish(run)
        else:
            run.save(update_fields=["chunks_done", "done"])


def _finish(run: CheckRun) -> None:
    run.opened = Query.objects.filter(raised_in_run=run).count()
    run.auto_closed = Query.objects.filter(closed_in_run=run).count()
    run.unchanged = (
        Query.objects.filter(trial=run.trial, origin=QueryOrigin.RULE, status__in=ACTIVE_QUERY_STATUSES)
        .exclude(raised_in_run=run).count()
    )
    run.status, run.finished_at = CheckRunStatus.SUCCEEDED, timezone.now()
    run.save()


def check_run_fail(run_id: int, error: str) -> None:
    with transaction.atomic():
        run = CheckRun.objects.select_for_update().get(pk=run_id)
        if run.status != CheckRunStatus.SUCCEEDED:
            run.status, run.error, run.finished_at = CheckRunStatus.FAILED, error[:2000], timezone.now()
            run.save()
