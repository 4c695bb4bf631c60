"""The consistency job end to end: on a real Celery worker and the real Redis broker when
CELERY_BROKER_URL is set (CI), eagerly otherwise. A trial with inconsistent data -> run -> the
expected queries; run again -> nothing new; fix the data -> run -> auto-closed with history.
Then a worker whose pool process is SIGKILLed mid-run: the task is re-delivered and the run
converges to the same queries without duplicates."""
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from config.celery import app
from toxicity import check_runs
from toxicity.checks import run_rules
from toxicity.models import CheckRun, DailyAssessment, Query
from toxicity.course.derive import derive_course
from toxicity.course.load import load_courses
from toxicity.synthetic import generate
from trials.bulk import bulk_insert_with_history
from trials.models import Subject, Trial

ROOT = Path(__file__).resolve().parents[2]
BROKER = not settings.CELERY_TASK_ALWAYS_EAGER


def wait_for(condition, timeout=120, what="condition"):
    """Poll a database condition until it holds (synchronising on state, not on time)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@contextmanager
def worker():
    if not BROKER:
        yield
        return
    from celery.contrib.testing.worker import start_worker

    app.control.purge()
    with start_worker(app, pool="threads", concurrency=2, perform_ping_check=False, shutdown_timeout=60):
        yield


def expected_keys(trial):
    ids = list(Subject.objects.filter(trial=trial).values_list("pk", flat=True))
    now = timezone.now()
    return {f.key for course in load_courses(ids).values() for f in run_rules(derive_course(course, now=now))}


def open_keys(trial):
    rows = Query.objects.filter(trial=trial, origin="rule", status="open").values_list(
        "rule_id", "record_type", "record_id", "field")
    keys = list(rows)
    assert len(keys) == len(set(keys)), "duplicate open queries"
    return set(keys)


def run_and_wait(trial, user=None):
    run = check_runs.check_run_create(user=user, trial=trial)  # on_commit fires at once outside a transaction
    wait_for(lambda: CheckRun.objects.get(pk=run.pk).status in ("succeeded", "failed"), what="the check run")
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    return run


@pytest.mark.broker
def test_check_run_end_to_end(transactional_db):
    generate("E2E-1", subjects=24, days=21, seed=11)
    trial = Trial.objects.get(protocol_code="E2E-1")
    expected = expected_keys(trial)
    assert {k[0] for k in expected} >= {"CRS-GRADE-MISMATCH", "ASSESSMENT-MISSING"}
    with worker():
        first = run_and_wait(trial)
        assert open_keys(trial) == expected
        assert (first.opened, first.auto_closed, first.done, first.total) == (len(expected), 0, 24, 24)

        second = run_and_wait(trial)
        assert (second.opened, second.auto_closed, second.unchanged) == (0, 0, len(expected))
        assert open_keys(trial) == expected

        # fix the data: the missing days arrive in a bulk load (no save-time checks on that path)
        missing = [k for k in expected if k[0] == "ASSESSMENT-MISSING"]
        rows = []
        for _, _, subject_id, field in missing:
            subject = Subject.objects.get(pk=subject_id)
            day = field.split("=")[1]
            rows.append(DailyAssessment(subject=subject, assessment_date=day, temperature_max_c="36.8",
                                        consciousness="alert", ice_score=10, capd_score=None,
                                        crs_grade_derived=0, icans_grade_derived=0, ctcae_crs_grade_derived=0))
        for row in rows:
            if row.subject.age_years < 12:
                row.ice_score, row.capd_score = None, 0
        bulk_insert_with_history(DailyAssessment, rows, user=None, reason="late bulk load")
        third = run_and_wait(trial)
        assert third.opened == 0 and third.auto_closed == len(missing) > 0
        closed = Query.objects.filter(closed_in_run=third)
        assert {q.rule_id for q in closed} == {"ASSESSMENT-MISSING"}
        for q in closed:
            assert q.history.first().history_change_reason == "auto-closed: the rule passes"
            assert q.status == "closed"
        assert open_keys(trial) == expected - set(missing)


def test_check_run_api_needs_a_data_manager(world):
    assert world.client("monitor_a").post("/api/v1/check-runs/", {"trial": world.trial.pk}, format="json").status_code == 404
    assert world.client("outsider").post("/api/v1/check-runs/", {"trial": world.trial.pk}, format="json").status_code == 400
    response = world.client("data_manager").post("/api/v1/check-runs/", {"trial": world.trial.pk}, format="json")
    assert response.status_code == 202
    run = CheckRun.objects.get(pk=response.json()["id"])
    assert run.trial == world.trial and run.requested_by == world.users["data_manager"]
    listed = world.client("data_manager").get("/api/v1/check-runs/").json()["results"]
    assert [r["id"] for r in listed] == [run.pk]
    assert world.client("outsider").get(f"/api/v1/check-runs/{run.pk}/").status_code == 404


def test_a_chunk_delivered_twice_counts_once(world):
    run = CheckRun.objects.create(trial=world.trial)
    chunks = check_runs.check_run_begin(run.pk)
    assert chunks == [[world.subject_a.pk, world.subject_b.pk]]
    before = Query.objects.count()
    check_runs.check_run_chunk(run.pk, 0, chunks[0])
    check_runs.check_run_chunk(run.pk, 0, chunks[0])  # re-delivered after the worker died
    run.refresh_from_db()
    assert (run.status, run.done, run.chunks_done) == ("succeeded", 2, [0])
    assert Query.objects.count() - before == run.opened


def test_run_checks_command_prints_progress_and_counts(world, capsys):
    from django.core.management import call_command

    call_command("run_checks", world.trial.protocol_code, "--inline")
    out = capsys.readouterr().out
    assert "2/2 subjects" in out and "queries opened" in out
    assert CheckRun.objects.get().status == "succeeded"


def test_nightly_schedule_runs_every_active_trial(world):
    from toxicity.tasks import nightly_checks

    world.trial.status = "active"
    world.trial.save()
    assert settings.CELERY_BEAT_SCHEDULE["nightly-consistency-checks"]["task"] == "toxicity.nightly_checks"
    assert nightly_checks.apply().get() >= 1
    assert CheckRun.objects.filter(trial=world.trial).exists()


def _pool_children(pid):
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return children


@pytest.mark.broker
@pytest.mark.skipif(not BROKER, reason="a worker process needs a real broker; the embedded pass runs tasks in-process")
def test_worker_killed_mid_run_redelivers_and_converges(transactional_db, tmp_path):
    generate("KILL-1", subjects=60, days=30, seed=3)
    trial = Trial.objects.get(protocol_code="KILL-1")
    expected = expected_keys(trial)
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "CHECKS_CHUNK_SIZE": "3",
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    app.control.purge()
    log = tmp_path / "worker.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "prefork", "--concurrency", "1",
             "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel", "INFO"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    try:
        run = check_runs.check_run_create(user=None, trial=trial)
        wait_for(lambda: CheckRun.objects.get(pk=run.pk).done >= 6, what="the run to make progress")
        children = _pool_children(proc.pid)
        assert children, "no pool process found"
        for child in children:
            os.kill(child, signal.SIGKILL)
        wait_for(lambda: CheckRun.objects.get(pk=run.pk).status in ("succeeded", "failed"), timeout=180,
                 what="the run to finish after the kill")
        run.refresh_from_db()
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    text = log.read_text()
    assert "SIGKILL" in text, text[-3000:]
    assert run.status == "succeeded" and run.done == run.total == 60
    assert open_keys(trial) == expected
    counts = Counter(Query.objects.filter(trial=trial, origin="rule").values_list("rule_id", "record_type", "record_id", "field"))
    assert max(counts.values()) == 1

