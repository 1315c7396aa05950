"""GlassLoop settings.

Everything that differs between a person's first run and production comes from the
environment, with defaults that need no server: SQLite under var/, the SQLAlchemy
broker (also a SQLite file under var/) and a SECRET_KEY generated into var/.

Every setting the code reads is declared here with its default, so code reads
``settings.X`` (never ``getattr(settings, X, default)``) and a value from the environment
is parsed strictly (config/env.py): a bad boolean or number stops the process at start with
the variable's name. README.md "Configuration (environment)" lists the variables.
"""

import re
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_float, env_int, env_json_object, env_list, env_rate, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
# Where the SQLite files, the broker file, uploads, trained models and the generated key go.
VAR_DIR = Path(env_str("GLASSLOOP_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def _secret_key():
    """SECRET_KEY from the environment, else one generated once into var/."""
    key = env_str("SECRET_KEY", "")
    if key:
        return key
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = env_bool("DEBUG", False)
# Comma-separated host names / origins (https://host) the site answers for.
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "simple_history",
    "import_export",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    # Domain apps, lowest layer first (tests/test_layers.py enforces who may import whom).
    "core",
    "lab",
    "training",
    "mining",
    "design",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "core.middleware.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # 400 for a NUL or other control character in the path, query, form fields or JSON strings.
    "core.middleware.ControlCharacterMiddleware",
    # 429 for a login (site, admin, API token) from an address with too many failed ones.
    "core.throttling.LoginThrottleMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
]

ROOT_URLCONF = "config.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "builtins": ["core.templatetags.formatting"],
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "core.context_processors.roles",
                "core.context_processors.nav",
            ],
        },
    },
]

WSGI_APPLICATION = "config.wsgi.application"

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'glassloop.sqlite3'}"),
        # DB_CONN_MAX_AGE (seconds, default 60, 0: one connection per request): keep a
        # worker's connection for a minute instead of one per request (a PostgreSQL
        # connection costs a few ms); the health check drops one the server has closed.
        conn_max_age=env_int("DB_CONN_MAX_AGE", 60, min=0),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # A web server and a worker share the file: wait for the lock instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns when it is missing before collectstatic
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
# Files of a lab form that failed validation, kept (signed token, one day) so the person need
# not upload them again; outside MEDIA_ROOT, shared by every web worker.
GLASSLOOP_KEPT_UPLOADS_DIR = Path(env_str("GLASSLOOP_KEPT_UPLOADS_DIR", str(VAR_DIR / "kept-uploads")))
# Issue 18: values in an unresolved conflict stay visible but out of the alloy means and the
# training rows until a person resolves the conflict (false: they are averaged in, as before).
GLASSLOOP_CONFLICTS_OUT_OF_MEANS = env_bool("GLASSLOOP_CONFLICTS_OUT_OF_MEANS", True)
# Trained models live beside the uploads so one volume keeps both.
MODEL_ARTEFACT_ROOT = Path(env_str("MODEL_ARTEFACT_ROOT", str(VAR_DIR / "models")))

# Uploaded measurement and source files (bytes, default 20 MiB): refuse anything larger
# before it reaches the parser.
GLASSLOOP_MAX_UPLOAD_BYTES = env_int("GLASSLOOP_MAX_UPLOAD_BYTES", 20 * 1024 * 1024, min=1)
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
# A literature source's PDF (mining.services.extract_pdf_text) is refused, naming the limit, when
# it has more than this many pages (default 300) or characters of text (default 2,000,000), or
# when one of its streams decompresses to more than this many bytes (default 25 MB; pypdf's own
# limit is 75 MB): a PDF bomb.
GLASSLOOP_PDF_MAX_PAGES = env_int("GLASSLOOP_PDF_MAX_PAGES", 300, min=1)
GLASSLOOP_PDF_MAX_TEXT_CHARS = env_int("GLASSLOOP_PDF_MAX_TEXT_CHARS", 2_000_000, min=1)
GLASSLOOP_PDF_MAX_STREAM_BYTES = env_int("GLASSLOOP_PDF_MAX_STREAM_BYTES", 25_000_000, min=1)
# An uploaded table (lab.tables, on the upload form and in the worker) is refused, naming the
# limit, when it has more than this many rows (default 200,000), or when an XLSX workbook's
# parts decompress to more than this many bytes (default 200 MB): a zip bomb.
GLASSLOOP_TABLE_MAX_ROWS = env_int("GLASSLOOP_TABLE_MAX_ROWS", 200_000, min=1)
GLASSLOOP_XLSX_MAX_UNCOMPRESSED_BYTES = env_int("GLASSLOOP_XLSX_MAX_UNCOMPRESSED_BYTES", 200_000_000, min=1)
# Wall-clock limits (seconds) on the worker's reading of an upload: an import of a table (default
# 300, counted from the job's start, waiting for another import included) and the reading of a
# PDF's text (default 120). Past it the job stops at its next safe point (every thousand rows
# read, every few hundred rows imported, every page) and fails naming the limit; nothing it did is
# kept. The task's Celery soft time limit, 30 s later (core.jobs), stops work stuck in between.
GLASSLOOP_IMPORT_MAX_SECONDS = env_float("GLASSLOOP_IMPORT_MAX_SECONDS", 300.0, above=0)
GLASSLOOP_PDF_MAX_SECONDS = env_float("GLASSLOOP_PDF_MAX_SECONDS", 120.0, above=0)
# An XRD pattern's analysis on the worker (default 60; a 20 MB pattern, the size limit, takes
# about 10 s): past it the analysis fails naming the limit and the pattern is no evidence.
GLASSLOOP_XRD_MAX_SECONDS = env_float("GLASSLOOP_XRD_MAX_SECONDS", 60.0, above=0)
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"  # the dashboard: what needs doing
LOGOUT_REDIRECT_URL = "login"

# Celery. The default broker needs no server: kombu's SQLAlchemy transport on a
# SQLite file. CI and production set CELERY_BROKER_URL=redis://...
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", f"sqla+sqlite:///{VAR_DIR / 'celery-broker.sqlite3'}")
# Progress and outcome live in our own models (core/jobs.py), not in a result backend:
# CELERY_RESULT_BACKEND stays unset.
CELERY_TASK_IGNORE_RESULT = True
# Acknowledge a message after its task has run, not when a worker takes it, and give it
# back to the broker when the worker process dies (OOM, kill -9): a lost worker loses no job.
# Tasks must therefore tolerate being delivered twice.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# One message at a time per worker process, so a long training does not hold others back.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Run tasks inline in the caller (tests, debugging); off by default.
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Broker connect and socket timeout (seconds, default 3), so a web request that queues a job
# fails fast with "queue unavailable" when the broker hangs instead of hanging with it.
GLASSLOOP_BROKER_TIMEOUT_SECONDS = env_float("GLASSLOOP_BROKER_TIMEOUT_SECONDS", 3.0, above=0)
CELERY_BROKER_CONNECTION_TIMEOUT = GLASSLOOP_BROKER_TIMEOUT_SECONDS
# Publishing retries once, at once, then gives up (the caller records the job as not queued).
CELERY_BROKER_TRANSPORT_OPTIONS = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2}
if CELERY_BROKER_URL.startswith(("redis://", "rediss://", "redis+socket://")):
    # Only for redis: kombu's SQLAlchemy transport passes unknown transport options on to
    # sqlalchemy.create_engine(), which refuses them.
    CELERY_BROKER_TRANSPORT_OPTIONS |= {
        "socket_connect_timeout": GLASSLOOP_BROKER_TIMEOUT_SECONDS,
        "socket_timeout": GLASSLOOP_BROKER_TIMEOUT_SECONDS,
    }
    # visibility_timeout is left at kombu's default (3600 s): with late acks, a message a
    # worker took but has not acknowledged within it is delivered again to another worker.
    # A task running longer than that (a long training) would then run twice; raise it here
    # if trainings ever take longer than an hour.

# Job lifecycle (core/jobs.py, core.sweep_jobs). How often a running job stamps its heartbeat
# (seconds, default 5).
GLASSLOOP_JOB_HEARTBEAT_SECONDS = env_float("GLASSLOOP_JOB_HEARTBEAT_SECONDS", 5.0, above=0)
# A running job whose heartbeat is older than this (seconds, default 120) is failed by the
# sweep: its worker died.
GLASSLOOP_JOB_STALE_SECONDS = env_float("GLASSLOOP_JOB_STALE_SECONDS", 120.0, above=0)
# A queued job not started this long (seconds, default 300) after its message was sent is sent
# again by the sweep: the broker lost the message.
GLASSLOOP_JOB_REQUEUE_SECONDS = env_float("GLASSLOOP_JOB_REQUEUE_SECONDS", 300.0, above=0)
# The beat period of the sweep (seconds, default 60).
GLASSLOOP_SWEEP_SECONDS = env_float("GLASSLOOP_SWEEP_SECONDS", 60.0, above=0)
# The beat period of the scheduled retrain (hours, default 24).
GLASSLOOP_RETRAIN_SCHEDULE_HOURS = env_float("GLASSLOOP_RETRAIN_SCHEDULE_HOURS", 24.0, above=0)
if GLASSLOOP_JOB_STALE_SECONDS <= GLASSLOOP_JOB_HEARTBEAT_SECONDS:
    raise ImproperlyConfigured(
        f"GLASSLOOP_JOB_STALE_SECONDS={GLASSLOOP_JOB_STALE_SECONDS:g} must be greater than "
        f"GLASSLOOP_JOB_HEARTBEAT_SECONDS={GLASSLOOP_JOB_HEARTBEAT_SECONDS:g}, or every running job looks dead."
    )
# Run by `celery -A config beat` (docker/entrypoint.sh beat); schedules in seconds.
CELERY_BEAT_SCHEDULE = {
    "sweep-jobs": {"task": "core.sweep_jobs", "schedule": GLASSLOOP_SWEEP_SECONDS},
    "scheduled-retrain": {"task": "ml.scheduled_retrain", "schedule": GLASSLOOP_RETRAIN_SCHEDULE_HOURS * 3600},
}

# LLM extraction (mining/llm.py). Without a model the offline `rules` extractor is used.
# The model name at the OpenAI-compatible endpoint (default: none).
GLASSLOOP_LLM_MODEL = env_str("GLASSLOOP_LLM_MODEL", "")
# The endpoint (default: none, i.e. api.openai.com) and its key (default: none; a local
# server may need none). The key is a secret: only mining/llm.py passes it to the client, it
# is never logged, stored or put in a message, and Django's error pages mask settings whose
# names contain KEY.
OPENAI_BASE_URL = env_str("OPENAI_BASE_URL", "")
OPENAI_API_KEY = env_str("OPENAI_API_KEY", "")
# Per-request timeout (seconds, default 60; a timed-out request is retried), attempts per
# request (default 4) and the first backoff (seconds, default 2, doubled each retry up to 60).
GLASSLOOP_LLM_TIMEOUT_S = env_float("GLASSLOOP_LLM_TIMEOUT_S", 60.0, above=0)
GLASSLOOP_LLM_MAX_ATTEMPTS = env_int("GLASSLOOP_LLM_MAX_ATTEMPTS", 4, min=1)
GLASSLOOP_LLM_BACKOFF_S = env_float("GLASSLOOP_LLM_BACKOFF_S", 2.0, min=0)
# A source's text is sent in chunks of at most this many characters (default 12000), each
# overlapping the previous one by this many (default 800).
GLASSLOOP_LLM_CHUNK_CHARS = env_int("GLASSLOOP_LLM_CHUNK_CHARS", 12000, min=1)
GLASSLOOP_LLM_OVERLAP_CHARS = env_int("GLASSLOOP_LLM_OVERLAP_CHARS", 800, min=0)
# The most LLM requests one batch run may send, retries and repairs included (default 500):
# a batch estimated above it is refused when created, and a run that reaches it stops.
GLASSLOOP_LLM_MAX_REQUESTS_PER_BATCH = env_int("GLASSLOOP_LLM_MAX_REQUESTS_PER_BATCH", 500, min=1)
if GLASSLOOP_LLM_OVERLAP_CHARS >= GLASSLOOP_LLM_CHUNK_CHARS:
    raise ImproperlyConfigured(
        f"GLASSLOOP_LLM_OVERLAP_CHARS={GLASSLOOP_LLM_OVERLAP_CHARS} must be smaller than "
        f"GLASSLOOP_LLM_CHUNK_CHARS={GLASSLOOP_LLM_CHUNK_CHARS}."
    )

# Log level of the root logger (default INFO).
LOG_LEVEL = env_str("LOG_LEVEL", "INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"))
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}

if not DEBUG:
    SESSION_COOKIE_HTTPONLY = True
    X_FRAME_OPTIONS = "DENY"

# Transport security (HTTPS). All off by default, so a first run over http://127.0.0.1 works;
# docker/.env.example turns them on (`manage.py check --deploy` then finds nothing,
# tests/deploy/test_check_deploy.py). Redirect every http request to https (default off).
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
# Send the session and CSRF cookies over https only (default off).
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", False)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", False)
# HTTP Strict Transport Security: seconds browsers must use https only (default 0: no header);
# with subdomains and preload-list consent (defaults off). Hard to undo: read Django's docs first.
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0, min=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
# Behind a TLS-terminating proxy: the request header (as Django names it, e.g.
# HTTP_X_FORWARDED_PROTO) whose value "https" marks a request that came over https (default
# none). Set it only when the proxy always sets or strips that header, or anyone can claim https.
GLASSLOOP_PROXY_SSL_HEADER = env_str("GLASSLOOP_PROXY_SSL_HEADER", "")
if GLASSLOOP_PROXY_SSL_HEADER and not re.fullmatch(r"HTTP_[A-Z0-9_]+", GLASSLOOP_PROXY_SSL_HEADER):
    raise ImproperlyConfigured(
        f"GLASSLOOP_PROXY_SSL_HEADER={GLASSLOOP_PROXY_SSL_HEADER!r} is not a request header as Django names it; "
        "write e.g. HTTP_X_FORWARDED_PROTO for X-Forwarded-Proto."
    )
SECURE_PROXY_SSL_HEADER = (GLASSLOOP_PROXY_SSL_HEADER, "https") if GLASSLOOP_PROXY_SSL_HEADER else None
# Content-Security-Policy of every response (core.middleware.ContentSecurityPolicyMiddleware):
# off (default: none, so test browsers may evaluate scripts), on (the site's own policy,
# core.middleware.SITE_POLICY: its own scripts, styles, images, fonts and fetches only; on in
# docker/.env.example) or a policy of your own, verbatim.
GLASSLOOP_CSP = env_str("GLASSLOOP_CSP", "off")
# How many trusted proxies add to X-Forwarded-For (default 0: the client is REMOTE_ADDR); the
# login throttles and DRF's throttles take the client address that many entries from the right.
GLASSLOOP_NUM_PROXIES = env_int("GLASSLOOP_NUM_PROXIES", 0, min=0)

# The cache (login failure counts, API throttles): GLASSLOOP_CACHE_URL redis://host:6379/1 in
# production so every web worker shares the counts (default: each process its own memory).
GLASSLOOP_CACHE_URL = env_str("GLASSLOOP_CACHE_URL", "")
if GLASSLOOP_CACHE_URL and not GLASSLOOP_CACHE_URL.startswith(("redis://", "rediss://", "unix://")):
    raise ImproperlyConfigured("GLASSLOOP_CACHE_URL is not a redis:// URL (leave it empty for a per-process cache).")
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": GLASSLOOP_CACHE_URL}
    if GLASSLOOP_CACHE_URL
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
}

# Password guessing (core/throttling.py). After this many failed logins (default 10) for one
# username from one address, or this many (default 50) for any usernames from one address,
# within this many minutes (default 15), logins from there are refused until the window ends.
GLASSLOOP_LOGIN_MAX_FAILURES = env_int("GLASSLOOP_LOGIN_MAX_FAILURES", 10, min=1)
GLASSLOOP_LOGIN_MAX_FAILURES_PER_ADDRESS = env_int("GLASSLOOP_LOGIN_MAX_FAILURES_PER_ADDRESS", 50, min=1)
GLASSLOOP_LOGIN_LOCKOUT_MINUTES = env_int("GLASSLOOP_LOGIN_LOCKOUT_MINUTES", 15, min=1)
# POST /api/auth/token/ per client address, whatever the answer (default 20/minute; N/second,
# N/minute, N/hour or N/day).
GLASSLOOP_TOKEN_RATE = env_rate("GLASSLOOP_TOKEN_RATE", "20/minute")
# An API token stops working this many hours after it was issued (default 720, 30 days; 0: never):
# the API answers 401 "Token expired on …", and POST /api/auth/token/ then issues a new key
# (core.api.ExpiringTokenAuthentication, core.api.token_for).
GLASSLOOP_TOKEN_TTL_HOURS = env_float("GLASSLOOP_TOKEN_TTL_HOURS", 24.0 * 30, min=0)
# The OpenAPI schema (/api/schema/) and its Swagger UI (/api/docs/) for anyone (default off:
# logged-in users and token holders only; anonymous callers get 401, the docs page the login page).
GLASSLOOP_API_DOCS_PUBLIC = env_bool("GLASSLOOP_API_DOCS_PUBLIC", False)

# Design loop and training (design/services.py, training/services.py).
# Retrain once this many new validated lab results (default 3) exist since the active model's data.
GLASSLOOP_RETRAIN_MIN_NEW_RESULTS = env_int("GLASSLOOP_RETRAIN_MIN_NEW_RESULTS", 3, min=1)
# Training epochs of the conditional GAN (default 600).
GLASSLOOP_TRAINING_EPOCHS = env_int("GLASSLOOP_TRAINING_EPOCHS", 600, min=1)
# The descriptor set the GAN is trained on (default D1; one of ml.descriptors.ALL_DESCRIPTOR_SETS,
# tests/test_settings.py checks the list).
GLASSLOOP_GAN_DESCRIPTORS = env_str(
    "GLASSLOOP_GAN_DESCRIPTORS", "D1", choices=("D1", "D2", "D3", "CD1", "CD2", "D1D2D3")
)
# Overrides of the GAN's and the forward model's hyperparameters, as JSON objects
# (default: none, the ML core's own; small sites and tests train smaller models),
# e.g. GLASSLOOP_GAN_PARAMS='{"hidden": 64}'.
GLASSLOOP_GAN_PARAMS = env_json_object("GLASSLOOP_GAN_PARAMS", None)
GLASSLOOP_FORWARD_PARAMS = env_json_object("GLASSLOOP_FORWARD_PARAMS", None)
GLASSLOOP_GFA_PARAMS = env_json_object("GLASSLOOP_GFA_PARAMS", None)  # ml.gfa.GFAModel parameters
# A new model version is promoted when its forward MAE is at most this fraction (default 0.05)
# worse than the active version's, and its glass-vs-crystal F1 at most this much (default 0.02) lower.
GLASSLOOP_PROMOTION_MAE_TOLERANCE = env_float("GLASSLOOP_PROMOTION_MAE_TOLERANCE", 0.05)
GLASSLOOP_PROMOTION_F1_TOLERANCE = env_float("GLASSLOOP_PROMOTION_F1_TOLERANCE", 0.02)

# REST API (core/api.py, core/api_urls.py). Token first, so an anonymous caller gets 401 with
# "WWW-Authenticate: Token"; session auth lets the browsable docs work for logged-in people
# (DRF enforces CSRF on session-authenticated writes).
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "core.api.ExpiringTokenAuthentication",  # DRF's TokenAuthentication + GLASSLOOP_TOKEN_TTL_HOURS
        "rest_framework.authentication.SessionAuthentication",
    ],
    # Reads need the viewer role (as on the web pages); writes are refused unless a view names
    # the role that may make them (core.api.HasRole).
    "DEFAULT_PERMISSION_CLASSES": ["core.api.ReadOnlyForViewers"],
    "DEFAULT_PAGINATION_CLASS": "core.api.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "core.api.NullsLastOrderingFilter",
    ],
    "DEFAULT_PARSER_CLASSES": [
        "rest_framework.parsers.JSONParser",
        "rest_framework.parsers.MultiPartParser",
        "rest_framework.parsers.FormParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "core.api.exception_handler",
    # Throttles (core/throttling.py): only views naming a scope are throttled.
    "DEFAULT_THROTTLE_RATES": {"auth_token": GLASSLOOP_TOKEN_RATE},
    "NUM_PROXIES": GLASSLOOP_NUM_PROXIES,
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

# The apps whose ``api`` module adds endpoints to /api/ (core/api_urls.py).
GLASSLOOP_API_MODULES = ("lab.api", "lab.api_imports", "training.api", "design.api", "mining.api", "core.api_jobs")

SPECTACULAR_SETTINGS = {
    "TITLE": "GlassLoop API",
    "DESCRIPTION": (
        "Alloys, samples, XRD/DSC measurements and property values of a bulk-metallic-glass lab. "
        "Authenticate with `Authorization: Token <key>` (POST /api/auth/token/) or a session. "
        'Errors are JSON: {"error": "<message>", "detail": <field errors or message>}.'
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api",
    "COMPONENT_SPLIT_REQUEST": True,  # request bodies with uploads get their own (multipart) schemas
    # The site may run offline: Swagger UI comes from drf-spectacular-sidecar's static files.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "persistAuthorization": True, "validatorUrl": None},
    # One name per choice set used by several fields.
    "ENUM_NAME_OVERRIDES": {
        "TemperatureUnitEnum": "lab.models.TemperatureUnit",
        "VerdictEnum": "lab.models.XRDMeasurement.Verdict",
        "JobStatusEnum": "core.jobs.JobStatus",
        "ExtractedRecordStatusEnum": "mining.models.ExtractedRecord.Status",
    },
}
