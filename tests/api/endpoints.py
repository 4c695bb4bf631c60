"""Every endpoint of the API and who may call it: the explicit authorization table.

The endpoints are read from the OpenAPI document drf-spectacular generates (and the URL conf is
checked to hide nothing from it), so a new endpoint is covered by the API-wide tests at once;
``tests/api/test_authorization.py`` fails for an endpoint this table does not mention ("new
endpoint without an authorization rule"). Roles are those of workflow.md:

- site roles (coordinator, investigator, monitor) see the subjects of their sites, trial roles
  (data_manager, sponsor, dsmb) the whole trial; anything else is 404, never 403;
- coordinators and investigators enter data; monitors raise/close queries and verify forms;
  data managers lock, run checks and close queries; investigators sign casebooks;
- sponsor and DSMB get de-identified representations; DSMB reads no raw datasets (exports).
"""
import re
from dataclasses import dataclass
from functools import cache

from django.urls import URLPattern, URLResolver, get_resolver

API = "/api/v1/"
METHODS = ("get", "post", "put", "patch", "delete")

COORDINATOR, INVESTIGATOR, MONITOR = "coordinator", "investigator", "monitor"
DATA_MANAGER, SPONSOR, DSMB = "data_manager", "sponsor", "dsmb"
SITE_ROLES = frozenset({COORDINATOR, INVESTIGATOR, MONITOR})
TRIAL_ROLES = frozenset({DATA_MANAGER, SPONSOR, DSMB})
ALL = SITE_ROLES | TRIAL_ROLES
DATA_ENTRY = frozenset({COORDINATOR, INVESTIGATOR})
REVIEWERS = frozenset({MONITOR, DATA_MANAGER})
EXPORTERS = ALL - {DSMB}  # DSMB members read DSMB reports, not raw datasets
REPORT_READERS = frozenset({DATA_MANAGER, SPONSOR, DSMB})


@dataclass(frozen=True)
class Rule:
    """Who may make one call. ``roles`` act within their scope (site roles: their sites' subjects).

    ``model``: for reads, the model label of the rows or object returned, so the tests can check
    that every row lies in the caller's scope. ``any_trial``: any role in any trial suffices (the
    call touches no trial data, e.g. the grading preview). ``public``: no authentication at all.
    """

    roles: frozenset = frozenset()
    model: str | None = None
    any_trial: bool = False
    public: bool = False


def read(model: str | None = None, roles=ALL) -> Rule:
    return Rule(roles=frozenset(roles), model=model)


def write(roles) -> Rule:
    return Rule(roles=frozenset(roles))


# Clinical resources: list/detail for every role, create/update/void for data entry (api.md).
CLINICAL = {
    "subjects": "trials.subject",
    "infusions": "trials.infusion",
    "assessments": "toxicity.dailyassessment",
    "tocilizumab-doses": "toxicity.tocilizumabdose",
    "corticosteroid-doses": "toxicity.corticosteroiddose",
    "anticytokine-doses": "toxicity.anticytokinedose",
    "plasma-exchanges": "toxicity.plasmaexchange",
    "hemofiltration-sessions": "toxicity.hemofiltrationsession",
    "icu-stays": "toxicity.icustay",
    "adverse-events": "toxicity.adverseevent",
}

TABLE: dict[str, dict[str, Rule]] = {}
for _resource, _model in CLINICAL.items():
    TABLE[f"{_resource}/"] = {"get": read(_model), "post": write(DATA_ENTRY)}
    TABLE[f"{_resource}/{{id}}/"] = {"get": read(_model), "patch": write(DATA_ENTRY)}
    TABLE[f"{_resource}/{{id}}/void/"] = {"post": write(DATA_ENTRY)}

TABLE.update({
    "subjects/{id}/death/": {"get": read("trials.death"), "put": write(DATA_ENTRY)},
    "subjects/{id}/death/void/": {"post": write(DATA_ENTRY)},
    # set-up (read-only over the API)
    "trials/": {"get": read("trials.trial")},
    "trials/{id}/": {"get": read("trials.trial")},
    "trials/{id}/sites/": {"get": read("trials.site")},
    "trials/{id}/cohorts/": {"get": read("trials.cohort")},
    # derived, read-only
    "episodes/": {"get": read("toxicity.episode")},
    "episodes/{id}/": {"get": read("toxicity.episode")},
    # the investigator's review of a derived episode (data-dictionary.md, episode_review)
    "episode-reviews/": {"get": read("toxicity.episodereview"), "post": write({INVESTIGATOR})},
    "episode-reviews/{id}/": {"get": read("toxicity.episodereview"), "patch": write({INVESTIGATOR})},
    "episode-reviews/{id}/void/": {"post": write({INVESTIGATOR})},
    # queries (workflow.md, Query lifecycle)
    "queries/": {"get": read("toxicity.query"), "post": write(REVIEWERS)},
    "queries/{id}/": {"get": read("toxicity.query")},
    "queries/{id}/messages/": {"get": read("toxicity.querymessage"), "post": write(DATA_ENTRY | REVIEWERS)},
    "queries/{id}/answer/": {"post": write(DATA_ENTRY)},
    "queries/{id}/close/": {"post": write(REVIEWERS)},
    "queries/{id}/reopen/": {"post": write(REVIEWERS)},
    "queries/{id}/cancel/": {"post": write(REVIEWERS)},
    # jobs and workflow
    "check-runs/": {"get": read("toxicity.checkrun"), "post": write({DATA_MANAGER})},
    "check-runs/{id}/": {"get": read("toxicity.checkrun")},
    "locks/": {"get": read("trials.lock"), "post": write({DATA_MANAGER})},
    "locks/{id}/": {"get": read("trials.lock")},
    "locks/{id}/unlock/": {"post": write({DATA_MANAGER})},
    "signatures/": {"get": read("trials.casebooksignature")},
    "signatures/{id}/": {"get": read("trials.casebooksignature")},
    "signatures/sign/{subject_pk}/": {"post": write({INVESTIGATOR})},
    "source-verifications/": {"get": read("trials.sourceverification"), "post": write({MONITOR})},
    # grading preview: any role in any trial; it reads and stores nothing
    "grading/preview/": {"post": Rule(roles=ALL, any_trial=True)},
    # bulk import: data entry of the trial; rows of other sites' subjects are row errors
    "imports/{dataset}/": {"post": write(DATA_ENTRY)},
    # audit trail, datasets
    "audit/": {"get": read("audit")},
    "exports/{dataset}.csv": {"get": read("csv", roles=EXPORTERS)},
    "sdtm/{domain}.csv": {"get": read("csv", roles=EXPORTERS)},
    "sdtm/define.json": {"get": read(None, roles=EXPORTERS)},
    # reports (reports.md): AE and open DSMB reports for data manager, sponsor and DSMB; the
    # closed DSMB report for DSMB only (tests/reporting/test_report_runs.py covers the per-kind rule)
    "report-runs/": {"get": read("reporting.reportrun", roles=REPORT_READERS), "post": write(REPORT_READERS)},
    "report-runs/{id}/": {"get": read("reporting.reportrun", roles=REPORT_READERS)},
    "report-runs/{id}/download/": {"get": read(None, roles=REPORT_READERS)},
    "registry/summary.csv": {"get": read("csv", roles={DATA_MANAGER, SPONSOR})},
})

# URL-conf entries under /api/v1/ that are deliberately not in the OpenAPI document.
OUTSIDE_SCHEMA = {
    "schema": Rule(public=True),  # the OpenAPI document itself
    "api-docs": Rule(public=True),  # Swagger UI
    "api-root": Rule(),  # DRF router's browsable index (authenticated)
}


# --- the endpoints as the OpenAPI document describes them ------------------------------------


@cache
def openapi() -> dict:
    from drf_spectacular.generators import SchemaGenerator

    return SchemaGenerator().get_schema(request=None, public=True)


def operations() -> list[tuple[str, str]]:
    """``(path relative to /api/v1/, method)`` of every operation in the OpenAPI document."""
    found = []
    for path, item in openapi()["paths"].items():
        assert path.startswith(API), path
        for method in item:
            if method in METHODS:
                found.append((path[len(API):], method))
    return sorted(found)


def rule_for(path: str, method: str) -> Rule | None:
    return TABLE.get(path, {}).get(method)


def get_paths() -> list[str]:
    """GET paths that have a rule; those without one fail test_every_endpoint_has_an_authorization_rule."""
    return sorted(p for p, m in operations() if m == "get" and rule_for(p, m) is not None)


def write_operations() -> list[tuple[str, str]]:
    return [(p, m) for p, m in operations() if m != "get" and rule_for(p, m) is not None]


def is_list(path: str) -> bool:
    """A collection: no path parameter (``exports/{dataset}.csv`` and the like are datasets, not lists)."""
    return "{" not in path and rule_for(path, "get") is not None and rule_for(path, "get").model not in (None, "csv")


def path_parameters(path: str) -> list[str]:
    return re.findall(r"{(\w+)}", path)


def path_parameter_values(path: str, name: str) -> list[str]:
    """The values a named path parameter takes (``{dataset}``, ``{domain}``): the schema's enum,
    else the export datasets (the schema gives exports/{dataset}.csv no enum)."""
    for operation in openapi()["paths"][API + path].values():
        for parameter in operation.get("parameters", []) if isinstance(operation, dict) else []:
            if parameter["name"] == name and parameter["in"] == "path" and "enum" in parameter["schema"]:
                return list(parameter["schema"]["enum"])
    if path == "exports/{dataset}.csv":
        from reporting.datasets import datasets

        return sorted(datasets())
    raise AssertionError(f"{path}: say which values {{{name}}} takes (an enum in the schema, or here)")


def url_conf_api_routes() -> list[tuple[str, str]]:
    """``(path template relative to /api/v1/, URL name)`` of every URL-conf entry under /api/v1/,
    written as the OpenAPI document writes paths (``{id}`` for a router's pk); format-suffix
    variants of router URLs are left out."""

    def walk(patterns, prefix):
        for p in patterns:
            if isinstance(p, URLResolver):
                yield from walk(p.url_patterns, prefix + str(p.pattern))
            elif isinstance(p, URLPattern):
                yield prefix + str(p.pattern), p.name

    routes = []
    for route, name in walk(get_resolver().url_patterns, ""):
        route = route.replace("^", "").replace("$", "")
        if not route.startswith(API.lstrip("/")):
            continue
        template = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", route[len(API) - 1:])
        template = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", template).replace("\\.", ".").replace("{pk}", "{id}")
        if "{format}" not in template:
            routes.append((template, name))
    return sorted(set(routes))
