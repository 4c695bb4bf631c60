"""Least privilege: a user of site A cannot list, read or change site B's subjects or infusions
(404, never 403), and only the site roles ever see date_of_birth (workflow.md, api.md)."""
import pytest

from trials.roles import DATA_ENTRY_ROLES, SITE_ROLES, TRIAL_ROLES, Role

SITE_USERS = [f"{role}_a" for role in sorted(SITE_ROLES)]
ALL_USERS = SITE_USERS + sorted(str(r) for r in TRIAL_ROLES) + ["outsider", "nobody"]


def _ids(response):
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


@pytest.mark.parametrize("user", SITE_USERS)
@pytest.mark.parametrize("resource", ["subjects", "infusions"])
def test_site_user_cannot_list_read_or_change_other_sites_records(world, user, resource):
    client = world.client(user)
    own, other = {
        "subjects": (world.subject_a, world.subject_b),
        "infusions": (world.infusion_a, world.infusion_b),
    }[resource]
    assert _ids(client.get(f"/api/v1/{resource}/")) == {own.pk}
    assert client.get(f"/api/v1/{resource}/{other.pk}/").status_code == 404
    patch = client.patch(f"/api/v1/{resource}/{other.pk}/", {"version": 1, "reason": "x"}, format="json")
    assert patch.status_code == 404
    void = client.post(f"/api/v1/{resource}/{other.pk}/void/", {"version": 1, "reason": "x"}, format="json")
    assert void.status_code == 404
    assert client.get(f"/api/v1/{resource}/{own.pk}/").status_code == 200


@pytest.mark.parametrize("user", ["outsider", "nobody"])
def test_users_of_other_trials_see_nothing(world, user):
    client = world.client(user)
    assert world.trial.pk not in _ids(client.get("/api/v1/trials/"))
    for resource in ("subjects", "infusions"):
        assert _ids(client.get(f"/api/v1/{resource}/")) == set()
    assert client.get(f"/api/v1/subjects/{world.subject_a.pk}/").status_code == 404
    assert client.get(f"/api/v1/trials/{world.trial.pk}/").status_code == 404
    assert client.get(f"/api/v1/subjects/{world.subject_a.pk}/death/").status_code == 404


@pytest.mark.parametrize("user", sorted(str(r) for r in TRIAL_ROLES))
def test_trial_roles_see_the_whole_trial(world, user):
    client = world.client(user)
    assert _ids(client.get("/api/v1/subjects/")) == {world.subject_a.pk, world.subject_b.pk}
    assert _ids(client.get("/api/v1/infusions/")) == {world.infusion_a.pk, world.infusion_b.pk}


def test_anonymous_gets_401(world):
    from rest_framework.test import APIClient

    assert APIClient().get("/api/v1/subjects/").status_code == 401


@pytest.mark.parametrize("user", ALL_USERS)
def test_only_site_roles_of_the_subjects_site_see_date_of_birth(world, user):
    client = world.client(user)
    for row in client.get("/api/v1/subjects/").json()["results"]:
        visible = "date_of_birth" in row
        assert visible == (user in SITE_USERS), (user, row)
        assert row["age_years"] is not None


def test_sponsor_and_dsmb_never_see_date_of_birth_anywhere(world):
    for user in ("sponsor", "dsmb"):
        client = world.client(user)
        body = client.get(f"/api/v1/subjects/{world.subject_a.pk}/").content.decode()
        assert "date_of_birth" not in body
        assert str(world.subject_a.date_of_birth) not in body


@pytest.mark.parametrize("user", sorted(set(ALL_USERS) - {f"{r}_a" for r in DATA_ENTRY_ROLES}))
def test_roles_without_data_entry_cannot_write(world, user):
    client = world.client(user)
    patch = client.patch(
        f"/api/v1/subjects/{world.subject_a.pk}/", {"version": 1, "reason": "x", "sex": "male"}, format="json"
    )
    assert patch.status_code == 404
    world.subject_a.refresh_from_db()
    assert world.subject_a.sex == "female"


@pytest.mark.parametrize("user", ["monitor_a", "sponsor", "data_manager"])
def test_read_only_roles_cannot_create(world, user):
    response = world.client(user).post("/api/v1/subjects/", {"subject_id": "101-7777"}, format="json")
    assert response.status_code == 404


def test_coordinator_cannot_create_a_subject_at_another_site(world):
    response = world.client("coordinator_a").post(
        "/api/v1/subjects/",
        {
            "subject_id": "102-5555", "site": world.site_b.pk, "cohort": world.cohort.pk, "enrolled_on": "2026-01-05",
            "sex": "male", "date_of_birth": "1970-01-01", "diagnosis": "dlbcl", "baseline_weight_kg": "70",
        },
        format="json",
    )
    assert response.status_code == 400
    assert "site" in response.json()  # "object does not exist": nothing confirms site B exists


def test_coordinator_cannot_add_an_infusion_to_another_sites_subject(world):
    response = world.client("coordinator_a").post(
        "/api/v1/infusions/", {"subject": world.subject_b.pk, "infusion_number": 2}, format="json"
    )
    assert response.status_code == 400
    assert "subject" in response.json()


def test_death_record_is_scoped_and_free_text_is_withheld_from_sponsor(world):
    coordinator = world.client("coordinator_a")
    url = f"/api/v1/subjects/{world.subject_a.pk}/death/"
    created = coordinator.put(
        url, {"death_date": str(world.subject_a.day0), "death_primary_cause": "other",
              "death_cause_other_text": "Found by husband at home"}, format="json"
    )
    assert created.status_code == 201, created.content
    assert world.client("coordinator_b").get(url).status_code == 404
    assert world.client("coordinator_b").put(url, {"death_date": "2026-01-01"}, format="json").status_code == 404
    sponsor_view = world.client("sponsor").get(url).json()
    assert sponsor_view["death_primary_cause"] == "other"
    assert "death_cause_other_text" not in sponsor_view
    assert world.client("data_manager").get(url).json()["death_cause_other_text"] == "Found by husband at home"
    world.subject_a.refresh_from_db()
    assert world.subject_a.status == "died"


def test_trial_sites_and_cohorts(world):
    client = world.client("coordinator_a")
    sites = client.get(f"/api/v1/trials/{world.trial.pk}/sites/").json()["results"]
    assert {s["site_number"] for s in sites} == {"101"}  # a site user sees only their sites
    assert {s["site_number"] for s in world.client("sponsor").get(f"/api/v1/trials/{world.trial.pk}/sites/").json()["results"]} == {"101", "102"}
    cohorts = client.get(f"/api/v1/trials/{world.trial.pk}/cohorts/").json()["results"]
    assert [c["name"] for c in cohorts] == ["DL1"]


def test_scope_helper_is_used_for_trial_roles_and_site_roles(world):
    from trials.selectors import RoleIndex

    index = RoleIndex.for_user(world.users["monitor_a"])
    assert index.roles(world.trial.pk, world.site_a.pk) == {Role.MONITOR}
    assert index.roles(world.trial.pk, world.site_b.pk) == set()
