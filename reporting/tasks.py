"""Celery tasks of the reports: each takes a run id and calls a service (style.md).

Like the consistency job (toxicity.tasks): acks_late + reject_on_worker_lost (settings) re-deliver
a task whose worker died, and the task is idempotent (a run already finished is not rebuilt; a run
left "running" by a dead worker is rebuilt from the start, which gives the same numbers and hash).
A database outage is retried with back-off; when the retries run out the run is marked failed.
"""
from celery import Task, shared_task
from django.db import InterfaceError, OperationalError

from . import report_runs

RETRY = dict(autoretry_for=(OperationalError, InterfaceError), retry_backoff=2, retry_backoff_max=60, max_retries=5)


class ReportRunTask(Task):
    def on_failure(self, exc, task_id, args, kwargs, einfo):
        report_runs.report_run_fail(args[0] if args else kwargs["run_id"], f"{type(exc).__name__}: {exc}")


@shared_task(name="reporting.report_run_build", base=ReportRunTask, acks_late=True, **RETRY)
def report_run_build(run_id: int) -> None:
    report_runs.build_report(run_id)
