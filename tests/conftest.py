"""Shared fixtures: a trial with two sites, one user per role at each site and per trial role."""
from dataclasses import dataclass, field

import pytest
from rest_framework.test import APIClient

from trials import services
from trials.roles import SITE_ROLES, TRIAL_ROLES, Role

from tests.factories import CohortFactory, SiteFactory, TrialFactory, UserFactory, make_infusion, make_subject


@dataclass
class World:
    trial: object
    site_a: object
    site_b: object
    cohort: object
    users: dict = field(default_factory=dict)  # "coordinator_a", "monitor_b", "sponsor", "outsider", ...
    subject_a: object = None
    subject_b: object = None
    infusion_a: object = None
    infusion_b: object = None

    def client(self, name: str) -> APIClient:
        client = APIClient()
        client.force_authenticate(self.users[name])
        return client


def build_world(prefix: str = "") -> World:
    trial = TrialFactory()
    site_a = SiteFactory(trial=trial, site_number="101", timezone="Europe/Berlin")
    site_b = SiteFactory(trial=trial, site_number="102", timezone="America/Chicago")
    cohort = CohortFactory(trial=trial, name="DL1")
    w = World(trial=trial, site_a=site_a, site_b=site_b, cohort=cohort)
    for role in SITE_ROLES:
        for suffix, site in (("a", site_a), ("b", site_b)):
            user = UserFactory(username=f"{prefix}{role}_{suffix}")
            services.membership_grant(user=user, role=role, trial=trial, site=site)
            w.users[f"{role}_{suffix}"] = user
    for role in TRIAL_ROLES:
        user = UserFactory(username=f"{prefix}{role}")
        services.membership_grant(user=user, role=role, trial=trial)
        w.users[str(role)] = user
    other_trial = TrialFactory()
    outsider = UserFactory(username=f"{prefix}outsider")
    services.membership_grant(user=outsider, role=Role.DATA_MANAGER, trial=other_trial)
    w.users["outsider"] = outsider
    w.users["nobody"] = UserFactory(username=f"{prefix}nobody")
    w.subject_a = make_subject(w.users["coordinator_a"], site_a, cohort)
    w.subject_b = make_subject(w.users["coordinator_b"], site_b, cohort)
    w.infusion_a = make_infusion(w.users["coordinator_a"], w.subject_a)
    w.infusion_b = make_infusion(w.users["coordinator_b"], w.subject_b)
    for s in (w.subject_a, w.subject_b):
        s.refresh_from_db()
    return w


@pytest.fixture
def celery_eager():
    """Tasks enqueued on commit run in this process (Celery's own eager mode, as the embedded default
    runs them), so a test can read what a task did, such as the e-mail notifications."""
    from config.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


@pytest.fixture(autouse=True)
def fast_password_hasher(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def world(db) -> World:
    return build_world()


@pytest.fixture
def world_tx(transactional_db) -> World:
    """The same world in committed transactions, for tests with threads or Celery workers."""
    return build_world()
