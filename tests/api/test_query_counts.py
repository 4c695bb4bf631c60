"""Every list endpoint costs a constant number of SQL queries whatever the page size (no N+1), and
cursor pagination issues no COUNT(*) (api.md, Conventions). The endpoints come from the OpenAPI
document (tests/api/endpoints.py), so a new list is measured as soon as it exists.

Each list is read once to warm per-process caches (content types, per-subject date offsets drawn
on first use), then measured with page_size 1, 6 and 1000 over at least 6 rows, as a site role, a
trial role and a de-identified role with shifted dates (each takes its own code path).
"""
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.api import endpoints as ep
from tests.api.conftest import API, PASSWORD
from tests.factories import CohortFactory, SiteFactory, TrialFactory
from toxicity import queries, reviews
from toxicity.models import CheckRun, DailyAssessment, Query, TocilizumabDose
from trials import services as trial_services
from trials import workflow_services as wf
from trials.workflow import SourceVerification

API_WORLD = {"rows": 6, "assessment_rows": 12}  # 12 days with fever every other day: 6 CRS episodes
PAGE_SIZES = (1, 6, 1000)
MIN_ROWS = 6
CALLERS = ("coordinator_a", "data_manager", "sponsor")


@pytest.fixture(scope="module")
def crowded(api_world):
    """At least 6 rows of every list for each caller (inside the module's rolled-back transaction)."""
    w = api_world
    for n in range(MIN_ROWS):  # more sites (with site A's site roles) and cohorts: the set-up lists
        site = SiteFactory(trial=w.trial, site_number=f"2{n:02d}")
        for role in ("coordinator", "investigator", "monitor"):
            trial_services.membership_grant(user=w.users[f"{role}_a"], role=role, trial=w.trial, site=site)
        CohortFactory(trial=w.trial, name=f"DL-extra-{n}")
    monitor, manager = w.users["monitor_a"], w.users["data_manager"]
    for n in range(2, 2 * MIN_ROWS, 2):  # the investigator reviews the other CRS episodes of subject A
        reviews.episode_review_create(user=w.users["investigator_a"], subject=w.subject_a, kind="crs",
                                      onset_date=w.subject_a.day0 + timedelta(days=n), serious=False, seriousness=[],
                                      relatedness="probable", outcome="recovered")
    assessments = list(DailyAssessment.objects.filter(subject=w.subject_a, voided=False)[:MIN_ROWS])
    for record in assessments:
        queries.query_raise(user=monitor, record_type="toxicity.dailyassessment", record_id=record.pk,
                            field="temperature_max_c", text="Please check the thermometer reading.")
        if not SourceVerification.objects.filter(record_type="toxicity.dailyassessment", record_id=record.pk).exists():
            wf.form_verify(user=monitor, record=record)
        wf.lock_create(user=manager, scope="form", trial=w.trial, record=record, reason="reviewed")
        CheckRun.objects.create(trial=w.trial, requested_by=manager)
        wf.void_signatures_on_change([w.subject_a], monitor)
        wf.casebook_sign(user=w.users["investigator_a"], subject=w.subject_a, password=PASSWORD)
    for _ in range(MIN_ROWS - 1):  # more trials, for the trials list of each caller
        trial = TrialFactory()
        site = SiteFactory(trial=trial, site_number="101")
        trial_services.membership_grant(user=w.users["coordinator_a"], role="coordinator", trial=trial, site=site)
        for role in ("data_manager", "sponsor"):
            trial_services.membership_grant(user=w.users[role], role=role, trial=trial)
    thread = Query.objects.filter(subject=w.subject_a, field="temperature_max_c").first()
    for n in range(MIN_ROWS):
        queries.query_message(user=w.users["coordinator_a"], query=thread, text=f"Message {n}.")
    w.long_thread, w.short_thread = thread.pk, w.queries["b"]
    return w


def measure(client, url, **params):
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url, params)
    assert response.status_code == 200, (url, params, response.status_code, response.content[:300])
    return response, [q["sql"] for q in ctx.captured_queries]


def extra(more: list[str], fewer: list[str]) -> str:
    """The statements of ``more`` beyond those of ``fewer`` (numbers aside), shortened."""

    def shape(sql):
        return re.sub(r"\d+", "N", sql)

    left = [shape(q) for q in fewer]
    out = []
    for sql in more:
        if shape(sql) in left:
            left.remove(shape(sql))
        else:
            out.append(sql[:240])
    return "\n".join(out[:8])


def audited_tables() -> int:
    from reporting.audit_export import AuditFilters, _filtered_tables

    return len(list(_filtered_tables(AuditFilters())))


# The audit trail merges one query per history table, then reads the previous rows of the tables
# present in the page (reporting/audit_export.audit_page): bounded by the number of tables, not
# by the page size.
BOUND_BY_TABLES = {"audit/"}


@pytest.fixture(params=CALLERS)
def caller(request, crowded, db):
    if request.param == "sponsor":
        crowded.trial.export_date_shift = True
        crowded.trial.save()
    return request.param


LISTS = [p for p in ep.get_paths() if ep.is_list(p)]
# GETs under one object ("trials/{id}/sites/"): paginated lists are measured like the collections;
# the others are one object (a subject's death) or measured below (a query's thread).
NESTED = [p for p in ep.get_paths() if "{id}/" in p and not p.endswith("{id}/")]
NOT_PAGINATED = {"subjects/{id}/death/", "queries/{id}/messages/", "report-runs/{id}/download/"}


def parent_id(api, path):
    collection = path.split("{id}")[0]
    response = api.client("data_manager").get(API + collection, {"page_size": 1})
    return response.json()["results"][0]["id"] if collection != "trials/" else api.trial.pk


@pytest.mark.parametrize("path", LISTS + [p for p in NESTED if p not in NOT_PAGINATED])
def test_list_queries_do_not_grow_with_the_page(crowded, caller, path):
    url = API + path.replace("{id}", str(parent_id(crowded, path))) if "{id}" in path else API + path
    client = crowded.client(caller)
    params = {"trial": crowded.trial.pk}  # the trial filter, and the audit trail's choice of trial
    role = caller[:-2] if caller.endswith(("_a", "_b")) else caller
    if role not in ep.rule_for(path, "get").roles:  # e.g. reports: not for site roles
        response = client.get(url, {"page_size": 1000, **params})
        assert response.status_code == 404 or response.json()["results"] == [], (url, caller)
        return
    measure(client, url, page_size=1000, **params)  # warm-up
    counts, sqls = {}, {}
    for size in PAGE_SIZES:
        response, sql = measure(client, url, page_size=size, **params)
        assert "results" in response.json(), f"{url} is not paginated: list it in NOT_PAGINATED and measure it"
        rows = response.json()["results"]
        if size == MIN_ROWS:
            assert len(rows) == MIN_ROWS, f"{url} as {caller}: the fixture should give at least {MIN_ROWS} rows"
        counts[size], sqls[size] = len(sql), sql
    if path in BOUND_BY_TABLES:
        assert max(counts.values()) - min(counts.values()) <= audited_tables(), (url, caller, counts)
    else:
        assert len(set(counts.values())) == 1, (
            f"{url} as {caller}: {counts} queries for page sizes {PAGE_SIZES} (N+1). Extra queries at page_size=6:\n"
            + extra(sqls[6], sqls[1])
        )
    counting = [s for size in PAGE_SIZES for s in sqls[size] if "COUNT(" in s.upper()]
    assert not counting, (url, caller, counting)


def test_query_thread_queries_do_not_grow_with_the_messages(crowded, db):
    client = crowded.client("data_manager")
    counts = {}
    for pk in (crowded.short_thread, crowded.long_thread):
        url = f"{API}queries/{pk}/messages/"
        measure(client, url)
        response, sql = measure(client, url)
        counts[len(response.json())] = len(sql)
    assert max(counts) > MIN_ROWS and len(set(counts.values())) == 1, counts
    # the query detail carries the thread too
    detail = {}
    for pk in (crowded.short_thread, crowded.long_thread):
        measure(client, f"{API}queries/{pk}/")
        response, sql = measure(client, f"{API}queries/{pk}/")
        detail[len(response.json()["messages"])] = len(sql)
    assert len(set(detail.values())) == 1, detail


def test_verification_status_in_the_list_follows_the_form(crowded, db):
    """The list reads each form's version in its one query (trials/api/workflow_views.py): a change
    to a verified form shows as "changed"."""
    record = TocilizumabDose.objects.filter(subject=crowded.subject_a, voided=False).first()
    verification = wf.form_verify(user=crowded.users["monitor_a"], record=record)
    client, url = crowded.client("monitor_a"), f"{API}source-verifications/"
    assert {r["id"]: r["status"] for r in client.get(url).json()["results"]}[verification.pk] == "verified"
    response = crowded.client("coordinator_a").patch(
        f"{API}tocilizumab-doses/{record.pk}/", {"version": record.version, "reason": "source updated",
                                                 "indication": "icans"}, format="json",
    )
    assert response.status_code == 200, response.content
    assert {r["id"]: r["status"] for r in client.get(url).json()["results"]}[verification.pk] == "changed"
