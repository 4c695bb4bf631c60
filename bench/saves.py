"""One save of a subject's data: SQL statements and time, in a short and in a 30-day course, on PostgreSQL.

    .venv/bin/python bench/saves.py          # needs PostgreSQL on 127.0.0.1:5432 (trust auth)

The clinical-course issue's target: one save = one course load and a bounded number of
statements that does not grow with the course's length (<= 25 for a day of a 30-day course).
A fresh database is created, migrated and dropped at the end. For a subject with a 5-day and one
with a 30-day course (CRS on days 1-4, tocilizumab on days 1 and 2), it prints the statements of
(a) entering the next day, (b) correcting day 2 (later days are re-derived), (c) entering a
tocilizumab dose (the grading context changes), and the median wall time of 40 corrections of the
last day (the save path as a coordinator's correction runs it, without HTTP), beside its anchor: the
median of 40 bare corrections in SQL (lock, UPDATE, one history row; nothing derived). Each save is
checked: the row's version went up and its history has one row per version.
"""
import os
import statistics
import subprocess
import sys
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DB = "cart_bench_saves"
URL = f"postgres://postgres@127.0.0.1:5432/{DB}"


def psql(sql):
    subprocess.run(["psql", "-q", "-h", "127.0.0.1", "-U", "postgres", "-c", sql], check=True)


def main():
    psql(f"DROP DATABASE IF EXISTS {DB}")
    psql(f"CREATE DATABASE {DB}")
    env = {**os.environ, "DATABASE_URL": URL, "CELERY_BROKER_URL": ""}
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    os.environ.update(DATABASE_URL=URL, CELERY_BROKER_URL="", DJANGO_SETTINGS_MODULE="config.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    try:
        measure()
    finally:
        from django.db import connections

        connections.close_all()
        psql(f"DROP DATABASE IF EXISTS {DB}")


def measure():
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from toxicity import services
    from toxicity.models import DailyAssessment, TocilizumabDose
    from trials import services as trial_services
    from trials.models import Cohort, Site, Trial

    trial = Trial.objects.create(protocol_code="BENCH-SAVES", title="Save bench", phase="1", sponsor="bench",
                                 status="active")
    site = Site.objects.create(trial=trial, site_number="101", name="Site", country="DE", timezone="Europe/Berlin")
    cohort = Cohort.objects.create(trial=trial, name="DL1", dose_level_cells_per_kg=1e6)
    user = get_user_model().objects.create(username="bench-coordinator")
    trial_services.membership_grant(user=user, role="coordinator", trial=trial, site=site)
    normal = dict(temperature_max_c=Decimal("36.8"), ice_score=10, consciousness="alert")

    def course(days):
        from datetime import datetime, time as clock
        from zoneinfo import ZoneInfo

        today = date.today()
        subject = trial_services.subject_create(
            user=user, trial=trial, site=site, cohort=cohort, subject_id=f"101-{days:04d}",
            enrolled_on=today - timedelta(days=days + 20), sex="female", date_of_birth=date(1970, 1, 1),
            diagnosis="dlbcl", baseline_weight_kg=Decimal("70"))
        infused = datetime.combine(today - timedelta(days=days + 2), clock(10), tzinfo=ZoneInfo(site.timezone))
        trial_services.infusion_create(user=user, subject=subject, infusion_number=1, product="investigational",
                                       lot_number="L1", infused_at=infused, dose_cells_per_kg=1e6,
                                       weight_kg=Decimal("70"), lymphodepletion_regimen="flu_cy",
                                       lymphodepletion_start_date=infused.date() - timedelta(days=5))
        subject.refresh_from_db()
        for n in range(days):
            fever = {"temperature_max_c": Decimal("38.9"), "hypotension": True} if 1 <= n <= 4 else {}
            services.assessment_create(user=user, subject=subject, assessment_date=subject.day0 + timedelta(days=n),
                                       **{**normal, **fever})
        for n in (1, 2):
            services.log_create(TocilizumabDose, user=user, subject=subject, dose_mg=Decimal("560"),
                                weight_kg=Decimal("70"), indication="crs", administered_at=infused + timedelta(days=n))
        return subject, infused

    def statements(fn):
        with CaptureQueriesContext(connection) as ctx:
            fn()
        return len(ctx.captured_queries)

    print("statements per save (PostgreSQL), by course length")
    print(f"{'save':<50}{'5 days':>8}{'30 days':>9}")
    rows = {}
    for days in (5, 30):
        subject, infused = course(days)
        day2 = DailyAssessment.objects.get(subject=subject, assessment_date=subject.day0 + timedelta(days=2))
        rows.setdefault("(a) enter the next day", []).append(statements(lambda: services.assessment_create(
            user=user, subject=subject, assessment_date=subject.day0 + timedelta(days=days), **normal)))
        rows.setdefault("(b) correct day 2 (re-derives later days)", []).append(statements(
            lambda: services.assessment_update(assessment=day2, user=user, version=day2.version, reason="source",
                                               changes={"temperature_max_c": Decimal("39.4")})))
        rows.setdefault("(c) enter a tocilizumab dose", []).append(statements(lambda: services.log_create(
            TocilizumabDose, user=user, subject=subject, dose_mg=Decimal("560"), weight_kg=Decimal("70"),
            indication="crs", administered_at=infused + timedelta(days=3, hours=5))))
        last = DailyAssessment.objects.get(subject=subject, assessment_date=subject.day0 + timedelta(days=days))
        if os.environ.get("BENCH_PROFILE") and days == 30:  # cProfile of 40 corrections, to stderr
            import cProfile
            import pstats

            profile = cProfile.Profile()
            profile.enable()
            for k in range(40):
                last = services.assessment_update(assessment=last, user=user, version=last.version, reason="bench",
                                                  changes={"temperature_max_c": Decimal("36.5") + Decimal(k % 9) / 10})
            profile.disable()
            pstats.Stats(profile, stream=sys.stderr).sort_stats(os.environ.get("BENCH_PROFILE_SORT", "cumulative")).print_stats(
                int(os.environ.get("BENCH_PROFILE_LINES", 45)))
        times = []
        for k in range(40):
            version = last.version
            started = time.perf_counter()
            last = services.assessment_update(assessment=last, user=user, version=version, reason="bench",
                                              changes={"temperature_max_c": Decimal("36.5") + Decimal(k % 9) / 10})
            times.append(time.perf_counter() - started)
            assert last.version == version + 1 and last.history.count() == last.version, "the save did not write"
        rows.setdefault("median wall time of a correction (ms)", []).append(round(statistics.median(times) * 1000, 1))
        rows.setdefault("anchor: bare lock + UPDATE + history INSERT (ms)", []).append(
            round(statistics.median(bare_corrections(connection, last)) * 1000, 1))
    for name, (short, long) in rows.items():
        print(f"{name:<50}{short:>8}{long:>9}")
    target = max(rows["(a) enter the next day"][1], rows["(b) correct day 2 (re-derives later days)"][1])
    print(f"target <= 25 statements for a day of a 30-day course: {'met' if target <= 25 else 'NOT met'} ({target})")


def bare_corrections(connection, assessment, n=40):
    """The floor of a correction, in SQL on the same connection: lock the subject and the row,
    UPDATE the temperature and version, INSERT one history row copied from it, commit. No grading,
    no checks, no episodes. Checked: the version went up by n."""
    from django.db import transaction

    table, history = "toxicity_dailyassessment", "toxicity_historicaldailyassessment"
    with connection.cursor() as c:
        c.execute(f"SELECT column_name FROM information_schema.columns WHERE table_name = '{history}' "
                  "AND column_name NOT LIKE 'history_%%'")
        columns = ", ".join(f'"{name}"' for (name,) in c.fetchall())
    times = []
    for k in range(n):
        started = time.perf_counter()
        with transaction.atomic(), connection.cursor() as c:
            c.execute("SELECT id FROM trials_subject WHERE id = %s FOR UPDATE", [assessment.subject_id])
            c.execute(f"SELECT version FROM {table} WHERE id = %s FOR UPDATE", [assessment.pk])
            c.execute(f"UPDATE {table} SET temperature_max_c = %s, version = version + 1, modified_at = now() "
                      "WHERE id = %s", [Decimal("36.5") + Decimal(k % 9) / 10, assessment.pk])
            c.execute(f"INSERT INTO {history} ({columns}, history_date, history_change_reason, history_type) "
                      f"SELECT {columns}, now(), 'bench', '~' FROM {table} WHERE id = %s", [assessment.pk])
        times.append(time.perf_counter() - started)
    before = assessment.version
    assessment.refresh_from_db()
    assert assessment.version == before + n, "the bare correction did not write"
    return times


if __name__ == "__main__":
    main()
