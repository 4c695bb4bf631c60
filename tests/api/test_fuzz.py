"""Property-based fuzzing of every operation of the OpenAPI document with schemathesis (api.md:
"Never 500 for bad input"; "HTTP 400 with {"field_name": ["message"], ...} naming every bad field").

Driven by hand rather than by schemathesis' pytest plugin, so that it runs inside pytest-django's
transaction: each operation gets valid and invalid inputs generated from its schema (and, for
paths with an ``{id}``, the ids of real records of the caller's site, so updates, voids and
transitions run their real code), sent to the WSGI application as coordinator_a with a DRF
token. Every call runs in a savepoint that is rolled back, so each starts from the same data.

Checked for every call: no 5xx (schemathesis' ``not_a_server_error``); a 400 is a JSON object
(CSV datasets: ``field,message`` lines) whose keys name request fields or parameters; after a
successful write every clinical row still has its history row of the same version and every
voided row a reason. Reproducible: ``derandomize=True``, a bounded number of examples.
"""
import csv
import io
import json
from contextlib import contextmanager

import pytest
import schemathesis
from django.apps import apps
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections, transaction
from django.db.models import F, OuterRef, Subquery
from hypothesis import HealthCheck, Phase, given, note, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode

from tests.api import endpoints as ep
from tests.api.conftest import API

MAX_EXAMPLES = 15
FUZZ_USER = "coordinator_a"
# Fields every later change carries (trials/api/base.py change_serializer) that the PATCH request
# bodies of the OpenAPI document do not list (reported): a 400 may name them.
CHANGE_FIELDS = {"version", "reason", "change_reason"}
# toxicity.queries: raising, or a transition, that the caller's role may not make, or from the wrong
# status, is a 400 naming "action" / "status" (what was asked, the query's state), not a body field.
QUERY_ROLE_KEYS = {"action", "status"}


@contextmanager
def connection_kept():
    """Django's per-request connection clean-up would close the connection holding the test
    transaction; Django's test client disconnects it around each request, and so do we (it
    reconnects it after each of its own requests, so this is done per call)."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@pytest.fixture(scope="module")
def wsgi_app():
    return WSGIHandler()


@pytest.fixture(scope="module")
def schema(wsgi_app):
    loaded = schemathesis.openapi.from_dict(json.loads(json.dumps(ep.openapi(), default=str)))
    loaded.app = wsgi_app
    return loaded


# --- what a 400 may name ----------------------------------------------------------------------


def _properties(document, node) -> set[str]:
    node = _resolve_ref(document, node)
    names = set(node.get("properties", {}))
    for key in ("allOf", "oneOf", "anyOf"):
        for part in node.get(key, []):
            names |= _properties(document, part)
    return names


def _resolve_ref(document, node):
    seen = 0
    while isinstance(node, dict) and "$ref" in node and seen < 20:
        target = document
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node, seen = target, seen + 1
    return node


def documented_names(path: str, method: str) -> set[str]:
    """Request body properties and parameters; the properties of the resource's representation
    (a derived value out of range is named, e.g. ``effluent_dose_ml_kg_h``); a documented 400 body."""
    document = ep.openapi()
    operation = document["paths"][API + path][method]
    names = {p["name"] for p in operation.get("parameters", [])}
    for content in operation.get("requestBody", {}).get("content", {}).values():
        names |= _properties(document, content.get("schema", {}))
    responses = dict(operation.get("responses", {}))
    detail = document["paths"].get(f"{API}{path.split('/')[0]}/{{id}}/", {}).get("get")
    if detail is not None:  # the read representation (create and update answer with it too)
        responses["detail"] = detail["responses"].get("200", {})
    for status, response in responses.items():
        if status.startswith("2") or status in ("400", "detail"):
            for content in response.get("content", {}).values():
                names |= _properties(document, content.get("schema", {}))
    return names | {"non_field_errors"}


def request_names(path: str, method: str) -> set[str]:
    document = ep.openapi()
    operation = document["paths"][API + path][method]
    names = {p["name"] for p in operation.get("parameters", [])}
    for content in operation.get("requestBody", {}).get("content", {}).values():
        names |= _properties(document, content.get("schema", {}))
    return names


def error_fields(response) -> set[str]:
    headers = {name.lower(): value for name, value in response.headers.items()}
    content_type = headers.get("content-type", "")
    content_type = content_type[0] if isinstance(content_type, list) and content_type else str(content_type or "")
    text = response.content.decode() if isinstance(response.content, bytes) else response.text
    if content_type.startswith("text/csv"):  # reporting/export_views.CSVRenderer: one "field,message" line each
        rows = list(csv.reader(io.StringIO(text)))
        assert rows and rows[0] == ["field", "message"], text[:300]
        return {row[0] for row in rows[1:]}
    try:
        body = json.loads(text)
    except ValueError:
        raise AssertionError(f"a 400 must be a JSON object naming fields, got {content_type}: {text[:300]!r}") from None
    assert isinstance(body, dict) and body, f"a 400 must be a JSON object naming fields, got {text[:300]}"
    if set(body) == {"detail"} and "parse error" in str(body["detail"]):
        return set()  # DRF's ParseError: a body that is not JSON / multipart at all has no fields to name
    return set(body)


# --- database consistency ---------------------------------------------------------------------


def inconsistencies() -> list[str]:
    """Clinical rows whose latest history row has another version, voided rows without a reason."""
    from trials.audit import ClinicalModel

    problems = []
    for model in apps.get_models():
        if not issubclass(model, ClinicalModel):
            continue
        last = Subquery(model.history.filter(id=OuterRef("pk")).order_by("-history_id").values("version")[:1])
        stale = model._base_manager.annotate(last_version=last).exclude(last_version=F("version"))
        if stale.exists():
            problems.append(f"{model._meta.label}: rows without a history row of their version")
        if model._base_manager.filter(voided=True, void_reason="").exists():
            problems.append(f"{model._meta.label}: voided rows without a reason")
    return problems


# --- the fuzzing ------------------------------------------------------------------------------


def real_ids(api, path) -> list[int]:
    """Ids of records of the caller's site for the ``{id}`` of ``path`` (besides generated ones)."""
    collection = path.split("{id}")[0]
    if collection == "trials/":
        return [api.trial.pk]
    response = api.client(FUZZ_USER).get(API + collection, {"page_size": 2})
    if response.status_code != 200:
        return []
    return [row["id"] for row in response.json().get("results", [])][:2]


def real_references(api) -> dict:
    """Body fields that name another object, with an object of the caller's site."""
    from toxicity.models import DailyAssessment

    assessment = DailyAssessment.objects.filter(subject=api.subject_a, voided=False).first()
    return {"subject": api.subject_a.pk, "trial": api.trial.pk, "site": api.site_a.pk, "cohort": api.cohort.pk,
            "record_type": "toxicity.dailyassessment", "record_id": assessment.pk}


def referencing(references: dict, change: dict | None = None):
    """Give a generated JSON body real references (and, for a change, the current version and a
    reason), so that the inputs get past the look-ups into the services' own checks."""

    def apply(case):
        if isinstance(case.body, dict):
            body = dict(case.body)
            body.update({k: v for k, v in references.items() if k in body})
            body.update(change or {})
            case.body = body
        return case

    return apply


def strategy_for(operation, api, path, method):
    modes = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    strategies = [operation.as_strategy(generation_mode=mode) for mode in modes]
    references = real_references(api)
    fixed = {}
    if "{subject_pk}" in path:
        fixed = {"subject_pk": str(api.subject_a.pk)}
    for name in ep.path_parameters(path):
        if name in ("dataset", "domain"):  # every dataset, also where the schema gives no enum
            values = ep.path_parameter_values(path, name)
            strategies += [operation.as_strategy(path_parameters={name: value}) for value in values]
    if method != "get":
        strategies.append(operation.as_strategy(path_parameters=fixed or None).map(referencing(references)))
    if "{id}" in path:
        resource = path.split("/")[0]
        for pk in real_ids(api, path):
            strategies += [operation.as_strategy(generation_mode=mode, path_parameters={"id": pk}) for mode in modes]
            if method != "get" and resource in ep.CLINICAL:
                version = apps.get_model(ep.CLINICAL[resource])._base_manager.get(pk=pk).version
                reason_key = "change_reason" if "reason" in request_names(path, method) else "reason"
                change = referencing(references, {"version": version, reason_key: "fuzzing"})
                strategies.append(operation.as_strategy(path_parameters={"id": pk}).map(change))
    return st.one_of(strategies)


OPERATIONS = ep.operations()


@pytest.mark.parametrize("path, method", OPERATIONS, ids=[f"{m.upper()} {p}" for p, m in OPERATIONS])
def test_no_input_gives_a_server_error(api, schema, path, method):
    operation = schema[API + path][method.upper()]
    headers = {"Authorization": f"Token {api.tokens[FUZZ_USER]}"}
    allowed_error_keys = documented_names(path, method) | (CHANGE_FIELDS if method == "patch" else set())
    if path.startswith("queries/"):
        allowed_error_keys |= QUERY_ROLE_KEYS
    write = method != "get"
    statuses = []

    @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate, Phase.shrink])
    @given(case=strategy_for(operation, api, path, method))
    def run(case):
        with transaction.atomic():
            case.headers = {**(case.headers or {}), **headers}
            note(case.as_curl_command())
            with connection_kept():
                response = case.call()
            statuses.append(response.status_code)
            case.validate_response(response, checks=[not_a_server_error])
            if response.status_code == 400:
                named = error_fields(response)
                assert named <= allowed_error_keys, (
                    f"400 names {sorted(named - allowed_error_keys)}, not fields of {method.upper()} {path}: "
                    f"{response.text[:300]}"
                )
            if write and 200 <= response.status_code < 300:
                assert not inconsistencies(), inconsistencies()
            transaction.set_rollback(True)

    run()
    assert statuses, "no case was generated"
