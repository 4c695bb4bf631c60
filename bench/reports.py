"""DSMB report benchmark (issue 7): a synthetic trial of 500 subjects x 35 days on PostgreSQL,
end to end: the data as of the cut from the audit history, episodes, tables, plots and the PDF.

    .venv/bin/python bench/reports.py [--subjects 500] [--days 35]   # needs PostgreSQL on 127.0.0.1:5432
"""
import argparse
import os
import subprocess
import sys
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
DB = "cart_bench_reports"
SERVER = "postgres://postgres@127.0.0.1:5432"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--subjects", type=int, default=500)
    parser.add_argument("--days", type=int, default=35)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    db_url = f"{SERVER}/{DB}"
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB}")
        conn.execute(f"CREATE DATABASE {DB}")
    env = {**os.environ, "DATABASE_URL": db_url, "CELERY_BROKER_URL": ""}
    try:
        subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
        subprocess.run([sys.executable, "manage.py", "generate_synthetic", "DSMB-1", "--subjects", str(args.subjects),
                        "--days", str(args.days), "--seed", "7"], cwd=ROOT, env=env, check=True)
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute("ANALYZE")
        script = f"""
from django.utils import timezone
from reporting.dsmb import build_dsmb_report
from reporting.pdf import render_dsmb_pdf
from reporting.snapshot import load_snapshot
from trials.models import Trial
trial = Trial.objects.get(protocol_code="DSMB-1")
for run in range({args.runs}):
    t0 = time.perf_counter()
    snapshot = load_snapshot(trial, timezone.now())
    t1 = time.perf_counter()
    report = build_dsmb_report(snapshot, closed=True)
    t2 = time.perf_counter()
    pdf = render_dsmb_pdf(report)
    t3 = time.perf_counter()
    print(f"run {{run + 1}}: snapshot {{t1 - t0:.2f}} s, episodes+tables {{t2 - t1:.2f}} s, plots+PDF {{t3 - t2:.2f}} s, "
          f"total {{t3 - t0:.2f}} s; {{len(snapshot.subjects)}} subjects, "
          f"{{sum(len(d) for d in snapshot.days.values())}} assessments, PDF {{len(pdf) / 1e6:.1f}} MB")
"""
        subprocess.run([sys.executable, "manage.py", "shell", "-c", script], cwd=ROOT, env=env, check=True)
    finally:
        with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {DB}")


if __name__ == "__main__":
    main()
