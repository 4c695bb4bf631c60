"""API throttling: token clients per user (scope "token"), anonymous callers per address
(scope "anon"); HTTP 429 with Retry-After; browser sessions are not counted."""
import pytest
from django.core.cache import cache
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.factories import UserFactory

URL = "/api/v1/trials/"  # any authenticated list: a user without trials gets an empty page
ANON_URL = "/api/v1/docs/"  # open to anonymous callers
TOKEN_LIMIT, ANON_LIMIT = 3, 2


@pytest.fixture
def low_rates(settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"token": f"{TOKEN_LIMIT}/min", "anon": f"{ANON_LIMIT}/min"},
    }
    yield


@pytest.fixture
def token_users(db, low_rates):
    users = [UserFactory(username=f"throttle_{n}") for n in range(2)]
    keys = ["throttle_anon_127.0.0.1"] + [f"throttle_token_{u.pk}" for u in users]
    cache.delete_many(keys)  # counters of earlier tests that had these ids; only these keys
    yield users
    cache.delete_many(keys)


def token_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def test_defaults_are_generous():
    from django.conf import settings

    rates = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    assert rates == {"token": "600/min", "anon": "60/min"}


def test_token_client_gets_429_with_retry_after_past_its_rate(token_users):
    client = token_client(token_users[0])
    for n in range(TOKEN_LIMIT):
        assert client.get(URL).status_code == 200, n
    response = client.get(URL)
    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= 60
    assert "throttled" in response.json()["detail"].lower()


def test_the_rate_is_per_token_user(token_users):
    first, second = token_client(token_users[0]), token_client(token_users[1])
    for _ in range(TOKEN_LIMIT):
        first.get(URL)
    assert first.get(URL).status_code == 429
    assert second.get(URL).status_code == 200


def test_browser_sessions_are_not_counted_by_the_token_scope(token_users):
    user = token_users[0]
    browser = Client()
    browser.force_login(user)
    for n in range(TOKEN_LIMIT * 3):
        assert browser.get(URL).status_code == 200, n
    assert token_client(user).get(URL).status_code == 200  # the session requests did not use up the token's


def test_anonymous_callers_are_throttled_by_address(token_users):
    client = APIClient()
    for n in range(ANON_LIMIT):
        assert client.get(ANON_URL).status_code == 200, n
    response = client.get(ANON_URL)
    assert response.status_code == 429 and int(response["Retry-After"]) > 0
    # an anonymous call to a protected endpoint is still answered 401 (authentication comes first)
    assert client.get(URL).status_code == 401


def test_a_bad_token_is_refused_not_throttled(token_users):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)
    assert client.get(URL).status_code == 401
