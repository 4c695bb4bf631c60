"""In a real browser (Playwright driving Debian's headless Chromium) against a live server:
a coordinator enters a day and sees the derived grade before saving, saves, corrects it with a
reason, reads the history; a mismatched reported grade raises a query in the site inbox; a
monitor closes it with a justification. Screenshots go to test-artifacts/."""
import os
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest

from tests.conftest import build_world
from toxicity.models import DailyAssessment, Query

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PASSWORD = "correct-horse-battery"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium_executable() -> str:
    """Debian's chromium; installed on first use when missing (the test setup, as root)."""
    path = shutil.which("chromium")
    if path is None and hasattr(os, "geteuid") and os.geteuid() == 0:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=True, env=env)
        path = shutil.which("chromium")
    if path is None:
        pytest.fail("Chromium is required for the browser tests: apt-get install chromium")
    return path


@pytest.fixture(scope="module")
def browser():
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # Playwright's sync API keeps an event loop in this thread
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=chromium_executable(), args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


def login(page, base, username):
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{base}/")


@pytest.mark.parametrize("width, height", [(1280, 800)])
def test_coordinator_and_monitor_in_a_real_browser(transactional_db, live_server, browser, width, height):
    from playwright.sync_api import expect

    ARTIFACTS.mkdir(exist_ok=True)
    world = build_world(prefix="pw_")
    base, subject = live_server.url, world.subject_a
    day = subject.day0 + timedelta(days=1)
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()

    login(page, base, "pw_coordinator_a")
    page.goto(f"{base}/subjects/{subject.pk}/day/{day.isoformat()}/")
    page.get_by_label("ICE score (0-10)").fill("10")
    page.get_by_label("Level of consciousness").select_option("alert")
    page.get_by_label("Highest temperature of the day").fill("38.6")
    page.get_by_label("Hypoxia (supplemental O2 needed for a deficit)").check()
    page.get_by_label("Highest oxygen support of the day").select_option("nasal_cannula")
    flow = page.get_by_label("Oxygen flow (L/min)")
    expect(flow).to_be_visible()  # shown only for cannulas
    flow.fill("6.5")
    preview = page.locator("#grade-preview")
    expect(preview).to_contain_text("CRS grade 3")  # before saving: R-CRS-4, 6.5 L/min is high flow
    expect(preview).to_contain_text("R-CRS-4")
    page.screenshot(path=str(ARTIFACTS / "assessment-form.png"), full_page=True)
    page.get_by_role("button", name="Save day").click()
    expect(page.locator(".messages")).to_contain_text("CRS grade 3")
    saved = DailyAssessment.objects.get(subject=subject, assessment_date=day)
    assert saved.crs_grade_derived == 3 and str(saved.oxygen_flow_l_min) == "6.5"

    # correct it: 6.0 L/min is low flow (grade 2), with a reason for change
    page.get_by_label("Oxygen flow (L/min)").fill("6")
    expect(preview).to_contain_text("CRS grade 2")
    page.get_by_role("button", name="Save correction").click()
    expect(page.locator("ul.errorlist")).to_contain_text("reason for change is required")
    expect(page.get_by_label("Oxygen flow (L/min)")).to_have_value("6")  # the input stays on screen
    page.get_by_label("Reason for change").fill("transcription error")
    page.get_by_role("button", name="Save correction").click()
    expect(page.locator(".messages")).to_contain_text("CRS grade 2")
    page.get_by_role("link", name="History").click()
    history = page.locator("main")
    expect(history).to_contain_text("transcription error")
    expect(history).to_contain_text("oxygen_flow_l_min")
    expect(history).to_contain_text("pw_coordinator_a")

    # a reported grade that differs from the derived one raises a query in the site inbox
    page.go_back()
    page.get_by_label("Investigator's CRS grade").fill("3")
    page.get_by_label("Reason for change").fill("investigator's assessment added")
    page.get_by_role("button", name="Save correction").click()
    expect(page.locator("aside")).to_contain_text("CRS-GRADE-MISMATCH")
    page.goto(f"{base}/subjects/{subject.pk}/")
    expect(page.locator("table.grid")).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "casebook.png"), full_page=True)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Queries", exact=True).click()
    expect(page.locator("h1")).to_have_text("Site inbox")
    expect(page.locator("main table")).to_contain_text("CRS-GRADE-MISMATCH")
    page.get_by_role("button", name="Log out").click()

    # the monitor closes it with a justification
    login(page, base, "pw_monitor_a")
    page.goto(f"{base}/queries/")
    expect(page.locator("h1")).to_have_text("Query worklist")
    page.locator("main table a", has_text="CRS-GRADE-MISMATCH").first.click()
    page.get_by_label("Message or justification").fill("confirmed correct: the PI graded from the full chart")
    page.get_by_role("button", name="Close").click()
    expect(page.locator("#query-status")).to_have_text("closed")
    page.screenshot(path=str(ARTIFACTS / "query-closed.png"), full_page=True)
    query = Query.objects.get(rule_id="CRS-GRADE-MISMATCH", subject=subject)
    assert query.status == "closed" and query.suppressed_values is not None
    context.close()


def test_keyboard_only_and_tablet_width(transactional_db, live_server, browser):
    """The form works with the keyboard alone and at a 768 px tablet width."""
    from playwright.sync_api import expect

    world = build_world(prefix="kb_")
    base, subject = live_server.url, world.subject_a
    context = browser.new_context(viewport={"width": 768, "height": 1024})
    page = context.new_page()
    login(page, base, "kb_coordinator_a")
    page.goto(f"{base}/subjects/{subject.pk}/day/{subject.day0.isoformat()}/")
    page.get_by_label("Highest temperature of the day").focus()
    page.keyboard.type("39.2")
    page.get_by_label("ICE score (0-10)").focus()
    page.keyboard.type("10")
    expect(page.locator("#grade-preview")).to_contain_text("CRS grade 1")
    page.get_by_role("button", name="Save day").focus()
    page.keyboard.press("Enter")
    expect(page.locator(".messages")).to_contain_text("Saved")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 768, f"horizontal scrolling at tablet width: {width}px"
    page.screenshot(path=str(ARTIFACTS / "assessment-form-tablet.png"), full_page=True)
    context.close()


def test_dsmb_member_requests_a_report_and_sees_it_finish(transactional_db, live_server, browser):
    """The reports page: request a closed DSMB report, see it reach "done" with a download link; a
    run finishing while the page is open is picked up by the page's polling, without a reload."""
    from playwright.sync_api import expect

    from config.celery import app
    from django.conf import settings
    from django.utils import timezone
    from reporting import report_runs
    from reporting.models import ReportRun

    world = build_world(prefix="rp_")
    base = live_server.url
    context = browser.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True)
    page = context.new_page()
    login(page, base, "rp_dsmb")
    page.get_by_role("link", name="Reports", exact=True).click()
    expect(page.locator("h1")).to_contain_text("Reports")
    page.get_by_label("Report", exact=True).select_option("dsmb_closed")

    worker = None
    if not settings.CELERY_TASK_ALWAYS_EAGER:  # a real broker: a worker builds it (embedded pass: in-process)
        from celery.contrib.testing.worker import start_worker

        app.control.purge()
        worker = start_worker(app, pool="threads", concurrency=1, perform_ping_check=False, shutdown_timeout=60)
        worker.__enter__()
    try:
        page.get_by_role("button", name="Request").click()
        row = page.locator("#report-runs tbody tr").first
        expect(row.locator(".run-status")).to_have_text("done", timeout=90_000)
    finally:
        if worker is not None:
            worker.__exit__(None, None, None)
    expect(row.get_by_role("link", name=".pdf")).to_be_visible()
    with page.expect_download() as info:
        row.get_by_role("link").first.click()
    assert info.value.suggested_filename.startswith(world.trial.protocol_code)
    assert info.value.suggested_filename.endswith(".pdf")

    # a queued run on the open page: the page polls the API and shows it finishing
    run = ReportRun.objects.create(trial=world.trial, kind="dsmb_open", data_cut=timezone.now(),
                                   requested_by=world.users["dsmb"])
    page.reload()
    queued = page.locator(f'tr[data-run-id="{run.pk}"]')
    expect(queued.locator(".run-status")).to_have_text("queued")
    report_runs.build_report(run.pk)
    expect(queued.locator(".run-status")).to_have_text("done")
    expect(queued.locator(".run-file a")).to_have_attribute("href", f"{base}/api/v1/report-runs/{run.pk}/download/")
    page.screenshot(path=str(ARTIFACTS / "reports.png"), full_page=True)
    context.close()
