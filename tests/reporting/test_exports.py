"""Streaming CSV exports: scoping, de-identification, per-subject date shift, access log, and on
PostgreSQL the COPY path byte-for-byte equal to the portable Python path."""
import csv
import io
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db import connection

from reporting.datasets import datasets
from reporting.deid import IDENTIFIED, Disclosure, shifts_for
from reporting.exports import export_csv
from reporting.models import AccessLogEntry
from toxicity.models import Episode
from toxicity import services

NORMAL = dict(temperature_max_c=Decimal("36.8"), ice_score=10, consciousness="alert")
SPONSOR_VIEW = Disclosure(identifiers=False, free_text=False, shift_dates=False)


def assess(world, subject, user, n, **fields):
    return services.assessment_create(
        user=world.users[user], subject=subject, assessment_date=subject.day0 + timedelta(days=n), **{**NORMAL, **fields}
    )


@pytest.fixture
def course(world):
    """Subject A: CRS from day 1 (fever), grade 3 on day 2 (norepinephrine), resolved on day 3."""
    assess(world, world.subject_a, "coordinator_a", 0)
    assess(world, world.subject_a, "coordinator_a", 1, temperature_max_c=Decimal("39.1"))
    assess(world, world.subject_a, "coordinator_a", 2, temperature_max_c=Decimal("38.6"), hypotension=True,
           vasopressors=["norepinephrine"])
    assess(world, world.subject_a, "coordinator_a", 3)
    assess(world, world.subject_b, "coordinator_b", 1, temperature_max_c=Decimal("38.2"))
    return world


def get_csv(world, user, dataset, **params):
    response = world.client(user).get(f"/api/v1/exports/{dataset}.csv", params)
    assert response.status_code == 200, getattr(response, "data", response)
    assert response.streaming
    body = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(body)))


def test_assessment_export_has_data_dictionary_columns_and_derived_grades(course):
    rows = get_csv(course, "data_manager", "assessments", trial=course.trial.pk)
    assert len(rows) == 5
    by_day = {(r["subject_id"], r["study_day"]): r for r in rows}
    day2 = by_day[(course.subject_a.subject_id, "2")]
    assert day2["crs_grade_derived"] == "3"  # fever with hypotension needing one vasopressor
    assert day2["vasopressors"] == "norepinephrine"
    assert day2["hypotension"] == "true" and day2["hypoxia"] == "false"
    assert day2["temperature_max_c"] == "38.60"
    assert day2["modified_at"].endswith("Z") and "T" in day2["modified_at"]
    assert by_day[(course.subject_a.subject_id, "0")]["vasopressors"] == ""


def test_site_roles_see_only_their_site(course):
    rows = get_csv(course, "coordinator_b", "assessments")
    assert {r["subject_id"] for r in rows} == {course.subject_b.subject_id}


@pytest.mark.parametrize("user", ["outsider", "nobody", "dsmb"])
def test_export_outside_scope_is_404(course, user):
    response = course.client(user).get("/api/v1/exports/assessments.csv", {"trial": course.trial.pk})
    assert response.status_code == 404


def test_bad_parameters_are_400_naming_the_field(course):
    client = course.client("sponsor")
    response = client.get("/api/v1/exports/assessments.csv", {"trial": course.trial.pk, "modified_since": "yesterday"})
    assert response.status_code == 400 and "modified_since" in response.content.decode()
    assert client.get("/api/v1/exports/assessments.csv", {"trial": "x"}).status_code == 400
    assert client.get("/api/v1/exports/nonsense.csv", {"trial": course.trial.pk}).status_code == 404


def test_birth_date_only_for_site_roles_and_free_text_never_for_sponsor(course):
    coordinator = get_csv(course, "coordinator_a", "subjects")
    assert coordinator[0]["date_of_birth"] == "1970-06-01"
    manager = get_csv(course, "data_manager", "subjects")
    assert "date_of_birth" not in manager[0] and "void_reason" in manager[0]
    sponsor = get_csv(course, "sponsor", "subjects")
    assert "date_of_birth" not in sponsor[0] and "void_reason" not in sponsor[0]
    assert sponsor[0]["age_years"].isdigit()


def test_date_shift_moves_every_date_of_a_subject_by_the_same_offset(course):
    trial = course.trial
    trial.export_date_shift = True
    trial.save()
    real = {r["id"]: r for r in get_csv(course, "data_manager", "assessments")}
    shifted = {r["id"]: r for r in get_csv(course, "sponsor", "assessments")}
    offsets = shifts_for(trial.pk)
    assert set(offsets) == {course.subject_a.pk, course.subject_b.pk}
    assert all(v != 0 for v in offsets.values())
    for pk, row in shifted.items():
        days = offsets[int(row["subject"])]
        original = real[pk]
        assert row["assessment_date"] == (
            date.fromisoformat(original["assessment_date"]) + timedelta(days=days)
        ).isoformat()
        assert row["study_day"] == original["study_day"]  # intervals are preserved
    subject_rows = {r["subject_id"]: r for r in get_csv(course, "sponsor", "subjects")}
    a = subject_rows[course.subject_a.subject_id]
    assert a["day0"] == (course.subject_a.day0 + timedelta(days=offsets[course.subject_a.pk])).isoformat()
    # the same offset in a second pull and in the JSON API
    again = {r["id"]: r for r in get_csv(course, "sponsor", "assessments")}
    assert again == shifted
    api = course.client("sponsor").get("/api/v1/assessments/", {"subject": course.subject_a.pk}).data["results"]
    assert {str(r["id"]): r["assessment_date"] for r in api} == {
        pk: r["assessment_date"] for pk, r in shifted.items() if r["subject"] == str(course.subject_a.pk)
    }


def test_episodes_export_equals_derived_episodes(course):
    rows = get_csv(course, "sponsor", "episodes")
    stored = Episode.objects.filter(subject__trial=course.trial, voided=False)
    assert len(rows) == stored.count() >= 2
    crs_a = next(r for r in rows if r["subject_id"] == course.subject_a.subject_id and r["kind"] == "crs")
    assert crs_a["onset_date"] == (course.subject_a.day0 + timedelta(days=1)).isoformat()
    assert crs_a["resolution_date"] == (course.subject_a.day0 + timedelta(days=3)).isoformat()
    assert crs_a["duration_days"] == "2" and crs_a["ongoing"] == "false"
    assert crs_a["term"] == "Cytokine release syndrome"


def test_modified_since_gives_only_rows_changed_since(course):
    rows = get_csv(course, "data_manager", "assessments")
    latest = max(r["modified_at"] for r in rows)
    later = get_csv(course, "data_manager", "assessments", modified_since=latest)
    assert 1 <= len(later) < len(rows)
    assert all(r["modified_at"] >= latest for r in later)


def test_every_export_is_in_the_access_log_with_its_row_count(course):
    rows = get_csv(course, "sponsor", "assessments", trial=course.trial.pk)
    entry = AccessLogEntry.objects.get(resource="assessments")
    assert entry.user == course.users["sponsor"] and entry.row_count == len(rows) == 5 and entry.completed
    assert entry.trial == course.trial
    assert AccessLogEntry.objects.count() == 1  # the middleware does not log the streamed export twice


def test_sponsor_api_reads_are_logged_with_row_counts(course):
    course.client("sponsor").get("/api/v1/assessments/", {"page_size": 2})
    entry = AccessLogEntry.objects.get(resource="assessments")
    assert entry.row_count == 2 and entry.method == "GET" and entry.status_code == 200
    course.client("coordinator_a").get("/api/v1/assessments/")
    assert AccessLogEntry.objects.count() == 1  # site reads are not sponsor reads


@pytest.mark.parametrize("name", sorted(datasets()))
def test_every_dataset_exports_for_every_view(course, name):
    for user in ("coordinator_a", "data_manager", "sponsor"):
        rows = get_csv(course, user, name)
        assert isinstance(rows, list)


def _records(text: str) -> tuple[list[str], list[str]]:
    """Header and the raw CSV records (quoted line breaks kept inside their record), sorted."""
    records, current, quoted = [], "", False
    for line in text.splitlines(keepends=True):
        current += line
        quoted ^= line.count('"') % 2 == 1
        if not quoted:
            records.append(current)
            current = ""
    return records[0], sorted(records[1:])


@pytest.mark.skipif(connection.vendor != "postgresql", reason="COPY is the PostgreSQL path")
def test_copy_path_gives_the_same_bytes_as_the_python_path(course):
    """Every dataset, every view, with text that needs quoting, unicode and a voided row."""
    tricky = 'typo, "quoted"\r\nsecond line; ünïcode ≥ 38 °C'
    a = assess(course, course.subject_a, "coordinator_a", 4)
    services.assessment_void(assessment=a, user=course.users["coordinator_a"], version=a.version, reason=tricky)
    user = course.users["data_manager"]
    for name, dataset in sorted(datasets().items()):
        for view in (IDENTIFIED, SPONSOR_VIEW, Disclosure(False, False, True)):
            copy = export_csv(dataset, user=user, trial=course.trial, disclosure=view, use_copy=True)
            python = export_csv(dataset, user=user, trial=course.trial, disclosure=view, use_copy=False)
            copy_text, python_text = b"".join(copy.chunks).decode(), b"".join(python.chunks).decode()
            assert _records(copy_text) == _records(python_text), (name, view)  # COPY sends storage order
            assert copy.rows == python.rows, (name, view)
    rows = list(csv.DictReader(io.StringIO(b"".join(export_csv(
        datasets()["assessments"], user=user, trial=course.trial, disclosure=IDENTIFIED).chunks).decode())))
    assert [r["void_reason"] for r in rows if r["voided"] == "true"] == [tricky]


def test_sponsor_json_queries_withhold_text_typed_by_people(world):
    from toxicity import queries
    from toxicity.models import DailyAssessment

    a = assess(world, world.subject_a, "coordinator_a", 1)
    query = queries.query_raise(user=world.users["monitor_a"], record_type="toxicity.dailyassessment",
                                record_id=a.pk, field="temperature_max_c",
                                text="Mrs Example said she felt feverish at home")
    queries.query_message(user=world.users["coordinator_a"], query=query, text="Called Mrs Example; source fixed")
    manager = world.client("data_manager").get(f"/api/v1/queries/{query.pk}/").data
    assert manager["text"].startswith("Mrs Example") and manager["messages"][-1]["text"].startswith("Called")
    sponsor = world.client("sponsor").get(f"/api/v1/queries/{query.pk}/").data
    assert sponsor["text"] == "[withheld]"
    assert {m["text"] for m in sponsor["messages"]} == {"[withheld]"}
    thread = world.client("sponsor").get(f"/api/v1/queries/{query.pk}/messages/").data
    assert "Mrs Example" not in str(thread) and "Mrs Example" not in str(
        world.client("sponsor").get("/api/v1/queries/").data)
    rows = get_csv(world, "sponsor", "query-messages")
    assert rows and all(r["text"] == "[withheld]" for r in rows if r["role"] != "system")
    assert DailyAssessment.objects.filter(pk=a.pk).exists()
