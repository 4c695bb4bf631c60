"""Small security helpers the settings name by dotted path: API throttles and the client address.

Throttle counters live in the default cache; production sets CACHE_URL (Redis) so every gunicorn
worker counts in one place. Rates are read from ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]`` at
each request (not once at import, as DRF's own classes do), so settings changes take effect.
"""
from rest_framework.authentication import TokenAuthentication
from rest_framework.settings import api_settings
from rest_framework.throttling import AnonRateThrottle, BaseThrottle, UserRateThrottle


class _CurrentRates:
    def get_rate(self):
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)


class TokenRateThrottle(_CurrentRates, UserRateThrottle):
    """Scope "token": per user, only for requests authenticated by an API token (scripts, ETL).
    Browser sessions are not counted here."""

    scope = "token"

    def get_cache_key(self, request, view):
        if not isinstance(getattr(request, "successful_authenticator", None), TokenAuthentication):
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.user.pk}


class AnonymousRateThrottle(_CurrentRates, AnonRateThrottle):
    """Scope "anon": per client address, for requests without any credentials."""

    scope = "anon"


def client_ip(request) -> str | None:
    """The client address for django-axes, with the same proxy rule as DRF (REST_FRAMEWORK
    NUM_PROXIES: 0 -> REMOTE_ADDR, n -> the n-th address from the right of X-Forwarded-For),
    so a client cannot choose its address by sending its own X-Forwarded-For."""
    return BaseThrottle().get_ident(request)
