"""Settings, read from the environment.

Every value has a default that works on a fresh machine: an SQLite file under
``var/``, the ORM broker for background jobs and the local Klaviyo sandbox.
Production sets ``DEBUG=false`` and the variables listed in README.md.
"""

import os
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
env_file = BASE_DIR / ".env"
if env_file.exists():
    env.read_env(str(env_file))

# Where the SQLite database and other local files live.
VAR_DIR = Path(env.str("VAR_DIR", default=str(BASE_DIR / "var")))

DEBUG = env.bool("DEBUG", default=True)

# Production (DEBUG off) refuses to start without SECRET_KEY.
if DEBUG:
    SECRET_KEY = env.str("SECRET_KEY", default="django-insecure-development-only")
else:
    SECRET_KEY = env.str("SECRET_KEY")

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_q",
    "integrations.messaging",
    "integrations.klaviyo",
    "integrations.sandbox",
    "integrations.benchmarks",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "project.urls"
WSGI_APPLICATION = "project.wsgi.application"

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

# SQLite is tuned so that the site and the workers can share one file: WAL
# lets readers run beside the writer, IMMEDIATE takes the write lock when a
# transaction starts (no upgrade deadlocks) and the timeout makes a second
# writer wait instead of failing at once.
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES["default"]["ENGINE"] = "project.sqlite"
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "init_command": (
                "PRAGMA journal_mode=WAL;"
                "PRAGMA synchronous=NORMAL;"
                "PRAGMA busy_timeout=30000;"
            ),
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
        }
    )
    # A file, not memory, so that the worker processes the pipeline tests
    # start can open it; one per test run, so that runs never collide.
    DATABASES["default"]["TEST"] = {
        "NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")
    }
else:
    DATABASES["default"]["TEST"] = {
        "NAME": f"test_{DATABASES['default']['NAME']}_{os.getpid()}"
    }
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", 60))
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "klaviyo:brand-list"
LOGOUT_REDIRECT_URL = "login"

# Production hardening. With DEBUG off `manage.py check --deploy` is clean;
# SECURE_SSL_REDIRECT can be switched off behind a proxy that terminates TLS
# and sets SECURE_PROXY_SSL_HEADER.
if not DEBUG:
    # The admin's static files, collected into STATIC_ROOT, served by the site.
    MIDDLEWARE.insert(1, "whitenoise.middleware.WhiteNoiseMiddleware")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    if env.bool("BEHIND_TLS_PROXY", default=False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# Stored secrets (OAuth tokens, legacy API keys) are encrypted with these
# Fernet keys, never with SECRET_KEY. The first key encrypts; every key
# decrypts, so a new key is put first and the old one kept until
# `manage.py rotate_encryption_keys` has re-encrypted every row.
ENCRYPTION_KEYS = env.list("ENCRYPTION_KEYS", default=[])

# Background jobs. The ORM broker needs nothing but the database; with
# REDIS_URL set the Redis broker is used. `retry` must exceed `timeout`, or a
# slow task is handed to a second worker while the first still runs: a
# system check refuses such a configuration.
REDIS_URL = env.str("REDIS_URL", default="")
Q_CLUSTER = {
    "name": env.str("Q_CLUSTER_NAME", default="klaviyo-export"),
    "workers": env.int("Q_WORKERS", default=4),
    "timeout": env.int("Q_TIMEOUT", default=120),
    "retry": env.int("Q_RETRY", default=180),
    "max_attempts": 1,
    "queue_limit": 50,
    "bulk": 1,
    "save_limit": env.int("Q_SAVE_LIMIT", default=500),
    "ack_failures": True,
    "catch_up": False,
    "poll": env.float("Q_POLL", default=0.1),
    "label": "Background jobs",
    # django-q2 sets its own logger's level from this.
    "log_level": env.str("Q_LOG_LEVEL", default="WARNING"),
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

# Klaviyo. The defaults speak to the real Klaviyo; `make run` points
# KLAVIYO_API_URL and KLAVIYO_AUTHORIZE_URL at the local sandbox.
KLAVIYO_CLIENT_ID = env.str("KLAVIYO_CLIENT_ID", default="")
KLAVIYO_CLIENT_SECRET = env.str("KLAVIYO_CLIENT_SECRET", default="")
KLAVIYO_API_URL = env.str("KLAVIYO_API_URL", default="https://a.klaviyo.com")
KLAVIYO_AUTHORIZE_URL = env.str(
    "KLAVIYO_AUTHORIZE_URL", default="https://www.klaviyo.com/oauth/authorize"
)
KLAVIYO_REVISION = env.str("KLAVIYO_REVISION", default="2026-07-15")
KLAVIYO_SCOPES = env.list(
    "KLAVIYO_SCOPES", default=["accounts:read", "events:write", "profiles:write"]
)
KLAVIYO_CONNECT_TIMEOUT = env.float("KLAVIYO_CONNECT_TIMEOUT", default=5.0)
KLAVIYO_READ_TIMEOUT = env.float("KLAVIYO_READ_TIMEOUT", default=30.0)
# The platform's name in metric names: "Sent SMS in <PLATFORM_NAME>".
PLATFORM_NAME = env.str("PLATFORM_NAME", default="Endear")
# Base of the customer links carried in every event's properties.
PLATFORM_BASE_URL = env.str("PLATFORM_BASE_URL", default="http://localhost:8000")
# Events still not accepted this long after they were recorded are failed.
KLAVIYO_EXPORT_MAX_AGE_HOURS = env.float("KLAVIYO_EXPORT_MAX_AGE_HOURS", default=72)
# Klaviyo's documented rate limits are kept times this factor: 1 for
# Klaviyo itself; a sandbox run with scaled limits sets the same scale.
KLAVIYO_RATE_LIMIT_SCALE = env.float("KLAVIYO_RATE_LIMIT_SCALE", default=1.0)
# How long one export task may run before handing over to the next one in
# the queue, so that every brand gets its turn. Below Q_TIMEOUT.
KLAVIYO_EXPORT_RUN_SECONDS = env.float("KLAVIYO_EXPORT_RUN_SECONDS", default=60)
# Requests a run keeps in flight while it drains a campaign backlog.
KLAVIYO_EXPORT_BACKLOG_THREADS = env.int("KLAVIYO_EXPORT_BACKLOG_THREADS", default=2)

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django-q": {"level": env.str("Q_LOG_LEVEL", default="WARNING")},
    },
}
