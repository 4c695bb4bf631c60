"""The authorization matrix of the whole API (api.md "Authentication and scoping", workflow.md
"Roles", reports.md "De-identification"), generated from the OpenAPI document and checked
against the explicit table in ``tests/api/endpoints.py``:

- a new endpoint the table does not mention fails the suite ("new endpoint without an
  authorization rule"), and no URL under /api/v1/ is hidden from the OpenAPI document;
- every read as every role: 200 with exactly the rows in the caller's scope, 404 (never 403)
  outside it, 401 for anonymous callers;
- every write as every role: success only for the roles of the table within their scope, 404 (or
  a 400 naming the out-of-scope reference) for everyone else, and nothing written;
- sponsor and DSMB never receive a birth date, the death cause text or other typed free text.
"""
import csv
import io
import json
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.apps import apps
from django.db import transaction

from tests.api import endpoints as ep
from toxicity import services
from tests.api.conftest import (
    API,
    BIRTH_DATE,
    CALLERS,
    PASSWORD,
    SENTINELS,
    create_body,
    review_body,
)

# The caller's role and site ("a"/"b"; None for trial roles); None: no role in the world's trial.
ROLE_OF = {
    **{f"{role}_{site}": (role, site) for role in ep.SITE_ROLES for site in "ab"},
    **{role: (role, None) for role in ep.TRIAL_ROLES},
    "outsider": None,  # data manager of another trial
    "nobody": None,  # no role at all
    "anonymous": None,
}
assert set(ROLE_OF) == set(CALLERS)

OTHER_TRIAL_ROLE = {"outsider": "data_manager"}  # roles held in another trial (tests/conftest.py)
TRIAL_WIDE = "trial-wide"  # rows of a model that has no site (cohorts, check runs, the trial)


def rule(path, method="get") -> ep.Rule:
    found = ep.rule_for(path, method)
    assert found is not None, f"new endpoint without an authorization rule: {method.upper()} {API}{path}"
    return found


# --- the table covers the API ------------------------------------------------------------------


def test_every_endpoint_has_an_authorization_rule():
    missing = [f"{method.upper()} {API}{path}" for path, method in ep.operations() if ep.rule_for(path, method) is None]
    assert not missing, (
        "new endpoint without an authorization rule: " + ", ".join(missing)
        + ". Say who may call it in TABLE of tests/api/endpoints.py (and give tests/api/test_authorization.py a "
        "write case for a write)."
    )


def test_every_rule_names_an_endpoint():
    documented = set(ep.operations())
    stale = [f"{m.upper()} {API}{p}" for p, methods in ep.TABLE.items() for m in methods if (p, m) not in documented]
    assert not stale, f"rules for endpoints that no longer exist: {stale}"


def test_the_url_conf_hides_no_endpoint_from_the_openapi_document():
    documented = {path for path, _ in ep.operations()}
    hidden = [(path, name) for path, name in ep.url_conf_api_routes()
              if path not in documented and name not in ep.OUTSIDE_SCHEMA]
    assert not hidden, f"URLs under {API} missing from the OpenAPI document (so from these tests): {hidden}"


# --- scope ------------------------------------------------------------------------------------


def _model(label):
    return apps.get_model(label)


def locate(model_label: str, ids) -> dict:
    """``{id: (trial id, site id | None | TRIAL_WIDE)}`` from the model's declared scope lookups."""
    model = _model(model_label)
    trial_path, site_path = model.scope_trial, model.scope_site
    rows = model._base_manager.filter(pk__in=ids)
    if site_path is None:
        return {pk: (trial, TRIAL_WIDE) for pk, trial in rows.values_list("pk", trial_path)}
    return {pk: (trial, site) for pk, trial, site in rows.values_list("pk", trial_path, site_path)}


def locate_rows(api, model_label: str, rows: list[dict]) -> dict:
    """``{row key: (trial, site)}`` for the rows of a list; audit entries are located by their record."""
    if model_label == "audit":
        found = {}
        by_type = {}
        for row in rows:
            by_type.setdefault(row["record_type"], []).append(row)
        for record_type, entries in by_type.items():
            where = locate(record_type, {r["record_id"] for r in entries})
            for r in entries:
                found[(record_type, r["history_id"])] = where.get(r["record_id"], ("gone", None))
        return found
    where = locate(model_label, [r["id"] for r in rows])
    return {r["id"]: where.get(r["id"], ("gone", None)) for r in rows}


def site_pk(api, site):
    return {"a": api.site_a.pk, "b": api.site_b.pk}[site]


def in_scope(api, caller: str, roles, trial_id, site) -> bool:
    """Whether ``caller`` reaches a row of ``trial_id``/``site`` through one of ``roles``."""
    grant = ROLE_OF[caller]
    if grant is None or trial_id != api.trial.pk:
        return False
    role, own_site = grant
    if role not in roles:
        return False
    return own_site is None or site == TRIAL_WIDE or site == site_pk(api, own_site)


def get(api, caller, url, **params):
    return api.client(caller).get(url, params)


def body_text(response) -> str:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content).decode()
    return response.content.decode()


def results(response):
    data = response.json()
    if isinstance(data, dict) and "results" in data:
        assert data.get("next") is None, "page_size=1000 should give every row on one page"
        return data["results"]
    assert isinstance(data, list), data
    return data


def row_key(model_label, row):
    return (row["record_type"], row["history_id"]) if model_label == "audit" else row["id"]


# --- reads ------------------------------------------------------------------------------------

LIST_PATHS = [p for p in ep.get_paths() if ep.is_list(p)]
OBJECT_PATHS = [p for p in ep.get_paths() if "{id}" in p]


@pytest.mark.parametrize("path", LIST_PATHS)
def test_list_shows_each_caller_exactly_the_rows_in_scope(api, path):
    read_rule = rule(path)
    url = API + path
    reference = get(api, "data_manager", url, page_size=1000)
    assert reference.status_code == 200, reference.content[:500]
    ref_rows = results(reference)
    where = locate_rows(api, read_rule.model, ref_rows)
    ours = {key: loc for key, loc in where.items() if loc[0] == api.trial.pk}
    assert ours, f"no rows of the trial in {url}: the fixture should create some"
    sites = {loc[1] for loc in ours.values()}
    if sites != {TRIAL_WIDE}:
        assert {api.site_a.pk, api.site_b.pk} <= sites, f"{url}: the fixture should give rows at both sites"

    for caller in CALLERS:
        response = get(api, caller, url, page_size=1000)
        if caller == "anonymous":
            assert response.status_code == 401, (caller, response.status_code)
            continue
        assert response.status_code == 200, (caller, response.status_code, response.content[:300])
        rows = results(response)
        seen = locate_rows(api, read_rule.model, rows)
        seen_ours = {key for key, loc in seen.items() if loc[0] == api.trial.pk}
        expected = {key for key, (trial, site) in ours.items() if in_scope(api, caller, read_rule.roles, trial, site)}
        assert seen_ours == expected, (caller, "unexpected:", seen_ours - expected, "missing:", expected - seen_ours)
        if ROLE_OF[caller] is not None and ROLE_OF[caller][0] in read_rule.roles:
            assert expected, (caller, "sees nothing: the fixture should give every role something to see")
        if caller == "nobody":
            assert rows == [], rows


def object_candidates(api, path) -> list[tuple[int, object]]:
    """Ids to try on an object path: per site, one object the data manager gets (voided ones too)."""
    collection = path.split("{id}")[0]
    collection_rule = rule(collection)
    rows = results(get(api, "data_manager", API + collection, page_size=1000, include_voided="true"))
    where = locate_rows(api, collection_rule.model, rows)
    chosen, sites = [], set()
    for row in rows:
        trial, site = where[row_key(collection_rule.model, row)]
        voided = bool(row.get("voided"))
        if trial != api.trial.pk or (site, voided) in sites:
            continue
        url = API + path.replace("{id}", str(row["id"]))
        if get(api, "data_manager", url).status_code == 200:
            chosen.append((row["id"], site))
            sites.add((site, voided))
    return chosen


@pytest.mark.parametrize("path", OBJECT_PATHS)
def test_object_outside_scope_is_404_never_403(api, path):
    read_rule = rule(path)
    candidates = object_candidates(api, path)
    assert candidates, f"{path}: the fixture should give the data manager something to read here"
    for pk, site in candidates:
        url = API + path.replace("{id}", str(pk))
        for caller in CALLERS:
            response = get(api, caller, url)
            if caller == "anonymous":
                expected = 401
            else:
                expected = 200 if in_scope(api, caller, read_rule.roles, api.trial.pk, site) else 404
            assert response.status_code == expected, (caller, url, response.status_code, response.content[:300])
            if expected == 200 and path.endswith("{id}/"):
                assert response.json()["id"] == pk
            if expected == 200 and read_rule.model and response.json() and isinstance(results_or_none(response), list):
                rows = results_or_none(response)
                for key, (trial, row_site) in locate_rows(api, read_rule.model, rows).items():
                    assert in_scope(api, caller, read_rule.roles, trial, row_site), (caller, url, key)


def results_or_none(response):
    data = response.json()
    if isinstance(data, dict) and "results" in data:
        return data["results"]
    return data if isinstance(data, list) else None


def dataset_urls(path: str) -> list[str]:
    names = ep.path_parameters(path)
    if not names:
        return [API + path]
    (name,) = names
    return [API + path.replace(f"{{{name}}}", value) for value in ep.path_parameter_values(path, name)]


READ_DATASET_PATHS = [p for p in ep.get_paths() if not ep.is_list(p) and "{id}" not in p]


@pytest.mark.parametrize("path", READ_DATASET_PATHS)
def test_datasets_only_for_their_roles(api, path):
    """Exports, SDTM datasets and define.json: the trial's roles of the table get 200, others 404."""
    read_rule = rule(path)
    for url in dataset_urls(path):
        for caller in CALLERS:
            response = get(api, caller, url, trial=api.trial.pk)
            if caller == "anonymous":
                expected = 401
            else:
                expected = 200 if in_scope(api, caller, read_rule.roles, api.trial.pk, TRIAL_WIDE) else 404
            assert response.status_code == expected, (caller, url, response.status_code)
            if expected != 200 or not url.endswith(".csv"):
                continue
            rows = list(csv.DictReader(io.StringIO(body_text(response))))
            grant = ROLE_OF[caller]
            if grant[1] is not None and rows and "subject_id" in rows[0]:
                own = {"a": api.site_a.site_number, "b": api.site_b.site_number}[grant[1]]
                assert all(r["subject_id"].startswith(f"{own}-") for r in rows if r["subject_id"]), (caller, url)


@pytest.mark.parametrize("path, method", ep.operations())
def test_anonymous_callers_get_401(api, path, method):
    """TokenAuthentication comes first in REST_FRAMEWORK, so DRF answers 401 with WWW-Authenticate."""
    url = API + path
    for name in ep.path_parameters(path):
        value = ep.path_parameter_values(path, name)[0] if name in ("dataset", "domain") else "1"
        url = url.replace(f"{{{name}}}", value)
    response = getattr(api.client("anonymous"), method)(url, {}, format="json")
    assert response.status_code == 401, (method, url, response.status_code)
    assert response.headers.get("WWW-Authenticate", "").startswith("Token")


# --- de-identification ------------------------------------------------------------------------

FORBIDDEN_KEYS = {"date_of_birth", "death_cause_other_text"}


def read_urls(api, path) -> list[tuple[str, dict]]:
    """Concrete URLs of a GET endpoint: a list with voided rows, every object candidate, every dataset."""
    if ep.is_list(path):
        return [(API + path, {"page_size": 1000, "include_voided": "true"})]
    if "{id}" in path:
        return [(API + path.replace("{id}", str(pk)), {}) for pk, _ in object_candidates(api, path)]
    return [(url, {"trial": api.trial.pk}) for url in dataset_urls(path)]


def keys_of(value):
    if isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from keys_of(v)
    elif isinstance(value, list):
        for v in value:
            yield from keys_of(v)


def leaks(response, text: str, *, identifiers_only=False) -> list[str]:
    if identifiers_only:
        return [str(BIRTH_DATE)] if str(BIRTH_DATE) in text else []
    found = [s for s in (str(BIRTH_DATE), *SENTINELS) if s in text]
    if response.get("Content-Type", "").startswith("application/json"):
        found += sorted(FORBIDDEN_KEYS & set(keys_of(json.loads(text))))
    elif text:
        found += sorted(FORBIDDEN_KEYS & set(next(csv.reader(io.StringIO(text)), [])))
    return found


def test_the_sentinels_reach_the_roles_that_may_see_them(api):
    """The de-identification scan can find what it looks for: the site sees the birth date, the
    data manager every typed text."""
    urls = [u for path in ep.get_paths() for u in read_urls(api, path)]
    site_view = "".join(body_text(get(api, "coordinator_a", url, **params)) for url, params in urls)
    assert str(BIRTH_DATE) in site_view
    manager_view = "".join(body_text(get(api, "data_manager", url, **params)) for url, params in urls)
    assert [s for s in SENTINELS if s not in manager_view] == []


@pytest.mark.parametrize("path", ep.get_paths())
def test_sponsor_and_dsmb_never_receive_identifiers_or_free_text(api, path):
    """reports.md, De-identification: no birth date, no death cause text, no text typed by a person
    (void and change reasons, manual query texts, query messages), with and without date shift."""
    found = []
    for date_shift in (False, True):
        api.trial.export_date_shift = date_shift
        api.trial.save()
        for url, params in read_urls(api, path):
            for caller in ("sponsor", "dsmb"):
                response = get(api, caller, url, **params)
                if response.status_code == 200 and (leaked := leaks(response, body_text(response))):
                    found.append(f"{caller} {url} (date shift {date_shift}): {leaked}")
    assert not found, "\n".join(found)


@pytest.mark.parametrize("path", ep.get_paths())
def test_birth_date_never_leaves_the_site_roles(api, path):
    """trials.selectors.may_see_identifiers: only the site roles of the subject's own site see it."""
    found = []
    for url, params in read_urls(api, path):
        for caller in ("data_manager", "outsider", "nobody"):
            response = get(api, caller, url, **params)
            if response.status_code == 200 and leaks(response, body_text(response), identifiers_only=True):
                found.append(f"{caller} {url}")
    assert not found, found


# --- writes -----------------------------------------------------------------------------------


def _version(model_label, pk):
    return _model(model_label).objects.get(pk=pk).version


def _reason_key(resource):
    return "change_reason" if resource == "icu-stays" else "reason"


class Write:
    """One write call: the URL, body and format, the site of its target (None: the trial), the
    status it succeeds with, and the fields a 400 may name when a caller references an object
    outside their scope (DRF answers "does not exist" for those instead of 404). ``role_first``: the
    view refuses a caller without the role anywhere before reading the body, always 404
    (trials/api/base.py ``_require_write_role``)."""

    def __init__(self, url, body, *, site="a", success=201, fmt="json", refusal_fields=(), content_type=None,
                 role_first=False):
        self.url, self.body, self.site, self.success, self.fmt = url, body, site, success, fmt
        self.refusal_fields, self.content_type, self.role_first = set(refusal_fields), content_type, role_first

    def send(self, client, method):
        if self.content_type:
            return getattr(client, method)(self.url, self.body, content_type=self.content_type)
        return getattr(client, method)(self.url, self.body, format=self.fmt)


def _first(api, resource, site="a"):
    return api.records[(resource, site)][0]


def _query_in(api, status):
    from toxicity import queries
    from toxicity.models import Query

    q = Query.objects.get(pk=api.queries["a"])
    if status == "closed":
        queries.query_transition(user=api.users["monitor_a"], query=q, action="close", text="confirmed")
    return q.pk


# A caller who sees the query but whose role may not act on it gets 400 {"action": [...]}
# (toxicity.queries._acting_role); callers who cannot see it get 404.
QUERY_ROLE_REFUSAL = {"action"}


def write_case(api, path, method) -> Write:
    """A valid call of ``method path`` as its allowed roles at site A (site B where noted)."""
    resource = path.split("/")[0]
    if resource in ep.CLINICAL and path == f"{resource}/" and method == "post":
        body = create_body(resource, api.world, api.subject_a, 14)
        return Write(API + path, body, refusal_fields={"subject", "site", "cohort"}, role_first=True)
    if resource in ep.CLINICAL and path == f"{resource}/{{id}}/" and method == "patch":
        pk = _first(api, resource)
        body = {"version": _version(ep.CLINICAL[resource], pk), _reason_key(resource): "transcription error"}
        return Write(API + path.format(id=pk), body, success=200, role_first=True)
    if resource in ep.CLINICAL and path == f"{resource}/{{id}}/void/":
        pk = _first(api, resource)
        return Write(API + path.format(id=pk), {"version": _version(ep.CLINICAL[resource], pk), "reason": "duplicate"},
                     success=200, role_first=True)
    if path == "episode-reviews/":
        # a new CRS episode of subject A (resolved on day 11, fever again on day 12) to review
        for n, temperature in ((11, "36.8"), (12, "38.5")):
            services.assessment_create(user=api.users["coordinator_a"], subject=api.subject_a,
                                       assessment_date=api.subject_a.day0 + timedelta(days=n),
                                       temperature_max_c=Decimal(temperature), ice_score=10, consciousness="alert")
        return Write(API + path, review_body(api.subject_a, 12), refusal_fields={"subject"}, role_first=True)
    if path == "episode-reviews/{id}/" and method == "patch":
        pk = _first(api, "episode-reviews")
        body = {"version": _version("toxicity.episodereview", pk), "reason": "review corrected", "outcome": "recovering"}
        return Write(API + path.format(id=pk), body, success=200, role_first=True)
    if path == "episode-reviews/{id}/void/":
        pk = _first(api, "episode-reviews")
        return Write(API + path.format(id=pk), {"version": _version("toxicity.episodereview", pk), "reason": "wrong"},
                     success=200, role_first=True)
    if path == "subjects/{id}/death/" and method == "put":
        body = {"death_date": str(date.today() - timedelta(days=1)), "death_primary_cause": "disease_progression"}
        return Write(API + path.format(id=api.subject_b.pk), body, site="b", role_first=True)
    if path == "subjects/{id}/death/void/":
        from trials.models import Death

        death = Death.objects.get(subject=api.subject_a, voided=False)
        return Write(API + path.format(id=api.subject_a.pk), {"version": death.version, "reason": "wrong subject"},
                     success=200, role_first=True)
    if path == "queries/":
        body = {"record_type": "trials.subject", "record_id": api.subject_a.pk, "field": "diagnosis", "text": "Sure?"}
        return Write(API + path, body, refusal_fields=QUERY_ROLE_REFUSAL)
    if path == "queries/{id}/messages/":
        return Write(API + path.format(id=api.queries["a"]), {"text": "Looking into it."},
                     refusal_fields=QUERY_ROLE_REFUSAL)
    if path in ("queries/{id}/answer/", "queries/{id}/close/", "queries/{id}/cancel/"):
        return Write(API + path.format(id=api.queries["a"]), {"text": "Checked against the chart."}, success=200,
                     refusal_fields=QUERY_ROLE_REFUSAL)
    if path == "queries/{id}/reopen/":
        return Write(API + path.format(id=_query_in(api, "closed")), {"text": "Please look again."}, success=200,
                     refusal_fields=QUERY_ROLE_REFUSAL)
    if path == "report-runs/":
        return Write(API + path, {"trial": api.trial.pk, "kind": "ae_report"}, site=None, success=201,
                     refusal_fields={"trial"})
    if path == "check-runs/":
        return Write(API + path, {"trial": api.trial.pk}, site=None, success=202, refusal_fields={"trial"})
    if path == "locks/":
        body = {"scope": "casebook", "trial": api.trial.pk, "subject": api.subject_a.pk, "reason": "interim analysis"}
        return Write(API + path, body, refusal_fields={"trial", "subject"})
    if path == "locks/{id}/unlock/":
        from trials.workflow import Lock

        lock = Lock.objects.filter(subject=api.subject_a, unlocked_at__isnull=True).first()
        return Write(API + path.format(id=lock.pk), {"reason": "correction needed"}, success=200)
    if path == "signatures/sign/{subject_pk}/":
        from trials import workflow_services

        workflow_services.void_signatures_on_change([api.subject_a], api.users["coordinator_a"])
        return Write(API + path.format(subject_pk=api.subject_a.pk), {"password": PASSWORD})
    if path == "source-verifications/":
        body = {"record_type": "toxicity.tocilizumabdose", "record_id": _first(api, "tocilizumab-doses")}
        return Write(API + path, body)
    if path == "grading/preview/":
        body = {"temperature_max_c": 38.5, "ice_score": 10, "consciousness": "alert"}
        return Write(API + path, body, site=None, success=200)
    if path == "imports/{dataset}/":
        day = api.subject_a.day0 + timedelta(days=16)
        text = ("subject_id,assessment_date,temperature_max_c,ice_score,consciousness\n"
                f"{api.subject_a.subject_id},{day},37.0,10,alert\n")
        return Write(f"{API}imports/assessments/?trial={api.trial.pk}", text, success=200, content_type="text/csv",
                     refusal_fields={"errors", "file", "dataset", "dry_run", "committed", "rows", "created"})
    raise AssertionError(f"no write case for {method.upper()} {API}{path}: add one to write_case()")


def fingerprint() -> dict:
    """Row counts of every table the API writes (access-log entries and date offsets aside)."""
    skip = {"reporting.accesslogentry", "reporting.dateshift"}
    apps_written = {"trials", "toxicity", "reporting", "authtoken"}
    return {m._meta.label_lower: m._base_manager.count() for m in apps.get_models()
            if m._meta.app_label in apps_written and m._meta.label_lower not in skip}


WRITE_OPERATIONS = ep.write_operations()


@pytest.mark.parametrize("path, method", WRITE_OPERATIONS)
def test_write_only_by_the_roles_of_the_table_within_their_scope(api, path, method):
    write_rule = rule(path, method)
    for caller in CALLERS:
        with transaction.atomic():
            case = write_case(api, path, method)
            before = fingerprint()
            response = case.send(api.client(caller), method)
            grant = ROLE_OF[caller]
            if caller == "anonymous":
                allowed, expected = False, {401}
            elif write_rule.any_trial:
                allowed = caller != "nobody"
            else:
                target = TRIAL_WIDE if case.site is None else site_pk(api, case.site)
                allowed = in_scope(api, caller, write_rule.roles, api.trial.pk, target)
            if caller != "anonymous":
                holds_role = bool({grant[0] if grant else None, OTHER_TRIAL_ROLE.get(caller)} & write_rule.roles)
                expected = {case.success} if allowed else {404} if case.role_first and not holds_role else {404, 400}
            assert response.status_code in expected, (caller, method, case.url, response.status_code,
                                                      response.content[:400])
            if response.status_code == 400:
                named = set(response.json())
                assert named and named <= case.refusal_fields, (caller, case.url, "400 refusal must name the "
                                                                "out-of-scope reference", response.json())
            if not allowed:
                assert fingerprint() == before, (caller, case.url, "a refused write changed the database")
            transaction.set_rollback(True)
