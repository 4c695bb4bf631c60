"""R-ICANS-6 (data-dictionary.md, consciousness): ``alert`` is new. Before it existed, sites
recorded a normal, fully awake patient as ``awakens_spontaneously``, which now means drowsy but
waking on its own (ICANS grade 1 by that domain). Every such stored value meant normal: it
becomes ``alert``, a system change in the audit trail (who: the system; old, new, reason). The
grades do not change (both read as grade 0 before); the next write or check run re-derives them
with the new engine (``manage.py rederive_courses`` does it at once)."""
from django.db import migrations

from toxicity.migrations._history_rows import history_row, now

# (the history's reason column holds 100 characters)
REASON = "system: consciousness 'awakens_spontaneously' meant normal before 'alert' existed (R-ICANS-6)"
assert len(REASON) <= 100
CHUNK = 2000


def forwards(apps, schema_editor):
    Assessment = apps.get_model("toxicity", "DailyAssessment")
    History = apps.get_model("toxicity", "HistoricalDailyAssessment")
    at = now()
    while True:
        rows = list(Assessment.objects.filter(consciousness="awakens_spontaneously").order_by("pk")[:CHUNK])
        if not rows:
            return
        for row in rows:
            row.consciousness = "alert"
            row.version += 1
            row.modified_at = at
        Assessment.objects.bulk_update(rows, ["consciousness", "version", "modified_at"])
        History.objects.bulk_create([history_row(History, row, reason=REASON, at=at) for row in rows])


class Migration(migrations.Migration):

    dependencies = [("toxicity", "0006_course")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop, elidable=False)]
