"""django-axes: AXES_FAILURE_LIMIT (5) failed logins lock one user name from one address out for
the cool-off, on the HTML login and in the admin, with a lockout page (HTTP 429), never a 500."""
from datetime import timedelta
from unittest import mock

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.test import Client
from django.utils import timezone

from tests.factories import UserFactory

PASSWORD = "correct-horse-battery"  # UserFactory's
LOGIN = "/accounts/login/"


@pytest.fixture
def users(db):
    return UserFactory(username="lock_alice"), UserFactory(username="lock_bob", is_staff=True, is_superuser=True)


def attempt(client, username, password, url=LOGIN, **extra):
    return client.post(url, {"username": username, "password": password}, **extra)


def logged_in(client) -> bool:
    return "_auth_user_id" in client.session


def fail_until_locked(client, username, url=LOGIN, **extra):
    limit = settings.AXES_FAILURE_LIMIT
    for n in range(1, limit):
        response = attempt(client, username, "wrong-password", url, **extra)
        assert response.status_code == 200, n  # the form again, with its error
    return attempt(client, username, "wrong-password", url, **extra)  # the limit-th failure locks


def assert_lockout_page(response):
    assert response.status_code == 429
    assert "registration/lockout.html" in [t.name for t in response.templates]
    text = response.content.decode()
    assert "Login temporarily locked" in text and "Try again in 15 minutes" in text


def test_defaults():
    assert settings.AXES_FAILURE_LIMIT == 5 and settings.AXES_COOLOFF_TIME == timedelta(minutes=15)


def test_sixth_attempt_is_refused_even_with_the_right_password(users):
    client = Client()
    assert_lockout_page(fail_until_locked(client, "lock_alice"))
    response = attempt(client, "lock_alice", PASSWORD)
    assert_lockout_page(response)
    assert not logged_in(client)
    assert "lock_alice" in response.content.decode()


def test_other_users_and_other_addresses_are_not_affected(users):
    fail_until_locked(Client(), "lock_alice")
    other_user = Client()
    assert attempt(other_user, "lock_bob", PASSWORD).status_code == 302 and logged_in(other_user)
    elsewhere = Client(REMOTE_ADDR="10.1.2.3")
    assert attempt(elsewhere, "lock_alice", PASSWORD).status_code == 302 and logged_in(elsewhere)


def test_a_forged_forwarded_for_header_does_not_escape_the_lock(users):
    """Without a proxy (NUM_PROXIES 0) the address is REMOTE_ADDR, whatever the client sends."""
    fail_until_locked(Client(), "lock_alice")
    response = attempt(Client(), "lock_alice", PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert_lockout_page(response)


def test_login_works_again_after_the_cool_off(users):
    client = Client()
    fail_until_locked(client, "lock_alice")
    later = timezone.now() + settings.AXES_COOLOFF_TIME + timedelta(seconds=1)
    with mock.patch("axes.handlers.proxy.now", return_value=later):  # the clock axes stamps attempts with
        response = attempt(client, "lock_alice", PASSWORD)
    assert response.status_code == 302 and logged_in(client)


def test_attempts_during_the_lock_restart_the_cool_off(users):
    client = Client()
    fail_until_locked(client, "lock_alice")
    halfway = timezone.now() + settings.AXES_COOLOFF_TIME / 2
    with mock.patch("axes.handlers.proxy.now", return_value=halfway):
        assert_lockout_page(attempt(client, "lock_alice", PASSWORD))
    just_after_first = timezone.now() + settings.AXES_COOLOFF_TIME + timedelta(seconds=1)
    with mock.patch("axes.handlers.proxy.now", return_value=just_after_first):
        assert_lockout_page(attempt(client, "lock_alice", PASSWORD))


def test_a_successful_login_clears_the_count(users):
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        attempt(client, "lock_alice", "wrong-password")
    assert attempt(client, "lock_alice", PASSWORD).status_code == 302
    client.logout()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert attempt(client, "lock_alice", "wrong-password").status_code == 200
    assert attempt(client, "lock_alice", PASSWORD).status_code == 302


def test_the_admin_login_locks_too(users):
    client = Client()
    url = "/admin/login/?next=/admin/"
    assert_lockout_page(fail_until_locked(client, "lock_bob", url))
    assert_lockout_page(attempt(client, "lock_bob", PASSWORD, url))
    assert AccessAttempt.objects.filter(username="lock_bob").get().failures_since_start >= settings.AXES_FAILURE_LIMIT
    # and the HTML login refuses the same user name from the same address
    assert_lockout_page(attempt(client, "lock_bob", PASSWORD))


def test_unknown_user_names_lock_without_an_error(db):
    response = fail_until_locked(Client(), "nobody-here")
    assert_lockout_page(response)


def test_failure_limit_and_cool_off_come_from_settings(users, settings):
    settings.AXES_FAILURE_LIMIT = 2
    settings.AXES_COOLOFF_TIME = timedelta(minutes=30)
    client = Client()
    assert attempt(client, "lock_alice", "wrong-password").status_code == 200
    response = attempt(client, "lock_alice", "wrong-password")
    assert response.status_code == 429 and "Try again in 30 minutes" in response.content.decode()


def test_wrong_signing_passwords_count_towards_the_lockout(world, client):
    """Re-entering the password to sign a casebook is a login attempt: guessing is locked out too."""
    from trials.workflow import CasebookSignature

    investigator = world.users["investigator_a"]
    client.force_login(investigator)
    url = f"/subjects/{world.subject_a.pk}/sign/"
    for _ in range(6):
        client.post(url, {"password": "guess-guess-guess"})
    response = client.post(url, {"password": "correct-horse-battery"})
    assert not CasebookSignature.objects.filter(subject=world.subject_a).exists()
    assert response.status_code == 429  # the lockout page, even with the right password
