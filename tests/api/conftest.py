"""A populated trial for the API-wide tests: one record of every resource per subject (more on
request), a voided record of every clinical resource, a death, queries with a thread, a
verification, a lock, a signature and a check run, all written through the API or the services.

The data are built once per test module inside a transaction that is rolled back when the
module ends; every test still runs in its own savepoint (pytest-django ``db``), so writes made
by one test are invisible to the next. Callers authenticate with DRF tokens, as programs do.
"""
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import transaction
from django.test import override_settings
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.conftest import build_world
from toxicity import queries
from reporting.models import ReportRun
from toxicity.models import CheckRun, DailyAssessment, IcuStay
from trials import workflow_services as wf
from trials.models import Subject

API = "/api/v1/"
PASSWORD = "correct-horse-battery"  # tests/factories.py UserFactory

# Values that must never reach a sponsor or DSMB response (reports.md, De-identification).
BIRTH_DATE = date(1970, 6, 1)  # tests/factories.py subject_fields
DEATH_TEXT = "Zq7-DEATH-TEXT sentinel typed by the site"
VOID_REASON = "Zq7-VOID-REASON sentinel typed by the site"
CHANGE_REASON = "Zq7-CHANGE-REASON sentinel typed by the site"
QUERY_TEXT = "Zq7-QUERY-TEXT sentinel typed by the monitor"  # manual query texts are withheld too (exports)
MESSAGE_TEXT = "Zq7-MESSAGE-TEXT sentinel typed by the site"
REVIEW_COMMENT = "Zq7-REVIEW-COMMENT sentinel typed by the investigator"
SENTINELS = (DEATH_TEXT, VOID_REASON, CHANGE_REASON, QUERY_TEXT, MESSAGE_TEXT, REVIEW_COMMENT)

USERS = (
    "coordinator_a", "coordinator_b", "investigator_a", "investigator_b", "monitor_a", "monitor_b",
    "data_manager", "sponsor", "dsmb", "outsider", "nobody",
)
CALLERS = (*USERS, "anonymous")


# --- request bodies of every create, valid for record number ``n`` of a subject ------------------


def moment(subject: Subject, days_after_day0: int, hour: int = 9, minute: int = 0) -> str:
    day = subject.day0 + timedelta(days=days_after_day0)
    return datetime.combine(day, time(hour, minute), tzinfo=ZoneInfo(subject.site.timezone)).isoformat()


def assessment_body(subject, n):
    """Fever on even days only: each starts a new CRS episode, which the odd day after ends."""
    return {"assessment_date": str(subject.day0 + timedelta(days=n)), "temperature_max_c": "36.8" if n % 2 else "38.4",
            "ice_score": 10, "consciousness": "alert"}


CREATE_BODIES = {
    "assessments": assessment_body,
    "tocilizumab-doses": lambda s, n: {"administered_at": moment(s, 1 + n), "dose_mg": "560", "weight_kg": "70",
                                       "indication": "crs"},
    "corticosteroid-doses": lambda s, n: {"drug": "dexamethasone", "administered_at": moment(s, 1 + n, 10),
                                          "dose_mg": "10", "route": "iv", "indication": "icans"},
    "anticytokine-doses": lambda s, n: {"drug": "anakinra", "administered_at": moment(s, 1 + n, 11), "dose_mg": "100",
                                        "weight_kg": "70", "route": "iv", "indication": "crs"},
    "plasma-exchanges": lambda s, n: {"started_at": moment(s, 1 + n, 8), "ended_at": moment(s, 1 + n, 10),
                                      "plasma_volume_exchanged_ml": 3000, "replacement_fluid": "albumin_5",
                                      "hematocrit_fraction": "0.30", "weight_kg": "70"},
    "hemofiltration-sessions": lambda s, n: {"modality": "cvvhdf", "started_at": moment(s, 1 + n, 8),
                                             "ended_at": moment(s, 1 + n, 20), "effluent_rate_ml_h": 1750,
                                             "weight_kg": "70"},
    "icu-stays": lambda s, n: {"admitted_at": moment(s, 1 + n, 12), "discharged_at": moment(s, 1 + n, 18),
                               "reason": "crs"},
    "adverse-events": lambda s, n: {"ctcae_term": "Febrile neutropenia", "ctcae_version": "v5.0", "grade": 3,
                                    "onset_date": str(s.day0 + timedelta(days=1 + n)),
                                    "resolution_date": str(s.day0 + timedelta(days=2 + n)), "serious": True,
                                    "seriousness": ["hospitalization"], "relatedness": "probable",
                                    "outcome": "recovered"},
}
SUBJECT_RECORD_RESOURCES = tuple(CREATE_BODIES)  # records that belong to a subject (body field "subject")


def review_body(subject, onset_day: int) -> dict:
    """The investigator's review of the CRS episode with onset on ``onset_day`` (days with fever)."""
    return {"subject": subject.pk, "kind": "crs", "onset_date": str(subject.day0 + timedelta(days=onset_day)),
            "serious": True, "seriousness": ["important_medical_event"], "relatedness": "probable",
            "outcome": "recovered", "comment": REVIEW_COMMENT}


def subject_body(site, cohort, n):
    return {"subject_id": f"{site.site_number}-9{n:03d}", "site": site.pk, "cohort": cohort.pk,
            "enrolled_on": str(date.today() - timedelta(days=40)), "sex": "male", "date_of_birth": str(BIRTH_DATE),
            "diagnosis": "dlbcl", "baseline_weight_kg": "70.0"}


def infusion_body(subject, n):
    """A further infusion (number 2, 3, ...) some days after the index one."""
    return {"subject": subject.pk, "infusion_number": 2 + n, "product": "tisagenlecleucel", "lot_number": f"LOT-{n}",
            "infused_at": moment(subject, 1 + n, 14), "dose_cells_per_kg": 1.0e6, "weight_kg": "70.0",
            "lymphodepletion_regimen": "flu_cy", "lymphodepletion_start_date": str(subject.day0 - timedelta(days=5))}


def create_body(resource: str, world, subject, n: int = 0) -> dict:
    """A valid POST body creating record ``n`` of ``resource`` for ``subject``."""
    if resource == "subjects":
        return subject_body(subject.site, world.cohort, n)
    if resource == "infusions":
        return infusion_body(subject, n)
    return {"subject": subject.pk, **CREATE_BODIES[resource](subject, n)}


VOID_N = 15  # record number of the voided records: after every other record, still in the past (day 0 is 20 days ago)
CLINICAL_RESOURCES = ("subjects", "infusions", *SUBJECT_RECORD_RESOURCES)


# --- the populated world -----------------------------------------------------------------------


@dataclass
class ApiWorld:
    world: object
    tokens: dict = field(default_factory=dict)  # user name -> token key
    records: dict = field(default_factory=dict)  # (resource, "a"/"b") -> [ids]; voided: (resource, "void")
    queries: dict = field(default_factory=dict)  # "a"/"b" -> query id

    def __getattr__(self, name):  # trial, site_a, subject_a, users, ... of the underlying world
        return getattr(self.__dict__["world"], name)

    def client(self, name: str) -> APIClient:
        client = APIClient()
        if name != "anonymous":
            client.credentials(HTTP_AUTHORIZATION=f"Token {self.tokens[name]}")
        return client


def _created(response, what):
    assert response.status_code in (200, 201, 202), (what, response.status_code, response.content[:2000])
    return response.json()


def build_api_world(*, rows: int = 1, assessment_rows: int | None = None) -> ApiWorld:
    """``rows`` records of every subject resource for each subject of site A (1 for site B);
    ``assessment_rows`` daily assessments (fever every other day: one CRS episode per two days)."""
    assert max(rows, assessment_rows or 0) < VOID_N
    world = build_world(prefix="api_")
    data = ApiWorld(world=world)
    for name in USERS:
        data.tokens[name] = Token.objects.create(user=world.users[name]).key
    coordinator = {"a": "coordinator_a", "b": "coordinator_b"}

    for site in ("a", "b"):
        client = data.client(coordinator[site])
        site_obj, subject = getattr(world, f"site_{site}"), getattr(world, f"subject_{site}")
        n_rows = rows if site == "a" else 1
        data.records[("subjects", site)] = [subject.pk]
        data.records[("infusions", site)] = [getattr(world, f"infusion_{site}").pk]
        for resource in SUBJECT_RECORD_RESOURCES:
            count = (assessment_rows or n_rows) if resource == "assessments" and site == "a" else n_rows
            for n in range(count):
                made = _created(client.post(f"{API}{resource}/", create_body(resource, world, subject, n),
                                            format="json"), (resource, n))
                data.records.setdefault((resource, site), []).append(made["id"])
        for n in range(1, n_rows):  # more infusions and subjects where more rows are wanted
            made = _created(client.post(f"{API}infusions/", infusion_body(subject, n), format="json"), "infusion")
            data.records[("infusions", site)].append(made["id"])
            made = _created(client.post(f"{API}subjects/", subject_body(site_obj, world.cohort, n), format="json"),
                            "subject")
            data.records[("subjects", site)].append(made["id"])

    # A voided record of every clinical resource (site A), voided with a sentinel reason; an
    # update with a sentinel change reason (audit trail).
    client = data.client("coordinator_a")
    subject = world.subject_a
    for resource in CLINICAL_RESOURCES:
        body = create_body(resource, world, subject, VOID_N)
        made = _created(client.post(f"{API}{resource}/", body, format="json"), ("void target", resource))
        voided = _created(client.post(f"{API}{resource}/{made['id']}/void/", {"version": made["version"],
                                      "reason": VOID_REASON}, format="json"), ("void", resource))
        data.records[(resource, "void")] = [voided["id"]]
    stay = data.records[("icu-stays", "a")][0]
    _created(client.patch(f"{API}icu-stays/{stay}/", {"version": 1, "reason": "icans", "change_reason": CHANGE_REASON},
                          format="json"), "update")

    # Death of subject A (cause "other", sentinel text).
    death = {"death_date": str(date.today() - timedelta(days=1)), "death_primary_cause": "other",
             "death_cause_other_text": DEATH_TEXT}
    _created(client.put(f"{API}subjects/{subject.pk}/death/", death, format="json"), "death")

    # The investigator's review of each subject's first CRS episode (fever on day 0), with a sentinel
    # comment; at site A a review voided before it (episode reviews: investigators only).
    for site in ("a", "b"):
        subject = getattr(world, f"subject_{site}")
        investigator = data.client(f"investigator_{site}")
        body = review_body(subject, 0)
        if site == "a":
            made = _created(investigator.post(f"{API}episode-reviews/", body, format="json"), "review to void")
            voided = _created(investigator.post(f"{API}episode-reviews/{made['id']}/void/",
                                                {"version": made["version"], "reason": VOID_REASON}, format="json"),
                              "review void")
            data.records[("episode-reviews", "void")] = [voided["id"]]
        made = _created(investigator.post(f"{API}episode-reviews/", body, format="json"), "review")
        data.records[("episode-reviews", site)] = [made["id"]]

    # A manual query per site with a thread; source verification, a form lock, a signature, a check run.
    for site in ("a", "b"):
        subject = getattr(world, f"subject_{site}")
        monitor = world.users[f"monitor_{site}"]
        q = queries.query_raise(user=monitor, record_type="trials.subject", record_id=subject.pk, field="sex",
                                text=QUERY_TEXT)
        queries.query_message(user=world.users[coordinator[site]], query=q, text=MESSAGE_TEXT)
        data.queries[site] = q.pk
        # Manual queries keep the value at raise time: on the birth date, and on the death cause text.
        queries.query_raise(user=monitor, record_type="trials.subject", record_id=subject.pk, field="date_of_birth",
                            text="Please check the birth date.")
        if site == "a":
            queries.query_raise(user=monitor, record_type="trials.death", record_id=subject.deaths.get(voided=False).pk,
                                field="death_cause_other_text", text="Please give the cause in the source's words.")
        assessment = DailyAssessment.objects.filter(subject=subject, voided=False).first()
        wf.form_verify(user=monitor, record=assessment)
        # a form lock on a record no write test touches: site A's voided ICU stay, site B's stay
        locked = IcuStay.objects.filter(subject=subject, voided=(site == "a")).first()
        wf.lock_create(user=world.users["data_manager"], scope="form", trial=world.trial, record=locked,
                       reason="reviewed")
        wf.casebook_sign(user=world.users[f"investigator_{site}"], subject=subject, password=PASSWORD)
    CheckRun.objects.create(trial=world.trial, requested_by=world.users["data_manager"])
    # Finished report runs every report reader may read (the closed DSMB kind has its own tests).
    for n in range(max(rows, 1) * 6):
        ReportRun.objects.create(
            trial=world.trial, kind="ae_report" if n % 2 else "dsmb_open", data_cut=timezone.now(), status="done",
            requested_by=world.users["data_manager"], file=b"%PDF-1.4 test report", filename=f"report-{n}.pdf",
            size_bytes=20, data_hash="0" * 64, progress_done=1, progress_total=1,
        )
    return data


@pytest.fixture(scope="module", autouse=True)
def unthrottled():
    """These tests make thousands of calls a minute as one user; throttling has its own tests
    (tests/config/test_throttling.py). config.security reads the rates at each request."""
    from django.conf import settings

    rates = {scope: "1000000/min" for scope in settings.REST_FRAMEWORK.get("DEFAULT_THROTTLE_RATES", {})}
    with override_settings(REST_FRAMEWORK={**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}):
        yield


@pytest.fixture(scope="module")
def api_world(request, django_db_setup, django_db_blocker):
    """The populated world, built once per module (``API_WORLD = {...}`` in the module sets sizes)."""
    options = getattr(request.module, "API_WORLD", {})
    fast_hasher = override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"])
    with django_db_blocker.unblock(), fast_hasher:
        with transaction.atomic():
            data = build_api_world(**options)
            yield data
            transaction.set_rollback(True)


@pytest.fixture
def api(api_world, db):
    """The module's world, inside this test's own savepoint."""
    return api_world
