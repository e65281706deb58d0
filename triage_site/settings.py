"""Settings from environment variables, each with an embedded default.

With nothing configured the project runs embedded: SQLite, an in-memory channel
layer and Celery in eager mode. With DATABASE_URL / REDIS_URL set it runs the real
stack: PostgreSQL through psycopg 3, Redis as Celery broker and channel layer.
"""
import os
import socket
import tempfile
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
import plotly

from scheduler import targets

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("TRIAGE_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def env_bool(name, default):
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name, default, minimum=1):
    """An integer setting; unset, empty or "auto" gives `default` (None: the code that reads it decides)."""
    value = os.environ.get(name, "").strip()
    if value.lower() in ("", "auto"):
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer or 'auto', got {value!r}") from None
    if number < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {number}")
    return number


def env_positive_float(name, default):
    """A number of seconds (or the like) above 0 and finite; unset gives `default`."""
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError:
        number = None
    if number is None or not 0 < number < float("inf"):
        raise ImproperlyConfigured(f"{name} must be a positive number of seconds, got {value!r}")
    return number


def env_list(name, default):
    value = os.environ.get(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


DEBUG = env_bool("DJANGO_DEBUG", True)
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise RuntimeError("DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off.")
    SECRET_KEY = "insecure-development-key-only-for-debug-mode"
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "servestatic",
    "axes",
    "triage_site.intake",
    "triage_site.classification",
    "triage_site.guidance",
    "triage_site.dispatch",
    "triage_site.live",
    "triage_site.simulation",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "servestatic.middleware.ServeStaticMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "triage_site.middleware.NeverCacheForSignedInUsers",
    "triage_site.middleware.ContentSecurityPolicy",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: locks out repeated failed sign-ins.
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Login throttling: 5 failed attempts for one username from one address lock it for 15 minutes.
AXES_FAILURE_LIMIT = int(os.environ.get("TRIAGE_LOGIN_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = float(os.environ.get("TRIAGE_LOGIN_COOLOFF_HOURS", "0.25"))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"

ROOT_URLCONF = "triage_site.urls"
ASGI_APPLICATION = "triage_site.asgi.application"
WSGI_APPLICATION = "triage_site.wsgi.application"

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
                "triage_site.context_processors.urgency_scale",
                "triage_site.context_processors.roles",
            ],
        },
    },
]

# Database: PostgreSQL when DATABASE_URL is set, SQLite otherwise.
DATABASE_URL = os.environ.get("DATABASE_URL", "")
# Under ASGI every concurrent request runs in a thread of its own, each with its own connection:
# without a pool a burst of form posts opens connections until PostgreSQL refuses more. The
# psycopg pool caps them per process (DATABASE_POOL_MAX_SIZE; 0 turns pooling off, and then
# DATABASE_CONN_MAX_AGE keeps connections open between requests); a request waits for a free one.
DATABASE_POOL_MAX_SIZE = int(os.environ.get("DATABASE_POOL_MAX_SIZE", "16"))
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(
        DATABASE_URL, conn_max_age=0 if DATABASE_POOL_MAX_SIZE else int(os.environ.get("DATABASE_CONN_MAX_AGE", "60")),
        conn_health_checks=True,  # with the pool: each connection is checked as it is handed out
    )}
    if DATABASE_POOL_MAX_SIZE:
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": 1, "max_size": DATABASE_POOL_MAX_SIZE, "timeout": 30, "max_idle": 300}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "db.sqlite3",
            # The embedded worker thread writes while the web server writes: wait, don't fail; and
            # with the write-ahead log, readers never wait for a writer.
            "OPTIONS": {"timeout": 30, "transaction_mode": "IMMEDIATE",
                        "init_command": "PRAGMA journal_mode=WAL;"},
            # Tests get a file too: SQLite's shared in-memory database locks whole tables and fails
            # at once ("database table is locked") where a file database waits for the lock.
            "TEST": {"NAME": str(Path(tempfile.gettempdir()) / f"triage-test-{os.getpid()}.sqlite3")},
        }
    }
TEST_DATABASE_NAME = os.environ.get("TRIAGE_TEST_DB_NAME")
if TEST_DATABASE_NAME:
    DATABASES["default"]["TEST"] = {"NAME": TEST_DATABASE_NAME}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Redis: Celery broker, channel layer and worker wake-ups share one server.
REDIS_URL = os.environ.get("REDIS_URL", "")
# Prefix for every Redis key, queue and channel we use, so that test runs and a
# development stack on the same Redis never take each other's messages.
REDIS_PREFIX = os.environ.get("TRIAGE_REDIS_PREFIX", "triage")

if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "prefix": f"{REDIS_PREFIX}:asgi", "capacity": 1000, "expiry": 30},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_TASK_DEFAULT_QUEUE = f"{REDIS_PREFIX}-tasks"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A broker outage must not hang the intake form: fail fast, the request is already stored.
# A task whose worker died unacknowledged is redelivered after the visibility timeout. kombu looks for such
# tasks every restore interval x throttle seconds (10 x 10 by default, so up to 100 s late): scan on every
# sweep, at most every 10 s, so redelivery comes within the visibility timeout plus one sweep.
CELERY_VISIBILITY_TIMEOUT_S = int(os.environ.get("TRIAGE_CELERY_VISIBILITY_TIMEOUT", "600"))
# Each Celery worker process loads the classifier's models as it starts (triage_site/celery.py), not on its first task
TRIAGE_CELERY_PRELOAD_MODELS = env_bool("TRIAGE_CELERY_PRELOAD_MODELS", True)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "socket_connect_timeout": 2,
    "socket_timeout": 5,
    "visibility_timeout": CELERY_VISIBILITY_TIMEOUT_S,
    "unacked_restore_interval": max(1, min(10, CELERY_VISIBILITY_TIMEOUT_S // 2)),
    "unacked_restore_throttle": 1,
}
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}

# Inference worker.
TRIAGE_INFERENCE_MODEL = os.environ.get("TRIAGE_INFERENCE_MODEL", "smollm2")
TRIAGE_INFERENCE_DEVICE = os.environ.get("TRIAGE_INFERENCE_DEVICE", "auto")
TRIAGE_SCHEDULER_POLICY = os.environ.get("TRIAGE_SCHEDULER_POLICY", "semantic")
# Aging of waiting requests (docs/scheduler.md): "deadline" promotes a request as its wait nears its class's
# first-token target (TRIAGE_FIRST_TOKEN_TARGETS_S), "admissions" counts admissions, "off" lets low classes wait.
TRIAGE_SCHEDULER_AGING = os.environ.get("TRIAGE_SCHEDULER_AGING", "deadline").strip().lower()
if TRIAGE_SCHEDULER_AGING not in ("off", "admissions", "deadline"):
    raise ImproperlyConfigured(f"TRIAGE_SCHEDULER_AGING must be off, admissions or deadline, "
                               f"got {TRIAGE_SCHEDULER_AGING!r}")
# Shortest remaining work first inside a class (docs/scheduler.md): a waiting request displaces a running one of
# its own class with clearly more work left. Off: its gain was small in simulation and on the paper's requests.
TRIAGE_SCHEDULER_WITHIN_CLASS = env_bool("TRIAGE_SCHEDULER_WITHIN_CLASS", False)
# Several inference workers (docs/cluster.md): each claims requests with a lease it renews with its heartbeat; a
# worker silent for a lease period loses its requests to the others. Its name shows on the board.
TRIAGE_WORKER_LEASE_S = float(os.environ.get("TRIAGE_WORKER_LEASE_S", "10"))
if not TRIAGE_WORKER_LEASE_S > 0:
    raise ImproperlyConfigured(f"TRIAGE_WORKER_LEASE_S must be a positive number of seconds, got {TRIAGE_WORKER_LEASE_S}")
TRIAGE_WORKER_NAME = os.environ.get("TRIAGE_WORKER_NAME", "").strip()  # default: host:pid
# The machine whose GPUs a worker shares with the other workers of the same pool (docs/cluster.md); every
# replica of a Compose service must name the same pool, workers on other machines another.
TRIAGE_GPU_POOL = os.environ.get("TRIAGE_GPU_POOL", "").strip() or socket.gethostname()
# Engine sizes. None ("auto", the default where shown): the worker picks by device, from measurements
# (inference_worker/build.py: CPU and CUDA defaults, benchmarks/cpu_batch.py).
TRIAGE_MAX_ANSWER_TOKENS = env_int("TRIAGE_MAX_ANSWER_TOKENS", None)       # CPU 200, CUDA 400
TRIAGE_MAX_PROMPT_TOKENS = env_int("TRIAGE_MAX_PROMPT_TOKENS", 1024)       # longer prompts are refused
TRIAGE_MAX_BATCH_SIZE = env_int("TRIAGE_MAX_BATCH_SIZE", None)             # CPU 8, CUDA 64
TRIAGE_URGENT_BATCH_SIZE = env_int("TRIAGE_URGENT_BATCH_SIZE", None, minimum=0)  # CPU 1, CUDA 0 (0: off)
TRIAGE_KV_CACHE_MAX_MB = env_int("TRIAGE_KV_CACHE_MAX_MB", 512)  # the CPU KV pool's cap (inference_worker.build)
TRIAGE_PREFIX_CACHING = env_bool("TRIAGE_PREFIX_CACHING", True)  # reuse the KV of shared prompt prefixes
TRIAGE_MODEL_CACHE = Path(os.environ.get("TRIAGE_MODEL_CACHE", VAR_DIR / "models"))
# How often the worker re-sends requests whose classification was never enqueued or was lost.
TRIAGE_RESEND_INTERVAL_S = float(os.environ.get("TRIAGE_RESEND_INTERVAL_S", "30"))
# How answers are sampled (inference_worker/engine/sampling.py). SmolLM2-135M loops under plain greedy decoding:
# `benchmarks/answer_sampling.py` (12 reports, 160 tokens) had the degeneration guard withdraw 9 of 12 greedy
# answers and none under repetition_penalty 1.2, which also left the fewest repeated phrases short of 1.3's
# rambling. No n-gram ban by default: transformers applies it to the prompt too, so it would forbid quoting
# the protocol card; greedy (temperature 0) keeps answers reproducible for the audit. A seed reproduces sampling.
TRIAGE_ANSWER_TEMPERATURE = float(os.environ.get("TRIAGE_ANSWER_TEMPERATURE", "0"))
TRIAGE_ANSWER_TOP_P = float(os.environ.get("TRIAGE_ANSWER_TOP_P", "1.0"))
TRIAGE_ANSWER_REPETITION_PENALTY = float(os.environ.get("TRIAGE_ANSWER_REPETITION_PENALTY", "1.2"))
TRIAGE_ANSWER_NO_REPEAT_NGRAM = env_int("TRIAGE_ANSWER_NO_REPEAT_NGRAM", 0, minimum=0)    # 0: off
# An answer is held until it names a key step of its protocol card, and withdrawn if it never does (guard.py).
TRIAGE_ANSWER_CARD_CHECK = env_bool("TRIAGE_ANSWER_CARD_CHECK", True)
TRIAGE_ANSWER_SEED = env_int("TRIAGE_ANSWER_SEED", None, minimum=0)                       # unset: a fresh seed

# Urgency classifier: a packaged MiniLM encoder by default; a Hugging Face id or a local
# path for sites with bigger models (loaded offline).
TRIAGE_CLASSIFIER_ENCODER = os.environ.get("TRIAGE_CLASSIFIER_ENCODER", "")
if os.environ.get("TRIAGE_CLASSIFIER_HEAD"):
    TRIAGE_CLASSIFIER_HEAD = os.environ["TRIAGE_CLASSIFIER_HEAD"]
TRIAGE_CLASSIFIER_FALLBACK_URGENCY = int(os.environ.get("TRIAGE_CLASSIFIER_FALLBACK_URGENCY", "2"))
TRIAGE_CLASSIFIER_RELOAD_S = float(os.environ.get("TRIAGE_CLASSIFIER_RELOAD_S", "60"))
TRIAGE_CLASSIFIER_REVIEW_BELOW = float(os.environ.get("TRIAGE_CLASSIFIER_REVIEW_BELOW", "0.45"))
TRIAGE_CLASSIFIER_MATERIAL_P = float(os.environ.get("TRIAGE_CLASSIFIER_MATERIAL_P", "0.2"))
TRIAGE_CLASSIFIER_BATCH_WINDOW_S = float(os.environ.get("TRIAGE_CLASSIFIER_BATCH_WINDOW_S", "0.02"))
# The current classifier's confusion matrix on the independent set (evaluate_classifier --json), for the
# simulation page's "errors as measured by the current classifier".
TRIAGE_MEASURED_CONFUSION = Path(os.environ.get("TRIAGE_MEASURED_CONFUSION",
                                                BASE_DIR / "data" / "classifier" / "measured_confusion.json"))
TRIAGE_CLASSIFIER_BATCH_MAX = int(os.environ.get("TRIAGE_CLASSIFIER_BATCH_MAX", "16"))

# Clinical time targets per urgency level 0..4, in seconds (defaults and reasons: scheduler/targets.py, which
# reads the same variables for the simulator and the benchmarks). "-" marks a level that raises no alert.
def env_targets(name, default, allow_none=False):
    try:
        return targets.from_environment(name, default, allow_none=allow_none)
    except ValueError as error:
        raise ImproperlyConfigured(str(error)) from None


TRIAGE_FIRST_TOKEN_TARGETS_S = env_targets(targets.FIRST_TOKEN_SETTING, targets.FIRST_TOKEN_TARGET_SECONDS)
TRIAGE_ACKNOWLEDGE_TARGETS_S = env_targets(targets.ACKNOWLEDGE_SETTING, targets.ACKNOWLEDGE_TARGET_SECONDS,
                                           allow_none=True)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
# An open board or request socket reads its user's rights and session afresh this often (and on every message
# it receives) and closes once they are gone: up to three small queries per socket per interval. A sign-out
# closes the session's sockets at once.
TRIAGE_SOCKET_RECHECK_S = env_positive_float("TRIAGE_SOCKET_RECHECK_S", 3.0)
LOGIN_REDIRECT_URL = "dispatch:board"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-gb"
TIME_ZONE = os.environ.get("TRIAGE_TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static", ("plotly", Path(plotly.__file__).parent / "package_data")]
SERVESTATIC_USE_FINDERS = True

# Production (debug off) is secure by default: HTTPS only, secure cookies, HSTS. A plain-HTTP
# demo (docker-compose on 127.0.0.1) turns these off explicitly through the environment.
SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_SSL_REDIRECT = env_bool("DJANGO_SSL_REDIRECT", not DEBUG)
SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_HSTS_SECONDS", "0" if DEBUG else "31536000"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD", not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
# Scripts only from our own files (no inline script, no eval): an injected <script> or onerror= in a caller's text
# would not run even if it escaped the templates' autoescaping. Styles may be inline (Plotly writes <style>); the
# websockets are same-origin ('self' covers ws: and wss: to this host). "" sends no policy.
TRIAGE_CONTENT_SECURITY_POLICY = os.environ.get(
    "TRIAGE_CONTENT_SECURITY_POLICY",
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "font-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'none'")
if env_bool("DJANGO_BEHIND_TLS_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_HTTPONLY = True
# The debug page and error reports hide every setting that may hold a credential, not only SECRET_KEY.
DEFAULT_EXCEPTION_REPORTER_FILTER = "triage_site.error_reports.CredentialHidingFilter"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("TRIAGE_LOG_LEVEL", "INFO")},
    "loggers": {"daphne": {"level": "WARNING"}, "django.channels.server": {"level": "WARNING"}},
}
