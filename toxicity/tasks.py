"""Celery tasks of the consistency job: each takes ids and calls a service (style.md).

Safe under failure: acks_late + reject_on_worker_lost (settings) re-deliver a task whose worker
died; every task is idempotent, so running one twice changes nothing. A database outage is
retried with back-off; a task that still fails marks the run failed.
"""
from celery import Task, group, shared_task
from django.db import InterfaceError, OperationalError

from trials.models import Trial

from . import check_runs

RETRY = dict(autoretry_for=(OperationalError, InterfaceError), retry_backoff=2, retry_backoff_max=60, max_retries=5)


class RunTask(Task):
    def on_failure(self, exc, task_id, args, kwargs, einfo):
        check_runs.check_run_fail(args[0] if args else kwargs["run_id"], f"{type(exc).__name__}: {exc}")


@shared_task(name="toxicity.check_run_start", base=RunTask, **RETRY)
def check_run_start(run_id: int) -> None:
    chunks = check_runs.check_run_begin(run_id)
    if chunks:
        group(check_run_chunk.si(run_id, i, ids) for i, ids in enumerate(chunks)).apply_async()


@shared_task(name="toxicity.check_run_chunk", base=RunTask, **RETRY)
def check_run_chunk(run_id: int, index: int, subject_ids: list[int]) -> None:
    check_runs.check_run_chunk(run_id, index, subject_ids)


@shared_task(name="toxicity.nightly_checks")
def nightly_checks() -> int:
    """Celery beat, every night: one run per active trial."""
    trials = list(Trial.objects.filter(status="active"))
    for trial in trials:
        check_runs.check_run_create(user=None, trial=trial)
    return len(trials)
