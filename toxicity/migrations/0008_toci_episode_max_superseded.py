"""checks.md: TOCI-COURSE-MAX (a 5th or later tocilizumab dose of the whole course) replaces
TOCI-EPISODE-MAX, whose open queries close as superseded: status closed, a history row with the
system reason, and a message in the thread saying why. TOCI-COURSE-MAX opens its own queries at
the next save or check run."""
from django.db import migrations

from toxicity.migrations._history_rows import history_row, now

REASON = "auto-closed: superseded by TOCI-COURSE-MAX (checks.md)"
TEXT = ("Closed automatically: TOCI-EPISODE-MAX is superseded by TOCI-COURSE-MAX, which counts every "
        "tocilizumab dose of the course, across episodes.")


def forwards(apps, schema_editor):
    Query = apps.get_model("toxicity", "Query")
    History = apps.get_model("toxicity", "HistoricalQuery")
    Message = apps.get_model("toxicity", "QueryMessage")
    at = now()
    rows = list(Query.objects.filter(rule_id="TOCI-EPISODE-MAX", origin="rule", status__in=["open", "answered"]))
    for q in rows:
        q.status, q.closed_at, q.modified_at = "closed", at, at
    Query.objects.bulk_update(rows, ["status", "closed_at", "modified_at"])
    History.objects.bulk_create([history_row(History, q, reason=REASON, at=at) for q in rows])
    Message.objects.bulk_create([Message(query=q, role="system", action="auto_close", text=TEXT, created_at=at)
                                 for q in rows])


class Migration(migrations.Migration):

    dependencies = [("toxicity", "0007_consciousness_alert")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop, elidable=False)]
