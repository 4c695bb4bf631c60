"""The audit trail over the API (api.md ``audit/`` and ``exports/audit.csv``): who, when, what,
old and new values and the reason; scoped like every resource; de-identified for sponsor and
DSMB; cursor pages that walk every entry once with a constant number of queries; and the CSV
dataset giving the same entries as the JSON pages."""
import base64
import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from reporting.audit_export import (
    AUDIT_COLUMNS,
    WITHHELD,
    Cursor,
    audit_dataset,
    audit_rows,
    audited_tables,
)
from reporting.deid import disclosure, shifts_for
from reporting.exports import dataset_queryset, export_csv
from toxicity import services as tox_services
from toxicity.models import TocilizumabDose
from trials import services
from trials.models import Trial

URL = "/api/v1/audit/"


def walk(client, **params) -> list[dict]:
    """Every entry, following the ``next`` links."""
    response = client.get(URL, params)
    assert response.status_code == 200, response.content
    page = response.json()
    entries = list(page["results"])
    while page["next"]:
        response = client.get(page["next"])
        assert response.status_code == 200, response.content
        page = response.json()
        entries.extend(page["results"])
    return entries


def entries_of(world, who, **params) -> list[dict]:
    return walk(world.client(who), page_size=1000, **params)


def key(entry):
    return entry["record_type"], entry["history_id"]


def by_record(entries, record_type, record_id):
    return [e for e in entries if e["record_type"] == record_type and e["record_id"] == record_id]


def changes(entry) -> dict:
    return {c["field"]: (c["old"], c["new"]) for c in entry["changes"]}


def correct_weight(world, reason="transcription error"):
    subject = world.subject_a
    subject.refresh_from_db()
    return services.subject_update(
        subject=subject, user=world.users["coordinator_a"], version=subject.version, reason=reason,
        changes={"baseline_weight_kg": Decimal("72.50")},
    )


def set_date_shift(trial: Trial, on: bool = True):
    """A trial setting changed like any audited row: a model save that leaves a history row."""
    trial.refresh_from_db()
    trial.export_date_shift = on
    trial._change_reason = "sponsor asked for shifted dates"
    trial.save()


# --- what an entry says ---------------------------------------------------------------------------


def test_create_then_update_shows_who_old_new_and_reason(world):
    correct_weight(world)
    entries = by_record(entries_of(world, "data_manager", record_type="trials.subject"), "trials.subject", world.subject_a.pk)
    created, *_, corrected = entries
    assert created["action"] == "created" and created["user"] == "coordinator_a"
    assert created["reason"] == "initial entry" and created["subject"] == world.subject_a.pk
    assert changes(created)["sex"] == (None, "female")
    assert changes(created)["baseline_weight_kg"] == (None, "70.00")
    assert all(new not in (None, "") for _, new in changes(created).values())  # a create lists non-empty fields

    assert corrected["action"] == "changed" and corrected["user"] == "coordinator_a"
    assert corrected["reason"] == "transcription error"
    version = world.subject_a.history.latest().version
    assert changes(corrected) == {
        "baseline_weight_kg": ("70.00", "72.50"),
        "version": (str(version - 1), str(version)),  # non-editable columns are audited too
    }
    assert corrected["at"].endswith("Z") and corrected["history_id"] == world.subject_a.history.latest().history_id


def test_void_is_an_entry_with_the_reason_and_the_system_follow_up(world):
    services.infusion_void(infusion=world.infusion_a, user=world.users["coordinator_a"], version=1,
                           reason="entered for the wrong subject")
    entries = entries_of(world, "monitor_a")
    voided = by_record(entries, "trials.infusion", world.infusion_a.pk)[-1]
    assert voided["action"] == "voided" and voided["user"] == "coordinator_a"
    assert voided["reason"] == "entered in error: entered for the wrong subject"
    assert changes(voided)["voided"] == ("false", "true")
    assert changes(voided)["void_reason"] == (None, "entered for the wrong subject")
    follow_up = by_record(entries, "trials.subject", world.subject_a.pk)[-1]
    assert follow_up["reason"].startswith("system: ") and changes(follow_up)["day0"][1] is None


def test_toxicity_records_are_audited_too(world):
    dose = tox_services.log_create(
        TocilizumabDose, user=world.users["coordinator_a"], subject=world.subject_a,
        administered_at=datetime.now(UTC) - timedelta(days=2), dose_mg=Decimal("560"), weight_kg=Decimal("70"),
        indication="crs",
    )
    tox_services.log_update(dose, user=world.users["coordinator_a"], version=1, reason="source updated",
                            changes={"dose_mg": Decimal("550")})
    created, changed = by_record(entries_of(world, "coordinator_a", subject=world.subject_a.pk),
                                 "toxicity.tocilizumabdose", dose.pk)
    assert created["action"] == "created" and changed["reason"] == "source updated"
    assert changes(changed)["dose_mg"] == ("560.00", "550.00")


def test_audited_models_are_found_by_their_history_and_scope():
    labels = {t.label for t in audited_tables()}
    assert {"trials.trial", "trials.site", "trials.subject", "trials.infusion", "trials.death",
            "toxicity.dailyassessment", "toxicity.tocilizumabdose", "toxicity.icustay", "toxicity.query"} <= labels
    assert "trials.membership" not in labels  # history but no scope lookups
    assert "toxicity.querymessage" not in labels  # scope lookups but no history


# --- scope ----------------------------------------------------------------------------------------


def test_site_roles_see_only_their_sites(world):
    correct_weight(world)
    entries = entries_of(world, "coordinator_b")
    assert entries
    assert world.subject_a.pk not in {e["subject"] for e in entries}
    assert not by_record(entries, "trials.site", world.site_a.pk)
    assert by_record(entries, "trials.site", world.site_b.pk)
    assert by_record(entries, "trials.subject", world.subject_b.pk)
    assert by_record(entries, "trials.trial", world.trial.pk)  # the trial itself is everyone's
    assert entries_of(world, "coordinator_b", subject=world.subject_a.pk) == []
    assert len(by_record(entries_of(world, "monitor_a"), "trials.subject", world.subject_a.pk)) >= 2


def test_outside_the_trial_nothing_is_seen(world):
    assert world.client("outsider").get(URL, {"trial": world.trial.pk}).status_code == 404
    own = entries_of(world, "outsider")  # their only trial, by default
    assert own and {e["record_type"] for e in own} == {"trials.trial"}
    assert all(e["record_id"] != world.trial.pk for e in own if e["record_type"] == "trials.trial")
    response = world.client("nobody").get(URL)
    assert response.status_code == 200 and response.json()["results"] == []
    assert world.client("nobody").get(URL, {"trial": world.trial.pk}).status_code == 404


def test_trial_is_required_with_roles_in_several_trials(world):
    other = Trial.objects.exclude(pk=world.trial.pk).get()
    services.membership_grant(user=world.users["coordinator_a"], role="sponsor", trial=other)
    client = world.client("coordinator_a")
    response = client.get(URL)
    assert response.status_code == 400 and "trial" in response.json()
    assert client.get(URL, {"trial": world.trial.pk}).status_code == 200


def test_bad_parameters_are_400_naming_every_field(world):
    response = world.client("data_manager").get(URL, {
        "since": "yesterday", "page_size": "0", "record_type": "auth.user", "subject": "x", "cursor": "not-a-cursor",
    })
    assert response.status_code == 400
    assert set(response.json()) == {"since", "page_size", "record_type", "subject", "cursor"}


def test_filters_user_record_type_subject_and_since(world):
    before = datetime.now(UTC)
    correct_weight(world)
    dm = "data_manager"
    by_user = entries_of(world, dm, user="coordinator_b")
    assert by_user and {e["user"] for e in by_user} == {"coordinator_b"}
    assert {e["record_type"] for e in entries_of(world, dm, record_type="trials.infusion")} == {"trials.infusion"}
    assert {e["subject"] for e in entries_of(world, dm, subject=world.subject_b.pk)} == {world.subject_b.pk}
    recent = entries_of(world, dm, since=before.isoformat())
    assert [(e["record_type"], e["action"]) for e in recent] == [("trials.subject", "changed")]
    assert changes(recent[0])["baseline_weight_kg"] == ("70.00", "72.50")  # old value from before `since`


# --- de-identification ----------------------------------------------------------------------------


def test_sponsor_sees_no_birth_date_and_no_typed_reasons(world):
    correct_weight(world)
    services.infusion_void(infusion=world.infusion_b, user=world.users["coordinator_b"], version=1,
                           reason="patient Jane Doe, wrong chart")
    site_view = entries_of(world, "coordinator_a")
    assert any("date_of_birth" in changes(e) for e in site_view)
    for user in ("sponsor", "dsmb"):
        entries = entries_of(world, user)
        assert not any("date_of_birth" in changes(e) for e in entries)
        reasons = {e["reason"] for e in entries}
        assert "transcription error" not in reasons and WITHHELD in reasons
        assert "initial entry" in reasons and any(r.startswith("system: ") for r in reasons)
        voided = by_record(entries, "trials.infusion", world.infusion_b.pk)[-1]
        assert voided["action"] == "voided" and voided["reason"] == WITHHELD
        assert changes(voided)["void_reason"] == (None, None)  # free text withheld
        assert "Jane" not in str(entries)
    # a trial role is not a site role: no birth dates for the data manager either (deid.disclosure)
    assert not any("date_of_birth" in changes(e) for e in entries_of(world, "data_manager"))


def test_date_shift_moves_every_date_of_a_subject_by_its_offset(world):
    correct_weight(world)
    set_date_shift(world.trial)
    offsets = shifts_for(world.trial.pk)
    real = {key(e): e for e in entries_of(world, "data_manager")}
    shifted = {key(e): e for e in entries_of(world, "sponsor")}
    assert real.keys() == shifted.keys()

    def moved(text, days):
        if text is None:
            return None
        if "T" in text:
            return (datetime.fromisoformat(text) + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return (datetime.fromisoformat(text) + timedelta(days=days)).date().isoformat()

    seen_date = seen_datetime = False
    for k, entry in shifted.items():
        original = real[k]
        if entry["subject"] is None:  # set-up records are not shifted
            assert entry["at"] == original["at"] and entry["changes"] == original["changes"]
            continue
        days = offsets[entry["subject"]]
        assert datetime.fromisoformat(entry["at"]) == datetime.fromisoformat(original["at"]) + timedelta(days=days)
        for field in ("enrolled_on", "day0", "lymphodepletion_start_date", "infused_at"):
            if field in changes(original):
                old, new = changes(original)[field]
                assert changes(entry)[field] == (moved(old, days), moved(new, days)), field
                seen_date |= field != "infused_at"
                seen_datetime |= field == "infused_at"
        assert changes(entry).get("baseline_weight_kg") == changes(original).get("baseline_weight_kg")
    assert seen_date and seen_datetime
    # the trial's own change, with the data manager's free-text reason withheld
    setting = by_record(list(shifted.values()), "trials.trial", world.trial.pk)[-1]
    assert changes(setting)["export_date_shift"] == ("false", "true") and setting["reason"] == WITHHELD


# --- pages ----------------------------------------------------------------------------------------


@pytest.fixture
def busy(world):
    """A few more changes, so pages hold many entries with a previous row."""
    for n in range(3):
        subject = world.subject_b
        subject.refresh_from_db()
        services.subject_update(subject=subject, user=world.users["coordinator_b"], version=subject.version,
                                reason=f"correction {n}", changes={"baseline_weight_kg": Decimal(f"7{n}.5")})
    correct_weight(world)
    return world


def expected_order(world):
    everything = entries_of(world, "data_manager")
    return [key(e) for e in everything], everything


def test_pages_of_two_walk_every_entry_exactly_once_in_a_stable_order(busy):
    order, everything = expected_order(busy)
    assert len(order) == len(set(order)) > 10
    at = {key(e): datetime.fromisoformat(e["at"]) for e in everything}
    assert order == sorted(order, key=lambda k: (at[k], k[0], k[1]))
    walked = walk(busy.client("data_manager"), page_size=2)
    assert [key(e) for e in walked] == order
    assert walked == everything


def test_ties_in_time_are_broken_by_record_type_and_history_id(busy):
    same = datetime(2026, 1, 1, tzinfo=UTC)
    # History is append-only on PostgreSQL (a trigger refuses UPDATE); this test forges equal
    # times, so it switches triggers off for its own transaction (superuser-only, as in the suite).
    if connection.vendor == "postgresql":
        with connection.cursor() as c:
            c.execute("SET LOCAL session_replication_role = replica")
    for table in audited_tables():
        table.rows.update(history_date=same)
    if connection.vendor == "postgresql":
        with connection.cursor() as c:
            c.execute("SET LOCAL session_replication_role = DEFAULT")
    walked = walk(busy.client("data_manager"), page_size=2)
    order = [key(e) for e in walked]
    assert order == sorted(order) and len(order) == len(set(order))
    assert order == [key(e) for e in entries_of(busy, "data_manager")]


def test_previous_links_walk_back_over_the_same_entries(busy):
    order, _ = expected_order(busy)
    client = busy.client("data_manager")
    page = client.get(URL, {"page_size": 3}).json()
    assert page["previous"] is None
    while page["next"]:
        page = client.get(page["next"]).json()
    back = [key(e) for e in page["results"]]
    while page["previous"]:
        page = client.get(page["previous"]).json()
        back = [key(e) for e in page["results"]] + back
    assert back == order


def test_queries_per_page_do_not_grow_with_the_page_size(busy, django_assert_max_num_queries):
    client = busy.client("data_manager")
    # per history table: the page's rows, then their previous rows; plus roles, trial
    budget = 2 * len(audited_tables()) + 4
    counts = {}
    for size in (2, 50, 1000):
        with django_assert_max_num_queries(budget), CaptureQueriesContext(connection) as ctx:
            response = client.get(URL, {"page_size": size})
        assert response.status_code == 200
        counts[size] = len(ctx.captured_queries)
    second = client.get(URL, {"page_size": 3}).json()["next"]
    with django_assert_max_num_queries(budget):  # a cursor costs one more query, whatever the size
        assert client.get(second).status_code == 200
    assert len(response.json()["results"]) > 10
    assert counts[1000] == counts[50], counts


def test_a_cursor_holds_no_time_and_only_works_in_scope(busy):
    set_date_shift(busy.trial)
    page = busy.client("sponsor").get(URL, {"page_size": 2}).json()
    cursor = parse_qs(urlsplit(page["next"]).query)["cursor"][0]
    decoded = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    assert "20" not in decoded  # (direction, record type, history id): no real time of a shifted entry
    # a cursor naming a site-A entry means nothing to a site-B role
    site_a_entry = by_record(entries_of(busy, "coordinator_a"), "trials.subject", busy.subject_a.pk)[0]
    forged = Cursor(True, "trials.subject", site_a_entry["history_id"]).encode()
    response = busy.client("coordinator_b").get(URL, {"cursor": forged})
    assert response.status_code == 400 and "cursor" in response.json()
    assert busy.client("coordinator_a").get(URL, {"cursor": forged}).status_code == 200


def test_page_size_is_capped_at_1000(busy):
    page = busy.client("data_manager").get(URL, {"page_size": 5000})
    assert page.status_code == 200 and page.json()["next"] is None


# --- the CSV dataset ------------------------------------------------------------------------------


def flatten(entries: list[dict]) -> list[list]:
    rows = []
    for e in entries:
        at = datetime.fromisoformat(e["at"]) if e["at"] else None
        head = [e["history_id"], at, e["user"], e["action"], e["record_type"], e["record_id"], e["subject"]]
        for c in e["changes"] or [{"field": None, "old": None, "new": None}]:
            rows.append([*head, c["field"], c["old"], c["new"], e["reason"]])
    return rows


def by_entry(rows):
    """Both orders hold each entry's fields in the same order; compare entry by entry."""
    return sorted(rows, key=lambda r: (r[4], r[0]))


@pytest.mark.parametrize("user", ["data_manager", "coordinator_b", "monitor_a", "sponsor"])
def test_csv_rows_equal_the_json_entries_flattened(busy, user):
    set_date_shift(busy.trial)  # sponsor: shifted dates in both
    view = disclosure(busy.users[user], busy.trial)
    dataset = audit_dataset()
    columns = dataset.visible_columns(view)
    assert [c.name for c in columns] == [
        "history_id", "at", "user", "action", "record_type", "record_id", "subject", "field", "old", "new", "reason",
    ]
    qs = dataset_queryset(dataset, user=busy.users[user], trial=busy.trial, modified_since=None)
    from_export = list(dataset.rows(qs, columns, view, busy.trial, user=busy.users[user]))
    from_user = list(audit_rows(user=busy.users[user], trial=busy.trial, disclosure=view))
    expected = flatten(entries_of(busy, user))
    assert by_entry(from_export) == by_entry(from_user) == by_entry(expected)


def test_csv_since_gives_the_changes_since_with_their_old_values(busy):
    since = datetime.now(UTC)
    subject = busy.subject_a
    subject.refresh_from_db()
    services.subject_update(subject=subject, user=busy.users["coordinator_a"], version=subject.version,
                            reason="source updated", changes={"baseline_weight_kg": Decimal("73.00")})
    user, trial = busy.users["data_manager"], busy.trial
    view = disclosure(user, trial)
    dataset = audit_dataset()
    qs = dataset_queryset(dataset, user=user, trial=trial, modified_since=since)
    rows = list(dataset.rows(qs, list(AUDIT_COLUMNS), view, trial, user=user, since=since))
    assert [r[7:10] for r in rows if r[7] == "baseline_weight_kg"] == [["baseline_weight_kg", "72.50", "73.00"]]
    assert by_entry(rows) == by_entry(flatten(entries_of(busy, "data_manager", since=since.isoformat())))


def test_csv_export_streams_the_same_rows(busy):
    export = export_csv(audit_dataset(), user=busy.users["coordinator_b"], trial=busy.trial,
                        disclosure=disclosure(busy.users["coordinator_b"], busy.trial))
    body = b"".join(export.chunks).decode()
    rows = list(csv.reader(io.StringIO(body)))
    assert rows[0] == [c.name for c in AUDIT_COLUMNS]
    expected = flatten(entries_of(busy, "coordinator_b"))
    assert export.rows == len(expected) == len(rows) - 1
    weights = [r[8:10] for r in rows[1:] if r[4] == "trials.subject" and r[7] == "baseline_weight_kg"]
    assert ["70.00", "70.50"] in weights and all(r[6] != str(busy.subject_a.pk) for r in rows[1:])


@pytest.mark.parametrize("user", ["outsider", "nobody"])
def test_csv_rows_outside_the_trial_are_none(busy, user):
    dataset, view = audit_dataset(), disclosure(busy.users[user], busy.trial)
    qs = dataset_queryset(dataset, user=busy.users[user], trial=busy.trial, modified_since=None)
    assert list(dataset.rows(qs, list(AUDIT_COLUMNS), view, busy.trial, user=busy.users[user])) == []
    assert list(audit_rows(user=busy.users[user], trial=busy.trial, disclosure=view)) == []


def test_audit_is_an_export_dataset(busy):
    response = busy.client("data_manager").get("/api/v1/exports/audit.csv", {"trial": busy.trial.pk})
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(rows) == len(flatten(entries_of(busy, "data_manager")))
    assert {"created", "changed"} <= {r["action"] for r in rows}


# --- the OpenAPI document -------------------------------------------------------------------------


def test_openapi_document_describes_the_audit_without_warnings(db, tmp_path):
    path = tmp_path / "schema.yaml"
    call_command("spectacular", "--fail-on-warn", "--validate", "--file", str(path))
    schema = path.read_text()
    assert "/api/v1/audit/:" in schema and "AuditEntry:" in schema and "name: since" in schema
