"""manage.py backup / restore (make backup / make restore): a pg_dump custom archive restored into
a fresh database has every table with the same rows, history included, and the same sequences."""
import io
import uuid
from datetime import timedelta
from decimal import Decimal
from urllib.parse import quote

import psycopg
import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from toxicity import services as tox

POSTGRES = settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
needs_postgres = pytest.mark.skipif(
    not POSTGRES, reason="pg_dump/pg_restore back up PostgreSQL; the embedded SQLite database is one file to copy"
)
NORMAL = dict(temperature_max_c=Decimal("36.8"), ice_score=10, consciousness="alert")


def url_for(name: str) -> str:
    s = connection.settings_dict
    credentials = quote(s["USER"] or "", safe="") + (f":{quote(s['PASSWORD'], safe='')}" if s["PASSWORD"] else "")
    return f"postgres://{credentials}@{s['HOST'] or 'localhost'}:{s['PORT'] or 5432}/{name}"


def conninfo(name: str) -> dict:
    s = connection.settings_dict
    return {k: v for k, v in dict(dbname=name, user=s["USER"], password=s["PASSWORD"], host=s["HOST"],
                                  port=s["PORT"]).items() if v}


def snapshot(name: str) -> dict:
    """{table: (row count, md5 of all rows in a fixed order)} for every table, and every sequence's value."""
    with psycopg.connect(**conninfo(name), autocommit=True) as db:
        tables = [r[0] for r in db.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")]
        out = {}
        for table in tables:
            out[table] = db.execute(
                f'SELECT count(*), md5(coalesce(string_agg(t::text, E\'\\n\' ORDER BY t::text), \'\')) FROM "{table}" t'
            ).fetchone()
        for seq, value in db.execute("SELECT sequencename, last_value FROM pg_sequences WHERE schemaname = 'public'"):
            out[f"sequence {seq}"] = value
    return out


def history_rows(name: str, table: str) -> list:
    with psycopg.connect(**conninfo(name)) as db:
        return db.execute(f'SELECT * FROM "{table}" ORDER BY history_id').fetchall()


@pytest.fixture
def fresh_database():
    name = f"{connection.settings_dict['NAME']}_restore_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(**conninfo("postgres"), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield name
    with psycopg.connect(**conninfo("postgres"), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@needs_postgres
def test_backup_restores_into_a_fresh_database_with_the_same_rows_and_history(world_tx, fresh_database, tmp_path):
    user, subject = world_tx.users["coordinator_a"], world_tx.subject_a
    rows = [tox.assessment_create(user=user, subject=subject, assessment_date=subject.day0 + timedelta(days=n),
                                  **NORMAL) for n in range(3)]
    tox.assessment_update(assessment=rows[1], user=user, version=rows[1].version, reason="source updated",
                          changes={"temperature_max_c": Decimal("38.4")})
    tox.assessment_void(assessment=rows[2], user=user, version=rows[2].version, reason="wrong subject")
    source = connection.settings_dict["NAME"]
    archive = tmp_path / "backup.dump"

    out = io.StringIO()
    call_command("backup", output=str(archive), database_url=url_for(source), stdout=out)
    assert archive.is_file() and archive.read_bytes()[:5] == b"PGDMP"  # pg_dump's custom format
    assert f"written to {archive}" in out.getvalue()
    call_command("restore", str(archive), target_database_url=url_for(fresh_database), interactive=False,
                 stdout=io.StringIO())

    before, after = snapshot(source), snapshot(fresh_database)
    assert before == after
    tables = {k: v for k, v in before.items() if not k.startswith("sequence ")}
    assert len(tables) > 30 and len(before) - len(tables) > 30  # every table and every sequence compared
    assert tables["axes_accessattempt"][0] == 0 and tables["trials_subject"][0] == 2
    history = [t for t in before if t.startswith(("toxicity_historical", "trials_historical"))]
    assert "toxicity_historicaldailyassessment" in history and len(history) > 5
    assert before["toxicity_historicaldailyassessment"][0] == 5  # 3 created, 1 corrected, 1 voided
    assert history_rows(source, "toxicity_historicaldailyassessment") == history_rows(
        fresh_database, "toxicity_historicaldailyassessment")

    # restoring again over the restored copy (--clean) converges to the same state
    call_command("restore", str(archive), target_database_url=url_for(fresh_database), interactive=False,
                 stdout=io.StringIO())
    assert snapshot(fresh_database) == before


@needs_postgres
def test_default_name_is_database_and_timestamp_in_backups_dir(transactional_db, tmp_path):
    call_command("backup", output_dir=str(tmp_path), stdout=io.StringIO())
    [dump] = list(tmp_path.iterdir())
    assert dump.name.startswith(f"{connection.settings_dict['NAME']}-") and dump.suffix == ".dump"
    with pytest.raises(CommandError, match="not a valid archive|input file does not appear"):
        (tmp_path / "junk.dump").write_text("not a dump")
        call_command("restore", str(tmp_path / "junk.dump"), interactive=False)


def test_sqlite_is_refused_clearly(tmp_path):
    with pytest.raises(CommandError, match="need PostgreSQL"):
        call_command("backup", output_dir=str(tmp_path), database_url=f"sqlite:///{tmp_path / 'x.sqlite3'}")
    with pytest.raises(CommandError, match="need PostgreSQL"):
        call_command("restore", __file__, target_database_url=f"sqlite:///{tmp_path / 'x.sqlite3'}", interactive=False)
    assert not list(tmp_path.iterdir())


def test_restore_asks_before_replacing_a_database(tmp_path, monkeypatch):
    archive = tmp_path / "x.dump"
    archive.write_bytes(b"")
    monkeypatch.setattr("trials.management.commands.restore.archive_entries", lambda path: 1)
    monkeypatch.setattr("builtins.input", lambda prompt: "no")
    called = []
    monkeypatch.setattr("trials.management.commands.restore.run", lambda *a, **k: called.append(a))
    with pytest.raises(CommandError, match="cancelled"):
        call_command("restore", str(archive), target_database_url="postgres://u@db.example:5432/prod")
    assert not called
