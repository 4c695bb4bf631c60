"""manage.py run_checks <protocol_code>: the consistency job from the command line, with progress.

With a broker the chunks go to the Celery workers and this command follows the CheckRun row;
without one (the embedded default) it checks the chunks itself.
"""
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from toxicity import check_runs
from toxicity.models import CheckRun, CheckRunStatus
from toxicity.tasks import check_run_chunk
from trials.models import Trial


def progress_bar(done: int, total: int, width: int = 40) -> str:
    filled = width if total == 0 else width * done // total
    return f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total} subjects"


class Command(BaseCommand):
    requires_system_checks = []  # as in the worker, which runs none: the job needs no URL or admin checks
    help = "Run every consistency rule over a trial and reconcile its queries; prints progress."

    def add_arguments(self, parser):
        parser.add_argument("protocol_code")
        parser.add_argument("--timeout", type=int, default=3600, help="seconds to wait for the workers")
        parser.add_argument("--inline", action="store_true", help="check in this process, not on the workers")

    def handle(self, protocol_code, timeout, inline=False, **options):
        trial = Trial.objects.filter(protocol_code=protocol_code).first()
        if trial is None:
            raise CommandError(f"No trial '{protocol_code}'.")
        run = CheckRun.objects.create(trial=trial)
        chunks = check_runs.check_run_begin(run.pk)
        out = self.stdout
        if inline or settings.CELERY_TASK_ALWAYS_EAGER:
            for index, ids in enumerate(chunks):
                check_runs.check_run_chunk(run.pk, index, ids)
                run.refresh_from_db()
                out.write("\r" + progress_bar(run.done, run.total), ending="")
                out.flush()
        else:
            for index, ids in enumerate(chunks):
                check_run_chunk.delay(run.pk, index, ids)
            deadline = time.monotonic() + timeout
            while True:
                run.refresh_from_db()
                out.write("\r" + progress_bar(run.done, run.total), ending="")
                out.flush()
                if run.status in (CheckRunStatus.SUCCEEDED, CheckRunStatus.FAILED) or time.monotonic() > deadline:
                    break
                time.sleep(0.5)  # polling the run row for the progress display, not synchronising a test
        run.refresh_from_db()
        out.write("")
        if run.status != CheckRunStatus.SUCCEEDED:
            raise CommandError(f"Check run {run.pk} {run.status}: {run.error or 'timed out'}")
        out.write(self.style.SUCCESS(
            f"Check run {run.pk}: {run.opened} queries opened, {run.auto_closed} auto-closed, "
            f"{run.unchanged} unchanged."
        ))
        sys.stdout.flush()
