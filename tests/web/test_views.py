"""Every page for every role: allowed pages render, anything outside scope is 404 (workflow.md)."""
from datetime import datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.test import Client

from toxicity import services
from toxicity.models import DailyAssessment, Episode, EpisodeReview, Query, TocilizumabDose
from trials.workflow import CasebookSignature, Lock

ROLES_A = ["coordinator_a", "investigator_a", "monitor_a", "data_manager"]


def browser(world, name):
    client = Client()
    client.force_login(world.users[name])
    return client


@pytest.fixture
def pages(world):
    day = world.subject_a.day0 + timedelta(days=1)
    a = services.assessment_create(user=world.users["coordinator_a"], subject=world.subject_a, assessment_date=day,
                                   temperature_max_c=Decimal("38.6"), ice_score=10, crs_grade_reported=2,
                                   consciousness="alert")
    dose = services.log_create(TocilizumabDose, user=world.users["coordinator_a"], subject=world.subject_a,
                               administered_at=world.infusion_a.infused_at + timedelta(days=1), dose_mg=Decimal("560"),
                               weight_kg=Decimal("70"), indication="crs")
    q = Query.objects.get(rule_id="CRS-GRADE-MISMATCH")
    s = world.subject_a.pk
    return {
        "home": "/",
        "casebook": f"/subjects/{s}/",
        "day": f"/subjects/{s}/day/{day.isoformat()}/",
        "blank day": f"/subjects/{s}/day/{(day + timedelta(days=1)).isoformat()}/",
        "log": f"/subjects/{s}/logs/tocilizumab/",
        "log record": f"/subjects/{s}/logs/tocilizumab/{dose.pk}/",
        "icu log": f"/subjects/{s}/logs/icu/",
        "history": f"/history/toxicity.dailyassessment/{a.pk}/",
        "subject history": f"/history/trials.subject/{s}/",
        "queries": "/queries/",
        "query": f"/queries/{q.pk}/",
        "episode review": f"/subjects/{s}/episodes/crs/{day.isoformat()}/review/",
    }, a, q


@pytest.mark.parametrize("role", ROLES_A)
def test_every_page_renders_for_roles_that_see_the_subject(world, pages, role):
    urls, _, _ = pages
    client = browser(world, role)
    for name, url in urls.items():
        response = client.get(url)
        assert response.status_code == 200, (role, name, response.status_code)


@pytest.mark.parametrize("role", ["coordinator_b", "investigator_b", "monitor_b", "outsider", "nobody", "sponsor", "dsmb"])
def test_every_subject_page_is_404_outside_scope(world, pages, role):
    """Other sites' users and strangers; and sponsor and DSMB, who read de-identified exports and
    reports, not the CRF pages, query threads or audit trails with the site's free text (workflow.md)."""
    urls, _, _ = pages
    client = browser(world, role)
    for name, url in urls.items():
        status = client.get(url).status_code
        assert status == (200 if name in ("home", "queries") else 404), (role, name, status)
    assert world.subject_a.subject_id not in client.get("/").content.decode()
    assert "CRS-GRADE-MISMATCH" not in client.get("/queries/").content.decode()


def test_anonymous_is_sent_to_login(world, pages):
    urls, _, _ = pages
    for url in urls.values():
        response = Client().get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_sign_page_only_for_investigators(world):
    url = f"/subjects/{world.subject_a.pk}/sign/"
    assert browser(world, "investigator_a").get(url).status_code == 200
    for role in ("coordinator_a", "monitor_a", "investigator_b"):
        assert browser(world, role).get(url).status_code == 404
    response = browser(world, "investigator_a").post(url, {"password": "correct-horse-battery"})
    assert response.status_code == 302 and CasebookSignature.objects.get().valid
    assert "signed by investigator_a" in browser(world, "monitor_a").get(f"/subjects/{world.subject_a.pk}/").content.decode()


def test_date_of_birth_only_for_site_roles_on_the_casebook(world):
    dob = world.subject_a.date_of_birth.isoformat()
    assert dob in browser(world, "coordinator_a").get(f"/subjects/{world.subject_a.pk}/").content.decode()
    for role in ("sponsor", "dsmb", "data_manager"):
        page = browser(world, role).get(f"/subjects/{world.subject_a.pk}/").content.decode()
        assert dob not in page
        history = browser(world, role).get(f"/history/trials.subject/{world.subject_a.pk}/").content.decode()
        assert dob not in history


def test_casebook_grid_shows_grades_markers_and_query_badges(world, pages):
    _, a, q = pages
    page = browser(world, "coordinator_a").get(f"/subjects/{world.subject_a.pk}/").content.decode()
    assert 'class="g1"' in page  # day 1 derived CRS grade 1 coloured
    assert f"/queries/{q.pk}/" in page  # the mismatch query is a badge on the CRS row
    assert '<span class="marker">toci</span>' in page  # the tocilizumab marker on day 1
    assert "<strong>2/–</strong>" in page  # the reported grade that differs from the derived one


def test_day_form_saves_with_fahrenheit_and_then_needs_a_reason(world):
    client = browser(world, "coordinator_a")
    day = world.subject_a.day0 + timedelta(days=3)
    url = f"/subjects/{world.subject_a.pk}/day/{day.isoformat()}/"
    form = {"temperature": "100.4", "temperature_unit": "F", "oxygen_device": "none", "ice_score": "10",
            "consciousness": "alert", "seizure": "none", "motor_weakness": "none", "cerebral_edema": "none"}
    assert client.post(url, form).status_code == 302
    saved = DailyAssessment.objects.get(subject=world.subject_a, assessment_date=day)
    assert saved.temperature_max_c == Decimal("38.00") and saved.crs_grade_derived == 1
    no_reason = client.post(url, {**form, "temperature": "100.3", "version": saved.version})
    assert no_reason.status_code == 200 and "A reason for change is required" in no_reason.content.decode()
    ok = client.post(url, {**form, "temperature": "100.3", "version": saved.version, "reason": "transcription error"})
    assert ok.status_code == 302
    saved.refresh_from_db()
    assert saved.temperature_max_c == Decimal("37.94") and saved.crs_grade_derived == 0


def test_day_form_conflict_keeps_the_users_input(world):
    client = browser(world, "coordinator_a")
    day = world.subject_a.day0 + timedelta(days=4)
    url = f"/subjects/{world.subject_a.pk}/day/{day.isoformat()}/"
    base = {"temperature_unit": "C", "oxygen_device": "none", "ice_score": "10", "consciousness": "alert",
            "seizure": "none", "motor_weakness": "none", "cerebral_edema": "none"}
    client.post(url, {**base, "temperature": "37.0"})
    a = DailyAssessment.objects.get(subject=world.subject_a, assessment_date=day)
    services.assessment_update(assessment=a, user=world.users["investigator_a"], version=1, reason="source updated",
                               changes={"temperature_max_c": Decimal("37.2")})
    stale = client.post(url, {**base, "temperature": "39.1", "version": 1, "reason": "typo"})
    page = stale.content.decode()
    assert stale.status_code == 200 and "Someone else saved this form first" in page and 'value="39.1"' in page
    a.refresh_from_db()
    assert a.temperature_max_c == Decimal("37.20")


def test_day_form_hard_limit_errors_are_next_to_the_field(world):
    client = browser(world, "coordinator_a")
    url = f"/subjects/{world.subject_a.pk}/day/{world.subject_a.day0.isoformat()}/"
    page = client.post(url, {"temperature": "46", "temperature_unit": "C", "oxygen_device": "mechanical_ventilation",
                             "hypoxia": "on", "ice_score": "10", "seizure": "none", "motor_weakness": "none",
                             "cerebral_edema": "none"}).content.decode()
    assert "45" in page and "intubation" in page.lower()
    assert not DailyAssessment.objects.filter(subject=world.subject_a).exists()


def test_read_only_roles_cannot_post_forms(world):
    url = f"/subjects/{world.subject_a.pk}/day/{world.subject_a.day0.isoformat()}/"
    for role in ("monitor_a", "sponsor", "data_manager"):
        assert browser(world, role).post(url, {"temperature": "37"}).status_code == 404
    assert browser(world, "monitor_a").post(f"/subjects/{world.subject_a.pk}/logs/icu/", {}).status_code == 404


def test_log_form_saves_and_corrects_with_change_reason(world):
    client = browser(world, "coordinator_a")
    url = f"/subjects/{world.subject_a.pk}/logs/icu/"
    at = (world.infusion_a.infused_at + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    assert client.post(url, {"admitted_at": at, "reason": "crs"}).status_code == 302
    from toxicity.models import IcuStay

    stay = IcuStay.objects.get()
    bad = client.post(f"{url}{stay.pk}/", {"admitted_at": at, "reason": "icans", "version": 1})
    assert bad.status_code == 200 and "reason for change is required" in bad.content.decode()
    good = client.post(f"{url}{stay.pk}/", {"admitted_at": at, "reason": "icans", "version": 1, "change_reason": "source"})
    assert good.status_code == 302
    stay.refresh_from_db()
    assert stay.reason == "icans" and stay.version == 2


def test_query_pages_inbox_worklist_csv_raise_and_transitions(world, pages):
    _, a, q = pages
    inbox = browser(world, "coordinator_a").get("/queries/").content.decode()
    assert "Site inbox" in inbox and "CRS-GRADE-MISMATCH" in inbox
    assert "Query worklist" in browser(world, "monitor_a").get("/queries/").content.decode()
    csv_text = browser(world, "monitor_a").get("/queries/?format=csv&rule=CRS-GRADE-MISMATCH").content.decode()
    assert csv_text.splitlines()[0].startswith("id,trial,site,subject") and len(csv_text.splitlines()) == 2
    assert "CRS-GRADE-MISMATCH</td>" not in browser(world, "monitor_a").get("/queries/?rule=TOCI-INTERVAL").content.decode()
    coordinator = browser(world, "coordinator_a")
    r = coordinator.post(f"/queries/{q.pk}/", {"action": "close", "text": "no"})
    q.refresh_from_db()
    assert r.status_code == 200 and q.status == "open"
    coordinator.post(f"/queries/{q.pk}/", {"action": "answer", "text": "Investigator confirms grade 2."})
    browser(world, "monitor_a").post(f"/queries/{q.pk}/", {"action": "close", "text": "confirmed correct: per PI"})
    q.refresh_from_db()
    assert q.status == "closed" and q.suppressed_values
    raise_url = f"/queries/raise/?record_type=toxicity.dailyassessment&record_id={a.pk}&field=ice_score"
    assert browser(world, "monitor_a").get(raise_url).status_code == 200
    assert browser(world, "monitor_b").get(raise_url).status_code == 404
    made = browser(world, "monitor_a").post("/queries/raise/", {"record_type": "toxicity.dailyassessment",
                                                               "record_id": a.pk, "field": "ice_score",
                                                               "text": "ICE in source is 9"})
    assert made.status_code == 302 and Query.objects.filter(origin="manual", field="ice_score").exists()


def test_sdv_and_lock_actions_from_pages(world, pages):
    _, a, _ = pages
    monitor = browser(world, "monitor_a")
    assert monitor.post(f"/verify/toxicity.dailyassessment/{a.pk}/").status_code == 302
    day_url = f"/subjects/{world.subject_a.pk}/day/{a.assessment_date.isoformat()}/"
    assert "SDV: verified" in monitor.get(day_url).content.decode()
    assert browser(world, "coordinator_a").post(f"/verify/toxicity.dailyassessment/{a.pk}/").status_code == 404
    dm = browser(world, "data_manager")
    dm.post(f"/subjects/{world.subject_a.pk}/lock/")
    lock = Lock.objects.get()
    locked = browser(world, "coordinator_a").post(day_url, {"temperature": "37", "temperature_unit": "C",
                                                           "version": a.version, "reason": "x", "seizure": "none",
                                                           "motor_weakness": "none", "cerebral_edema": "none",
                                                           "oxygen_device": "none", "ice_score": 10})
    assert "locked" in locked.content.decode()
    dm.post(f"/locks/{lock.pk}/unlock/", {"reason": "queries to resolve"})
    lock.refresh_from_db()
    assert not lock.active



def test_enrolment_infusion_and_death_forms(world):
    coordinator = browser(world, "coordinator_a")
    new = coordinator.post(f"/trials/{world.trial.pk}/subjects/new/", {
        "subject_id": "101-0900", "site": world.site_a.pk, "cohort": world.cohort.pk, "enrolled_on": "2026-10-01",
        "sex": "male", "date_of_birth": "1960-02-03", "diagnosis": "dlbcl", "baseline_weight_kg": "80"})
    assert new.status_code == 302
    from trials.models import Death, Subject

    subject = Subject.objects.get(subject_id="101-0900")
    other_site = coordinator.post(f"/trials/{world.trial.pk}/subjects/new/", {
        "subject_id": "102-0900", "site": world.site_b.pk, "cohort": world.cohort.pk, "enrolled_on": "2026-10-01",
        "sex": "male", "date_of_birth": "1960-02-03", "diagnosis": "dlbcl", "baseline_weight_kg": "80"})
    assert other_site.status_code == 200 and not Subject.objects.filter(subject_id="102-0900").exists()
    infusion = coordinator.post(f"/subjects/{subject.pk}/infusions/new/", {
        "infusion_number": 1, "product": "tisagenlecleucel", "lot_number": "L1", "infused_at": "2026-10-10T10:00",
        "dose_cells_per_kg": "1000000", "weight_kg": "80", "lymphodepletion_regimen": "flu_cy",
        "lymphodepletion_start_date": "2026-10-05"})
    assert infusion.status_code == 302
    subject.refresh_from_db()
    assert subject.day0.isoformat() == "2026-10-10" and subject.status == "infused"
    bad = coordinator.post(f"/subjects/{subject.pk}/death/", {"death_date": "2026-10-12", "death_primary_cause": "other"})
    assert bad.status_code == 200 and "Describe the cause" in bad.content.decode()
    assert coordinator.post(f"/subjects/{subject.pk}/death/", {"death_date": "2026-10-12",
                                                                "death_primary_cause": "infection"}).status_code == 302
    assert Death.objects.get(subject=subject).death_primary_cause == "infection"
    for role in ("monitor_a", "sponsor", "coordinator_b"):
        assert browser(world, role).get(f"/subjects/{subject.pk}/death/").status_code == 404
        assert browser(world, role).get(f"/subjects/{subject.pk}/edit/").status_code == 404


def test_log_and_infusion_times_are_the_sites_local_time(world):
    """Berlin (site 101): 09:00 typed on the form is 09:00 in Berlin, whatever the server's zone."""
    from zoneinfo import ZoneInfo

    from toxicity.models import IcuStay

    berlin = ZoneInfo(world.site_a.timezone)
    day = world.subject_a.day0 + timedelta(days=2)
    client = browser(world, "coordinator_a")
    url = f"/subjects/{world.subject_a.pk}/logs/icu/"
    assert client.post(url, {"admitted_at": f"{day.isoformat()}T09:00", "reason": "crs"}).status_code == 302
    stay = IcuStay.objects.get()
    local = stay.admitted_at.astimezone(berlin)
    assert (local.date(), local.hour, local.minute) == (day, 9, 0)
    page = client.get(f"{url}{stay.pk}/").content.decode()
    assert f"{day.isoformat()}T09:00" in page  # shown back as typed


def test_raise_page_is_for_reviewers_and_hides_the_birth_date_from_data_managers(world):
    url = f"/queries/raise/?record_type=trials.subject&record_id={world.subject_a.pk}&field=date_of_birth"
    born = world.subject_a.date_of_birth.isoformat()
    assert born in browser(world, "monitor_a").get(url).content.decode()  # a site role of the subject's site
    manager = browser(world, "data_manager").get(url)
    assert manager.status_code == 200 and born not in manager.content.decode()
    for role in ("coordinator_a", "sponsor", "dsmb"):
        assert browser(world, role).get(url).status_code == 404


# --- masked days, floors and episode reviews ------------------------------------------------

NORMAL = {"temperature_max_c": Decimal("36.8"), "ice_score": 10, "consciousness": "alert"}


def masked_course(world):
    """Day 1: fever 39.0 opens a CRS episode and tocilizumab is given; day 3: afebrile on
    norepinephrine inside the masking window (grade 3, R-CRS-2); day 5: febrile, hypotensive on
    norepinephrine, hypoxia without the device (NE, at least grade 3, R-CRS-15)."""
    subject, coordinator = world.subject_a, world.users["coordinator_a"]
    day = lambda n: subject.day0 + timedelta(days=n)  # noqa: E731
    services.assessment_create(user=coordinator, subject=subject, assessment_date=day(1),
                               **{**NORMAL, "temperature_max_c": Decimal("39.0")})
    services.log_create(TocilizumabDose, user=coordinator, subject=subject, dose_mg=Decimal("560"),
                        weight_kg=Decimal("70"), indication="crs",
                        administered_at=datetime.combine(day(1), time(14), tzinfo=ZoneInfo(world.site_a.timezone)))
    masked = services.assessment_create(user=coordinator, subject=subject, assessment_date=day(3),
                                        **{**NORMAL, "temperature_max_c": Decimal("37.0")}, hypotension=True,
                                        vasopressors=["norepinephrine"])
    floor = services.assessment_create(user=coordinator, subject=subject, assessment_date=day(5),
                                       **{**NORMAL, "temperature_max_c": Decimal("38.8")}, hypoxia=True,
                                       hypotension=True, vasopressors=["norepinephrine"])
    masked.refresh_from_db()
    floor.refresh_from_db()
    assert masked.crs_grade_derived == 3 and masked.fever_masked_by["drug"] == "tocilizumab"
    assert floor.crs_grade_derived is None and floor.minimum_crs_grade == 3
    return day


def test_casebook_marks_masked_days_and_shows_the_floor_of_ne_days(world):
    day = masked_course(world)
    page = browser(world, "monitor_a").get(f"/subjects/{world.subject_a.pk}/").content.decode()
    mark = f'<abbr title="fever masked by tocilizumab on {day(1).isoformat()} (R-CRS-2)">M</abbr>'
    assert f'<td class="g3 masked">3<sup class="mask-mark">{mark}</sup> <a class="badge"' in page  # day 3, queried
    assert page.count(mark) == 1  # day 1 had fever, day 5 too: only day 3 is marked
    assert ('<td class="gNE" title="Not evaluable: oxygen device missing; the recorded values prove at least '
            'grade 3">≥3 <a class="badge"') in page  # day 5, with its CRS-NOT-EVALUABLE query
    assert 'id="timeline-legend"' in page and '≥3</span> not evaluable' in page


def test_casebook_lists_episodes_with_review_status_and_links_for_the_investigator(world):
    day = masked_course(world)
    url = f"/subjects/{world.subject_a.pk}/"
    review_url = f"/subjects/{world.subject_a.pk}/episodes/crs/{day(1).isoformat()}/review/"
    page = browser(world, "investigator_a").get(url).content.decode()
    episodes = page[page.index('id="episodes-title"'):]
    assert "<td>CRS 1</td>" in episodes and f"{day(1).isoformat()} (day 1)" in episodes
    assert "≥ 3</abbr>" in episodes and "<td>ongoing</td>" in episodes and "<td>no</td>" in episodes
    assert "<td>Not reviewed</td>" in episodes and f'<a href="{review_url}">Review</a>' in episodes
    assert review_url not in browser(world, "coordinator_a").get(url).content.decode()  # no link: not the investigator


def test_investigator_reviews_an_episode_then_corrects_it(world):
    subject, investigator = world.subject_a, browser(world, "investigator_a")
    day1 = subject.day0 + timedelta(days=1)
    services.assessment_create(user=world.users["coordinator_a"], subject=subject, assessment_date=day1,
                               **{**NORMAL, "temperature_max_c": Decimal("38.6")})
    url = f"/subjects/{subject.pk}/episodes/crs/{day1.isoformat()}/review/"
    form = {"relatedness": "probable", "outcome": "recovering", "comment": "fever only"}

    coordinator = browser(world, "coordinator_a")
    read_only = coordinator.get(url).content.decode()
    assert "Not reviewed yet" in read_only and "<form method=\"post\" novalidate id=\"episode-review-form\"" not in read_only
    assert coordinator.post(url, form).status_code == 404 and not EpisodeReview.objects.exists()

    assert 'id="episode-review-form"' in investigator.get(url).content.decode()
    saved = investigator.post(url, form, follow=True)
    assert saved.redirect_chain == [(f"/subjects/{subject.pk}/", 302)]
    casebook = saved.content.decode()
    assert f"Review of the CRS episode from {day1.isoformat()} saved." in casebook
    assert "<td>Reviewed</td>" in casebook and "Correct review</a>" in casebook
    review = EpisodeReview.objects.get(subject=subject, kind="crs", onset_date=day1)
    assert (review.relatedness, review.outcome, review.serious, review.version) == ("probable", "recovering", False, 1)
    assert review.history.count() == 1

    correction = {**form, "serious": "on", "seriousness": ["important_medical_event"], "version": review.version}
    no_reason = investigator.post(url, correction).content.decode()
    assert 'name="change_reason"' in no_reason and "This field is required" in no_reason
    assert 'name="version" value="1"' in no_reason
    assert investigator.post(url, {**correction, "change_reason": "PI: important medical event"}).status_code == 302
    review.refresh_from_db()
    assert review.version == 2 and review.serious and review.seriousness == ["important_medical_event"]
    assert review.history.latest().history_change_reason == "PI: important medical event"
    episode = Episode.objects.get(subject=subject, kind="crs", voided=False)
    assert episode.serious and episode.review_status == "current" and episode.relatedness == "probable"
    assert "yes: Important medical event" in coordinator.get(f"/subjects/{subject.pk}/").content.decode()

    # a later day changes the episode: the review is outdated until saved again
    services.assessment_create(user=world.users["coordinator_a"], subject=subject, assessment_date=day1 + timedelta(days=1),
                               **{**NORMAL, "temperature_max_c": Decimal("39.2")}, hypotension=True,
                               vasopressors=["norepinephrine"])
    assert "<strong>Changed since the review</strong>" in coordinator.get(f"/subjects/{subject.pk}/").content.decode()
    page = coordinator.get(url).content.decode()
    assert "The episode changed since the review" in page and "Max grade: 1 → 3" in page
    assert "Life-threatening" not in page and "Relationship to the study treatment" in page  # the review, read-only


def test_episode_review_errors_are_next_to_the_field_and_nothing_is_saved(world):
    subject = world.subject_a
    day1 = subject.day0 + timedelta(days=1)
    services.assessment_create(user=world.users["coordinator_a"], subject=subject, assessment_date=day1,
                               **{**NORMAL, "temperature_max_c": Decimal("38.6")})
    url = f"/subjects/{subject.pk}/episodes/crs/{day1.isoformat()}/review/"
    response = browser(world, "investigator_a").post(url, {"serious": "on", "relatedness": "possible",
                                                           "outcome": "recovered"})
    page = response.content.decode()
    assert response.status_code == 200 and not EpisodeReview.objects.exists()
    fieldset = page[page.index('data-field="seriousness"'):]
    fieldset = fieldset[:fieldset.index("</fieldset>")]
    assert "A serious event needs at least one seriousness criterion" in fieldset
    assert 'id="id_serious" checked>' in page  # the input is kept


@pytest.mark.parametrize("path", ["crs/2000-01-01", "crs/not-a-date", "fever/{day}", "icans/{day}"])
def test_episode_review_of_no_episode_is_404(world, path):
    day1 = world.subject_a.day0 + timedelta(days=1)
    services.assessment_create(user=world.users["coordinator_a"], subject=world.subject_a, assessment_date=day1,
                               **{**NORMAL, "temperature_max_c": Decimal("38.6")})
    url = f"/subjects/{world.subject_a.pk}/episodes/{path.format(day=day1.isoformat())}/review/"
    client = browser(world, "investigator_a")
    assert client.get(url).status_code == 404
    assert client.post(url, {"relatedness": "possible", "outcome": "recovered"}).status_code == 404
    assert not EpisodeReview.objects.exists()
