"""History tables are append-only (issue 8, "No lost data").

On PostgreSQL: every simple-history table carries a row trigger that refuses UPDATE and DELETE
for everyone, the owner included; and ``manage.py harden_history_tables --role R`` leaves the
application role SELECT and INSERT on the history tables only, which is proven by logging in as
a fresh role. SQLite has neither roles nor plpgsql: the command refuses to run there.
"""
import importlib
import uuid

import psycopg
import pytest
from django.apps import apps
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction
from simple_history.manager import HistoryManager

from trials.management.commands.harden_history_tables import FUNCTION, TRIGGER, history_tables
from trials.models import Subject

POSTGRES = connection.vendor == "postgresql"
needs_postgres = pytest.mark.skipif(not POSTGRES, reason="roles, privileges and plpgsql triggers are PostgreSQL features; "
                                                         "the embedded pass runs on SQLite")


def live_history_tables() -> set[str]:
    """The tables simple-history writes to, from each model's own history manager."""
    return {m.history.model._meta.db_table for m in apps.get_models()
            if isinstance(getattr(m, "history", None), HistoryManager)}


def tables_with_trigger() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_proc p ON p.oid = t.tgfoid "
            "WHERE t.tgname = %s AND p.proname = %s AND NOT t.tgisinternal AND t.tgenabled = 'O' "
            "AND t.tgtype & 8 = 8 AND t.tgtype & 16 = 16 AND t.tgtype & 2 = 2 AND t.tgtype & 1 = 1",  # DELETE, UPDATE, BEFORE, ROW
            [TRIGGER, FUNCTION],
        )
        return {row[0] for row in cursor.fetchall()}


def test_the_command_and_the_migration_find_every_history_table():
    assert set(history_tables()) == live_history_tables()
    assert {"trials_historicalsubject", "toxicity_historicaldailyassessment", "toxicity_historicalquery",
            "trials_historicalcasebooksignature"} <= live_history_tables()


@pytest.mark.skipif(POSTGRES, reason="the SQLite refusal")
def test_the_command_refuses_sqlite(db):
    with pytest.raises(CommandError, match="needs PostgreSQL"):
        call_command("harden_history_tables", role="app")


@needs_postgres
def test_every_history_table_has_the_refusing_trigger(db):
    """Fails when a migration adds a history table without the trigger: run harden_history_tables
    from that migration (or add the table to a migration like reporting.0003)."""
    assert live_history_tables() - tables_with_trigger() == set()


@needs_postgres
def test_the_trigger_refuses_update_and_delete_even_for_the_owner(world):
    subject = world.subject_a
    table = Subject.history.model._meta.db_table
    row = Subject.history.filter(id=subject.pk).earliest("history_id")
    with connection.cursor() as cursor:
        cursor.execute("SELECT tableowner = current_user FROM pg_tables WHERE tablename = %s", [table])
        assert cursor.fetchone() == (True,)  # the test runs as the owner: privileges do not stop it
    attempts = [
        (f'UPDATE "{table}" SET history_change_reason = %s WHERE history_id = %s', ["rewritten", row.history_id]),
        (f'DELETE FROM "{table}" WHERE history_id = %s', [row.history_id]),
    ]
    for sql, params in attempts:
        with pytest.raises(DatabaseError, match="history rows are append-only"), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
    # the ORM's bulk paths on the history manager end in the same statements
    with pytest.raises(DatabaseError, match="append-only: UPDATE"), transaction.atomic():
        Subject.history.filter(id=subject.pk).update(history_change_reason="rewritten")
    with pytest.raises(DatabaseError, match="append-only: DELETE"), transaction.atomic():
        Subject.history.filter(id=subject.pk).delete()
    row.refresh_from_db()
    assert row.history_change_reason == "initial entry"
    # appending is what history is for: a new version still writes its row
    from trials import services

    subject.refresh_from_db()
    before = subject.history.count()
    services.subject_update(subject=subject, user=world.users["coordinator_a"], version=subject.version,
                            reason="source updated", changes={"sex": "male"})
    assert subject.history.count() == before + 1


@needs_postgres
def test_the_migration_reverses_and_reapplies(db):
    """The reverse drops the trigger and its function; forwards puts them back (DDL is transactional)."""
    migration = importlib.import_module("reporting.migrations.0003_history_append_only")

    class Editor:
        connection = connection

        @staticmethod
        def execute(sql, params=None):
            with connection.cursor() as cursor:
                cursor.execute(sql, params)

    with transaction.atomic():
        migration.backwards(apps, Editor)
        assert tables_with_trigger() == set()
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_proc WHERE proname = %s", [FUNCTION])
            assert cursor.fetchone() == (0,)
        migration.forwards(apps, Editor)
        assert tables_with_trigger() == live_history_tables()


# --- the application role ---------------------------------------------------------------------


def _execute_as_owner(sql, params=None):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


@pytest.fixture
def app_role(transactional_db):
    """A fresh LOGIN role (unique name); its privileges and the role are dropped at the end."""
    name = f"cart_app_{uuid.uuid4().hex[:12]}"
    _execute_as_owner(f'CREATE ROLE "{name}" LOGIN')
    try:
        yield name
    finally:
        _execute_as_owner("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", [name])
        _execute_as_owner(f'DROP OWNED BY "{name}"')  # revokes its grants in this database (it owns nothing)
        _execute_as_owner(f'DROP ROLE "{name}"')


def login_as(role: str) -> psycopg.Connection:
    db = connection.settings_dict
    return psycopg.connect(host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432, dbname=db["NAME"], user=role)


@needs_postgres
def test_the_app_role_may_read_and_append_history_but_never_change_or_delete_it(app_role, world_tx):
    call_command("harden_history_tables", role=app_role, verbosity=0)
    history = Subject.history.model
    table = history._meta.db_table
    columns = [f.column for f in history._meta.concrete_fields if f.column != "history_id"]
    cols = ", ".join(f'"{c}"' for c in columns)
    first = Subject.history.filter(id=world_tx.subject_a.pk).earliest("history_id").history_id
    with login_as(app_role) as conn:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT current_user")
            assert cur.fetchone() == (app_role,)
            cur.execute(f'SELECT count(*) FROM "{table}"')
            assert cur.fetchone()[0] >= 1
            # INSERT: a history row (simple-history's own statement shape), and its sequence value
            cur.execute(f'INSERT INTO "{table}" ({cols}) SELECT {cols} FROM "{table}" WHERE history_id = %s '
                        "RETURNING history_id", [first])
            appended = cur.fetchone()[0]
            assert appended > first
            for sql in (f'UPDATE "{table}" SET history_change_reason = \'rewritten\' WHERE history_id = {first}',
                        f'DELETE FROM "{table}" WHERE history_id = {first}',
                        f'TRUNCATE "{table}"'):
                with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"):
                    cur.execute(sql)
            # ordinary tables stay fully writable for the application (rolled back: a bare UPDATE
            # of an audited table is exactly what the services never do)
            conn.autocommit = False
            cur.execute('UPDATE "trials_subject" SET modified_at = modified_at WHERE id = %s', [world_tx.subject_a.pk])
            assert cur.rowcount == 1
            cur.execute('DELETE FROM "django_session"')
            conn.rollback()
    assert Subject.history.filter(history_id=first).get().history_change_reason == "initial entry"
    assert Subject.history.filter(history_id=appended).exists()
    # re-running is harmless (triggers replaced, grants re-applied)
    call_command("harden_history_tables", role=app_role, verbosity=0)


@needs_postgres
def test_the_command_refuses_unsafe_roles(app_role):
    with pytest.raises(CommandError, match="No database role"):
        call_command("harden_history_tables", role=app_role + "_missing", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        owner = cursor.fetchone()[0]
    with pytest.raises(CommandError, match="superuser|owns"):
        call_command("harden_history_tables", role=owner, verbosity=0)
    # a grant to PUBLIC would let the app role change history: the command's check catches it
    table = Subject.history.model._meta.db_table
    with transaction.atomic():
        _execute_as_owner(f'GRANT UPDATE ON "{table}" TO PUBLIC')
        with pytest.raises(CommandError, match="can still change history"):
            call_command("harden_history_tables", role=app_role, verbosity=0)
        transaction.set_rollback(True)
