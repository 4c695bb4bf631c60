"""Report runs (AE report, open and closed DSMB report) as Celery jobs with status and progress,
their API and pages: who may request and see which kind (everyone else 404), data-cut rules, the
flow to a downloadable PDF that states the protocol and the data hash, recorded failures,
idempotent re-delivery, reproducibility at a cut, the AE report page (HTML, CSV, PDF) and the
registry summary CSV. On a real Celery worker and Redis when CELERY_BROKER_URL is set (CI)."""
import csv
import io
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone
from pypdf import PdfReader

import reporting.tasks  # noqa: F401  (registers the task with the app for the in-process worker)
from config.celery import app
from tests.toxicity.test_check_runs import BROKER, wait_for, worker  # the same real worker
from reporting import report_runs
from reporting.ae_report import summary_csv_rows
from reporting.dsmb import build_dsmb_report
from reporting.models import ReportRun
from reporting.registry import HEADER
from reporting.snapshot import load_snapshot
from toxicity import services

KINDS = ("ae_report", "dsmb_open", "dsmb_closed")
NORMAL = dict(temperature_max_c=Decimal("36.8"), ice_score=10, consciousness="alert")
SHOCK = dict(temperature_max_c=Decimal("39.2"), hypotension=True, vasopressors=["norepinephrine"])


@pytest.fixture
def in_process_tasks():
    """Run queued tasks in this process, also on the broker pass: a worker cannot see the rows of a
    test that runs inside one uncommitted transaction (the ``db`` fixture)."""
    saved = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager = app.conf.task_eager_propagates = True
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = saved


def assess(world, n, subject=None, user="coordinator_a", **fields):
    subject = subject or world.subject_a
    return services.assessment_create(user=world.users[user], subject=subject,
                                      assessment_date=subject.day0 + timedelta(days=n), **{**NORMAL, **fields})


def add_grade3(world):
    """Subject A: CRS grade 1 on day 1, grade 3 on day 2 (norepinephrine), resolved on day 4."""
    assess(world, 0)
    assess(world, 1, temperature_max_c=Decimal("38.4"))
    day2 = assess(world, 2, **SHOCK)
    assess(world, 3, temperature_max_c=Decimal("38.1"))
    assess(world, 4)
    assess(world, 0, subject=world.subject_b, user="coordinator_b")
    return day2


@pytest.fixture
def grade3(world):
    return world, add_grade3(world)


def pdf_text(data: bytes) -> str:
    return "".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def compact(text: str) -> str:
    return re.sub(r"\s+", "", text)


def post_run(world, user, kind, **body):
    return world.client(user).post("/api/v1/report-runs/", {"trial": world.trial.pk, "kind": kind, **body},
                                   format="json")


# --- who may request and see what -----------------------------------------------------------

ALLOWED = {
    "data_manager": {"ae_report", "dsmb_open"},
    "sponsor": {"ae_report", "dsmb_open"},
    "dsmb": set(KINDS),
    "coordinator_a": set(), "investigator_a": set(), "monitor_a": set(), "outsider": set(), "nobody": set(),
}


@pytest.mark.parametrize("user", sorted(ALLOWED))
def test_who_may_request_which_report(world, user):
    for kind in KINDS:
        response = post_run(world, user, kind)
        if kind in ALLOWED[user]:
            assert response.status_code == 201, (user, kind, response.content)
            body = response.json()
            assert (body["kind"], body["status"], body["trial"]) == (kind, "queued", world.trial.pk)
            assert body["download_url"] is None and body["progress"] == {"done": 0, "total": 0}
        else:
            assert response.status_code == 404, (user, kind, response.content)  # never 403
    assert ReportRun.objects.filter(requested_by=world.users[user]).count() == len(ALLOWED[user])


def test_a_user_sees_runs_of_the_kinds_they_may_request(world):
    runs = {kind: ReportRun.objects.create(trial=world.trial, kind=kind, data_cut=timezone.now()) for kind in KINDS}
    for user, kinds in ALLOWED.items():
        listed = world.client(user).get("/api/v1/report-runs/").json()["results"]
        assert {r["kind"] for r in listed} == kinds, user
        for kind, run in runs.items():
            detail = world.client(user).get(f"/api/v1/report-runs/{run.pk}/").status_code
            download = world.client(user).get(f"/api/v1/report-runs/{run.pk}/download/").status_code
            assert (detail, download) == ((200, 409) if kind in kinds else (404, 404)), (user, kind)
    filtered = world.client("dsmb").get("/api/v1/report-runs/", {"kind": "dsmb_closed"}).json()["results"]
    assert [r["id"] for r in filtered] == [runs["dsmb_closed"].pk]


@pytest.mark.parametrize("cut, message", [
    (lambda trial: (timezone.now() + timedelta(hours=1)).isoformat(), "future"),
    (lambda trial: (trial.created_at - timedelta(days=1)).isoformat(), "before the trial"),
    (lambda trial: "yesterday", "format"),
])
def test_data_cut_rules(world, cut, message):
    response = post_run(world, "data_manager", "dsmb_open", data_cut=cut(world.trial))
    assert response.status_code == 400
    errors = response.json()
    assert list(errors) == ["data_cut"]
    assert not ReportRun.objects.exists()
    if message != "format":
        assert message in errors["data_cut"][0]
        # outside the caller's scope the trial does not exist: 404 before the cut is looked at
        assert post_run(world, "monitor_a", "dsmb_open", data_cut=cut(world.trial)).status_code == 404


def test_bad_bodies_are_400_naming_the_field(world):
    assert list(post_run(world, "dsmb", "weekly").json()) == ["kind"]
    response = world.client("dsmb").post("/api/v1/report-runs/", {"kind": "dsmb_open"}, format="json")
    assert response.status_code == 400 and list(response.json()) == ["trial"]
    assert post_run(world, "dsmb", "dsmb_open", trial=10**9).status_code == 404


# --- the job ----------------------------------------------------------------------------------


def test_api_flow_to_a_pdf_that_states_protocol_and_data_hash(grade3, django_capture_on_commit_callbacks, monkeypatch,
                                                              in_process_tasks):
    world, _ = grade3
    seen = []
    update = report_runs._update
    monkeypatch.setattr(report_runs, "_update", lambda pk, **f: (seen.append(f), update(pk, **f)))
    cut = timezone.now()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = post_run(world, "dsmb", "dsmb_closed", data_cut=cut.isoformat())
    assert response.status_code == 201 and len(callbacks) == 1
    run_id = response.json()["id"]
    run = world.client("dsmb").get(f"/api/v1/report-runs/{run_id}/").json()
    assert run["status"] == "done", run["error"]
    assert run["progress"]["done"] == run["progress"]["total"] > 2
    assert run["data_cut"].startswith(cut.astimezone(timezone.get_fixed_timezone(0)).strftime("%Y-%m-%dT%H:%M:%S"))
    assert run["data_hash"] == load_snapshot(world.trial, cut).digest() and re.fullmatch(r"[0-9a-f]{64}", run["data_hash"])
    assert run["requested_by"] == "dsmb" and run["started_at"] and run["finished_at"]
    assert run["download_url"].endswith(f"/api/v1/report-runs/{run_id}/download/")
    # progress was written to the row as the job went, and only moved forward
    done = [f["progress_done"] for f in seen if "progress_done" in f]
    assert done == sorted(done) and len(done) >= 4 and any("step" in f for f in seen)

    download = world.client("dsmb").get(f"/api/v1/report-runs/{run_id}/download/")
    assert download.status_code == 200 and download["Content-Type"] == "application/pdf"
    assert download["Content-Disposition"].startswith("attachment;") and ".pdf" in download["Content-Disposition"]
    assert download.content.startswith(b"%PDF") and len(download.content) == run["size_bytes"]
    text = compact(pdf_text(download.content))
    assert world.trial.protocol_code in text and run["data_hash"] in text
    assert world.cohort.name in text  # the closed report breaks down by cohort


def test_a_run_not_done_cannot_be_downloaded(world):
    run = ReportRun.objects.create(trial=world.trial, kind="dsmb_open", data_cut=timezone.now())
    response = world.client("sponsor").get(f"/api/v1/report-runs/{run.pk}/download/")
    assert response.status_code == 409 and "queued" in response.json()["detail"]


def test_a_failed_build_records_the_error(grade3, monkeypatch):
    world, _ = grade3
    from reporting import pdf

    def broken(report, progress=None, **kwargs):
        progress(1, 7, "Title page")
        raise RuntimeError("figure backend exploded")

    monkeypatch.setattr(pdf, "render_dsmb_pdf", broken)
    run = report_runs.request_report(world.users["sponsor"], world.trial, "dsmb_open")
    report_runs.build_report(run.pk)
    run.refresh_from_db()
    assert (run.status, run.error) == ("failed", "RuntimeError: figure backend exploded")
    assert run.finished_at and run.file is None and run.data_hash == ""
    body = world.client("sponsor").get(f"/api/v1/report-runs/{run.pk}/").json()
    assert body["status"] == "failed" and "exploded" in body["error"] and body["download_url"] is None
    assert world.client("sponsor").get(f"/api/v1/report-runs/{run.pk}/download/").status_code == 409


def test_a_redelivered_task_for_a_finished_run_does_nothing(grade3):
    world, _ = grade3
    run = report_runs.request_report(world.users["data_manager"], world.trial, "ae_report")
    reporting.tasks.report_run_build.apply(args=[run.pk])
    run.refresh_from_db()
    assert run.status == "done", run.error
    first = (bytes(run.file), run.finished_at, run.data_hash)
    reporting.tasks.report_run_build.apply(args=[run.pk])  # acks_late re-delivery
    run.refresh_from_db()
    assert (bytes(run.file), run.finished_at, run.data_hash) == first
    assert run.filename == f"{world.trial.protocol_code}_ae_report_{run.data_cut:%Y%m%dT%H%M%SZ}.pdf"
    assert world.trial.protocol_code in pdf_text(first[0])


def test_a_run_left_running_by_a_dead_worker_is_rebuilt(grade3):
    world, _ = grade3
    run = report_runs.request_report(world.users["dsmb"], world.trial, "dsmb_open")
    ReportRun.objects.filter(pk=run.pk).update(status="running", progress_done=3, progress_total=9)
    report_runs.build_report(run.pk)
    run.refresh_from_db()
    assert run.status == "done" and run.progress_done == run.progress_total and run.file


def test_same_cut_same_numbers_and_hash_later_cut_differs(grade3):
    world, day2 = grade3
    dsmb = world.users["dsmb"]
    cut = timezone.now()

    def build(at):
        run = report_runs.request_report(dsmb, world.trial, "dsmb_closed", at)
        report_runs.build_report(run.pk)
        run.refresh_from_db()
        assert run.status == "done", run.error
        return run

    first = build(cut)
    tables = summary_csv_rows(build_dsmb_report(load_snapshot(world.trial, cut), closed=True).ae)
    # after the cut: a correction with a reason, a new day, a new grade-3 day
    services.assessment_update(assessment=day2, user=world.users["coordinator_a"], version=day2.version,
                               reason="source updated", changes={"vasopressors": [], "hypotension": False})
    assess(world, 5, temperature_max_c=Decimal("38.9"))
    assess(world, 1, subject=world.subject_b, user="coordinator_b", **SHOCK)

    again = build(cut)
    assert again.data_hash == first.data_hash
    assert summary_csv_rows(build_dsmb_report(load_snapshot(world.trial, cut), closed=True).ae) == tables

    def without_generated(run):  # the build time (to the second) is the one thing that may differ
        generated = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00")
        return [line for line in pdf_text(bytes(run.file)).splitlines() if not generated.fullmatch(line.strip())]

    assert without_generated(again) == without_generated(first)  # every printed number is the same

    later = build(timezone.now())
    assert later.data_hash != first.data_hash
    assert summary_csv_rows(build_dsmb_report(load_snapshot(world.trial), closed=True).ae) != tables


def test_report_pdfs_shift_dates_when_the_trial_says_so(grade3):
    world, _ = grade3
    world.trial.export_date_shift = True
    world.trial.save()
    snapshot = load_snapshot(world.trial)
    report = build_dsmb_report(snapshot, closed=False)
    shifts = report_runs.report_shifts(world.trial)
    shifted = report_runs.shift_dsmb_report(report, snapshot, shifts)
    real, moved = report.ae.listing[0], shifted.ae.listing[0]
    days = shifts[world.subject_a.pk]
    assert moved.onset_date == (world.subject_a.day0 + timedelta(days=1 + days)).isoformat() != real.onset_date
    assert (moved.grade, moved.onset_study_day, moved.duration_days) == (real.grade, real.onset_study_day,
                                                                         real.duration_days)
    assert summary_csv_rows(shifted.ae) == summary_csv_rows(report.ae)
    # the AE page: shifted for sponsor and DSMB, real dates for the data manager
    page = f"/trials/{world.trial.pk}/ae-report/"
    for user, onset in (("sponsor", moved.onset_date), ("dsmb", moved.onset_date), ("data_manager", real.onset_date)):
        html = browser(world, user).get(page).content.decode()
        assert onset in html and ("dates shifted" in html) == (user != "data_manager"), user
    run = report_runs.request_report(world.users["sponsor"], world.trial, "ae_report")
    report_runs.build_report(run.pk)
    run.refresh_from_db()
    text = pdf_text(bytes(run.file))
    assert moved.onset_date in text and real.onset_date not in text


@pytest.mark.broker
@pytest.mark.skipif(not BROKER, reason="a worker needs a real broker; the embedded pass runs tasks in-process")
def test_dsmb_report_on_a_real_worker(world_tx):
    world = world_tx
    add_grade3(world)
    with worker():
        run = report_runs.request_report(world.users["dsmb"], world.trial, "dsmb_closed")  # on_commit fires at once
        wait_for(lambda: ReportRun.objects.get(pk=run.pk).status in ("done", "failed"), what="the report run")
    run.refresh_from_db()
    assert run.status == "done", run.error
    assert run.progress_done == run.progress_total > 2 and run.started_at and run.finished_at
    assert run.data_hash == load_snapshot(world.trial, run.data_cut).digest()
    text = compact(pdf_text(bytes(run.file)))
    assert run.data_hash in text
    # the expected tables: grade >= 3 CRS in 1 of 2 infused subjects with its exact interval, by
    # cohort (closed report) and overall; the stopping rule section with its boundary table
    assert text.count(compact("1/2 (50.0%; 95% CI 1.3-98.7)")) >= 2
    assert compact("3. Stopping rule status") in text and compact("Stopping boundary") in text
    assert world.subject_a.subject_id in text  # the grade >= 3 listing


# --- pages --------------------------------------------------------------------------------------


def browser(world, name):
    client = Client()
    client.force_login(world.users[name])
    return client


def test_ae_report_page_with_filters_csv_and_pdf(grade3):
    world, _ = grade3
    page = f"/trials/{world.trial.pk}/ae-report/"
    dm = browser(world, "data_manager")
    html = dm.get(page).content.decode()
    assert "CRS grade &gt;= 3" in html and world.subject_a.subject_id in html
    assert "Cytokine release syndrome" in html and "format=csv" in html and "format=pdf" in html

    only_b = dm.get(page, {"site": world.site_b.pk, "cohort": world.cohort.pk}).content.decode()
    assert "Site: 102" in only_b and world.subject_a.subject_id not in only_b and "No adverse events." in only_b

    future = dm.get(page, {"data_cut": (timezone.now() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")})
    assert future.status_code == 200 and "may not be in the future" in future.content.decode()

    response = dm.get(page, {"format": "csv"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["measure", f"{world.cohort.name} (N=2)", "Overall (N=2)"]
    table = {r[0]: r[1:] for r in rows if r}
    assert table["CRS grade >= 3"][-1] == "1/2 (50.0%; 95% CI 1.3-98.7)"
    assert table["subject_id"][0] == "site_number"  # the listing follows the summary
    assert table[world.subject_a.subject_id][2] == "Cytokine release syndrome"
    assert re.fullmatch(r"[0-9a-f]{64}", table["data_hash"][0])

    response = dm.get(page, {"format": "pdf", "site": world.site_a.pk})
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF") and world.trial.protocol_code in compact(pdf_text(response.content))


@pytest.mark.parametrize("user, status", [
    ("data_manager", 200), ("sponsor", 200), ("dsmb", 200),
    ("coordinator_a", 404), ("investigator_a", 404), ("monitor_a", 404), ("outsider", 404), ("nobody", 404),
])
def test_report_pages_by_role(world, user, status):
    client = browser(world, user)
    assert client.get(f"/trials/{world.trial.pk}/ae-report/").status_code == status
    assert client.get(f"/trials/{world.trial.pk}/reports/").status_code == status
    home = client.get("/").content.decode()
    assert (f"/trials/{world.trial.pk}/reports/" in home) == (status == 200)


def test_reports_page_requests_a_report_and_lists_it(world, django_capture_on_commit_callbacks, in_process_tasks):
    page = f"/trials/{world.trial.pk}/reports/"
    sponsor = browser(world, "sponsor")
    html = sponsor.get(page).content.decode()
    assert 'value="dsmb_open"' in html and 'value="ae_report"' in html and 'value="dsmb_closed"' not in html
    assert 'value="dsmb_closed"' in browser(world, "dsmb").get(page).content.decode()

    response = sponsor.post(page, {"kind": "dsmb_closed", "data_cut": ""})
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    future = (timezone.now() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    response = sponsor.post(page, {"kind": "dsmb_open", "data_cut": future})
    assert "may not be in the future" in response.content.decode() and not ReportRun.objects.exists()

    with django_capture_on_commit_callbacks(execute=True):
        response = sponsor.post(page, {"kind": "dsmb_open", "data_cut": ""})
    assert response.status_code == 302 and response["Location"] == page
    run = ReportRun.objects.get()
    assert (run.kind, run.status, run.requested_by) == ("dsmb_open", "done", world.users["sponsor"])
    html = sponsor.get(page).content.decode()
    assert f'data-run-id="{run.pk}"' in html and f"/api/v1/report-runs/{run.pk}/download/" in html
    assert "js/reports.js" in html


# --- registry summary -----------------------------------------------------------------------------


@pytest.mark.parametrize("user, status", [
    ("data_manager", 200), ("sponsor", 200), ("dsmb", 404), ("coordinator_a", 404), ("monitor_a", 404),
    ("outsider", 404),
])
def test_registry_summary_csv(grade3, user, status):
    world, _ = grade3
    response = world.client(user).get("/api/v1/registry/summary.csv", {"trial": world.trial.pk})
    assert response.status_code == status
    if status == 200:
        assert response["Content-Type"].startswith("text/csv")
        rows = list(csv.reader(io.StringIO(response.content.decode())))
        assert rows[0] == HEADER and {r[0] for r in rows[1:]} == {world.subject_a.subject_id, world.subject_b.subject_id}


def test_registry_summary_data_cut(grade3):
    world, _ = grade3
    client = world.client("data_manager")
    future = (timezone.now() + timedelta(days=1)).isoformat()
    response = client.get("/api/v1/registry/summary.csv", {"trial": world.trial.pk, "data_cut": future})
    assert response.status_code == 400 and "data_cut" in response.content.decode()
    before = (world.trial.created_at + timedelta(microseconds=1)).isoformat()
    response = client.get("/api/v1/registry/summary.csv", {"trial": world.trial.pk, "data_cut": before})
    assert response.status_code == 200 and response.content.decode().splitlines() == [",".join(HEADER)]
