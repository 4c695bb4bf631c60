"""The settings read the environment: embedded default without it, PostgreSQL and a broker with it."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROBE = (
    "import json, django; from django.conf import settings; django.setup(); "
    "print(json.dumps({'engine': settings.DATABASES['default']['ENGINE'], "
    "'name': str(settings.DATABASES['default']['NAME']), 'eager': settings.CELERY_TASK_ALWAYS_EAGER, "
    "'broker': settings.CELERY_BROKER_URL, 'debug': settings.DEBUG}))"
)
VARIABLES = ("DATABASE_URL", "CELERY_BROKER_URL", "DJANGO_DEBUG", "DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS")


def _settings(**env):
    clean = {k: v for k, v in os.environ.items() if k not in VARIABLES}
    clean.update(env, DJANGO_SETTINGS_MODULE="config.settings")
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=clean, capture_output=True, text=True)
    return done


def test_no_environment_means_sqlite_file_and_eager_tasks():
    done = _settings()
    assert done.returncode == 0, done.stderr
    probe = json.loads(done.stdout)
    assert probe["engine"] == "django.db.backends.sqlite3"
    assert probe["name"].endswith("db.sqlite3")
    assert probe["eager"] is True and probe["debug"] is True


def test_environment_selects_postgresql_and_a_real_broker():
    done = _settings(
        DATABASE_URL="postgres://cart:pw@db.example:5432/cart", CELERY_BROKER_URL="redis://127.0.0.1:6379/3"
    )
    assert done.returncode == 0, done.stderr
    probe = json.loads(done.stdout)
    assert probe["engine"] == "django.db.backends.postgresql"
    assert probe["name"] == "cart"
    assert probe["eager"] is False and probe["broker"] == "redis://127.0.0.1:6379/3"


def test_production_without_secret_key_refuses_to_start():
    done = _settings(DJANGO_DEBUG="0")
    assert done.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in done.stderr


def test_production_with_secret_key_starts_with_secure_cookies():
    probe = PROBE.replace("'debug': settings.DEBUG", "'debug': settings.DEBUG, 'secure': settings.SESSION_COOKIE_SECURE")
    clean = {k: v for k, v in os.environ.items() if k not in VARIABLES}
    clean.update(DJANGO_DEBUG="0", DJANGO_SECRET_KEY="x" * 50, DJANGO_SETTINGS_MODULE="config.settings")
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=clean, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["secure"] is True


@pytest.mark.django_db
def test_the_suite_runs_on_the_database_the_environment_names(settings):
    from django.db import connection

    expected = "postgresql" if os.environ.get("DATABASE_URL", "").startswith("postgres") else "sqlite"
    assert connection.vendor == expected
