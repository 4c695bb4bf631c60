"""The data migrations of the clinical-course issue, run back and forth on a real schema:

- 0007: ``awakens_spontaneously`` stored before ``alert`` existed meant a normal patient: it becomes
  ``alert``, audited as a system change (a history row with the system's reason, no user, the
  version up by one) - data-dictionary.md, consciousness; R-ICANS-6;
- 0008: open TOCI-EPISODE-MAX queries close as superseded by TOCI-COURSE-MAX (checks.md), with a
  history row and a message in the thread.
"""
from datetime import timedelta

from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from toxicity.models import DailyAssessment, Query


def _migrate_back_then_forward(target, setup):
    executor = MigrationExecutor(connection)
    try:
        executor.migrate([target])
        setup(executor.loader.project_state([target]).apps)
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())


def test_awakens_spontaneously_that_meant_normal_becomes_alert_audited(world_tx):
    subject = world_tx.subject_a
    created = {}

    def setup(old):
        Assessment = old.get_model("toxicity", "DailyAssessment")
        History = old.get_model("toxicity", "HistoricalDailyAssessment")
        for n, level in enumerate(("awakens_spontaneously", "awakens_to_voice")):
            row = Assessment.objects.create(subject_id=subject.pk, subject_trial_id=subject.trial_id,
                                            assessment_date=subject.day0 + timedelta(days=n + 1), ice_score=10,
                                            consciousness=level, temperature_max_c=36.8)
            History.objects.create(id=row.pk, subject_id=subject.pk, assessment_date=row.assessment_date,
                                   ice_score=10, consciousness=level, temperature_max_c=36.8, version=1,
                                   history_date=timezone.now(), history_type="+", history_change_reason="initial entry",
                                   created_at=row.created_at, modified_at=row.modified_at)
            created[level] = row.pk

    _migrate_back_then_forward(("toxicity", "0006_course"), setup)
    migrated = DailyAssessment.objects.get(pk=created["awakens_spontaneously"])
    assert (migrated.consciousness, migrated.version) == ("alert", 2)
    newest = migrated.history.first()
    assert newest.history_change_reason.startswith("system: consciousness 'awakens_spontaneously'")
    assert newest.history_user is None and newest.consciousness == "alert" and newest.version == 2
    assert migrated.history.count() == 2
    untouched = DailyAssessment.objects.get(pk=created["awakens_to_voice"])
    assert (untouched.consciousness, untouched.version, untouched.history.count()) == ("awakens_to_voice", 1, 1)


def test_open_toci_episode_max_queries_close_as_superseded(world_tx):
    subject = world_tx.subject_a
    created = {}

    def setup(old):
        OldQuery = old.get_model("toxicity", "Query")
        for status in ("open", "answered", "closed"):
            q = OldQuery.objects.create(
                trial_id=subject.trial_id, site_id=subject.site_id, subject_id=subject.pk,
                record_type="toxicity.tocilizumabdose", record_id=1000 + len(created), field="administered_at",
                origin="rule", rule_id="TOCI-EPISODE-MAX", status=status, text="TOCI-EPISODE-MAX: dose 5")
            created[status] = q.pk

    _migrate_back_then_forward(("toxicity", "0007_consciousness_alert"), setup)
    for status in ("open", "answered"):
        q = Query.objects.get(pk=created[status])
        assert q.status == "closed" and q.closed_at is not None
        assert q.history.first().history_change_reason == "auto-closed: superseded by TOCI-COURSE-MAX (checks.md)"
        (message,) = q.messages.all()
        assert message.action == "auto_close" and "superseded by TOCI-COURSE-MAX" in message.text
    closed = Query.objects.get(pk=created["closed"])
    assert closed.history.count() == 0 and not closed.messages.exists()  # already closed: untouched
