"""Bulk CSV import (toxicity/imports.py, POST /api/v1/imports/{dataset}/, manage.py import_csv):
each row through the API's serializer and service (derived grades, one audit row as the acting
user), every row's errors by spreadsheet row and field, all or nothing, scoped like the API."""
import csv
import io
import os
from datetime import datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.core.management import CommandError, call_command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from toxicity import imports
from toxicity.models import (
    AdverseEvent,
    AnticytokineDose,
    CorticosteroidDose,
    DailyAssessment,
    HemofiltrationSession,
    IcuStay,
    PlasmaExchange,
    TocilizumabDose,
)
from trials.workflow import LockScope
from trials.workflow_services import lock_create

HEADER = ["subject_id", "assessment_date", "temperature_max_c", "hypotension", "vasopressors", "hypoxia",
          "oxygen_device", "oxygen_flow_l_min", "ice_score", "consciousness"]


def day(world, n, subject=None):
    return ((subject or world.subject_a).day0 + timedelta(days=n)).isoformat()


def to_csv(header, rows) -> str:
    out = io.StringIO()
    writer = csv.writer(out)  # "\r\n" rows: a cell holding "\r" or "\n" is then quoted
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def normal_row(world, n, subject=None, **overrides):
    subject = subject or world.subject_a
    values = dict(subject_id=subject.subject_id, assessment_date=day(world, n, subject), temperature_max_c="36.8",
                  hypotension="", vasopressors="", hypoxia="", oxygen_device="", oxygen_flow_l_min="", ice_score="10",
                  consciousness="alert")
    values.update(overrides)
    return [values[h] for h in HEADER]


def run(world, text, dataset="assessments", user="coordinator_a", dry_run=False):
    return imports.import_csv(user=world.users[user], trial=world.trial, dataset=dataset, stream_or_text=text,
                              dry_run=dry_run)


def upload(world, text, dataset="assessments", user="coordinator_a", dry_run=None, as_body=False):
    client = world.client(user)
    query = f"?trial={world.trial.pk}" + ("" if dry_run is None else f"&dry_run={str(dry_run).lower()}")
    url = f"/api/v1/imports/{dataset}/{query}"
    if as_body:
        return client.post(url, data=text.encode(), content_type="text/csv")
    file = io.BytesIO(text.encode())
    file.name = "import.csv"
    return client.post(url, {"file": file}, format="multipart")


def errors(report):
    return {(e["row"], e["field"]) for e in report["errors"]} if isinstance(report, dict) else {
        (e["row"], e["field"]) for e in report.errors}


def three_days(world):
    return to_csv(HEADER, [
        normal_row(world, 1),
        normal_row(world, 2, temperature_max_c="39.5"),
        normal_row(world, 3, temperature_max_c="39.5", hypotension="yes", vasopressors="norepinephrine",
                   hypoxia="1", oxygen_device="nasal_cannula", oxygen_flow_l_min="2"),
    ])


# --- valid files ----------------------------------------------------------------------------------


@pytest.mark.parametrize("as_body", [False, True], ids=["multipart", "text-csv-body"])
def test_valid_file_commits_every_row_with_derived_grades_and_one_audit_row_each(world, as_body):
    response = upload(world, three_days(world), as_body=as_body)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body == {"dataset": "assessments", "dry_run": False, "committed": True, "rows": 3, "created": 3,
                    "errors": []}
    rows = list(DailyAssessment.objects.filter(subject=world.subject_a).order_by("assessment_date"))
    derived = [(r.study_day, r.crs_grade_derived, r.icans_grade_derived) for r in rows]
    assert derived == [(1, 0, 0), (2, 1, 0), (3, 3, 0)]
    assert rows[2].vasopressors == ["norepinephrine"] and rows[2].oxygen_flow_l_min == Decimal("2.0")
    for row in rows:
        history = list(row.history.all())
        assert len(history) == 1
        assert history[0].history_user == world.users["coordinator_a"]
        assert history[0].history_change_reason == "initial entry"


def test_dry_run_stores_nothing_and_reports_the_same_counts(world):
    response = upload(world, three_days(world), dry_run=True)
    assert response.status_code == 200
    assert response.json() == {"dataset": "assessments", "dry_run": True, "committed": False, "rows": 3,
                               "created": 3, "errors": []}
    assert not DailyAssessment.objects.exists()
    assert not DailyAssessment.history.exists()


def test_blank_rows_count_as_spreadsheet_rows_and_a_bom_and_spaces_are_tolerated(world):
    text = "\ufeff" + to_csv(HEADER, [normal_row(world, 1), [""] * len(HEADER), [],
                                      normal_row(world, 2, temperature_max_c=" 45.1 ")])
    report = run(world, text.encode())
    assert report.rows == 2 and errors(report) == {(5, "temperature_max_c")}


def test_columns_may_come_in_any_order_and_optional_ones_may_be_left_out(world):
    text = "ice_score,assessment_date,subject_id\n" + f"10,{day(world, 1)},{world.subject_a.subject_id}\n"
    report = run(world, text)
    assert report.committed and report.created == 1
    a = DailyAssessment.objects.get()
    assert a.temperature_max_c is None and a.crs_grade_derived is None  # not measured: NE (R-CRS-15)


# --- row errors -----------------------------------------------------------------------------------


def test_errors_in_rows_3_and_5_are_reported_exactly_and_nothing_is_stored(world):
    text = to_csv(HEADER, [
        normal_row(world, 1),
        normal_row(world, 2, temperature_max_c="45.1", vasopressors="norepinephrine"),  # row 3
        normal_row(world, 3),
        normal_row(world, 4, subject_id="101-9999", oxygen_device="helmet"),  # row 5
        normal_row(world, 5),
    ])
    response = upload(world, text)
    assert response.status_code == 400
    body = response.json()
    assert errors(body) == {(3, "temperature_max_c"), (3, "vasopressors"), (5, "subject_id"), (5, "oxygen_device")}
    assert (body["rows"], body["created"], body["committed"]) == (5, 3, False)
    assert body["file"] == ["2 rows have errors; nothing was stored."]
    assert "Unknown subject_id '101-9999'" in next(e["message"] for e in body["errors"] if e["field"] == "subject_id")
    assert not DailyAssessment.objects.exists() and not DailyAssessment.history.exists()
    dry = upload(world, text, dry_run=True)
    assert dry.status_code == 200 and errors(dry.json()) == errors(body)  # a dry run answers 200 with its findings


@pytest.mark.parametrize("temperature, ok", [("45.0", True), ("45.00", True), ("45.1", False), ("24.9", False)])
def test_temperature_hard_limit_boundary(world, temperature, ok):
    report = run(world, to_csv(HEADER, [normal_row(world, 1, temperature_max_c=temperature)]))
    assert report.committed is ok
    assert DailyAssessment.objects.count() == (1 if ok else 0)
    if not ok:
        assert errors(report) == {(2, "temperature_max_c")}


@pytest.mark.parametrize(
    "overrides, fields",
    [
        ({"hypotension": "maybe"}, {"hypotension"}),
        ({"vasopressors": "norepinephrine; adrenaline"}, {"vasopressors"}),
        ({"oxygen_device": "Nasal cannula"}, {"oxygen_device"}),
        ({"ice_score": "11"}, {"ice_score"}),
        ({"ice_score": "ten"}, {"ice_score"}),
        ({"assessment_date": "03/04/2025"}, {"assessment_date"}),
        ({"assessment_date": ""}, {"assessment_date"}),
        ({"subject_id": ""}, {"subject_id"}),
        ({"oxygen_device": "nasal_cannula", "hypoxia": "true", "oxygen_flow_l_min": "80.1"}, {"oxygen_flow_l_min"}),
        ({"oxygen_flow_l_min": "1.25"}, {"oxygen_flow_l_min"}),  # decimal(4,1), as the API
    ],
)
def test_bad_cells_name_their_field(world, overrides, fields):
    report = run(world, to_csv(HEADER, [normal_row(world, 1, **overrides)]))
    assert {f for _, f in errors(report)} == fields and not report.committed
    if "vasopressors" in overrides:
        assert "item 2:" in report.errors[0]["message"]


def test_booleans_accept_the_api_spellings(world):
    rows = [normal_row(world, n, hypotension=v, vasopressors="norepinephrine") for n, v in
            enumerate(["true", "1", "yes", "True"], start=1)]
    rows += [normal_row(world, n, hypotension=v) for n, v in enumerate(["false", "0", "no", ""], start=5)]
    report = run(world, to_csv(HEADER, rows))
    assert report.committed, report.errors
    flags = dict(DailyAssessment.objects.values_list("study_day", "hypotension"))
    assert flags == {1: True, 2: True, 3: True, 4: True, 5: False, 6: False, 7: False, 8: False}


def test_a_second_row_for_the_same_subject_and_date_is_a_duplicate(world):
    report = run(world, to_csv(HEADER, [normal_row(world, 1), normal_row(world, 2), normal_row(world, 1)]))
    assert errors(report) == {(4, "assessment_date")}
    assert "already exists" in report.errors[0]["message"]
    assert not DailyAssessment.objects.exists()


def test_an_existing_assessment_is_not_updated_by_an_import(world):
    assert run(world, to_csv(HEADER, [normal_row(world, 1)])).committed
    report = run(world, to_csv(HEADER, [normal_row(world, 1, temperature_max_c="39.0")]))
    assert errors(report) == {(2, "assessment_date")}
    assert DailyAssessment.objects.get().temperature_max_c == Decimal("36.80")


def test_future_date_and_rows_with_too_many_cells(world):
    today = datetime.now(ZoneInfo(world.site_a.timezone)).date()
    future = normal_row(world, 0, assessment_date=(today + timedelta(days=1)).isoformat())
    text = to_csv(HEADER, [future, normal_row(world, 1) + ["extra"]])
    report = run(world, text)
    assert errors(report) == {(2, "assessment_date"), (3, "non_field_errors")}
    assert "FUTURE-DATE" in report.errors[0]["message"]


# --- scope and roles ------------------------------------------------------------------------------


def test_a_subject_of_another_site_reads_as_unknown(world):
    other = normal_row(world, 1, subject=world.subject_b)
    report = run(world, to_csv(HEADER, [other]))
    ghost = run(world, to_csv(HEADER, [normal_row(world, 1, subject_id="102-9999")]))
    assert errors(report) == errors(ghost) == {(2, "subject_id")}
    message = report.errors[0]["message"].replace(world.subject_b.subject_id, "X")
    assert message == ghost.errors[0]["message"].replace("102-9999", "X")  # same words: existence not revealed
    assert not DailyAssessment.objects.exists()
    assert run(world, to_csv(HEADER, [other]), user="coordinator_b").committed  # its own site imports it


def test_a_subject_of_another_trial_reads_as_unknown(world):
    from tests.conftest import build_world

    elsewhere = build_world(prefix="x_")
    report = run(world, to_csv(HEADER, [normal_row(world, 1, subject=elsewhere.subject_a)]))
    assert errors(report) == {(2, "subject_id")}


@pytest.mark.parametrize("user", ["sponsor", "monitor_a", "data_manager", "dsmb", "outsider", "nobody"])
def test_roles_without_data_entry_get_404_and_nothing_is_stored(world, user):
    response = upload(world, three_days(world), user=user)
    assert response.status_code == 404
    assert not DailyAssessment.objects.exists()


def test_investigator_may_import(world):
    assert upload(world, three_days(world), user="investigator_a").status_code == 200


def test_unknown_dataset_is_404_and_missing_parameters_are_400(world):
    client = world.client("coordinator_a")
    assert upload(world, three_days(world), dataset="subjects").status_code == 404
    assert upload(world, three_days(world), dataset="queries").status_code == 404
    no_trial = client.post("/api/v1/imports/assessments/", {"file": io.BytesIO(b"x")}, format="multipart")
    assert no_trial.status_code == 400 and "trial" in no_trial.json()
    no_file = client.post(f"/api/v1/imports/assessments/?trial={world.trial.pk}", {}, format="multipart")
    assert no_file.status_code == 400 and "file" in no_file.json()
    bad_flag = client.post(f"/api/v1/imports/assessments/?trial={world.trial.pk}&dry_run=perhaps", {},
                           format="multipart")
    assert bad_flag.status_code == 400 and "dry_run" in bad_flag.json()
    unknown_trial = client.post("/api/v1/imports/assessments/?trial=999999", {"file": io.BytesIO(b"x")},
                                format="multipart")
    assert unknown_trial.status_code == 404


def test_trial_and_dry_run_may_be_form_fields(world):
    file = io.BytesIO(three_days(world).encode())
    file.name = "a.csv"
    response = world.client("coordinator_a").post(
        "/api/v1/imports/assessments/", {"file": file, "trial": world.trial.pk, "dry_run": "true"}, format="multipart")
    assert response.status_code == 200 and response.json()["dry_run"] is True
    assert not DailyAssessment.objects.exists()


def test_a_locked_casebook_refuses_the_row_on_subject(world):
    lock_create(user=world.users["data_manager"], scope=LockScope.CASEBOOK, trial=world.trial, subject=world.subject_a,
                reason="interim analysis")
    report = run(world, to_csv(HEADER, [normal_row(world, 1)]))
    assert errors(report) == {(2, "subject")} and "locked" in report.errors[0]["message"]


# --- the file as a whole --------------------------------------------------------------------------


def test_unknown_and_missing_columns_are_row_1_errors(world):
    report = run(world, to_csv([*HEADER, "temperature_max_f"], [normal_row(world, 1) + ["99"]]))
    assert errors(report) == {(1, "temperature_max_f")} and "Unknown column" in report.errors[0]["message"]
    assert report.rows == 1 and report.created == 0 and not DailyAssessment.objects.exists()
    missing = run(world, to_csv(["subject_id", "temperature_max_c"], [[world.subject_a.subject_id, "37"]]))
    assert errors(missing) == {(1, "assessment_date")}
    twice = run(world, to_csv([*HEADER, "ice_score"], [normal_row(world, 1) + ["10"]]))
    assert errors(twice) == {(1, "ice_score")}
    api = upload(world, to_csv([*HEADER, "shoe_size"], [normal_row(world, 1) + ["44"]]))
    assert api.status_code == 400 and errors(api.json()) == {(1, "shoe_size")}


def test_a_file_over_the_row_cap_is_refused_naming_file(world, settings):
    settings.IMPORT_MAX_ROWS = 2
    text = to_csv(HEADER, [normal_row(world, n) for n in (1, 2, 3)])
    response = upload(world, text)
    assert response.status_code == 400 and list(response.json()) == ["file"]
    assert "more than 2 data rows" in response.json()["file"][0]
    assert not DailyAssessment.objects.exists()
    assert upload(world, to_csv(HEADER, [normal_row(world, n) for n in (1, 2)])).status_code == 200


@pytest.mark.parametrize("content", [b"", b"\xff\xfe\x00s\x00u", "subject_id\n\"unterminated".encode(), b"a\x00b\n"])
def test_unreadable_files_are_a_400_naming_file(world, content):
    file = io.BytesIO(content)
    file.name = "x.csv"
    response = world.client("coordinator_a").post(f"/api/v1/imports/assessments/?trial={world.trial.pk}",
                                                  {"file": file}, format="multipart")
    assert response.status_code == 400 and "file" in response.json(), response.content


def test_only_a_header_imports_nothing(world):
    report = run(world, ",".join(HEADER) + "\n")
    assert (report.rows, report.created, report.committed, report.errors) == (0, 0, True, [])


# --- rescue-therapy logs --------------------------------------------------------------------------


def local(world, n, hour=9, minute=0):
    """A naive wall-clock time on day n at the subject's site, as a site would type it."""
    return datetime.combine(world.subject_a.day0 + timedelta(days=n), time(hour, minute)).isoformat(timespec="minutes")


LOGS = {
    "tocilizumab-doses": (TocilizumabDose, lambda w: {"administered_at": local(w, 1), "dose_mg": "560",
                                                      "weight_kg": "70", "indication": "crs"}),
    "corticosteroid-doses": (CorticosteroidDose, lambda w: {"drug": "dexamethasone", "administered_at": local(w, 2),
                                                            "dose_mg": "10", "route": "iv", "indication": "icans"}),
    "anticytokine-doses": (AnticytokineDose, lambda w: {"drug": "anakinra", "administered_at": local(w, 2),
                                                        "dose_mg": "100", "weight_kg": "70", "route": "iv",
                                                        "indication": "crs"}),
    "plasma-exchanges": (PlasmaExchange, lambda w: {"started_at": local(w, 2, 8), "ended_at": local(w, 2, 10),
                                                    "plasma_volume_exchanged_ml": "3000",
                                                    "replacement_fluid": "albumin_5", "hematocrit_fraction": "0.30",
                                                    "weight_kg": "70"}),
    "hemofiltration-sessions": (HemofiltrationSession, lambda w: {"modality": "cvvhdf", "started_at": local(w, 3, 8),
                                                                  "ended_at": "", "effluent_rate_ml_h": "1750",
                                                                  "weight_kg": "70"}),
    "icu-stays": (IcuStay, lambda w: {"admitted_at": local(w, 3), "discharged_at": local(w, 5, 14), "reason": "crs"}),
}


@pytest.mark.parametrize("dataset", sorted(LOGS))
def test_each_log_dataset_imports_one_row(world, dataset):
    model, values = LOGS[dataset]
    cells = values(world)
    assert ["subject_id", *cells] == imports.get_dataset(dataset).columns  # exactly the API's writable fields
    response = upload(world, to_csv(["subject_id", *cells], [[world.subject_a.subject_id, *cells.values()]]),
                      dataset=dataset)
    assert response.status_code == 200, response.content
    record = model.objects.get()
    assert record.history.get().history_user == world.users["coordinator_a"]
    first_time = next(k for k in cells if k.endswith("_at"))
    berlin = ZoneInfo(world.site_a.timezone)
    assert getattr(record, first_time) == datetime.fromisoformat(cells[first_time]).replace(tzinfo=berlin)


def test_adverse_events_import_with_a_list_of_seriousness_codes(world):
    columns = imports.get_dataset("adverse-events").columns
    good = {"subject_id": world.subject_a.subject_id, "ctcae_term": "Febrile neutropenia", "ctcae_version": "v5.0",
            "grade": "3", "onset_date": day(world, 5), "resolution_date": day(world, 8), "serious": "yes",
            "seriousness": "hospitalization; life_threatening", "relatedness": "probable", "outcome": "recovered"}
    bad = {**good, "ctcae_term": "Feeling unwell", "onset_date": day(world, 6)}
    text = to_csv(list(good), [list(good.values()), list(bad.values())])
    assert set(good) == set(columns)
    report = run(world, text, dataset="adverse-events")
    assert errors(report) == {(3, "ctcae_term")} and not AdverseEvent.objects.exists()
    assert run(world, to_csv(list(good), [list(good.values())]), dataset="adverse-events").committed
    event = AdverseEvent.objects.get()
    assert set(event.seriousness) == {"hospitalization", "life_threatening"} and event.history.count() == 1


def test_log_rows_are_checked_like_the_api_and_derived_values_stored(world):
    cells = LOGS["tocilizumab-doses"][1](world)
    text = to_csv(["subject_id", *cells], [
        [world.subject_a.subject_id, *cells.values()],
        [world.subject_a.subject_id, *{**cells, "administered_at": local(world, 1, 9, 30)}.values()],  # TOCI-DUPLICATE
        [world.subject_a.subject_id, *{**cells, "administered_at": local(world, 3), "dose_mg": "1600.01"}.values()],
        [world.subject_a.subject_id, *{**cells, "administered_at": local(world, 4), "weight_kg": ""}.values()],
    ])
    report = run(world, text, dataset="tocilizumab-doses")
    assert errors(report) == {(3, "administered_at"), (4, "dose_mg"), (5, "weight_kg")}
    assert "TOCI-DUPLICATE" in report.errors[0]["message"]
    tpe = LOGS["plasma-exchanges"][1](world)
    assert run(world, to_csv(["subject_id", *tpe], [[world.subject_a.subject_id, *tpe.values()]]),
               dataset="plasma-exchanges").committed
    assert PlasmaExchange.objects.get().estimated_plasma_volume_ml == 3185


def test_an_offset_is_honoured_and_an_ambiguous_or_missing_local_time_is_refused(world):
    cells = LOGS["icu-stays"][1](world)
    offset = {**cells, "admitted_at": local(world, 3) + "+00:00", "discharged_at": ""}
    assert run(world, to_csv(["subject_id", *cells], [[world.subject_a.subject_id, *offset.values()]]),
               dataset="icu-stays").committed
    admitted = IcuStay.objects.get().admitted_at
    assert admitted == datetime.fromisoformat(local(world, 3)).replace(tzinfo=ZoneInfo("UTC"))

    # Europe/Berlin: 02:30 on 2025-10-26 happens twice, 02:30 on 2025-03-30 never.
    rows = [[world.subject_a.subject_id, "2025-10-26T02:30", "", "crs"],
            [world.subject_a.subject_id, "2025-03-30T02:30", "", "crs"],
            [world.subject_a.subject_id, "2025-10-26T02:30+01:00", "", "crs"]]
    report = run(world, to_csv(["subject_id", "admitted_at", "discharged_at", "reason"], rows), dataset="icu-stays",
                 dry_run=True)
    assert errors(report) == {(2, "admitted_at"), (3, "admitted_at")}
    assert "happens twice" in report.errors[0]["message"]


# --- notifications --------------------------------------------------------------------------------


def test_grade_4_alert_is_sent_on_commit_only(world, django_capture_on_commit_callbacks, celery_eager):
    grade_4 = to_csv(HEADER, [normal_row(world, 2, temperature_max_c="39.4", hypotension="true",
                                         vasopressors="norepinephrine;epinephrine")])
    with django_capture_on_commit_callbacks(execute=True):
        dry = run(world, grade_4, dry_run=True)
    assert dry.created == 1 and not dry.committed
    assert mail.outbox == []
    with django_capture_on_commit_callbacks(execute=True):
        failed = run(world, grade_4 + ",".join(normal_row(world, 3, temperature_max_c="46")) + "\r\n")
    assert failed.errors and mail.outbox == []  # a rolled-back import tells no one
    with django_capture_on_commit_callbacks(execute=True):
        assert run(world, grade_4).committed
    alerts = [m for m in mail.outbox if "grade 4" in m.subject]
    assert alerts and alerts[0].to == ["data_manager@example.org"]


def test_real_transactions_send_the_alert_only_when_the_import_commits(world_tx, celery_eager):
    """Without the test's wrapping transaction: the import's own transaction is the outermost one."""
    world = world_tx
    mail.outbox.clear()
    grade_4 = to_csv(HEADER, [normal_row(world, 2, temperature_max_c="39.4", hypotension="true",
                                         vasopressors="norepinephrine;epinephrine")])
    assert run(world, grade_4, dry_run=True).created == 1
    assert run(world, grade_4 + ",".join(normal_row(world, 3, temperature_max_c="46")) + "\r\n").errors
    assert mail.outbox == [] and not DailyAssessment.objects.exists()
    assert run(world, grade_4).committed
    assert [m.to for m in mail.outbox if "grade 4" in m.subject] == [["data_manager@example.org"]]


# --- the command ----------------------------------------------------------------------------------


def test_command_imports_a_file_and_reports_success(world, tmp_path, capsys):
    path = tmp_path / "days.csv"
    path.write_text(three_days(world))
    call_command("import_csv", "assessments", str(path), "--trial", world.trial.protocol_code,
                 "--user", "coordinator_a", "--dry-run")
    assert "3 rows read, 3 passed; dry run" in capsys.readouterr().out
    assert not DailyAssessment.objects.exists()
    call_command("import_csv", "assessments", str(path), "--trial", world.trial.protocol_code,
                 "--user", "coordinator_a")
    assert "3 stored" in capsys.readouterr().out
    assert DailyAssessment.objects.count() == 3


def test_command_prints_one_line_per_error_and_fails(world, tmp_path, capsys):
    path = tmp_path / "bad.csv"
    path.write_text(to_csv(HEADER, [normal_row(world, 1), normal_row(world, 2, temperature_max_c="45.1")]))
    with pytest.raises(CommandError, match="1 row with errors; nothing was stored"):
        call_command("import_csv", "assessments", str(path), "--trial", world.trial.protocol_code,
                     "--user", "coordinator_a")
    out = capsys.readouterr().out
    assert out.startswith("row 3, temperature_max_c: ")
    assert not DailyAssessment.objects.exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--user", "monitor_a"], "no coordinator or investigator role"),
        (["--user", "ghost"], "No active user"),
        (["--user", "coordinator_a", "--trial", "NOPE"], "No trial"),
    ],
)
def test_command_refuses_unknown_users_trials_and_roles(world, tmp_path, args, message):
    path = tmp_path / "days.csv"
    path.write_text(three_days(world))
    argv = ["import_csv", "assessments", str(path), "--trial", world.trial.protocol_code, *args]
    with pytest.raises(CommandError, match=message):
        call_command(*argv)
    assert not DailyAssessment.objects.exists()


def test_command_reads_standard_input(world, monkeypatch, capsys):
    import sys

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(three_days(world).encode())))
    call_command("import_csv", "assessments", "-", "--trial", world.trial.protocol_code, "--user", "coordinator_a")
    assert DailyAssessment.objects.count() == 3


# --- the OpenAPI document -------------------------------------------------------------------------


def test_openapi_document_describes_the_import_without_warnings(db, tmp_path):
    path = tmp_path / "schema.yaml"
    call_command("spectacular", "--fail-on-warn", "--validate", "--file", str(path))
    schema = path.read_text()
    assert "/api/v1/imports/{dataset}/:" in schema and "multipart/form-data" in schema and "text/csv" in schema


# --- property: no input escapes as anything but a row error ---------------------------------------

PLAUSIBLE = st.sampled_from(["", "1", "0", "true", "no", "36.8", "45.1", "-1", "1e9", "NaN", "2020-01-01",
                             "2025-10-26T02:30", "9999-12-31T23:59:59+14:00", "norepinephrine;vasopressin",
                             "crs", "iv", "anakinra", "nasal_cannula", "101-0001", " ", "\"", ";;", "0.30"])
CELL = st.one_of(PLAUSIBLE, st.text(st.characters(blacklist_categories=["Cs"]), max_size=12))


@settings(max_examples=int(os.environ.get("IMPORT_PROPERTY_EXAMPLES", 50)), deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_random_cells_give_row_errors_never_exceptions(world, data):
    dataset = data.draw(st.sampled_from(sorted(imports.DATASETS)), label="dataset")
    ds = imports.get_dataset(dataset)
    columns = ds.columns
    rows = data.draw(st.lists(st.lists(CELL, min_size=len(columns), max_size=len(columns)), min_size=1, max_size=3))
    real = data.draw(st.booleans(), label="real subject_id")
    for row in rows:
        if real:
            row[0] = world.subject_a.subject_id
    dry_run = data.draw(st.booleans(), label="dry_run")
    model = ds.resource.model
    before = model.objects.count(), model.history.count()
    try:
        report = run(world, to_csv(columns, rows), dataset=dataset, dry_run=dry_run)
    except imports.ImportFileError:
        assert (model.objects.count(), model.history.count()) == before
        return
    assert all(isinstance(e["row"], int) and e["field"] and e["message"] for e in report.errors)
    assert {e["row"] for e in report.errors} <= set(range(2, 2 + len(rows)))
    if report.errors or dry_run:
        assert not report.committed and (model.objects.count(), model.history.count()) == before
    else:
        assert report.committed and model.objects.count() == before[0] + report.created
