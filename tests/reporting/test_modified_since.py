"""Every list takes ``modified_since`` (api.md, Conventions); a bad value is a 400 naming it."""
import pytest
from django.utils import timezone

LISTS = ["trials", "subjects", "infusions", "assessments", "episodes", "locks", "signatures",
         "source-verifications", "queries"]


@pytest.mark.parametrize("resource", LISTS)
def test_modified_since_in_the_future_empties_every_list(world, resource):
    client = world.client("data_manager")
    assert client.get(f"/api/v1/{resource}/").status_code == 200
    future = (timezone.now() + timezone.timedelta(days=1)).isoformat()
    response = client.get(f"/api/v1/{resource}/", {"modified_since": future})
    assert response.status_code == 200 and response.data["results"] == []


@pytest.mark.parametrize("resource", ["trials", "locks", "subjects"])
def test_bad_modified_since_is_a_400_naming_it(world, resource):
    response = world.client("data_manager").get(f"/api/v1/{resource}/", {"modified_since": "last tuesday"})
    assert response.status_code == 400 and "modified_since" in response.data


def test_sites_and_cohorts_of_a_trial_filter_too(world):
    client = world.client("data_manager")
    past = (timezone.now() - timezone.timedelta(days=1)).isoformat()
    future = (timezone.now() + timezone.timedelta(days=1)).isoformat()
    for part in ("sites", "cohorts"):
        url = f"/api/v1/trials/{world.trial.pk}/{part}/"
        response = client.get(url, {"modified_since": past})
        assert len(response.data["results"]) >= 1, response.data
        assert client.get(url, {"modified_since": future}).data["results"] == []


@pytest.mark.parametrize("resource", ["subjects", "queries", "trials"])
def test_any_legal_offset_is_accepted(world, resource):
    """+20:00 is a legal ISO 8601 offset that PostgreSQL would refuse: compared in UTC instead."""
    response = world.client("data_manager").get(f"/api/v1/{resource}/", {"modified_since": "1803-01-01T00:00:00+20:00"})
    assert response.status_code == 200 and len(response.data["results"]) >= (resource != "queries")
