"""Settings: one module, every value from the environment with a safe development default.

No DATABASE_URL -> a SQLite file beside manage.py. No CELERY_BROKER_URL -> Celery tasks run
eagerly in-process. DJANGO_DEBUG=0 without DJANGO_SECRET_KEY refuses to start. README lists
every variable read here with its default.
"""
import os
from datetime import timedelta
from pathlib import Path

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()

DEBUG = env.bool("DJANGO_DEBUG", default=True)
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
BEHIND_TLS_PROXY = env.bool("DJANGO_BEHIND_TLS_PROXY", default=not DEBUG)
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DJANGO_DEBUG=0.")
    SECRET_KEY = "development-only-key-not-secret"  # used only with DEBUG on
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "simple_history",
    "axes",
    "trials",
    "toxicity",
    "reporting",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    "reporting.export_views.AccessLogMiddleware",
    "axes.middleware.AxesMiddleware",  # last (django-axes): turns a lockout into the lockout page
]

if not DEBUG:  # production serves collected static files itself; runserver does it in development
    MIDDLEWARE.insert(1, "whitenoise.middleware.WhiteNoiseMiddleware")

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=0)
DATABASES["default"]["ATOMIC_REQUESTS"] = False
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE takes the write lock at BEGIN, so "read version, then write" cannot interleave.
    DATABASES["default"].setdefault("OPTIONS", {}).update({"transaction_mode": "IMMEDIATE", "timeout": 20})
    # A file, not shared-cache memory: concurrent transactions then wait for the lock as in production.
    # One file per test process, so two test runs on one machine never share it.
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / f"test-db-{os.getpid()}.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache: throttle counters. Shared by every process only with CACHE_URL (Redis) ------------
# LocMemCache is per process: with several gunicorn workers each would count on its own.
CACHES = {"default": env.cache_url("CACHE_URL", default="locmemcache://")}

# --- Celery ---------------------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
if not CELERY_BROKER_URL:
    CELERY_BROKER_URL = "memory://localhost/"  # a host named: kombu warns on every connection without one
CELERY_TASK_IGNORE_RESULT = True  # job state lives in database rows (CheckRun, ReportRun)
# Results only for the few tasks that ask for them (health checks); Redis by default when it is the broker.
CELERY_RESULT_BACKEND = env.str(
    "CELERY_RESULT_BACKEND", default=CELERY_BROKER_URL if CELERY_BROKER_URL.startswith("redis") else ""
) or None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=1800)
# Redis re-delivers an unacknowledged task after the visibility timeout: keep it above the
# longest task so a slow task is not run twice while still running.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=CELERY_TASK_TIME_LIMIT + 600)
}
CELERY_TIMEZONE = "UTC"
CHECKS_CHUNK_SIZE = env.int("CHECKS_CHUNK_SIZE", default=200)  # subjects per consistency-job task
# Data rows per CSV import over HTTP (toxicity/imports.py): each row is a full form save (~15-30
# rows/s), so larger files go through `manage.py import_csv`, which has no limit.
IMPORT_MAX_ROWS = env.int("IMPORT_MAX_ROWS", default=1000)
CELERY_BEAT_SCHEDULE = {
    "nightly-consistency-checks": {
        "task": "toxicity.nightly_checks",
        "schedule": crontab(hour=env.int("CHECKS_NIGHTLY_HOUR_UTC", default=2), minute=0),
    },
}

# --- Auth, REST API -------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses a locked-out username + address
    "django.contrib.auth.backends.ModelBackend",
]
# django-axes: AXES_FAILURE_LIMIT failed logins for one user name from one client address lock
# that combination out for AXES_COOLOFF_MINUTES (HTML login and admin; attempts during the
# lockout restart the cool-off). A successful login clears the count. Attempts are database rows
# (shared by all workers); `manage.py axes_reset_username <name>` unlocks early.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/lockout.html"  # HTTP 429
AXES_CLIENT_IP_CALLABLE = "config.security.client_ip"  # REMOTE_ADDR, or X-Forwarded-For behind the proxy
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["trials.api.renderers.JSONRenderer", "rest_framework.renderers.BrowsableAPIRenderer"],
    "DEFAULT_PAGINATION_CLASS": "trials.api.pagination.StableCursorPagination",
    "PAGE_SIZE": 100,
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "trials.api.filters.ModifiedSinceBackend",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "trials.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    # Token clients per user, anonymous callers per address (HTTP 429 + Retry-After). Browser
    # sessions are not throttled (the HTML login is guarded by django-axes).
    "DEFAULT_THROTTLE_CLASSES": ["config.security.TokenRateThrottle", "config.security.AnonymousRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "token": env.str("API_TOKEN_RATE", default="600/min"),
        "anon": env.str("API_ANON_RATE", default="60/min"),
    },
    # Proxies in front of Django that append to X-Forwarded-For: the client address is the
    # NUM_PROXIES-th from the right (also for django-axes); 0 -> REMOTE_ADDR.
    "NUM_PROXIES": env.int("DJANGO_NUM_PROXIES", default=1 if BEHIND_TLS_PROXY else 0),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "CAR-T toxicity data-capture API",
    "DESCRIPTION": "Trials, subjects, infusions, daily CRS/ICANS assessments and rescue therapy.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "TrialStatusEnum": "trials.choices.TrialStatus",
        "SubjectStatusEnum": "trials.choices.SubjectStatus",
        "CorticosteroidEnum": "toxicity.choices.Corticosteroid",
        "AnticytokineEnum": "toxicity.choices.Anticytokine",
        "QueryStatusEnum": "toxicity.models.QueryStatus",
        "CheckRunStatusEnum": "toxicity.models.CheckRunStatus",
        "EpisodeKindEnum": "toxicity.models.EpisodeKind",
        "ReportKindEnum": "reporting.models.ReportKind",
    },
}

# --- Internationalisation, static -----------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("DJANGO_TIME_ZONE", default="UTC")
USE_I18N = True
FORMAT_MODULE_PATH = ["config.formats"]
USE_TZ = True
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env.path("DJANGO_STATIC_ROOT", default=BASE_DIR / "staticfiles")

EMAIL_BACKEND = env.str("DJANGO_EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env.str("DJANGO_DEFAULT_FROM_EMAIL", default="cart-edc@localhost")

# --- Production hardening (on whenever DEBUG is off) ----------------------------------------
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
# Clinical workstations are shared: the session cookie dies with the browser, and a session
# lasts at most SESSION_COOKIE_AGE from login (a shift) even if the browser stays open.
SESSION_COOKIE_AGE = env.int("DJANGO_SESSION_COOKIE_AGE", default=8 * 3600)
SESSION_EXPIRE_AT_BROWSER_CLOSE = env.bool("DJANGO_SESSION_EXPIRE_AT_BROWSER_CLOSE", default=True)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=not DEBUG)
if BEHIND_TLS_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# No Content-Security-Policy header yet: toxicity/log.html carries an inline <script> and the
# Swagger page (/api/v1/docs/) loads Swagger UI from a CDN with an inline script.

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("DJANGO_LOG_LEVEL", default="INFO")},
    # django-axes logs every failed login and lockout; not its start-up banner on every command.
    "loggers": {"axes.apps": {"level": "WARNING"}},
}
if CELERY_TASK_ALWAYS_EAGER:
    # In-process (eager) tasks would print Celery's "succeeded" line for every notification into
    # every command's output; a worker's log keeps them, and its retry lines, at INFO.
    LOGGING["loggers"]["celery.app.trace"] = {"level": "WARNING"}
