"""Settings for onlineocr.

Every value that may differ between machines is read from the environment here,
and only here; the defaults are the safe ones (DEBUG off, SQLite under db/,
OCR run in-process). The README's configuration table lists each variable.
"""

import os
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

DEBUG = env.bool("DJANGO_DEBUG", default=False)

# A key that is only good for local development; production refuses it.
DEV_SECRET_KEY = "django-insecure-onlineocr-development-only"
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is not set. Set it (or DJANGO_DEBUG=1 for local development)."
        )
    SECRET_KEY = DEV_SECRET_KEY
if not DEBUG and SECRET_KEY == DEV_SECRET_KEY:
    raise ImproperlyConfigured("The development secret key cannot be used with DEBUG off.")

ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
CSRF_FAILURE_VIEW = "app.handlers.csrf_failure"  # the JSON envelope on the API's paths

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "app",
]

MIDDLEWARE = [
    "app.csp.ContentSecurityPolicyMiddleware",  # first: every answer, errors included
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "app.middleware.RequestSizeLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "onlineocr.urls"
WSGI_APPLICATION = "onlineocr.wsgi.application"

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

# --- Database -------------------------------------------------------------------
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db' / 'db.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL + immediate transactions: concurrent readers never block on the writer,
    # and two writers queue instead of failing with "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
    # The test database is a file (one per test run), so a Celery worker process started
    # by a test sees the same rows.
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / "db" / f"test-{os.getpid()}.sqlite3")}
# Each worker keeps its connection between requests (checked before reuse) instead of opening
# one per request: for SQLite the open and its PRAGMAs, for PostgreSQL a TCP handshake and auth.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth -----------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# The browser pages (app/web/): session log-in, then the upload page.
LOGIN_URL = "web:login"
LOGIN_REDIRECT_URL = "web:upload"
LOGOUT_REDIRECT_URL = "web:login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("DJANGO_TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

# --- Static and uploaded files --------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = Path(env.str("DJANGO_STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
# Serve straight from the app folders too, so a checkout works before collectstatic.
WHITENOISE_USE_FINDERS = True
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Uploads are never served from MEDIA_URL directly: the app checks ownership first
# (see app/api/views.py: the record image action).
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env.str("DJANGO_MEDIA_ROOT", default=str(BASE_DIR / "media")))
# When set (behind nginx), owner-checked images are handed to nginx through
# X-Accel-Redirect with this internal location prefix instead of being streamed.
OCR_MEDIA_ACCEL_REDIRECT = env.str("OCR_MEDIA_ACCEL_REDIRECT", default="")
# Where uploads live: `local` (MEDIA_ROOT, one machine) or `s3`, a private bucket on S3 or
# an S3-compatible server that every web and worker machine shares. Credentials are not
# settings: boto3 finds them itself (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, a profile,
# the instance's role). Owner-checked images are then a redirect to a presigned GET that
# lives OCR_S3_URL_SECONDS (app/media.py).
OCR_STORAGE = env.str("OCR_STORAGE", default="local")
OCR_S3_URL_SECONDS = env.int("OCR_S3_URL_SECONDS", default=60)
if OCR_STORAGE == "s3":
    OCR_S3_BUCKET = env.str("OCR_S3_BUCKET", default="")
    if not OCR_S3_BUCKET:
        raise ImproperlyConfigured("OCR_STORAGE=s3 needs OCR_S3_BUCKET.")
    if OCR_S3_URL_SECONDS < 1:
        raise ImproperlyConfigured("OCR_S3_URL_SECONDS must be at least 1.")
    # Where browsers fetch the presigned links when they cannot reach OCR_S3_ENDPOINT_URL (a
    # store on the containers' private network, as in docker-compose.yml): the links are signed
    # for this address instead. Empty: the endpoint itself.
    OCR_S3_PUBLIC_URL = env.str("OCR_S3_PUBLIC_URL", default="")
    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": OCR_S3_BUCKET,
            "endpoint_url": env.str("OCR_S3_ENDPOINT_URL", default="") or None,  # None: AWS
            "region_name": env.str("OCR_S3_REGION", default="") or None,
            "location": env.str("OCR_S3_PREFIX", default="").strip("/"),
            # `path` for servers without per-bucket host names (MinIO, moto on an IP address).
            "addressing_style": env.str("OCR_S3_ADDRESSING_STYLE", default="") or None,
            "signature_version": "s3v4",
            # Private objects: no ACL is sent, so the bucket's own (private) policy applies;
            # reads go through presigned URLs only, never a public or custom-domain URL.
            "default_acl": None,
            "querystring_auth": True,
            "querystring_expire": OCR_S3_URL_SECONDS,
            "custom_domain": None,
            "file_overwrite": False,
        },
    }
elif OCR_STORAGE != "local":
    raise ImproperlyConfigured(f"OCR_STORAGE must be 'local' or 's3', not {OCR_STORAGE!r}.")

# --- OCR ------------------------------------------------------------------------
OCR_DEFAULT_ENGINE = env.str("OCR_DEFAULT_ENGINE", default="auto")
OCR_MAX_UPLOAD_BYTES = env.int("OCR_MAX_UPLOAD_BYTES", default=10 * 1024 * 1024)
OCR_MAX_PIXELS = env.int("OCR_MAX_PIXELS", default=40_000_000)
# Threads each engine may use inside one process. 0 keeps the engine's own default
# (all cores), right for the development server; uWSGI sets 1 per worker process.
OCR_ENGINE_THREADS = env.int("OCR_ENGINE_THREADS", default=0)
OCR_ENGINE_TIMEOUT = env.int("OCR_ENGINE_TIMEOUT", default=120)
# RapidOCR's inference runtime: onnxruntime, or openvino (in f32: the same text; onnxruntime
# when it cannot load). Measured here (2026-12-02, AMD EPYC with AVX512_BF16): OpenVINO in
# f32 is 0.88-1.03x onnxruntime's time but holds 1.6-4x its memory (1.5 GB after a 12 MP
# page, never given back); only its bf16 default is faster (0.51-0.73x), and bf16 changes
# the text of 22 of 71 corpus files. So onnxruntime stays the default.
OCR_RAPIDOCR_RUNTIME = env.str("OCR_RAPIDOCR_RUNTIME", default="onnxruntime")
# A process that has read nothing for this long gives the heap its reads left behind back
# to the system (app/memory.py); 0 never does. Shorter makes more reads start cold.
OCR_TRIM_IDLE_SECONDS = env.float("OCR_TRIM_IDLE_SECONDS", default=5.0)
# The older services' endpoints (app/compat/) without an API key: recognized, never stored.
OCR_ALLOW_ANONYMOUS = env.bool("OCR_ALLOW_ANONYMOUS", default=False)
# image_url: seconds for the whole fetch, and networks it may reach despite being
# private or loopback (e.g. "10.1.2.0/24" for an intranet image server). Empty: public only.
OCR_URL_TIMEOUT = env.float("OCR_URL_TIMEOUT", default=10.0)
OCR_URL_ALLOWLIST = env.list("OCR_URL_ALLOWLIST", default=[])
# PDFs: pages rendered at this resolution, and at most this many pages per upload.
OCR_PDF_DPI = env.int("OCR_PDF_DPI", default=200)
OCR_PDF_MAX_PAGES = env.int("OCR_PDF_MAX_PAGES", default=50)
# Memory one page's render may take above the worker's own size (a child process under
# RLIMIT_AS, app/pdf.py; its deadline is OCR_ENGINE_TIMEOUT): past it, 422 pdf_too_complex.
OCR_PDF_RENDER_MEMORY_MB = env.int("OCR_PDF_RENDER_MEMORY_MB", default=1024)
# A base64 body is 4/3 of the image, plus room for the other fields.
OCR_MAX_REQUEST_BYTES = OCR_MAX_UPLOAD_BYTES * 4 // 3 + 64 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = OCR_MAX_REQUEST_BYTES
FILE_UPLOAD_MAX_MEMORY_SIZE = OCR_MAX_UPLOAD_BYTES

# --- Jobs (Celery) -------------------------------------------------------------
# Off by default: every OCR runs in the request, and queued work (batches, ?async=1)
# runs in-process at once ("eager"), so SQLite with no broker keeps working. On with a
# broker: those go to `celery -A onlineocr worker` processes (`./start.sh worker`).
OCR_ASYNC = env.bool("OCR_ASYNC", default=False)
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="")
CELERY_TASK_ALWAYS_EAGER = not (OCR_ASYNC and CELERY_BROKER_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_IGNORE_RESULT = True  # a job's state lives on its record
CELERY_TASK_SERIALIZER = "json"
# A job is acknowledged only when it has finished: a worker that dies mid-job gives it back.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env.int("OCR_JOB_TIME_LIMIT", default=1800)
CELERY_TASK_SOFT_TIME_LIMIT = CELERY_TASK_TIME_LIMIT - 30
# Redis hands an unacknowledged job to another worker after this long: longer than any job.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=CELERY_TASK_TIME_LIMIT + 600)
}
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
# With OCR_ASYNC on, a PDF with more pages than this is queued even without ?async=1.
OCR_ASYNC_PDF_PAGES = env.int("OCR_ASYNC_PDF_PAGES", default=10)
# A batch (POST /api/ocr/batch/) takes at most this many files, loose or in a zip.
OCR_BATCH_MAX_FILES = env.int("OCR_BATCH_MAX_FILES", default=100)

# --- REST framework -------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework_simplejwt.authentication.JWTAuthentication",
        "app.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": [
        "app.api.parsers.JSONParser",  # a too deeply nested body is a 400, not a 500
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.SearchFilter",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_PAGINATION_CLASS": "app.api.pagination.HistoryPagination",
    # JSON whatever the Accept header says (no browsable HTML API): app/api/negotiation.py.
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "app.api.negotiation.FirstRendererFallback",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # Proxies in front that append to X-Forwarded-For (nginx: 1); 0 counts REMOTE_ADDR only.
    "NUM_PROXIES": env.int("OCR_NUM_PROXIES", default=0),
    "EXCEPTION_HANDLER": "app.api.errors.exception_handler",
    # `format` is a field of POST /api/ocr/ (text, hocr, tsv), not content negotiation.
    "URL_FORMAT_OVERRIDE": None,
}

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env.int("JWT_ACCESS_MINUTES", default=15)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env.int("JWT_REFRESH_DAYS", default=7)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": True,
    # Tokens carry a digest of the password hash: a password change ends every access token
    # at once (app/services/accounts.py also blacklists every refresh token).
    "CHECK_REVOKE_TOKEN": True,
}
# A refresh chain (login, then refresh after refresh) ends this long after the login.
JWT_REFRESH_MAX_DAYS = env.int("JWT_REFRESH_MAX_DAYS", default=30)

# --- Limits per user (app/throttles.py) -------------------------------------------
# Request rates, "<number>/<second|minute|hour|day>", counted in the database (RateCounter
# rows, atomic increments, shared by every worker process); empty: no limit. Sign-ins
# (register, token, refresh, log-out, password change, the browser's log-in, sign-up and
# admin forms) per client address; OCR requests per API key (or per user without a key,
# per address when anonymous). Daily quotas of stored images and of their pages, counted
# from the records since midnight UTC; 0: unlimited.
OCR_AUTH_THROTTLE = env.str("OCR_AUTH_THROTTLE", default="20/minute")
OCR_USER_THROTTLE = env.str("OCR_USER_THROTTLE", default="120/minute")
OCR_DAILY_IMAGE_QUOTA = env.int("OCR_DAILY_IMAGE_QUOTA", default=0)
OCR_DAILY_PAGE_QUOTA = env.int("OCR_DAILY_PAGE_QUOTA", default=0)

# --- Cache: shared by every worker process ---------------------------------------
# The throttles no longer count here (a cache's get-then-set loses counts under concurrent
# requests): they count in the database (app/throttles.py), and nothing in the app uses the
# cache now. Kept for what may: CACHE_URL (redis://...) when given, or the Celery broker when
# jobs really go to Redis; otherwise a table in the database, shared by every process. A
# per-process memory cache would give each uWSGI worker its own copy.
CACHE_URL = env.str("CACHE_URL", default="") or (
    CELERY_BROKER_URL if not CELERY_TASK_ALWAYS_EAGER and CELERY_BROKER_URL.startswith("redis") else ""
)
if CACHE_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}}
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "onlineocr_cache",  # created by migration app/0006_cache_table
            "OPTIONS": {"MAX_ENTRIES": 100_000},
        }
    }

SPECTACULAR_SETTINGS = {
    "TITLE": "onlineocr API",
    "DESCRIPTION": "Multi-user OCR: Tesseract, RapidOCR and ddddocr behind one API, "
    "with a private, searchable history per user.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "RecordStatusEnum": "app.models.OcrRecord.Status",
        "HealthStatusEnum": ["ok", "error"],
    },
}

# --- Security -------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
# Off by default because `./start.sh` serves plain http on loopback; turn on behind TLS.
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=False)
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=False)
# The container's health check talks plain http to nginx from inside: never redirect it.
SECURE_REDIRECT_EXEMPT = [r"^api/health/$"]
SECURE_HSTS_SECONDS = env.int("DJANGO_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("DJANGO_HSTS_PRELOAD", default=True)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if env.bool("DJANGO_BEHIND_TLS_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# A deployment served over plain http on purpose (loopback, or a network you trust): with
# DJANGO_PLAIN_HTTP=1, `check --deploy` no longer warns about the TLS settings that are off
# (no HSTS, no redirect, cookies without Secure), so `./start.sh serve` starts; it says so.
# Without it, those warnings stop `serve`: turning TLS off takes this one deliberate switch.
PLAIN_HTTP = env.bool("DJANGO_PLAIN_HTTP", default=False)
if PLAIN_HTTP:
    SILENCED_SYSTEM_CHECKS = [
        check
        for check, on in (
            ("security.W004", SECURE_HSTS_SECONDS),
            ("security.W008", SECURE_SSL_REDIRECT),
            ("security.W012", SESSION_COOKIE_SECURE),
            ("security.W016", CSRF_COOKIE_SECURE),
        )
        if not on
    ]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("DJANGO_LOG_LEVEL", default="INFO")},
    "loggers": {
        # RapidOCR logs every call at INFO; keep the engines to warnings.
        "RapidOCR": {"level": "WARNING"},
    },
}
