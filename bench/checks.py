"""Consistency-job benchmark: the full check run against a bare fetch-and-grade loop, on PostgreSQL.

    .venv/bin/python bench/checks.py                      # 3000 subjects x 35 days, with the worker
    .venv/bin/python bench/checks.py --subjects 300 --skip-worker    # a quick look

Needs only the services: PostgreSQL (trust auth) and, for the worker figures, Redis. It creates
a fresh database (--db, default cart_bench_checks; dropped and re-created), migrates it and then,
in one run:

(0) `manage.py generate_synthetic` for --subjects x --days (a subprocess): seconds and
    assessments/s. Goal: 100,000 assessments in well under a minute. Then VACUUM ANALYZE, as
    autovacuum would have done by the night after such a load.
(a) the bare loop: plain psycopg 3, no ORM, one SELECT of every daily assessment of the trial
    with the columns grading needs and the subject context (age, developmental delay, CAPD
    baseline, death on that date, the trial's scales), walked in date order per subject
    (crs_ongoing and the antipyretic exemption as the product derives them; drug-log triggers
    are left out), one input dict per row and `toxicity.grading.grade()` on each, in this
    process with the engine's memos empty, then a second pass with them warm.
(b) `manage.py run_checks <code> --inline` as the product runs it, in a subprocess: the first
    run (opens the queries) and the second (nothing changed: the steady nightly state). Peak
    RSS of each from os.wait4. Goal: each <= 3x the bare loop (the best of its passes, the
    stricter comparison) and < 500 MB. Each includes the command's start-up (interpreter,
    Django, Celery: about a second, shown on its own line), so the ratio means something only
    at the full size; with --subjects 300 the start-up alone is several times the bare loop.
(c) unless --skip-worker: the same two runs through a real Celery worker on Redis
    (`celery -A config worker --pool prefork --concurrency 2`; the rule queries of (b) deleted
    first), each queued with check_run_create as the nightly schedule does; wall time from the
    run row's created_at to its finished_at, and the worker's peak RSS (the largest process of
    the worker: VmHWM from /proc, and the maximum over the process tree from os.wait4 after a
    warm shutdown).

The database is dropped at the end (unless --keep). The synthetic trial is seeded, so every run
checks the same data; figures still need a quiet machine (the load average is printed).
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SERVER = "postgres://postgres@127.0.0.1:5432"
CODE = "BENCH-CHECKS"
TIME_FACTOR, RSS_LIMIT_MB = 3.0, 500.0


# --- the database ---------------------------------------------------------------------------


def recreate_database(server: str, name: str) -> None:
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def drop_database(server: str, name: str) -> None:
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def child_env(database_url: str, broker: str | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND")}
    env.update(DATABASE_URL=database_url, DJANGO_SETTINGS_MODULE="config.settings", PYTHONUNBUFFERED="1")
    if broker:
        env["CELERY_BROKER_URL"] = broker
    return env


def run_child(cmd: list[str], env: dict, expect: int = 0) -> dict:
    """Run a command to completion, output to a temporary file; wall time, peak RSS, output."""
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        out.seek(0)
        text = out.read().decode(errors="replace")
    code = os.waitstatus_to_exitcode(status)
    if code != expect:
        raise SystemExit(f"{' '.join(cmd)} exited {code}:\n{text[-3000:]}")
    return {"seconds": seconds, "rss_mb": usage.ru_maxrss / 1024, "output": text}


# --- (a) the bare loop ----------------------------------------------------------------------


def bare_loop(database_url: str, code: str) -> dict:
    """Fetch every daily assessment of the trial with psycopg and grade each with the pure engine."""
    import django

    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()  # for the column list only: the model declares the observed fields once
    from toxicity.grading import GradingInputError, grade
    from toxicity.models import OBSERVATIONS as GRADING_FIELDS

    columns = ", ".join(f"a.{name}" for name in GRADING_FIELDS)
    query = f"""
        SELECT a.subject_id, a.assessment_date, {columns}, a.crs_grade_derived,
               s.age_years, s.developmental_delay, s.capd_baseline, t.crs_scale, t.icans_scale,
               d.death_primary_cause
        FROM toxicity_dailyassessment a
        JOIN trials_subject s ON s.id = a.subject_id
        JOIN trials_trial t ON t.id = s.trial_id
        LEFT JOIN trials_death d ON d.subject_id = a.subject_id AND NOT d.voided AND d.death_date = a.assessment_date
        WHERE t.protocol_code = %s AND NOT a.voided AND NOT s.voided
        ORDER BY a.subject_id, a.assessment_date
    """
    n_fields = len(GRADING_FIELDS)
    antipyretic_at = GRADING_FIELDS.index("antipyretic_given")
    rows = errors = same = 0
    start = time.perf_counter()
    with psycopg.connect(database_url) as conn, conn.cursor(name="bare_loop") as cur:
        cur.itersize = 5000
        cur.execute(query, [code])
        subject, onset, antipyretic = None, False, False
        for row in cur:
            if row[0] != subject:
                subject, onset, antipyretic = row[0], False, False
            values = row[2:2 + n_fields]
            # '' is an empty choice column (the product reads it as missing); numeric columns come
            # back as Decimal at the column's scale, which the engine takes as it is
            data = {name: None if v == "" else v for name, v in zip(GRADING_FIELDS, values)}
            (stored, age, delay, capd_baseline, crs_scale, icans_scale, death_cause) = row[2 + n_fields:]
            data.update(
                age_years=age, developmental_delay=delay, capd_baseline=capd_baseline,
                crs_ongoing=onset, anticytokine_or_antipyretic_since_onset=onset and antipyretic,
                death_primary_cause=death_cause, crs_scale=crs_scale, icans_scale=icans_scale,
            )
            rows += 1
            try:
                result = grade(data)
            except GradingInputError:
                errors += 1
                continue
            crs = result.crs_grade
            same += (None if crs == "NE" else crs) == stored
            if crs == "NE":
                pass
            elif crs >= 1:
                if not onset:
                    onset, antipyretic = True, False
                antipyretic = antipyretic or values[antipyretic_at]
            else:
                onset, antipyretic = False, False
    seconds = time.perf_counter() - start
    return {"rows": rows, "seconds": seconds, "per_second": rows / seconds, "errors": errors,
            "same_crs": same / max(1, rows - errors)}


# --- (c) the Celery worker ------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    kids = [int(p) for p in text.split()]
    return kids + [g for k in kids for g in _children(k)]


def _hwm_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _queue_run(database_url: str, env: dict, code: str, worker: subprocess.Popen, timeout: float = 900) -> float:
    """Queue a run as the nightly schedule does and wait for it: seconds from queued to finished."""
    queued = run_child(
        [sys.executable, "manage.py", "shell", "-c",
         "from trials.models import Trial; from toxicity.check_runs import check_run_create; "
         f"print(check_run_create(user=None, trial=Trial.objects.get(protocol_code={code!r})).pk)"],
        env,
    )
    run_id = int(queued["output"].strip().splitlines()[-1])
    deadline = time.monotonic() + timeout
    with psycopg.connect(database_url, autocommit=True) as conn:
        while True:
            status, seconds, error = conn.execute(
                "SELECT status, EXTRACT(EPOCH FROM finished_at - created_at), error FROM toxicity_checkrun "
                "WHERE id = %s", [run_id]).fetchone()
            if status in ("succeeded", "failed"):
                break
            if worker.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"check run {run_id} {status}: the worker " + (
                    "died" if worker.poll() is not None else f"did not finish it in {timeout:g} s"))
            time.sleep(0.1)
    if status != "succeeded":
        raise SystemExit(f"check run {run_id} {status}: {error}")
    return float(seconds)


def worker_runs(database_url: str, broker: str, code: str, concurrency: int) -> dict:
    """A first run (the rule queries deleted beforehand) and a second run on one Celery worker."""
    import redis

    client = redis.Redis.from_url(broker)
    if client.dbsize():
        raise SystemExit(f"Redis database {broker} is not empty: pick another with --broker.")
    with psycopg.connect(database_url, autocommit=True) as conn:  # the bench database's own queries
        conn.execute("TRUNCATE toxicity_querymessage, toxicity_historicalquery, toxicity_query")
    env = child_env(database_url, broker)
    log = tempfile.TemporaryFile()
    worker = subprocess.Popen(
        [str(ROOT / ".venv/bin/celery"), "-A", "config", "worker", "--pool", "prefork", "--concurrency",
         str(concurrency), "--loglevel", "INFO", "-n", f"bench-checks-{os.getpid()}@%h",
         "--without-gossip", "--without-mingle", "--without-heartbeat"],
        stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=env,
    )
    runs = []
    try:
        deadline = time.monotonic() + 60
        while True:
            log.seek(0)
            if b"ready." in log.read():
                break
            if worker.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                raise SystemExit("the Celery worker did not start:\n" + log.read().decode(errors="replace")[-3000:])
            time.sleep(0.2)
        for label in ("first", "second"):
            seconds = _queue_run(database_url, env, code, worker)
            pool = _children(worker.pid)
            runs.append({"label": label, "seconds": seconds, "processes": 1 + len(pool),
                         "main_hwm_mb": _hwm_mb(worker.pid), "pool_hwm_mb": max(map(_hwm_mb, pool), default=0.0)})
    finally:
        worker.send_signal(signal.SIGTERM)  # warm shutdown: the pool processes are reaped first
        _, _, usage = os.wait4(worker.pid, 0)
        client.flushdb()
        client.close()
        log.close()
    return {"runs": runs, "tree_rss_mb": usage.ru_maxrss / 1024}


# --- the report -----------------------------------------------------------------------------


def table(rows: list[tuple]) -> str:
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for n, r in enumerate(rows):
        lines.append("  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(r, widths))))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subjects", type=int, default=3000)
    parser.add_argument("--days", type=int, default=35)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--server", default=os.environ.get("BENCH_PG_SERVER", SERVER),
                        help=f"PostgreSQL server URL without a database (default {SERVER})")
    parser.add_argument("--db", default="cart_bench_checks", help="database to (re)create and drop")
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/13", help="an empty Redis database for the worker")
    parser.add_argument("--concurrency", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--skip-worker", action="store_true", help="no Celery worker run")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()

    database_url = f"{args.server}/{args.db}"
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"{platform.system()} {platform.release()}; load average at start {os.getloadavg()[0]:.2f} "
          "(figures need a quiet machine)")
    recreate_database(args.server, args.db)
    try:
        os.environ.update(child_env(database_url))
        for name in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"):
            os.environ.pop(name, None)
        import django
        from django.core.management import call_command

        django.setup()
        start = time.perf_counter()
        call_command("migrate", verbosity=0)
        migrate_s = time.perf_counter() - start
        from django.db import connection

        connection.close()  # the children and the bare loop use their own connections

        env = child_env(database_url)
        gen = run_child([sys.executable, "manage.py", "generate_synthetic", CODE, "--subjects", str(args.subjects),
                         "--days", str(args.days), "--seed", str(args.seed)], env)
        with psycopg.connect(database_url) as conn:
            counts = dict(conn.execute(
                "SELECT 'assessments', count(*) FROM toxicity_dailyassessment UNION ALL "
                "SELECT 'interventions', (SELECT count(*) FROM toxicity_tocilizumabdose) "
                "+ (SELECT count(*) FROM toxicity_corticosteroiddose) + (SELECT count(*) FROM toxicity_anticytokinedose) "
                "+ (SELECT count(*) FROM toxicity_plasmaexchange) + (SELECT count(*) FROM toxicity_hemofiltrationsession) "
                "+ (SELECT count(*) FROM toxicity_icustay)").fetchall())
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")  # as autovacuum would have by the night after a load
        print(f"trial {CODE}: {args.subjects:,} subjects x {args.days} days = {counts['assessments']:,} assessments, "
              f"{counts['interventions']:,} intervention records (migrate {migrate_s:.1f} s)")

        bare = [bare_loop(database_url, CODE), bare_loop(database_url, CODE)]
        best = min(b["seconds"] for b in bare)
        # the fixed cost in each figure below: interpreter, Django and Celery start-up
        startup = run_child([sys.executable, "manage.py", "run_checks", "NO-SUCH-TRIAL", "--inline"], env, expect=1)
        runs = []
        for label in ("first", "second"):
            load = os.getloadavg()[0]
            run = run_child([sys.executable, "manage.py", "run_checks", CODE, "--inline"], env)
            summary = run["output"].rsplit("\r", 1)[-1].strip().splitlines()[-1]
            runs.append({"label": label, "load": load, "summary": summary, **run})
        worker = None
        if not args.skip_worker:
            worker = worker_runs(database_url, args.broker, CODE, args.concurrency)
    finally:
        if not args.keep:
            drop_database(args.server, args.db)

    def verdict(ok):
        return "met" if ok else "NOT met"

    rows = [("measure", "seconds", "rate", "peak RSS MB", "x bare loop", "goal")]
    rows.append(("generate_synthetic", f"{gen['seconds']:.1f}", f"{counts['assessments'] / gen['seconds']:,.0f} assessments/s",
                 f"{gen['rss_mb']:.0f}", "", f"< 60 s: {verdict(gen['seconds'] < 60)}"))
    for n, b in enumerate(bare):
        rows.append((f"bare loop, pass {n + 1} ({'memos empty' if n == 0 else 'memos warm'})", f"{b['seconds']:.2f}",
                     f"{b['per_second']:,.0f} rows/s", "", "", ""))
    rows.append(("run_checks start-up alone (no such trial)", f"{startup['seconds']:.2f}", "", f"{startup['rss_mb']:.0f}",
                 f"{startup['seconds'] / best:.2f}", ""))
    for run in runs:
        ratio = run["seconds"] / best
        ok = ratio <= TIME_FACTOR and run["rss_mb"] < RSS_LIMIT_MB
        rows.append((f"run_checks --inline, {run['label']} run", f"{run['seconds']:.2f}",
                     f"{args.subjects / run['seconds']:,.0f} subjects/s", f"{run['rss_mb']:.0f}", f"{ratio:.2f}",
                     f"<= {TIME_FACTOR:g}x, < {RSS_LIMIT_MB:g} MB: {verdict(ok)}"))
    for run in worker["runs"] if worker else ():
        ratio, rss = run["seconds"] / best, max(run["main_hwm_mb"], run["pool_hwm_mb"])
        rows.append((f"Celery worker (prefork x{args.concurrency}), {run['label']} run", f"{run['seconds']:.2f}",
                     f"{args.subjects / run['seconds']:,.0f} subjects/s", f"{rss:.0f}", f"{ratio:.2f}",
                     f"<= {TIME_FACTOR:g}x, < {RSS_LIMIT_MB:g} MB: {verdict(ratio <= TIME_FACTOR and rss < RSS_LIMIT_MB)}"))
    print()
    print(table(rows))
    print()
    print(f"bare loop: {bare[0]['rows']:,} rows, {bare[0]['errors']} input errors, derived CRS grade equal to the "
          f"stored one on {bare[0]['same_crs']:.1%} (drug-log triggers left out); ratios use the best pass "
          f"({best:.2f} s)")
    for run in runs:
        print(f"{run['label']} run: {run['summary']} (load average before {run['load']:.2f})")
    if worker:
        last = worker["runs"][-1]
        print(f"worker: {last['processes']} processes; peak RSS (VmHWM) main {last['main_hwm_mb']:.0f} MB, largest pool "
              f"process {last['pool_hwm_mb']:.0f} MB; process tree after shutdown (os.wait4) {worker['tree_rss_mb']:.0f} MB; "
              "seconds = the run row's finished_at - created_at (queued by check_run_create, as the nightly "
              "schedule does; the rule queries deleted before the first run)")

if __name__ == "__main__":
    main()
