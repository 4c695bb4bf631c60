"""The authorization matrix of every HTML view (workflow.md "Roles"), generated from the URL conf
and checked against the explicit table ``RULES`` below (the HTML half of the matrix whose API half
is ``tests/api/test_authorization.py``):

- every named URL outside /api/v1/ and /admin/ needs a rule here, or the suite fails ("new view
  without an authorization rule"); every /admin/ URL sends anonymous and non-staff users to the
  admin login (the admin has its own staff permissions);
- GET as every caller (each role at site A, the same roles at site B against site A's objects,
  the trial roles, a data manager of another trial, a user without any role, anonymous): 200 for
  the roles of the rule, 404 (never 403) for the others, a redirect to the login page for
  anonymous users (the HTML "401"); a page a caller outside site A may see never shows site A's
  subject;
- POST as every caller a view refuses: 404 (405 for views that take no POST), never a 403, and
  nothing written (every row of the trials, toxicity, reporting and auth tables, history tables
  included, counted before and after). Successful writes are tests/web/test_views.py's business.

Where a view is more permissive than the clinically safe rule, the rule states the safe
expectation and only that case is marked ``xfail(strict=True)`` in ``DEFECTS``.
"""
import re
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Callable
from urllib.parse import urlencode

import pytest
from django.apps import apps
from django.conf import settings
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from toxicity import services
from toxicity.models import Episode, IcuStay, Query
from trials import workflow_services as wf

API, ADMIN = "api/v1/", "admin/"
LOGIN = settings.LOGIN_URL  # /accounts/login/

# --- callers ------------------------------------------------------------------------------------
# Site roles of site A (the objects' site), the same roles at site B ("a user of another site"),
# trial roles, a data manager of another trial, a user with no role at all, and anonymous.
SITE_A = ("coordinator_a", "investigator_a", "monitor_a")
SITE_B = ("coordinator_b", "investigator_b", "monitor_b")
TRIAL = ("data_manager", "sponsor", "dsmb")
STRANGERS = ("outsider", "nobody")
USERS = SITE_A + SITE_B + TRIAL + STRANGERS
ANONYMOUS = "anonymous"
CALLERS = USERS + (ANONYMOUS,)

# everyone who reads site A's CRF pages: not sponsor and DSMB, who read de-identified exports and
# reports only (workflow.md, Roles; trials.roles.CRF_ROLES)
SEE_A = frozenset(SITE_A + ("data_manager",))
IN_SCOPE_A = frozenset(SITE_A + TRIAL)  # whose pages may name site A's subject (sponsor, DSMB: in reports)
ENTRY_A = frozenset({"coordinator_a", "investigator_a"})  # data entry at site A
ENTRY_TRIAL = ENTRY_A | {"coordinator_b", "investigator_b"}  # data entry somewhere in the trial
REVIEWERS_A = frozenset({"monitor_a", "data_manager"})  # raise / close queries on site A
QUERY_WRITERS_A = ENTRY_A | REVIEWERS_A  # write in a site A query thread
REPORT_READERS = frozenset({"data_manager", "sponsor", "dsmb"})
ANY_USER = frozenset(USERS)  # any signed-in user (the page shows only what the user may see)
EVERYONE = frozenset(CALLERS)  # public, anonymous included

NO_POST = "no-post"  # the view handles no POST: 405, or the same answer as a GET, and no write
NOT_TESTED = "not-tested"  # POST open to everyone (login, logout): nothing to refuse


@dataclass(frozen=True)
class Rule:
    """Who may call one HTML view. ``get``: callers answered 200 (None: the view is POST-only, a
    GET is 405). ``post``: callers the view lets write (a set), NO_POST or NOT_TESTED.
    ``kwargs``/``query``/``data`` build the URL arguments, the query string and the POST body
    from the objects of the ``objects`` fixture. ``public``: no login required."""

    kwargs: Callable = lambda o: {}
    get: frozenset | None = SEE_A
    post: object = NO_POST
    query: Callable = lambda o: {}
    data: Callable = lambda o: {}
    public: bool = False


def _day(o):
    return {"pk": o.subject.pk, "day": o.assessment.assessment_date.isoformat()}


ASSESSMENT_FORM = {"temperature": "37.2", "temperature_unit": "C", "oxygen_device": "none", "ice_score": "10",
                   "consciousness": "alert", "seizure": "none", "motor_weakness": "none",
                   "cerebral_edema": "none"}
SUBJECT_FORM = {"subject_id": "101-0777", "cohort": "", "enrolled_on": "2026-10-01", "sex": "male",
                "date_of_birth": "1960-02-03", "diagnosis": "dlbcl", "baseline_weight_kg": "80"}
INFUSION_FORM = {"infusion_number": 2, "product": "tisagenlecleucel", "lot_number": "L9",
                 "infused_at": "2026-10-10T10:00", "dose_cells_per_kg": "1000000", "weight_kg": "80",
                 "lymphodepletion_regimen": "flu_cy", "lymphodepletion_start_date": "2026-10-05"}

RULES: dict[str, Rule] = {
    # pages of every signed-in user; their content is scoped (checked: no site A subject leaks)
    "home": Rule(get=ANY_USER),
    "queries-page": Rule(get=ANY_USER),
    # a subject's CRF pages: everyone who sees the subject reads, site A data entry writes
    "casebook": Rule(kwargs=lambda o: {"pk": o.subject.pk}),
    "assessment-day": Rule(kwargs=_day, post=ENTRY_A,
                           data=lambda o: {**ASSESSMENT_FORM, "version": o.assessment.version, "reason": "source"}),
    # the day form's live grade panel: data entry only (read-only roles see the saved grades); it writes nothing
    "assessment-preview": Rule(kwargs=_day, get=None, post=ENTRY_A, data=lambda o: {}),
    "log": Rule(kwargs=lambda o: {"pk": o.subject.pk, "kind": "icu"}, post=ENTRY_A,
                data=lambda o: {"admitted_at": (o.infusion.infused_at + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M"),
                                "reason": "crs"}),
    "log-record": Rule(kwargs=lambda o: {"pk": o.subject.pk, "kind": "icu", "record_pk": o.icu.pk}, post=ENTRY_A,
                       data=lambda o: {"admitted_at": o.icu_admitted, "reason": "icans", "version": o.icu.version,
                                       "change_reason": "source updated"}),
    "history": Rule(kwargs=lambda o: {"record_type": "toxicity.dailyassessment", "record_pk": o.assessment.pk}),
    # the investigator's review of a derived episode: every reader sees it, only the site's investigator writes
    "episode-review": Rule(kwargs=lambda o: {"pk": o.subject.pk, "kind": o.episode.kind,
                                             "onset": o.episode.onset_date.isoformat()},
                           post=frozenset({"investigator_a"}),
                           data=lambda o: {"relatedness": "possible", "outcome": "recovered", "comment": "per PI"}),
    # the forms of the trials app: only data entry opens them at all (GET included)
    "subject-new": Rule(kwargs=lambda o: {"trial_pk": o.trial.pk}, get=ENTRY_TRIAL, post=ENTRY_TRIAL,
                        data=lambda o: {**SUBJECT_FORM, "site": o.subject.site_id, "cohort": o.subject.cohort_id}),
    "subject-edit": Rule(kwargs=lambda o: {"pk": o.subject.pk}, get=ENTRY_A, post=ENTRY_A,
                         data=lambda o: {**SUBJECT_FORM, "subject_id": o.subject.subject_id, "site": o.subject.site_id,
                                         "cohort": o.subject.cohort_id, "version": o.subject.version,
                                         "change_reason": "source updated"}),
    "infusion-new": Rule(kwargs=lambda o: {"pk": o.subject.pk}, get=ENTRY_A, post=ENTRY_A, data=lambda o: INFUSION_FORM),
    "infusion-edit": Rule(kwargs=lambda o: {"pk": o.subject.pk, "infusion_pk": o.infusion.pk}, get=ENTRY_A,
                          post=ENTRY_A, data=lambda o: {**INFUSION_FORM, "infusion_number": 1,
                                                        "version": o.infusion.version, "change_reason": "source"}),
    "death": Rule(kwargs=lambda o: {"pk": o.subject.pk}, get=ENTRY_A, post=ENTRY_A,
                  data=lambda o: {"death_date": (o.subject.day0 + timedelta(days=20)).isoformat(),
                                  "death_primary_cause": "infection"}),
    # workflow: sign (investigator), lock and unlock (data manager), source-data verification (monitor)
    "sign-casebook": Rule(kwargs=lambda o: {"pk": o.subject.pk}, get=frozenset({"investigator_a"}),
                          post=frozenset({"investigator_a"}), data=lambda o: {"password": "correct-horse-battery"}),
    "lock-casebook": Rule(kwargs=lambda o: {"pk": o.subject.pk}, get=None, post=frozenset({"data_manager"}),
                          data=lambda o: {"reason": "database lock rehearsal"}),
    "unlock": Rule(kwargs=lambda o: {"lock_pk": o.lock.pk}, get=None, post=frozenset({"data_manager"}),
                   data=lambda o: {"reason": "queries to resolve"}),
    "verify-form": Rule(kwargs=lambda o: {"record_type": "toxicity.dailyassessment", "record_pk": o.assessment.pk},
                        get=None, post=frozenset({"monitor_a"})),
    # queries: every reader of the subject reads the thread; site data entry and reviewers write in
    # it; only reviewers (monitor, data manager) raise a manual query, so only they open that form
    "query-raise-page": Rule(get=REVIEWERS_A, post=REVIEWERS_A, query=lambda o: o.raise_target,
                             data=lambda o: {**o.raise_target, "text": "ICE in source is 9"}),
    "query-page": Rule(kwargs=lambda o: {"query_pk": o.query.pk}, post=QUERY_WRITERS_A,
                       data=lambda o: {"action": "message", "text": "Please check the source."}),
    # reports (reports.md): data manager, sponsor and DSMB
    "reports-page": Rule(kwargs=lambda o: {"pk": o.trial.pk}, get=REPORT_READERS, post=REPORT_READERS,
                         data=lambda o: {"kind": "ae_report"}),
    "ae-report-page": Rule(kwargs=lambda o: {"pk": o.trial.pk}, get=REPORT_READERS),
    # accounts
    "login": Rule(get=EVERYONE, post=NOT_TESTED, public=True),
    "logout": Rule(get=None, post=NOT_TESTED, public=True),
    "password_change": Rule(get=ANY_USER, post=ANY_USER),
    "password_change_done": Rule(get=ANY_USER),
}

# Cases where the view is more permissive than the rule: (URL name, caller, method) -> defect.
_RAISE_GET = ("query-raise-page GET renders the 'raise a manual query' form, with the record's current value of "
              "the field named in the query string (any field, e.g. trials.subject date_of_birth), to every role that "
              "sees the record; toxicity.query_pages.query_raise checks scope only, not the reviewer role (monitor, "
              "data manager) that queries.query_raise requires")
_RAISE_POST = ("query-raise-page POST by an in-scope non-reviewer: queries._acting_role raises ValidationError, so "
               "the view answers 200 with 'Your role (...) may not do this' instead of 404 (nothing is written)")
_MESSAGE_POST = ("query-page POST (message) by sponsor/DSMB: queries._acting_role raises ValidationError, so the "
                 "view answers 200 with an error message instead of 404 (nothing is written)")
# Defects this matrix found (kept as documentation; all three are fixed, so no case is expected to fail).
FIXED = (_RAISE_GET, _RAISE_POST, _MESSAGE_POST)
DEFECTS: dict[tuple[str, str, str], str] = {}


# --- the URL conf -------------------------------------------------------------------------------


def url_conf_patterns(resolver=None, prefix="", namespace=None):
    """(route, URL name with namespace, pattern) of every URL pattern of the project."""
    resolver = resolver or get_resolver()
    for p in resolver.url_patterns:
        if isinstance(p, URLResolver):
            ns = ":".join(n for n in (namespace, p.namespace) if n) or None
            yield from url_conf_patterns(p, prefix + str(p.pattern), ns)
        elif isinstance(p, URLPattern):
            name = f"{namespace}:{p.name}" if namespace and p.name else p.name
            yield prefix + str(p.pattern), name, p


def _static(route):
    prefixes = [str(u or "").lstrip("/") for u in (settings.STATIC_URL, settings.MEDIA_URL)]
    return any(p and route.startswith(p) for p in prefixes)


def html_routes():
    return [(route, name) for route, name, _ in url_conf_patterns()
            if not route.startswith((API, ADMIN)) and not _static(route)]


def admin_routes():
    return [(route, name) for route, name, _ in url_conf_patterns() if route.startswith(ADMIN)]


HTML_NAMES = sorted({name or route for route, name in html_routes()})


def test_every_html_view_has_an_authorization_rule():
    unnamed = [route for route, name in html_routes() if not name]
    missing = [f"{name} ({route})" for route, name in html_routes() if name and name not in RULES]
    assert not unnamed, f"HTML URLs without a name (name them so they get a rule): {unnamed}"
    assert not missing, ("new view without an authorization rule: " + ", ".join(missing)
                         + ". Say who may GET and POST it in RULES of tests/web/test_html_authorization.py.")


def test_every_rule_names_a_view():
    stale = sorted(set(RULES) - {name for _, name in html_routes()})
    assert not stale, f"rules for views that no longer exist: {stale}"


# --- objects ------------------------------------------------------------------------------------


@dataclass
class Objects:
    trial: object
    subject: object
    infusion: object
    assessment: object
    icu: object
    icu_admitted: str
    query: object
    lock: object
    episode: object = None
    raise_target: dict = field(default_factory=dict)


@pytest.fixture
def objects(world):
    """Site A records made through the services, as tests/web/test_views.py does. Day 1's fever
    (38.6 C) derives a CRS episode, which the episode review page names."""
    coordinator, subject = world.users["coordinator_a"], world.subject_a
    day = subject.day0 + timedelta(days=1)
    a = services.assessment_create(user=coordinator, subject=subject, assessment_date=day,
                                   temperature_max_c=Decimal("38.6"), ice_score=10, crs_grade_reported=2,
                                   consciousness="alert")
    admitted = world.infusion_a.infused_at + timedelta(days=2)
    icu = services.log_create(IcuStay, user=coordinator, subject=subject, admitted_at=admitted, reason="crs")
    query = Query.objects.get(rule_id="CRS-GRADE-MISMATCH", subject=subject)
    # a form lock on a second day's assessment: something to unlock that blocks none of the forms above
    other = services.assessment_create(user=coordinator, subject=subject, assessment_date=day + timedelta(days=1),
                                       temperature_max_c=Decimal("37.0"), ice_score=10,
                                       consciousness="alert")
    lock = wf.lock_create(user=world.users["data_manager"], scope="form", trial=world.trial, record=other,
                          reason="reviewed")
    for obj in (subject, world.infusion_a, a, icu):
        obj.refresh_from_db()
    return Objects(trial=world.trial, subject=subject, infusion=world.infusion_a, assessment=a, icu=icu,
                   icu_admitted=icu.admitted_at.strftime("%Y-%m-%dT%H:%M"), query=query, lock=lock,
                   episode=Episode.objects.get(subject=subject, kind="crs", voided=False),
                   raise_target={"record_type": "toxicity.dailyassessment", "record_id": str(a.pk),
                                 "field": "ice_score"})


def client_for(world, caller) -> Client:
    client = Client()
    if caller != ANONYMOUS:
        client.force_login(world.users[caller])
    return client


def url_of(name, objects) -> str:
    rule = RULES[name]
    url = reverse(name, kwargs=rule.kwargs(objects))
    query = rule.query(objects)
    return f"{url}?{urlencode(query)}" if query else url


DB_APPS = ("trials", "toxicity", "reporting", "auth")


def db_rows() -> dict[str, int]:
    """Row counts of every table of the clinical apps and auth, the history tables included."""
    return {m._meta.label: m._default_manager.count() for label in DB_APPS for m in apps.get_app_config(label).get_models()}


def _redirects_to_login(response, login=LOGIN):
    return response.status_code == 302 and response["Location"].startswith(login)


def _assert_no_leak(response, caller, objects, what):
    if caller in IN_SCOPE_A or response.status_code != 200 or "html" not in response.get("Content-Type", ""):
        return
    page = response.content.decode()
    assert objects.subject.subject_id not in page, f"{what}: shows site A's subject to {caller}"


# --- the matrix ---------------------------------------------------------------------------------


def _cases(method):
    for name in HTML_NAMES:
        rule = RULES.get(name)  # no rule: every case is generated and fails
        for caller in CALLERS:
            if method == "post" and rule is not None and (
                    rule.post == NOT_TESTED or (isinstance(rule.post, frozenset) and caller in rule.post)):
                continue  # allowed writes: tests/web/test_views.py
            reason = DEFECTS.get((name, caller, method))
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            yield pytest.param(name, caller, id=f"{name}-{caller}", marks=marks)


def _rule(name) -> Rule:
    rule = RULES.get(name)
    assert rule is not None, f"new view without an authorization rule: {name}"
    return rule


@pytest.mark.parametrize("name,caller", list(_cases("get")))
def test_get(world, objects, name, caller):
    rule = _rule(name)
    url = url_of(name, objects)
    response = client_for(world, caller).get(url)
    what = f"GET {url} ({name}) as {caller}"
    if caller == ANONYMOUS and not rule.public:
        assert _redirects_to_login(response), f"{what}: {response.status_code}, expected a redirect to {LOGIN}"
        return
    if rule.get is None:
        expected = 405
    else:
        expected = 200 if caller in rule.get else 404
    assert response.status_code == expected, f"{what}: {response.status_code}, expected {expected}"
    _assert_no_leak(response, caller, objects, what)


@pytest.mark.parametrize("name,caller", list(_cases("post")))
def test_post_refused(world, objects, name, caller):
    rule = _rule(name)
    client = client_for(world, caller)
    url = url_of(name, objects)
    what = f"POST {url} ({name}) as {caller}"
    before = db_rows()
    response = client.post(url, rule.data(objects))
    assert db_rows() == before, f"{what}: wrote to the database"
    if caller == ANONYMOUS and not rule.public:
        assert _redirects_to_login(response), f"{what}: {response.status_code}, expected a redirect to {LOGIN}"
        return
    if rule.post == NO_POST:
        # a view without a POST branch answers 405 or exactly what a GET would
        same_as_get = 404 if rule.get is None or caller not in rule.get else 200
        assert response.status_code in (405, same_as_get), (
            f"{what}: {response.status_code}, expected 405 or {same_as_get}")
    else:
        assert response.status_code == 404, f"{what}: {response.status_code}, expected 404"
    _assert_no_leak(response, caller, objects, what)


# --- the admin ----------------------------------------------------------------------------------

ADMIN_SAMPLES = {"object_id": "1", "content_type_id": "1", "id": "1", "app_label": "trials", "url": "no-such-page/"}


def admin_path(route) -> str:
    path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: ADMIN_SAMPLES[m[1]], route)
    path = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: ADMIN_SAMPLES[m[1]], path)
    return "/" + path.replace("^", "").replace("$", "")


ADMIN_PATHS = sorted({admin_path(route) for route, name in admin_routes() if name != "admin:login"})


def test_the_admin_is_walked():
    assert "/admin/" in ADMIN_PATHS and "/admin/trials/subject/" in ADMIN_PATHS, ADMIN_PATHS


@pytest.mark.parametrize("caller", ["anonymous", "coordinator_a", "data_manager", "outsider", "nobody"])
def test_every_admin_url_sends_non_staff_to_the_admin_login(world, caller):
    assert caller == ANONYMOUS or not world.users[caller].is_staff
    client = client_for(world, caller)
    login, index = reverse("admin:login"), reverse("admin:index")
    wrong = []
    before = db_rows()
    for path in ADMIN_PATHS:
        for method in ("get", "post"):
            response = getattr(client, method)(path)
            ok = _redirects_to_login(response, login) or (
                path == reverse("admin:logout") and response.status_code == 302 and response["Location"] == index)
            if not ok:
                wrong.append((method.upper(), path, response.status_code, response.get("Location")))
    assert not wrong, f"admin URLs not sending {caller} to the admin login: {wrong}"
    assert db_rows() == before, f"the admin wrote to the database for {caller}"
