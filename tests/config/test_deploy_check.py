"""Production settings: `check --deploy` is clean with production variables, the hardening values
are what settings.py promises, and responses carry the security headers and secure cookies."""
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client, override_settings

from tests.factories import UserFactory

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = {
    "DJANGO_DEBUG": "0",
    "DJANGO_SECRET_KEY": secrets.token_urlsafe(64),  # 86 characters, many distinct
    "DJANGO_ALLOWED_HOSTS": "example.org",
    "DJANGO_CSRF_TRUSTED_ORIGINS": "https://example.org",
    "DJANGO_SECURE_HSTS_SECONDS": "31536000",
    "DJANGO_SECURE_SSL_REDIRECT": "1",
    "DJANGO_BEHIND_TLS_PROXY": "1",
    "CACHE_URL": "redis://127.0.0.1:6379/2",  # named only: the check and the probe do not connect
}
HARDENING = (
    "DEBUG", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SESSION_COOKIE_HTTPONLY", "SESSION_COOKIE_AGE",
    "SESSION_EXPIRE_AT_BROWSER_CLOSE", "SECURE_CONTENT_TYPE_NOSNIFF", "SECURE_REFERRER_POLICY",
    "SECURE_CROSS_ORIGIN_OPENER_POLICY", "X_FRAME_OPTIONS", "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_HSTS_PRELOAD", "SECURE_PROXY_SSL_HEADER",
)
PROBE = (
    "import json, django; from django.conf import settings; django.setup(); "
    f"out = {{name: getattr(settings, name, None) for name in {HARDENING!r}}}; "
    "out['CACHE_BACKEND'] = settings.CACHES['default']['BACKEND']; "
    "out['NUM_PROXIES'] = settings.REST_FRAMEWORK['NUM_PROXIES']; "
    "out['THROTTLES'] = settings.REST_FRAMEWORK['DEFAULT_THROTTLE_CLASSES']; "
    "out['BACKENDS'] = settings.AUTHENTICATION_BACKENDS; out['MIDDLEWARE'] = settings.MIDDLEWARE; "
    "out['MIN_LENGTH'] = [v.get('OPTIONS', {}).get('min_length') for v in settings.AUTH_PASSWORD_VALIDATORS]; "
    "print(json.dumps(out))"
)


def _environment(**overrides) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "CACHE_URL", "AXES_", "API_"))}
    env.update(PRODUCTION, DJANGO_SETTINGS_MODULE="config.settings")
    env.update(overrides)
    return env


def _run(args, **overrides) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=_environment(**overrides),
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def production_settings() -> dict:
    done = _run(["-c", PROBE])
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_deploy_check_is_clean_with_production_variables():
    done = _run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"])
    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues" in done.stdout, done.stdout
    assert "WARNING" not in done.stdout + done.stderr


def test_deploy_check_fails_when_hsts_is_switched_off():
    """The check above can fail: without HSTS the deploy check warns (security.W004)."""
    done = _run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], DJANGO_SECURE_HSTS_SECONDS="0")
    assert done.returncode != 0
    assert "security.W004" in done.stdout + done.stderr


def test_production_values(production_settings):
    s = production_settings
    assert s["DEBUG"] is False
    assert s["SESSION_COOKIE_SECURE"] and s["CSRF_COOKIE_SECURE"] and s["SESSION_COOKIE_HTTPONLY"]
    assert s["SESSION_EXPIRE_AT_BROWSER_CLOSE"] is True and s["SESSION_COOKIE_AGE"] == 8 * 3600
    assert s["SECURE_CONTENT_TYPE_NOSNIFF"] and s["X_FRAME_OPTIONS"] == "DENY"
    assert s["SECURE_REFERRER_POLICY"] == "same-origin" and s["SECURE_CROSS_ORIGIN_OPENER_POLICY"] == "same-origin"
    assert s["SECURE_SSL_REDIRECT"] and s["SECURE_HSTS_SECONDS"] == 31536000
    assert s["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert s["CACHE_BACKEND"] == "django.core.cache.backends.redis.RedisCache"  # shared by all workers
    assert s["NUM_PROXIES"] == 1
    assert s["THROTTLES"] == ["config.security.TokenRateThrottle", "config.security.AnonymousRateThrottle"]
    assert s["BACKENDS"][0] == "axes.backends.AxesStandaloneBackend"
    assert s["MIDDLEWARE"][-1] == "axes.middleware.AxesMiddleware"
    assert 12 in s["MIN_LENGTH"]


def test_development_defaults_keep_plain_http_and_a_local_cache():
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "CACHE_URL"))},
                               "DJANGO_SETTINGS_MODULE": "config.settings"})
    assert done.returncode == 0, done.stderr
    s = json.loads(done.stdout)
    assert s["DEBUG"] is True and s["SESSION_COOKIE_SECURE"] is False and s["SECURE_SSL_REDIRECT"] is False
    assert s["SECURE_HSTS_SECONDS"] == 0 and s["SECURE_PROXY_SSL_HEADER"] is None
    assert s["CACHE_BACKEND"] == "django.core.cache.backends.locmem.LocMemCache" and s["NUM_PROXIES"] == 0


@pytest.fixture
def production_like(production_settings):
    """This process's settings with the production hardening values (SecurityMiddleware reads
    them when a client's handler is built, so clients are made inside)."""
    values = {name: production_settings[name] for name in HARDENING if name != "DEBUG"}
    values["SECURE_PROXY_SSL_HEADER"] = tuple(values["SECURE_PROXY_SSL_HEADER"])
    with override_settings(**values, ALLOWED_HOSTS=["example.org"]):
        yield


@pytest.mark.django_db
def test_security_headers_on_a_page(production_like):
    response = Client().get("/accounts/login/", secure=True, HTTP_HOST="example.org")
    assert response.status_code == 200
    assert response["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    csrf = response.cookies["csrftoken"]
    assert csrf["secure"] and csrf["samesite"] == "Lax"


@pytest.mark.django_db
def test_plain_http_is_redirected_and_the_proxy_header_counts_as_https(production_like):
    client = Client()
    response = client.get("/accounts/login/", HTTP_HOST="example.org")
    assert response.status_code == 301 and response["Location"] == "https://example.org/accounts/login/"
    proxied = client.get("/accounts/login/", HTTP_HOST="example.org", HTTP_X_FORWARDED_PROTO="https")
    assert proxied.status_code == 200 and "Strict-Transport-Security" in proxied


@pytest.mark.django_db
def test_session_cookie_is_secure_http_only_and_ends_with_the_browser(production_like):
    UserFactory(username="cookie_user")
    client = Client()
    client.get("/accounts/login/", secure=True, HTTP_HOST="example.org")
    response = client.post("/accounts/login/", {"username": "cookie_user", "password": "correct-horse-battery"},
                           secure=True, HTTP_HOST="example.org")
    assert response.status_code == 302
    session = response.cookies["sessionid"]
    assert session["secure"] and session["httponly"] and session["samesite"] == "Lax"
    assert not session["max-age"] and not session["expires"]  # a browser-session cookie
    assert client.session.get_expiry_age() == 8 * 3600  # and at most one shift on the server
