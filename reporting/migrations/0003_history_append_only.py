"""History rows are append-only (issue 8): a trigger on every simple-history table refuses UPDATE
and DELETE, for every role, the owner included. PostgreSQL only (SQLite has no roles or
plpgsql). The tables are found at migrate time from the migration state, over all apps: this
migration runs after the latest trials and toxicity migrations. A later migration that adds a
history table must install the trigger too (``manage.py harden_history_tables`` does it, and
tests/trials/test_append_only_history.py fails until every history table has it)."""
from django.db import migrations

from trials.management.commands.harden_history_tables import drop_triggers, history_tables, install_triggers


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        install_triggers(schema_editor.execute, history_tables(apps.get_models()))


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        drop_triggers(schema_editor.execute, history_tables(apps.get_models()))


class Migration(migrations.Migration):

    dependencies = [
        ("reporting", "0002_report_run"),
        ("trials", "0003_workflow_modified_at"),
        ("toxicity", "0003_adverse_event"),
    ]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
