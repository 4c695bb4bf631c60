"""The Episode model moved to toxicity (its table with it: toxicity 0005/0006); state only."""
from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("reporting", "0003_history_append_only"),
        ("toxicity", "0005_episode_from_reporting"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(database_operations=[], state_operations=[migrations.DeleteModel(name="Episode")]),
    ]
