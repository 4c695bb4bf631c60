"""manage.py harden_history_tables [--role APP_ROLE]   (PostgreSQL only)

Makes django-simple-history's tables append-only (issue 8, "No lost data"), in two layers:

1. A row trigger on every history table, ``BEFORE UPDATE OR DELETE ... EXECUTE FUNCTION
   refuse_history_change()``, which raises whoever the caller is (the table owner too). The
   migration ``reporting.0003_history_append_only`` installs it; this command (re)installs it, so
   run it after a migration that adds a history table (a test fails until every one has it).
   TRUNCATE and DROP are not row operations and stay possible for the owner: test-database
   flushes and ``pg_restore --clean`` (manage.py restore) rely on them. A superuser may still
   bypass triggers with ``SET session_replication_role = replica`` -- the documented PostgreSQL
   maintenance escape, not available to the application role.
2. With ``--role``: the application's database role gets SELECT, INSERT, UPDATE, DELETE on the
   ordinary tables, USAGE and SELECT on the sequences, and only SELECT and INSERT on the history
   tables (UPDATE, DELETE, TRUNCATE, REFERENCES and TRIGGER revoked). The role must not own the
   tables or be a superuser (either ignores privileges). The result is checked with
   ``has_table_privilege``; re-run the command after every ``migrate``, since new tables start
   with no grants.
"""
from django.apps import apps
from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, connections, transaction

TRIGGER = "history_append_only"
FUNCTION = "refuse_history_change"
HISTORY_COLUMNS = {"history_id", "history_date", "history_type"}  # what simple-history adds to every history model

FUNCTION_SQL = f"""
CREATE OR REPLACE FUNCTION {FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'history rows are append-only: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'Audit history is never changed or deleted; write a new version of the record instead.';
END
$$
"""


def is_history_model(model) -> bool:
    """True for simple-history's historical models, in the live registry or in a migration's state."""
    return HISTORY_COLUMNS <= {f.name for f in model._meta.get_fields()}


def history_tables(models=None) -> list[str]:
    """Every history table (default: of the installed models)."""
    models = apps.get_models() if models is None else models
    return sorted({m._meta.db_table for m in models if is_history_model(m) and not m._meta.proxy})


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def install_triggers(execute, tables) -> None:
    """(Re)create the refusing function and one row trigger per history table (idempotent).

    ``execute(sql, None)``: a cursor's or a schema editor's; no parameters, so the ``%`` of the
    plpgsql message is not read as a placeholder.
    """
    execute(FUNCTION_SQL, None)
    for table in tables:
        execute(f"CREATE OR REPLACE TRIGGER {TRIGGER} BEFORE UPDATE OR DELETE ON {quote(table)} "
                f"FOR EACH ROW EXECUTE FUNCTION {FUNCTION}()", None)


def drop_triggers(execute, tables) -> None:
    for table in tables:
        execute(f"DROP TRIGGER IF EXISTS {TRIGGER} ON {quote(table)}", None)
    execute(f"DROP FUNCTION IF EXISTS {FUNCTION}()", None)


class Command(BaseCommand):
    help = ("Make the simple-history tables append-only: refusing triggers for everyone, and with --role, "
            "grants that let the application role only SELECT and INSERT history rows (PostgreSQL).")

    def add_arguments(self, parser):
        parser.add_argument("--role", help="the application's database role (login) to grant privileges to")
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS)

    def handle(self, role=None, database=DEFAULT_DB_ALIAS, **options):
        connection = connections[database]
        if connection.vendor != "postgresql":
            raise CommandError(
                f"harden_history_tables needs PostgreSQL; the {database!r} database is {connection.vendor}. "
                "(The embedded SQLite database has no roles: its file permissions are the only control.)"
            )
        history = history_tables()
        with transaction.atomic(using=database), connection.cursor() as cursor:
            existing = set(connection.introspection.table_names(cursor))
            missing = [t for t in history if t not in existing]
            if missing:
                raise CommandError(f"History tables not in the database (run migrate first): {', '.join(missing)}")
            install_triggers(cursor.execute, history)
            self.stdout.write(f"Refusing UPDATE/DELETE trigger installed on {len(history)} history tables.")
            if role:
                self._grant(cursor, role, sorted(existing), history)

    def _grant(self, cursor, role: str, tables: list[str], history: list[str]) -> None:
        cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s", [role])
        found = cursor.fetchone()
        if found is None:
            raise CommandError(f"No database role {role!r}: create it first (CREATE ROLE ... LOGIN PASSWORD ...).")
        if found[0]:
            raise CommandError(f"{role!r} is a superuser, which ignores privileges: use an ordinary role for the application.")
        cursor.execute("SELECT current_schema()")
        schema = cursor.fetchone()[0]
        cursor.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s AND tablename = ANY(%s) "
            "AND pg_has_role(%s, tableowner, 'USAGE')", [schema, tables, role],
        )
        owned = [row[0] for row in cursor.fetchall()]
        if owned:
            raise CommandError(f"{role!r} owns (or is a member of the owner of) {len(owned)} tables, e.g. {owned[0]}: "
                               "an owner can re-grant itself anything. Let another role own the schema.")
        r, ordinary = quote(role), [t for t in tables if t not in set(history)]
        cursor.execute(f"GRANT USAGE ON SCHEMA {quote(schema)} TO {r}")
        if ordinary:
            cursor.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {', '.join(map(quote, ordinary))} TO {r}")
        names = ", ".join(map(quote, history))
        cursor.execute(f"REVOKE ALL ON {names} FROM {r}")
        cursor.execute(f"GRANT SELECT, INSERT ON {names} TO {r}")
        cursor.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {quote(schema)} TO {r}")
        # Privileges can also arrive through PUBLIC or another role the app role belongs to: check the outcome.
        cursor.execute(
            "SELECT t FROM unnest(%s::text[]) AS t WHERE has_table_privilege(%s, quote_ident(t), 'UPDATE') "
            "OR has_table_privilege(%s, quote_ident(t), 'DELETE') OR has_table_privilege(%s, quote_ident(t), 'TRUNCATE') "
            "OR NOT has_table_privilege(%s, quote_ident(t), 'INSERT')",
            [history, role, role, role, role],
        )
        leaks = [row[0] for row in cursor.fetchall()]
        if leaks:
            raise CommandError(f"{role!r} can still change history in {', '.join(leaks)} (a grant to PUBLIC or to a role "
                               "it belongs to?): revoke that grant and run the command again.")
        self.stdout.write(
            f"{role}: SELECT/INSERT/UPDATE/DELETE on {len(ordinary)} tables; SELECT/INSERT only on "
            f"{len(history)} history tables (checked: no UPDATE, DELETE or TRUNCATE)."
        )
