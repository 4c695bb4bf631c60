"""``SubjectRecord.subject_trial``: the subject's trial copied onto every subject record, so a
trial's rows are one index range (``(subject_trial, id)``) instead of a join walking the whole
primary key. Every creation path stores it and stores it right; the audit history does not record
it (a derived, immutable column); the migration fills existing rows; on PostgreSQL a trial's first
API page is read from the index."""
import re
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test.utils import CaptureQueriesContext

from tests.factories import CohortFactory, SiteFactory, TrialFactory, UserFactory, make_infusion, make_subject
from tests.reporting.test_export_streaming import insert_days
from toxicity import imports, services
from toxicity.api.views import AssessmentFilter, AssessmentViewSet
from toxicity.models import (
    EpisodeReview,
    AdverseEvent,
    AnticytokineDose,
    CorticosteroidDose,
    DailyAssessment,
    HemofiltrationSession,
    IcuStay,
    PlasmaExchange,
    SubjectRecord,
    TocilizumabDose,
)
from toxicity.synthetic import generate
from trials import services as trial_services
from trials.audit import field_changes, tracked_fields
from trials.bulk import bulk_insert, bulk_insert_with_history
from trials.models import Subject
from trials.roles import ALL_ROLES

RECORDS = (DailyAssessment, TocilizumabDose, CorticosteroidDose, AnticytokineDose, PlasmaExchange,
           HemofiltrationSession, IcuStay, AdverseEvent, EpisodeReview)
LOG_RECORDS = RECORDS[1:-2]  # the rescue-therapy logs the synthetic generator writes
NORMAL = dict(temperature_max_c=Decimal("36.8"), ice_score=10, consciousness="alert")


def copied_right(model) -> int:
    """How many rows the model has; fails unless each holds its subject's trial."""
    rows = list(model.objects.values_list("pk", "subject_trial_id", "subject__trial_id"))
    assert [r for r in rows if r[1] != r[2]] == []
    return len(rows)


def subject_elsewhere(number: str):
    """An infused subject of a new trial, so that a wrong copy (a constant, the first trial) would show."""
    trial = TrialFactory()
    site, cohort = SiteFactory(trial=trial, site_number=number), CohortFactory(trial=trial)
    user = UserFactory(username=f"coordinator_{number}")
    trial_services.membership_grant(user=user, role="coordinator", trial=trial, site=site)
    subject = make_subject(user, site, cohort)
    make_infusion(user, subject)
    subject.refresh_from_db()
    return subject, user


@pytest.fixture
def second_trial(world):
    return subject_elsewhere("201")


def test_every_subject_record_has_the_column_and_its_index():
    assert set(RECORDS) == {m for m in DailyAssessment._meta.apps.get_models() if issubclass(m, SubjectRecord)}
    for model in RECORDS:
        assert model.scope_trial == "subject_trial" and model.history_scope_trial == "subject__trial"
        assert any(list(i.fields) == ["subject_trial", "id"] for i in model._meta.indexes), model


# --- every creation path stores the subject's trial ------------------------------------------------


def test_service_creates_store_the_subjects_trial(world, second_trial):
    day0 = world.subject_a.day0
    elsewhere, coordinator = second_trial
    for subject, user in ((world.subject_a, world.users["coordinator_a"]), (elsewhere, coordinator)):
        services.assessment_create(user=user, subject=subject, assessment_date=subject.day0 + timedelta(days=1), **NORMAL)
        services.log_create(IcuStay, user=user, subject=subject, admitted_at=world.infusion_a.infused_at + timedelta(days=2),
                            reason="crs")
    services.log_create(AdverseEvent, user=world.users["coordinator_a"], subject=world.subject_a, ctcae_term="Fever",
                        grade=1, onset_date=day0 + timedelta(days=1), serious=False, seriousness=[],
                        relatedness="possible", outcome="recovering")
    assert copied_right(DailyAssessment) == 2 and copied_right(IcuStay) == 2 and copied_right(AdverseEvent) == 1
    assert {a.subject_trial_id for a in DailyAssessment.objects.all()} == {world.trial.pk, elsewhere.trial_id}


def test_a_plain_save_fills_it_and_never_changes_it(world):
    row = AdverseEvent(subject=world.subject_a, ctcae_term="Fever", grade=1, onset_date=world.subject_a.day0,
                       relatedness="possible", outcome="recovering")
    row.save()
    assert AdverseEvent.objects.get(pk=row.pk).subject_trial_id == world.trial.pk
    # the services never change a record's subject (toxicity.services pops it from the changes)
    services.log_update(row, user=world.users["coordinator_a"], version=row.version, reason="typo",
                        changes={"ctcae_term": "Fever", "grade": 2, "subject": world.subject_b})
    row.refresh_from_db()
    assert (row.subject_id, row.subject_trial_id, row.grade) == (world.subject_a.pk, world.trial.pk, 2)


def test_bulk_insert_fills_it_from_the_subjects_in_one_query(world, second_trial):
    """Rows given subject ids (no subject in memory) cost one query for all their trials."""
    day0, (elsewhere, _) = world.subject_a.day0, second_trial
    rows = [DailyAssessment(subject_id=s.pk, assessment_date=day0 + timedelta(days=n), **NORMAL)
            for s in (world.subject_a, world.subject_b, elsewhere) for n in range(3)]
    with CaptureQueriesContext(connection) as queries:
        DailyAssessment.before_bulk_insert(rows)
    assert len(queries) == 1
    bulk_insert_with_history(DailyAssessment, rows, user=world.users["data_manager"], reason="bulk load")
    assert copied_right(DailyAssessment) == 9
    with CaptureQueriesContext(connection) as queries:  # subjects in memory: no query at all
        IcuStay.before_bulk_insert([IcuStay(subject=elsewhere, admitted_at=world.infusion_a.infused_at, reason="crs")])
    assert len(queries) == 0
    bulk_insert(IcuStay, [IcuStay(subject=elsewhere, admitted_at=world.infusion_a.infused_at, reason="crs")],
                history_reason="bulk load")
    assert copied_right(IcuStay) == 1
    history = DailyAssessment.history.filter(id__in=[r.pk for r in rows])
    assert history.count() == 9 and set(history.values_list("history_change_reason", flat=True)) == {"bulk load"}


def test_synthetic_generation_stores_it(db):
    out = generate("SYN-ST", subjects=6, days=25, seed=3, today=date(2026, 6, 1))
    assert copied_right(DailyAssessment) == out.assessments > 0
    assert sum(copied_right(m) for m in LOG_RECORDS) == out.interventions > 0


def test_csv_import_stores_it(world):
    header = ["subject_id", "assessment_date", "temperature_max_c", "ice_score", "consciousness"]
    lines = [",".join(header)] + [
        f"{s.subject_id},{(s.day0 + timedelta(days=n)).isoformat()},36.8,10,alert"
        for s in (world.subject_a,) for n in (1, 2, 3, 4)
    ]
    report = imports.import_csv(user=world.users["coordinator_a"], trial=world.trial, dataset="assessments",
                                stream_or_text="\n".join(lines) + "\n", dry_run=False)
    assert report.created == 4, report.errors
    assert copied_right(DailyAssessment) == 4


# --- not in the audit history ------------------------------------------------------------------------


def test_the_history_tables_have_no_such_column(db):
    with connection.cursor() as cursor:
        for model in RECORDS:
            history = model.history.model
            columns = {c.name for c in connection.introspection.get_table_description(cursor, history._meta.db_table)}
            assert "subject_trial_id" not in columns and "subject_id" in columns, model
            assert "subject_trial" not in {f.name for f in tracked_fields(model)}
            assert "subject_trial" not in {f.name for f in history._meta.fields}


def test_the_audit_trail_of_a_new_record_does_not_mention_it(world):
    a = services.assessment_create(user=world.users["coordinator_a"], subject=world.subject_a,
                                   assessment_date=world.subject_a.day0 + timedelta(days=1), **NORMAL)
    changes = field_changes(a.history.get())
    assert "subject_id" in changes and not any(name.startswith("subject_trial") for name in changes)
    response = world.client("data_manager").get("/api/v1/audit/", {"trial": world.trial.pk, "page_size": 1000})
    assert response.status_code == 200, response.content
    [entry] = [e for e in response.json()["results"]
               if e["record_type"] == "toxicity.dailyassessment" and e["record_id"] == a.pk]
    fields = {c["field"] for c in entry["changes"]}
    assert "subject" in fields and "subject_trial" not in fields
    # simple-history's own view of an old version still has it (read from the row, which never changes it)
    assert a.history.get().instance.subject_trial_id == world.trial.pk
    assert world.subject_a.history.first().instance.pk == world.subject_a.pk  # other models: no such field


def test_no_query_can_be_raised_on_it(world):
    """A manual query names an audited field; the index key is not one."""
    from django.core.exceptions import ValidationError

    from toxicity import queries

    a = services.assessment_create(user=world.users["coordinator_a"], subject=world.subject_a,
                                   assessment_date=world.subject_a.day0 + timedelta(days=1), **NORMAL)
    with pytest.raises(ValidationError) as refused:
        queries.query_raise(user=world.users["monitor_a"], record_type="toxicity.dailyassessment", record_id=a.pk,
                            field="subject_trial", text="?")
    assert "field" in refused.value.message_dict
    assert queries.query_raise(user=world.users["monitor_a"], record_type="toxicity.dailyassessment", record_id=a.pk,
                               field="temperature_max_c", text="Please check.").field == "temperature_max_c"


def test_the_exports_have_no_such_column(world):
    response = world.client("data_manager").get("/api/v1/exports/assessments.csv", {"trial": world.trial.pk})
    assert response.status_code == 200
    header = b"".join(response.streaming_content).split(b"\n", 1)[0].decode()
    assert "subject_trial" not in header.split(",") and "subject" in header.split(",")


# --- the migration fills existing rows ----------------------------------------------------------------


def test_the_migration_fills_every_existing_row_from_its_subject(world_tx):
    """Back to 0003 (no column), rows written as they were then, forward again: each row holds its trial."""
    stranger, _ = subject_elsewhere("301")
    subjects = (world_tx.subject_a, world_tx.subject_b, stranger)
    executor = MigrationExecutor(connection)
    target = [("toxicity", "0003_adverse_event")]
    try:
        executor.migrate(target)
        old = executor.loader.project_state(target).apps
        for n, s in enumerate(subjects):
            old.get_model("toxicity", "DailyAssessment").objects.create(
                subject_id=s.pk, assessment_date=date(2026, 1, 1) + timedelta(days=n))
            old.get_model("toxicity", "IcuStay").objects.create(
                subject_id=s.pk, admitted_at=world_tx.infusion_a.infused_at, reason="crs")
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
    assert copied_right(DailyAssessment) == 3 and copied_right(IcuStay) == 3
    assert set(DailyAssessment.objects.values_list("subject_trial_id", flat=True)) == {world_tx.trial.pk, stranger.trial_id}


# --- the index serves a trial's first page ------------------------------------------------------------


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the PostgreSQL planner and its EXPLAIN")
def test_a_trials_first_api_page_reads_only_the_trials_rows_from_the_index(world):
    """Another trial holds 40,000 earlier rows. Through the join, PostgreSQL walked the primary key
    past all of them (or sorted them all); now the page reads the trial's range of the index only."""
    other = TrialFactory()
    site, cohort = SiteFactory(trial=other, site_number="401"), CohortFactory(trial=other)
    template = world.subject_a
    crowd = [Subject(trial=other, subject_id=f"401-{n:05d}", site=site, cohort=cohort, enrolled_on=template.enrolled_on,
                     sex="male", date_of_birth=date(1960, 1, 1), diagnosis="dlbcl",
                     baseline_weight_kg=template.baseline_weight_kg, status="infused", day0=template.day0, age_years=66)
               for n in range(400)]
    bulk_insert(Subject, crowd)
    insert_days([s.pk for s in crowd], template.day0, 100)
    insert_days([world.subject_a.pk, world.subject_b.pk], template.day0, 20)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {DailyAssessment._meta.db_table}, {Subject._meta.db_table}")
    for who, visible in (("data_manager", 40), ("coordinator_a", 20)):
        view = AssessmentViewSet()
        qs = view.selector(user=world.users[who], roles=ALL_ROLES).filter(voided=False)
        qs = AssessmentFilter({"trial": world.trial.pk}, queryset=qs).qs.order_by("pk")[:101]
        plan = qs.explain(analyze=True)
        scans = [line for line in plan.splitlines() if f" on {DailyAssessment._meta.db_table} " in line]
        if who == "data_manager":  # a trial role: the trial's index range (a site role may go through its subjects)
            assert scans and all("assessment_trial_id_idx" in line for line in scans), (who, plan)
        read = sum(int(rows) * int(loops) for line in scans
                   for rows, loops in re.findall(r"actual time=\S+ rows=(\d+) loops=(\d+)", line))
        assert 0 < read <= 40, (who, plan)  # the trial's rows, not the other trial's 40,000
        assert len(list(qs)) == visible
