"""Sponsor export and list benchmarks over HTTP (gunicorn + PostgreSQL), issue 6.

1. ``exports/assessments.csv`` of a synthetic trial with about 1,000,000 daily assessments, as a
   sponsor, against ``COPY (SELECT ...) TO STDOUT WITH CSV`` of the same rows in the same run;
   the gunicorn worker's RSS is sampled every 20 ms (at ~100k rows and at the end).
2. Walking every page of a 200,000-row list with cursor pagination (first vs last page).
3. p95 of 100-row list pages with 10 concurrent clients.

    .venv/bin/python bench/exports.py [--subjects 28572] [--keep]   # needs PostgreSQL on 127.0.0.1:5432
"""
import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
DB = "cart_bench_export"
PORT = 8766
SERVER = "postgres://postgres@127.0.0.1:5432"


def env(db_url):
    # One client makes thousands of calls a minute here: the token throttle (600/min) is lifted.
    return {**os.environ, "DATABASE_URL": db_url, "DJANGO_DEBUG": "0", "API_TOKEN_RATE": "1000000/min",
            "DJANGO_SECRET_KEY": "bench-" + "x" * 50, "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DJANGO_SECURE_SSL_REDIRECT": "0", "DJANGO_BEHIND_TLS_PROXY": "0", "DJANGO_SECURE_HSTS_SECONDS": "0",
            "CELERY_BROKER_URL": "", "DJANGO_LOG_LEVEL": "WARNING", "DATABASE_CONN_MAX_AGE": "60"}


def manage(db_url, *args, capture=False):
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env(db_url), check=True,
                          capture_output=capture, text=True)


def setup(db_url, subjects, list_subjects, keep):
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB,)).fetchone()
        if exists and keep:
            return
        conn.execute(f"DROP DATABASE IF EXISTS {DB}")
        conn.execute(f"CREATE DATABASE {DB}")
    manage(db_url, "migrate", "-v0")
    started = time.perf_counter()
    manage(db_url, "generate_synthetic", "EXP-1", "--subjects", str(subjects), "--days", "35", "--seed", "11")
    manage(db_url, "generate_synthetic", "LIST-1", "--subjects", str(list_subjects), "--days", "35", "--seed", "12")
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("ANALYZE")  # as autovacuum would after a bulk load
    print(f"generated in {time.perf_counter() - started:.0f} s")


def tokens(db_url):
    script = """
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from trials import services
from trials.models import Trial
user, _ = get_user_model().objects.get_or_create(username="bench-sponsor")
for code in ("EXP-1", "LIST-1"):
    trial = Trial.objects.get(protocol_code=code)
    if not user.memberships.filter(trial=trial, role="sponsor").exists():
        services.membership_grant(user=user, role="sponsor", trial=trial)
    print(code, trial.pk)
print("TOKEN", Token.objects.get_or_create(user=user)[0].key)
"""
    lines = dict(line.split()[:2] for line in manage(db_url, "shell", "-c", script, capture=True).stdout.splitlines()
                 if line.split() and line.split()[0] in ("EXP-1", "LIST-1", "TOKEN"))
    return {"EXP-1": lines["EXP-1"], "LIST-1": lines["LIST-1"]}, lines["TOKEN"]


def raw_copy(db_url, trial_id):
    """The database's own speed: COPY of the same rows (assessment columns, the subject's id)."""
    sql = (f"COPY (SELECT a.*, s.subject_id FROM toxicity_dailyassessment a JOIN trials_subject s ON s.id = a.subject_id "
           f"WHERE s.trial_id = {int(trial_id)} ORDER BY a.id) TO STDOUT WITH (FORMAT csv, HEADER)")
    with psycopg.connect(db_url) as conn, conn.cursor() as cur:
        started, size = time.perf_counter(), 0
        with cur.copy(sql) as copy:
            for block in copy:
                size += len(block)
        return time.perf_counter() - started, size, cur.rowcount


def rss_mb(pid):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except FileNotFoundError:
        return 0.0
    return 0.0


def workers(master_pid):
    out = subprocess.run(["pgrep", "-P", str(master_pid)], capture_output=True, text=True).stdout.split()
    return [int(p) for p in out]


def http_export(token, trial_id, worker_pid):
    """Stream the CSV export; sample the worker's RSS; note RSS when ~100k rows have arrived."""
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=600)
    samples, stop = [], threading.Event()

    def sample():
        while not stop.is_set():
            samples.append((time.perf_counter(), rss_mb(worker_pid)))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    before = rss_mb(worker_pid)
    sampler.start()
    started = time.perf_counter()
    conn.request("GET", f"/api/v1/exports/assessments.csv?trial={trial_id}", headers={"Authorization": f"Token {token}"})
    response = conn.getresponse()
    assert response.status == 200, response.read()[:500]
    first_byte = time.perf_counter() - started
    size, lines, at_100k = 0, 0, None
    while True:
        block = response.read1(1 << 20)
        if not block:
            break
        size += len(block)
        lines += block.count(b"\n")
        if at_100k is None and lines >= 100_000:
            at_100k = rss_mb(worker_pid)
    elapsed = time.perf_counter() - started
    stop.set()
    sampler.join()
    return {"seconds": elapsed, "bytes": size, "lines": lines, "first_byte": first_byte, "rss_before": before,
            "rss_100k": at_100k, "rss_peak": max(r for _, r in samples), "rss_end": rss_mb(worker_pid)}


def get(conn, path, token, parse=True):
    """Seconds until the whole body is read (and the parsed page, unless ``parse`` is off)."""
    started = time.perf_counter()
    conn.request("GET", path, headers={"Authorization": f"Token {token}"})
    response = conn.getresponse()
    body = response.read()
    seconds = time.perf_counter() - started
    assert response.status == 200, body[:300]
    return seconds, json.loads(body) if parse else None


def walk(token, trial_id):
    """Every page of the 200k-row list; returns the per-page times and the cursor paths."""
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=60)
    path = f"/api/v1/assessments/?trial={trial_id}&page_size=1000"
    times, paths, rows = [], [], 0
    while path:
        paths.append(path)
        seconds, page = get(conn, path, token)
        times.append(seconds)
        rows += len(page["results"])
        nxt = page["next"]
        path = urllib.parse.urlsplit(nxt)._replace(scheme="", netloc="").geturl() if nxt else None
    return times, paths, rows


def concurrent_pages(token, trial_id, clients=10, seconds=20):
    """10 clients fetch random 100-row pages (cursor paths gathered first) for ``seconds``."""
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=60)
    path, paths = f"/api/v1/assessments/?trial={trial_id}&page_size=100", []
    while path and len(paths) < 400:
        paths.append(path)
        _, page = get(conn, path, token)
        nxt = page["next"]
        path = urllib.parse.urlsplit(nxt)._replace(scheme="", netloc="").geturl() if nxt else None
    results, stop = [], time.perf_counter() + seconds

    def client(n):
        c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=60)
        i = n * 37
        while time.perf_counter() < stop:
            results.append(get(c, paths[i % len(paths)], token, parse=False)[0])  # the client's CPU is the server's
            i += 1

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    results.sort()
    return {"n": len(results), "p50": results[len(results) // 2] * 1000, "p95": results[int(len(results) * 0.95)] * 1000,
            "rps": len(results) / seconds}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--subjects", type=int, default=28572, help="35 days each: 28572 -> 1,000,020 assessments")
    parser.add_argument("--list-subjects", type=int, default=5715, help="35 days each: 5715 -> 200,025 assessments")
    parser.add_argument("--keep", action="store_true", help="reuse the benchmark database if it exists")
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    db_url = f"{SERVER}/{DB}"
    setup(db_url, args.subjects, args.list_subjects, args.keep)
    trials, token = tokens(db_url)
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi", "--workers", str(args.workers), "--bind", f"127.0.0.1:{PORT}",
         "--timeout", "600", "--log-level", "warning"], cwd=ROOT, env=env(db_url))
    try:
        for _ in range(100):
            try:
                http.client.HTTPConnection("127.0.0.1", PORT, timeout=1).request("GET", "/accounts/login/")
                break
            except OSError:
                time.sleep(0.1)
        time.sleep(1)
        pids = workers(server.pid)
        print(f"gunicorn workers {pids}, PostgreSQL, sponsor token, trial EXP-1")
        # 1. export vs raw COPY, alternated, 3 rounds each (with one worker serving the export)
        single = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "config.wsgi", "--workers", "1", "--bind", f"127.0.0.1:{PORT + 1}",
             "--timeout", "600", "--log-level", "warning"], cwd=ROOT, env=env(db_url))
        time.sleep(3)
        worker = workers(single.pid)[0]
        copies, exports = [], []
        try:
            for _ in range(3):
                copies.append(raw_copy(db_url, trials["EXP-1"]))
                exports.append(http_export_on(PORT + 1, token, trials["EXP-1"], worker))
        finally:
            single.terminate()
            single.wait(timeout=30)
        best_copy = min(copies)
        best_export = min(exports, key=lambda e: e["seconds"])
        rows = best_copy[2]
        export_runs = ", ".join("%.2f" % e["seconds"] for e in exports)
        print(f"\nraw COPY: {rows:,} rows, {best_copy[1] / 1e6:.0f} MB in {best_copy[0]:.2f} s "
              f"({rows / best_copy[0]:,.0f} rows/s)  runs: {', '.join(f'{c[0]:.2f}' for c in copies)} s")
        print(f"HTTP export: {best_export['lines'] - 1:,} rows, {best_export['bytes'] / 1e6:.0f} MB in "
              f"{best_export['seconds']:.2f} s ({(best_export['lines'] - 1) / best_export['seconds']:,.0f} rows/s), "
              f"first byte {best_export['first_byte'] * 1000:.0f} ms  runs: {export_runs} s")
        print(f"throughput ratio export/COPY (rows/s): {(best_export['lines'] - 1) / best_export['seconds'] / (rows / best_copy[0]):.2f}")
        for e in exports:
            at_100k = e["rss_100k"] or e["rss_peak"]
            print(f"  worker RSS: before {e['rss_before']:.0f} MB, at 100k rows {at_100k:.0f} MB, "
                  f"peak {e['rss_peak']:.0f} MB, growth 100k->end {e['rss_peak'] - at_100k:.1f} MB")
        # 2. cursor walk of a 200k-row list
        times, paths, walked = walk(token, trials["LIST-1"])
        conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=60)
        first = statistics.median(get(conn, paths[0], token)[0] for _ in range(7))
        last = statistics.median(get(conn, paths[-1], token)[0] for _ in range(7))
        print(f"\ncursor walk: {walked:,} rows in {len(times)} pages of 1000, {sum(times):.1f} s; "
              f"first page {first * 1000:.0f} ms, last page {last * 1000:.0f} ms (ratio {last / first:.2f}); "
              f"slowest page {max(times) * 1000:.0f} ms (page {times.index(max(times)) + 1})")
        # 3. concurrent list pages
        result = concurrent_pages(token, trials["LIST-1"])
        print(f"10 concurrent clients, 100-row pages: {result['n']} requests, p50 {result['p50']:.0f} ms, "
              f"p95 {result['p95']:.0f} ms, {result['rps']:.0f} requests/s")
    finally:
        server.terminate()
        server.wait(timeout=30)
        if not args.keep:
            with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {DB}")


def http_export_on(port, token, trial_id, worker_pid):
    global PORT
    saved, PORT = PORT, port
    try:
        return http_export(token, trial_id, worker_pid)
    finally:
        PORT = saved


if __name__ == "__main__":
    main()
