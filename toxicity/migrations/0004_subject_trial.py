"""``subject_trial`` on every subject record: the subject's trial, copied for indexed scoping.

Per table: the column is added nullable and without its foreign key, filled from the subjects in
one UPDATE (portable SQL: PostgreSQL and SQLite), then made NOT NULL with its foreign key, then
indexed on ``(subject_trial, id)``. Adding the foreign key after the UPDATE keeps PostgreSQL from
queuing one deferred check per row, which would also refuse the ALTER TABLE that follows in the
same transaction ("pending trigger events"); the constraint is validated once, by one scan.

The history tables are not touched: the column is not in the audit trail (trials.audit.NOT_TRACKED),
and they are append-only on PostgreSQL.
"""
import django.db.models.deletion
from django.db import migrations, models

HELP_TEXT = (
    "The subject's trial, copied at creation for indexed scoping "
    "(a subject never changes trial; a record never changes subject)"
)
# model -> index name (toxicity.models)
INDEXES = {
    "dailyassessment": "assessment_trial_id_idx",
    "tocilizumabdose": "toci_trial_id_idx",
    "corticosteroiddose": "steroid_trial_id_idx",
    "anticytokinedose": "anticytokine_trial_id_idx",
    "plasmaexchange": "tpe_trial_id_idx",
    "hemofiltrationsession": "crrt_trial_id_idx",
    "icustay": "icu_trial_id_idx",
    "adverseevent": "ae_trial_id_idx",
}


def subject_trial(**kwargs):
    return models.ForeignKey(
        editable=False, db_index=False, help_text=HELP_TEXT, on_delete=django.db.models.deletion.PROTECT,
        related_name="+", to="trials.trial", **kwargs,
    )


def backfill_sql(model: str) -> str:
    table = f"toxicity_{model}"
    return (
        f"UPDATE {table} SET subject_trial_id = "
        f"(SELECT trial_id FROM trials_subject WHERE trials_subject.id = {table}.subject_id) "
        f"WHERE subject_trial_id IS NULL"
    )


def operations(model: str, index: str) -> list:
    return [
        migrations.AddField(model, "subject_trial", subject_trial(null=True, db_constraint=False)),
        migrations.RunSQL(backfill_sql(model), reverse_sql=migrations.RunSQL.noop, elidable=False),
        migrations.AlterField(model, "subject_trial", subject_trial()),
        migrations.AddIndex(model, models.Index(fields=["subject_trial", "id"], name=index)),
    ]


class Migration(migrations.Migration):

    dependencies = [
        ("toxicity", "0003_adverse_event"),
        ("trials", "0004_death_reentry_after_void"),
    ]

    operations = [op for model, index in INDEXES.items() for op in operations(model, index)]
