"""Admin for trial set-up, with history views; clinical rows are read-only there."""
import pytest
from django.test import Client

from tests.factories import UserFactory


@pytest.fixture
def admin_client_(world):
    admin = UserFactory(username="root", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(admin)
    return client


@pytest.mark.parametrize("model", ["trial", "site", "cohort", "membership"])
def test_setup_models_have_changelists_and_history(world, admin_client_, model):
    obj = {"trial": world.trial, "site": world.site_a, "cohort": world.cohort,
           "membership": world.users["sponsor"].memberships.get()}[model]
    assert admin_client_.get(f"/admin/trials/{model}/").status_code == 200
    assert admin_client_.get(f"/admin/trials/{model}/{obj.pk}/history/").status_code == 200


def test_admin_edit_of_a_trial_is_recorded_with_the_user(world, admin_client_):
    from trials.models import Trial

    url = f"/admin/trials/trial/{world.trial.pk}/change/"
    page = admin_client_.get(url)
    form = page.context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None}
    data.update({"title": "Renamed", "sites-TOTAL_FORMS": 0, "sites-INITIAL_FORMS": 0,
                 "cohorts-TOTAL_FORMS": 0, "cohorts-INITIAL_FORMS": 0})
    response = admin_client_.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else response
    latest = Trial.history.filter(id=world.trial.pk).first()
    assert latest.title == "Renamed" and latest.history_user.username == "root"


def test_clinical_rows_cannot_be_added_changed_or_deleted_in_admin(world, admin_client_):
    assert admin_client_.get("/admin/trials/subject/add/").status_code == 403
    response = admin_client_.post(f"/admin/trials/subject/{world.subject_a.pk}/delete/", {"post": "yes"})
    assert response.status_code == 403
    assert admin_client_.get(f"/admin/trials/subject/{world.subject_a.pk}/history/").status_code == 200
