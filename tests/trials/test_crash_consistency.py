"""A crash between a clinical write and its derived updates leaves a consistent database (issue 8).

Every clinical write runs in one transaction with what it implies: the subject's derived values,
the re-derived grades (system audit rows), the episodes, the save-time queries and the queued
e-mails (toxicity.course.write: subject_write and after_subject_write). Here
each derived step is made to fail *after* it has written, in committed transactions (no test
transaction to hide behind): nothing of the write may remain -- no clinical row, no history row,
no query, no episode, no e-mail -- and the same write then succeeds. A last test kills the
writing process with SIGKILL in the middle of the derived step.
"""
import os
import signal
import subprocess
import sys
from datetime import datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.apps import apps
from django.core import mail
from django.db import connection

import toxicity.course.write
import toxicity.queries
from toxicity import services
from toxicity.models import DailyAssessment, Episode, Query, TocilizumabDose
from trials import services as trial_services
from trials.models import Death, Subject

ROOT = Path(__file__).resolve().parents[2]
NORMAL = dict(temperature_max_c=Decimal("36.8"), ice_score=10, consciousness="alert")
# ASTCT grade 4 CRS (two vasopressors, BiPAP) reported as grade 2: a CRS-GRADE-MISMATCH query, a CRS
# episode, an alert to the data managers, and a grading context change for the later days.
SEVERE = dict(temperature_max_c=Decimal("39.5"), hypotension=True, vasopressors=["norepinephrine", "epinephrine"],
              hypoxia=True, oxygen_device="bipap", fio2_percent=60, ice_score=10,
              consciousness="alert", crs_grade_reported=2)


class Crash(Exception):
    """The simulated failure of a derived step."""


def snapshot() -> dict:
    """Every row of every table of the project's apps, history tables included."""
    state = {}
    for model in apps.get_models():
        if model._meta.app_label in ("trials", "toxicity", "reporting"):
            state[model._meta.label] = list(model._base_manager.order_by("pk").values())
    return state


def day(world, n):
    return world.subject_a.day0 + timedelta(days=n)


def at(world, n, hour):
    return datetime.combine(day(world, n), time(hour), tzinfo=ZoneInfo(world.site_a.timezone))


def fresh(model, pk):
    return model.objects.get(pk=pk)


def _create_severe_day(w):
    return services.assessment_create(user=w.users["coordinator_a"], subject=w.subject_a,
                                      assessment_date=day(w, 3), **SEVERE)


def _correct_day_one_to_severe(w):
    a = DailyAssessment.objects.get(subject=w.subject_a, assessment_date=day(w, 1))
    return services.assessment_update(assessment=a, user=w.users["coordinator_a"], version=a.version,
                                      reason="source updated", changes=dict(SEVERE))


def _give_tocilizumab(w):
    return services.log_create(TocilizumabDose, user=w.users["coordinator_a"], subject=w.subject_a,
                               administered_at=at(w, 1, 9), dose_mg=Decimal("700"), weight_kg=Decimal("70"),
                               indication="crs")


def _move_day_zero(w):
    infusion = fresh(type(w.infusion_a), w.infusion_a.pk)
    return trial_services.infusion_update(infusion=infusion, user=w.users["coordinator_a"], version=infusion.version,
                                          reason="transcription error",
                                          changes={"infused_at": infusion.infused_at - timedelta(days=1)})


def _record_death(w):
    return trial_services.death_record(subject=fresh(Subject, w.subject_a.pk), user=w.users["coordinator_a"],
                                       death_date=day(w, 2), death_primary_cause="crs")


WRITES = {
    "assessment create": _create_severe_day,
    "assessment correction": _correct_day_one_to_severe,
    "tocilizumab dose": _give_tocilizumab,
    "infusion correction (day 0 moves)": _move_day_zero,
    "death record": _record_death,
}


def _fail_after(original):
    def failing(*args, **kwargs):
        original(*args, **kwargs)  # the derived step writes, then the process "crashes"
        raise Crash("simulated failure after the derived step wrote")
    return failing


def inject(monkeypatch, step):
    """Make one step of the write sequence (toxicity.course.write.refresh_courses) fail after it wrote."""
    if step == "grades re-derived":
        monkeypatch.setattr(toxicity.course.write, "store_grades", _fail_after(toxicity.course.write.store_grades))
    elif step == "save-time checks":
        monkeypatch.setattr(toxicity.queries, "reconcile", _fail_after(toxicity.queries.reconcile))
    elif step == "episodes":
        monkeypatch.setattr(toxicity.course.write, "store_episodes", _fail_after(toxicity.course.write.store_episodes))


@pytest.fixture
def course(world_tx):
    """Committed: days 1 and 2 normal, and one CRS day earlier (so episodes and queries exist)."""
    w = world_tx
    w.subject_a.refresh_from_db()
    for n, fields in ((0, {**NORMAL, "temperature_max_c": Decimal("38.6")}), (1, NORMAL), (2, NORMAL)):
        services.assessment_create(user=w.users["coordinator_a"], subject=w.subject_a, assessment_date=day(w, n),
                                   **fields)
    assert Episode.objects.filter(subject=w.subject_a).exists()
    mail.outbox.clear()
    return w


@pytest.mark.parametrize("step", ["grades re-derived", "save-time checks", "episodes"])
@pytest.mark.parametrize("write", list(WRITES))
def test_a_failure_in_a_derived_step_leaves_nothing_of_the_write(course, monkeypatch, write, step):
    before = snapshot()
    with monkeypatch.context() as patch:
        inject(patch, step)
        with pytest.raises(Crash):
            WRITES[write](course)
    assert snapshot() == before  # no clinical row, history row, derived value, query or episode
    assert mail.outbox == []  # the alert queued with on_commit went with the rollback
    # the same write now goes through, with every derived effect
    record = WRITES[write](course)
    after = snapshot()
    assert after != before
    history = type(record).history.filter(id=record.pk)
    assert history.count() == fresh(type(record), record.pk).version
    for row in [fresh(Subject, course.subject_a.pk), *DailyAssessment.objects.filter(subject=course.subject_a)]:
        assert type(row).history.filter(id=row.pk).count() == row.version  # one history row per version


def test_the_severe_day_has_all_its_derived_effects_when_it_commits(course, celery_eager):
    """The control for the test above: the write that must vanish on failure does produce each effect."""
    episodes, queries = Episode.objects.count(), Query.objects.count()
    a = _create_severe_day(course)
    assert a.crs_grade_derived == 4
    assert Query.objects.filter(rule_id="CRS-GRADE-MISMATCH", record_id=a.pk).exists()
    assert Query.objects.count() > queries
    assert Episode.objects.count() >= episodes
    assert any("grade 4" in m.subject for m in mail.outbox)


CHILD = r"""
import os, signal, sys
from datetime import date
from decimal import Decimal
import django
django.setup()
from django.contrib.auth import get_user_model
import toxicity.course.write
from toxicity import services
from toxicity.models import DailyAssessment
from trials.models import Subject

subject = Subject.objects.get(pk=int(sys.argv[1]))
user = get_user_model().objects.get(username=sys.argv[2])
when = date.fromisoformat(sys.argv[3])

def die(derived, **kwargs):
    # Inside the write's transaction: the clinical row and its history row exist, the episodes not yet.
    row = DailyAssessment.objects.get(subject=subject, assessment_date=when)
    print("written", row.pk, row.history.count(), flush=True)
    os.kill(os.getpid(), signal.SIGKILL)

toxicity.course.write.store_episodes = die
services.assessment_create(user=user, subject=subject, assessment_date=when, temperature_max_c=Decimal("39.5"),
                           hypotension=True, vasopressors=["norepinephrine", "epinephrine"], hypoxia=True,
                           oxygen_device="bipap", fio2_percent=60, ice_score=10,
                           consciousness="alert", crs_grade_reported=2)
print("not killed", flush=True)
"""


def database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def test_a_process_killed_during_the_derived_step_leaves_nothing_of_the_write(course):
    """A real crash: the writing process dies (SIGKILL) after the clinical row and its history row
    are written and before the episodes are; the database rolls the whole write back."""
    w = course
    before = snapshot()
    env = {**os.environ, "DATABASE_URL": database_url(), "DJANGO_SETTINGS_MODULE": "config.settings"}
    env.pop("CELERY_BROKER_URL", None)  # the write enqueues nothing; keep the child self-contained
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(w.subject_a.pk), w.users["coordinator_a"].username, day(w, 3).isoformat()],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert child.returncode == -signal.SIGKILL, child.stdout + child.stderr
    assert child.stdout.startswith("written ") and child.stdout.split()[2] == "1", child.stdout + child.stderr
    assert snapshot() == before
    a = _create_severe_day(w)  # the row lock and the unique day are free again
    assert a.history.count() == a.version == 1
    assert Query.objects.filter(rule_id="CRS-GRADE-MISMATCH", record_id=a.pk).exists()


def test_a_failed_death_record_leaves_the_subject_alive(course, monkeypatch):
    """The subject's status and day 0 are derived in the same transaction as the death record."""
    status = fresh(Subject, course.subject_a.pk).status
    inject(monkeypatch, "episodes")
    with pytest.raises(Crash):
        _record_death(course)
    assert fresh(Subject, course.subject_a.pk).status == status != "died"
    assert not Death.objects.exists() and not Death.history.exists()
