"""Typed-in CTCAE adverse events (data-dictionary.md, "Other adverse events"): the shipped term list,
every hard rule at its boundary (400 naming the field, nothing stored), version/reason/void and
409 over the API, scoping per role, one history row per write, and the CRF log page."""
import ast
from datetime import date, timedelta
from pathlib import Path

import pytest
from django.db import IntegrityError, transaction
from django.test import Client
from django.utils import timezone

from toxicity import ctcae_terms, services, validation
from toxicity.choices import Seriousness
from toxicity.models import AdverseEvent, DailyAssessment
from trials import services as trial_services
from trials.services import site_local_date

URL = "/api/v1/adverse-events/"


def day(world, n: int) -> date:
    return world.subject_a.day0 + timedelta(days=n)


def today_a(world) -> date:
    return site_local_date(timezone.now(), world.site_a)


def ae(world, **overrides) -> dict:
    """A valid serious febrile neutropenia of subject A (day 0 is 20 days ago)."""
    body = {
        "ctcae_term": "Febrile neutropenia", "ctcae_version": "v5.0", "grade": 3,
        "onset_date": str(day(world, 5)), "resolution_date": str(day(world, 8)),
        "serious": True, "seriousness": ["hospitalization"], "relatedness": "probable", "outcome": "recovered",
    }
    body.update(overrides)
    return body


def post(world, body, user="coordinator_a"):
    return world.client(user).post(URL, {"subject": world.subject_a.pk, **body}, format="json")


def refused(response, field, *words):
    """400 naming ``field`` (with ``words`` in its message) and nothing stored."""
    assert response.status_code == 400, response.content
    messages = " ".join(response.json().get(field, []))
    assert messages, response.json()
    for word in words:
        assert word in messages, messages
    assert not AdverseEvent.objects.exists()


def history(record) -> list:
    return list(AdverseEvent.history.filter(id=record.pk).order_by("history_id"))


# --- the shipped term list --------------------------------------------------------------------


def test_the_term_list_covers_every_organ_class_and_the_car_t_terms():
    v5 = ctcae_terms.terms("v5.0")
    assert len(v5) >= 150
    assert len(set(v5.values())) == 26  # every CTCAE v5.0 System Organ Class
    for term in ("Febrile neutropenia", "Neutrophil count decreased", "Platelet count decreased", "Anemia",
                 "Tumor lysis syndrome", "Hypotension", "Hypoxia", "Encephalopathy", "Seizure", "Dysphasia",
                 "Edema cerebral", "Atrial fibrillation", "Sepsis", "Lung infection", "Cytokine release syndrome",
                 "Immune system disorders - Other, specify"):
        assert term in v5, term
    assert v5["Febrile neutropenia"] == "Blood and lymphatic system disorders"
    assert "Hemophagocytic lymphohistiocytosis" not in v5  # not a CTCAE v5.0 term


def test_v6_is_the_v5_list_plus_its_icans_term_and_unknown_versions_are_empty():
    v5, v6 = ctcae_terms.terms("v5.0"), ctcae_terms.terms("v6.0")
    assert set(v5) < set(v6)
    assert set(v6) - set(v5) == {"Immune effector cell-associated neurotoxicity syndrome"}
    assert ctcae_terms.terms("v4.03") == {}


def test_term_lookup_ignores_case_and_spacing_and_derived_terms_are_not_offered():
    assert ctcae_terms.canonical("v5.0", "  febrile   NEUTROPENIA ") == "Febrile neutropenia"
    assert ctcae_terms.canonical("v5.0", "Febrile neutropaenia") is None
    assert ctcae_terms.soc("v6.0", "hypoxia") == "Respiratory, thoracic and mediastinal disorders"
    typeable = ctcae_terms.typeable_terms()
    assert "Febrile neutropenia" in typeable and "Cytokine release syndrome" not in typeable
    assert not any("neurotoxicity syndrome" in t for t in typeable)


def test_term_module_and_validation_are_pure_python():
    for module in (ctcae_terms, validation):
        tree = ast.parse(Path(module.__file__).read_text())
        imported = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        imported += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        assert not [m for m in imported if m.split(".")[0] == "django"], module


def test_validation_seriousness_codes_are_the_choices():
    assert validation.SERIOUSNESS_CODES == tuple(Seriousness.values)


# --- hard rules over the API --------------------------------------------------------------------


def test_create_returns_the_event_with_one_history_row(world):
    response = post(world, ae(world, ctcae_term="  febrile   NEUTROPENIA "))
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["ctcae_term"] == "Febrile neutropenia"  # stored in the list's spelling
    assert (body["grade"], body["seriousness"], body["version"], body["subject_id"]) == (
        3, ["hospitalization"], 1, world.subject_a.subject_id)
    record = AdverseEvent.objects.get()
    rows = history(record)
    assert len(rows) == 1
    assert (rows[0].history_change_reason, rows[0].history_user) == ("initial entry", world.users["coordinator_a"])
    assert not DailyAssessment.objects.exists()  # an AE does not touch the grading


@pytest.mark.parametrize(
    "overrides, ok",
    [
        ({"grade": 0}, False),
        ({"grade": 1, "serious": False, "seriousness": []}, True),
        ({"grade": 4}, True),
        ({"grade": 5, "outcome": "fatal", "seriousness": ["death"], "resolution_date": None}, True),
        ({"grade": 6}, False),
        ({"grade": -1}, False),
        ({"grade": None}, False),
        ({"grade": "severe"}, False),
    ],
)
def test_grade_is_1_to_5(world, overrides, ok):
    response = post(world, ae(world, **overrides))
    if ok:
        assert response.status_code == 201, response.content
    else:
        refused(response, "grade")


@pytest.mark.parametrize("days_after_onset, ok", [(-1, False), (0, True), (1, True)])
def test_resolution_not_before_onset(world, days_after_onset, ok):
    response = post(world, ae(world, resolution_date=str(day(world, 5 + days_after_onset))))
    if ok:
        assert response.status_code == 201, response.content
    else:
        refused(response, "resolution_date", "before the onset date")


def test_onset_not_in_the_future_by_the_sites_calendar(world):
    today = today_a(world)
    refused(post(world, ae(world, onset_date=str(today + timedelta(days=1)), resolution_date=None,
                           outcome="recovering")), "onset_date", "FUTURE-DATE")
    refused(post(world, ae(world, resolution_date=str(today + timedelta(days=1)))), "resolution_date", "FUTURE-DATE")
    assert post(world, ae(world, onset_date=str(today), resolution_date=str(today))).status_code == 201


@pytest.mark.parametrize("days_after_enrolment, ok", [(-1, False), (0, True)])
def test_onset_not_before_enrolment(world, days_after_enrolment, ok):
    onset = world.subject_a.enrolled_on + timedelta(days=days_after_enrolment)
    response = post(world, ae(world, onset_date=str(onset)))
    if ok:
        assert response.status_code == 201, response.content
    else:
        refused(response, "onset_date", "enrolment")


@pytest.mark.parametrize(
    "serious, seriousness, ok",
    [
        (True, [], False),
        (True, ["hospitalization"], True),
        (True, ["hospitalization", "life_threatening", "hospitalization"], True),
        (False, [], True),
        (False, ["important_medical_event"], False),
    ],
)
def test_serious_needs_a_criterion_and_only_then(world, serious, seriousness, ok):
    response = post(world, ae(world, serious=serious, seriousness=seriousness))
    if ok:
        assert response.status_code == 201, response.content
        # stored once each, in the order of the criteria
        assert response.json()["seriousness"] == [c for c in Seriousness.values if c in seriousness]
    else:
        refused(response, "seriousness", "serious")


@pytest.mark.parametrize("seriousness", [["bored"], "hospitalization", [1]])
def test_unknown_seriousness_codes(world, seriousness):
    refused(post(world, ae(world, seriousness=seriousness)), "seriousness")


@pytest.mark.parametrize("term", ["Febrile neutropaenia", "Hemophagocytic lymphohistiocytosis", "Neutropenia"])
def test_unknown_term(world, term):
    refused(post(world, ae(world, ctcae_term=term)), "ctcae_term", "not a CTCAE v5.0 term", "choose a term")


@pytest.mark.parametrize(
    "term, version, kind",
    [
        ("Cytokine release syndrome", "v5.0", "CRS"),
        ("cytokine release syndrome", "v6.0", "CRS"),
        ("CRS", "v5.0", "CRS"),
        ("Immune effector cell-associated neurotoxicity syndrome", "v6.0", "ICANS"),
        ("Immune effector cell-associated neurotoxicity syndrome", "v5.0", "ICANS"),
        ("ICANS", "v6.0", "ICANS"),
    ],
)
def test_crs_and_icans_are_derived_never_typed_in(world, term, version, kind):
    refused(post(world, ae(world, ctcae_term=term, ctcae_version=version)), "ctcae_term",
            f"{kind} is not typed in", "derived from the daily assessments")


def test_v6_accepts_the_v5_terms_and_unknown_versions_are_refused(world):
    assert post(world, ae(world, ctcae_version="v6.0")).status_code == 201
    response = post(world, ae(world, ctcae_version="v4.03"))
    assert response.status_code == 400 and "ctcae_version" in response.json()


@pytest.mark.parametrize(
    "overrides, field, words",
    [
        ({"grade": 5, "outcome": "not_recovered", "resolution_date": None, "seriousness": ["death"]}, "outcome",
         ("Grade 5", "fatal")),
        ({"grade": 4, "outcome": "fatal", "seriousness": ["death"]}, "grade", ("set grade 5",)),
        ({"grade": 5, "outcome": "fatal", "serious": False, "seriousness": []}, "serious", ("fatal",)),
        ({"grade": 5, "outcome": "fatal", "seriousness": ["hospitalization"]}, "seriousness", ("'death'",)),
        ({"seriousness": ["death"]}, "seriousness", ("fatal",)),
    ],
)
def test_grade_5_fatal_and_death_go_together(world, overrides, field, words):
    refused(post(world, ae(world, **overrides)), field, *words)


@pytest.mark.parametrize(
    "outcome, resolution, ok",
    [
        ("recovered", None, False),
        ("recovered", 8, True),
        ("recovered_with_sequelae", None, False),
        ("recovered_with_sequelae", 8, True),
        ("recovering", 8, False),
        ("recovering", None, True),
        ("not_recovered", 8, False),
        ("not_recovered", None, True),
        ("unknown", None, True),
        ("unknown", 8, True),
    ],
)
def test_outcome_and_resolution_date_agree(world, outcome, resolution, ok):
    body = ae(world, outcome=outcome, resolution_date=str(day(world, resolution)) if resolution else None)
    response = post(world, body)
    if ok:
        assert response.status_code == 201, response.content
    else:
        refused(response, "resolution_date", outcome)


def test_dates_not_after_the_death(world):
    trial_services.death_record(subject=world.subject_a, user=world.users["coordinator_a"], death_date=day(world, 10),
                                death_primary_cause="infection")
    refused(post(world, ae(world, onset_date=str(day(world, 11)), resolution_date=str(day(world, 11)))),
            "onset_date", "date of death")
    refused(post(world, ae(world, resolution_date=str(day(world, 11)))), "resolution_date", "date of death")
    fatal = ae(world, ctcae_term="Sepsis", grade=5, outcome="fatal", seriousness=["death"],
               onset_date=str(day(world, 9)), resolution_date=str(day(world, 10)))
    assert post(world, fatal).status_code == 201


def test_one_400_names_every_bad_field(world):
    response = post(world, ae(world, ctcae_term="Cytokine release syndrome", grade=7, seriousness=[],
                              resolution_date=str(day(world, 4))))
    assert response.status_code == 400
    assert {"ctcae_term", "grade", "seriousness", "resolution_date"} <= set(response.json())


@pytest.mark.parametrize("payload", [{}, [], "x", {"subject": "abc"}, {"grade": {"a": 1}}, {"onset_date": "2026-13-45"},
                                     {"seriousness": {"death": True}}, {"ctcae_term": ["Fever"]}])
def test_no_input_gives_a_500(world, payload):
    response = world.client("coordinator_a").post(URL, payload, format="json")
    assert 400 <= response.status_code < 500


def test_the_service_refuses_the_same_way_without_the_api(world):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as exc:
        services.log_create(AdverseEvent, user=world.users["coordinator_a"], subject=world.subject_a,
                            ctcae_term="Fever", grade=6, onset_date=day(world, 1), serious=False,
                            seriousness=["death", "nonsense"], relatedness="possible", outcome="recovering")
    assert {"grade", "seriousness"} <= set(exc.value.message_dict)
    assert not AdverseEvent.objects.exists()


def test_the_database_refuses_impossible_rows_too(world):
    from trials.api.errors import integrity_errors

    row = AdverseEvent(subject=world.subject_a, ctcae_term="Fever", grade=6, onset_date=day(world, 1),
                       relatedness="possible", outcome="recovering")
    with pytest.raises(IntegrityError) as exc, transaction.atomic():
        row.save()
    assert "grade" in integrity_errors(exc.value)
    row = AdverseEvent(subject=world.subject_a, ctcae_term="Fever", grade=3, onset_date=day(world, 2),
                       resolution_date=day(world, 1), relatedness="possible", outcome="recovered")
    with pytest.raises(IntegrityError) as exc, transaction.atomic():
        row.save()
    assert "resolution_date" in integrity_errors(exc.value)


# --- corrections, void, 409 and the audit trail -------------------------------------------------


def test_patch_needs_version_and_reason_and_a_stale_version_is_409(world):
    created = post(world, ae(world)).json()
    url = f"{URL}{created['id']}/"
    client = world.client("coordinator_a")
    no_reason = client.patch(url, {"version": 1, "grade": 4}, format="json")
    assert no_reason.status_code == 400 and "reason" in no_reason.json()
    no_version = client.patch(url, {"reason": "source updated", "grade": 4}, format="json")
    assert no_version.status_code == 400 and "version" in no_version.json()
    ok = client.patch(url, {"version": 1, "reason": "source updated", "grade": 4,
                            "seriousness": ["life_threatening", "hospitalization"]}, format="json")
    assert ok.status_code == 200, ok.content
    assert (ok.json()["version"], ok.json()["grade"]) == (2, 4)
    assert ok.json()["seriousness"] == ["life_threatening", "hospitalization"]
    stale = client.patch(url, {"version": 1, "reason": "again", "grade": 2}, format="json")
    assert stale.status_code == 409 and stale.json()["current_version"] == 2
    bad = client.patch(url, {"version": 2, "reason": "typo", "outcome": "not_recovered"}, format="json")
    assert bad.status_code == 400 and "resolution_date" in bad.json()  # the rules hold for corrections too
    record = AdverseEvent.objects.get()
    assert (record.grade, record.version) == (4, 2)
    rows = history(record)
    assert len(rows) == 2 and rows[-1].history_change_reason == "source updated"


def test_void_needs_a_reason_keeps_the_row_and_hides_it_from_the_list(world):
    created = post(world, ae(world)).json()
    client = world.client("coordinator_a")
    url = f"{URL}{created['id']}/void/"
    assert client.post(url, {"version": 1}, format="json").status_code == 400
    response = client.post(url, {"version": 1, "reason": "wrong subject"}, format="json")
    assert response.status_code == 200 and response.json()["voided"] is True
    assert client.get(URL).json()["results"] == []
    assert len(client.get(URL, {"include_voided": "true"}).json()["results"]) == 1
    record = AdverseEvent.objects.get()
    assert [r.history_change_reason for r in history(record)] == ["initial entry", "entered in error: wrong subject"]
    again = client.patch(f"{URL}{record.pk}/", {"version": 2, "reason": "x", "grade": 2}, format="json")
    assert again.status_code == 400 and "voided" in again.json()


def test_a_correction_that_changes_nothing_writes_nothing(world):
    created = post(world, ae(world)).json()
    same = world.client("coordinator_a").patch(f"{URL}{created['id']}/", {"version": 1, "reason": "x", "grade": 3},
                                               format="json")
    assert same.status_code == 200 and same.json()["version"] == 1
    assert len(history(AdverseEvent.objects.get())) == 1


# --- scoping ------------------------------------------------------------------------------------


def test_adverse_events_are_scoped_to_the_site(world):
    record_id = post(world, ae(world)).json()["id"]
    for user, visible in [("coordinator_a", True), ("investigator_a", True), ("monitor_a", True),
                          ("data_manager", True), ("sponsor", True), ("dsmb", True), ("coordinator_b", False),
                          ("monitor_b", False), ("outsider", False)]:
        client = world.client(user)
        assert (client.get(f"{URL}{record_id}/").status_code == 200) is visible, user
        assert len(client.get(URL).json()["results"]) == int(visible), user
    # writing: other sites' coordinators cannot name the subject, read-only roles cannot correct
    other = post(world, ae(world), user="coordinator_b")
    assert other.status_code == 400 and "subject" in other.json()
    for user in ("monitor_a", "sponsor", "coordinator_b", "outsider"):
        patch = world.client(user).patch(f"{URL}{record_id}/", {"version": 1, "reason": "x", "grade": 2},
                                         format="json")
        assert patch.status_code == 404, user
    assert world.client("nobody").get(f"{URL}{record_id}/").status_code == 404
    assert AdverseEvent.objects.get().version == 1


def test_filters_serious_min_grade_and_subject(world):
    post(world, ae(world))
    post(world, ae(world, ctcae_term="Hypokalemia", grade=2, serious=False, seriousness=[]))
    b = world.client("coordinator_b").post(URL, {"subject": world.subject_b.pk, **ae(
        world, ctcae_term="Fever", grade=1, serious=False, seriousness=[], onset_date=str(world.subject_b.day0),
        resolution_date=str(world.subject_b.day0))}, format="json")
    assert b.status_code == 201, b.content
    client = world.client("data_manager")

    def terms(**params):
        return sorted(r["ctcae_term"] for r in client.get(URL, params).json()["results"])

    assert terms() == ["Febrile neutropenia", "Fever", "Hypokalemia"]
    assert terms(serious="true") == ["Febrile neutropenia"]
    assert terms(serious="false") == ["Fever", "Hypokalemia"]
    assert terms(min_grade=2) == ["Febrile neutropenia", "Hypokalemia"]
    assert terms(site=world.site_b.pk) == ["Fever"]
    assert terms(subject=world.subject_a.pk, min_grade=3) == ["Febrile neutropenia"]


def test_the_openapi_document_describes_the_resource(world):
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    assert {"/api/v1/adverse-events/", "/api/v1/adverse-events/{id}/", "/api/v1/adverse-events/{id}/void/"} <= set(
        schema["paths"])
    params = {p["name"] for p in schema["paths"]["/api/v1/adverse-events/"]["get"]["parameters"]}
    assert {"subject", "trial", "site", "modified_since", "serious", "min_grade"} <= params
    write = schema["components"]["schemas"]["AdverseEventWriteRequest"]["properties"]
    enum = write["seriousness"]["items"]
    assert set(Seriousness.values) <= set(enum.get("enum") or schema["components"]["schemas"][
        enum["$ref"].rsplit("/", 1)[1]]["enum"])


# --- the CRF log page ---------------------------------------------------------------------------


def browser(world, name):
    client = Client()
    client.force_login(world.users[name])
    return client


def test_log_page_renders_with_the_term_list_and_saves(world):
    client = browser(world, "coordinator_a")
    url = f"/subjects/{world.subject_a.pk}/logs/adverse-events/"
    assert "/logs/adverse-events/" in client.get(f"/subjects/{world.subject_a.pk}/").content.decode()
    page = client.get(url)
    assert page.status_code == 200
    html = page.content.decode()
    assert "Adverse events" in html and 'list="ctcae-terms"' in html and '<datalist id="ctcae-terms">' in html
    assert "<legend>Seriousness criteria</legend>" in html
    assert '<option value="Febrile neutropenia">' in html and "Cytokine release syndrome" not in html.split(
        "<datalist")[1].split("</datalist>")[0]
    form = {"ctcae_term": "febrile neutropenia", "ctcae_version": "v5.0", "grade": "3",
            "onset_date": day(world, 5).isoformat(), "resolution_date": day(world, 8).isoformat(), "serious": "on",
            "seriousness": ["hospitalization", "life_threatening"], "relatedness": "probable", "outcome": "recovered"}
    assert client.post(url, form).status_code == 302
    record = AdverseEvent.objects.get()
    assert (record.ctcae_term, record.seriousness) == ("Febrile neutropenia", ["life_threatening", "hospitalization"])
    listed = client.get(url).content.decode()
    assert "Life-threatening, Requires or prolongs hospitalization" in listed
    # a correction needs the reason for change; the rules' messages land next to their fields
    edit = f"{url}{record.pk}/"
    assert 'value="Febrile neutropenia"' in client.get(edit).content.decode()
    no_reason = client.post(edit, {**form, "grade": "4", "version": 1})
    assert no_reason.status_code == 200 and "reason for change is required" in no_reason.content.decode()
    crs = client.post(edit, {**form, "ctcae_term": "Cytokine release syndrome", "version": 1, "change_reason": "x"})
    assert crs.status_code == 200 and "derived from the daily assessments" in crs.content.decode()
    good = client.post(edit, {**form, "grade": "4", "version": 1, "change_reason": "source updated"})
    assert good.status_code == 302
    record.refresh_from_db()
    assert (record.grade, record.version) == (4, 2) and len(history(record)) == 2


def test_log_page_is_read_only_for_monitors_and_404_outside_scope(world):
    url = f"/subjects/{world.subject_a.pk}/logs/adverse-events/"
    assert browser(world, "monitor_a").get(url).status_code == 200
    assert browser(world, "monitor_a").post(url, {"ctcae_term": "Fever"}).status_code == 404
    for user in ("coordinator_b", "outsider"):
        assert browser(world, user).get(url).status_code == 404
    assert not AdverseEvent.objects.exists()


def test_demo_records_typed_in_adverse_events(db, settings):
    from django.core.management import call_command

    settings.DEBUG = True
    call_command("load_demo")
    events = {e.ctcae_term: e for e in AdverseEvent.objects.filter(voided=False)}
    assert set(events) == {"Febrile neutropenia", "Neutrophil count decreased", "Upper respiratory infection"}
    fn = events["Febrile neutropenia"]
    assert (fn.grade, fn.serious, fn.seriousness, fn.outcome) == (3, True, ["hospitalization"], "recovered")
    call_command("load_demo")
    assert AdverseEvent.objects.count() == 3  # idempotent


def test_admin_lists_adverse_events_read_only_with_history(world):
    from tests.factories import UserFactory

    record = AdverseEvent.objects.get(pk=post(world, ae(world)).json()["id"])
    client = Client()
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    listing = client.get("/admin/toxicity/adverseevent/")
    assert listing.status_code == 200 and "Febrile neutropenia" in listing.content.decode()
    assert client.get(f"/admin/toxicity/adverseevent/{record.pk}/history/").status_code == 200
    assert client.get("/admin/toxicity/adverseevent/add/").status_code == 403
