"""Parley settings, read only from the environment (12-factor).

With nothing set, Parley runs embedded: SQLite, an in-memory channel layer, eager Celery,
files on local disk and email printed to the console. Set DATABASE_URL and REDIS_URL to scale out.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("PARLEY_DATA_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {value!r}")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {value!r}") from None


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)
# The insecure default keeps the embedded run to one command; `check --deploy` flags it.
SECRET_KEY = os.environ.get("SECRET_KEY") or "django-insecure-parley-embedded-development-key"
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")
REDIS_URL = os.environ.get("REDIS_URL", "")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "django_htmx",
    "template_partials",
    "accounts",
    "rooms",
    "moderation",
    "notifications",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "messages_site.middleware.SignedOutScriptMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "messages_site.middleware.UserErrorMiddleware",
    "rooms.middleware.LiveCursorMiddleware",
]

ROOT_URLCONF = "messages_site.urls"
ASGI_APPLICATION = "messages_site.asgi.application"

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
                "rooms.context_processors.live_cursor",
                "rooms.context_processors.sidebar",
                "rooms.context_processors.safety",
            ],
        },
    }
]

# Databases ---------------------------------------------------------------------------------

DATABASE_URL = os.environ.get("DATABASE_URL", "")
if DATABASE_URL:
    try:
        DATABASES = {"default": dj_database_url.parse(DATABASE_URL)}
    except ValueError as exc:
        raise ImproperlyConfigured(f"DATABASE_URL is not a database URL: {exc}") from None
else:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": DATA_DIR / "db.sqlite3"}
    }

_engine = DATABASES["default"]["ENGINE"]
if _engine == "django.db.backends.postgresql":
    # A pool, not persistent connections: the ASGI handler runs sync views on many threads.
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 2,
        "max_size": env_int("DATABASE_POOL_SIZE", 20),
        "timeout": 10,
    }
    # Parameters sent apart from the statement, and a statement prepared the 5th time a
    # connection runs it: PostgreSQL then plans the conversation list's query once per pooled
    # connection instead of on every page (planning took longer than running it). Set
    # DATABASE_PREPARED_STATEMENTS=0 behind a pooler that cannot keep prepared statements.
    if env_bool("DATABASE_PREPARED_STATEMENTS", True):
        DATABASES["default"]["OPTIONS"].update(server_side_binding=True, prepare_threshold=5)
elif _engine == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # A file, not memory, so that a server process started by a test sees the test database.
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / f"test-db-{os.getpid()}.sqlite3")}
else:
    raise ImproperlyConfigured(f"Parley runs on PostgreSQL or SQLite, not {_engine}")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

# Live updates, cache and background work -----------------------------------------------------

if REDIS_URL:
    # Pub/sub, not the list-based layer: one PUBLISH per room event whatever the room's size,
    # and no per-process queue to overflow. It may drop frames on a Redis restart; tabs catch
    # up from the database (docs/BENCHMARKS.md has the comparison).
    CHANNEL_LAYERS = {
        "default": {
            # channels_redis's pub/sub layer, which also tells sockets to replay after a
            # lost Redis connection (messages_site/channel_layer.py).
            "BACKEND": "messages_site.channel_layer.ResyncingPubSubChannelLayer",
            "CONFIG": {
                "hosts": [REDIS_URL],
                "prefix": os.environ.get("CHANNEL_LAYER_PREFIX", "asgi"),
            },
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "messages_site.redis_pool.SharedClientRedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {"pool_class": "messages_site.redis_pool.SharedConnectionPool"},
        }
    }
    CELERY_BROKER_URL = REDIS_URL
    CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    # Pages keep their message fragments and list entries here (rooms/fragments.py): a room
    # page and a scrolled list alone hold a few hundred.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "OPTIONS": {"MAX_ENTRIES": 10_000},
        }
    }
    CELERY_BROKER_URL = "memory://"
    CELERY_TASK_ALWAYS_EAGER = True

CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_EAGER_PROPAGATES = True

# Auth ----------------------------------------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Tests and benchmarks pass a fast hasher here; production keeps Django's default list.
if os.environ.get("PASSWORD_HASHERS"):
    PASSWORD_HASHERS = env_list("PASSWORD_HASHERS", "")
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
# How long the link that confirms a new email address works (as a password reset link does).
EMAIL_CHANGE_TIMEOUT = 3 * 24 * 60 * 60

# Static files, uploads, email ---------------------------------------------------------------

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "staticfiles"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
# Served from the source folders: no collectstatic step between a checkout and a running site.
WHITENOISE_USE_FINDERS = True
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", DATA_DIR / "media"))

EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "Parley <parley@localhost>")

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# Django's database sessions, written once at sign-in (accounts/sessions.py).
SESSION_ENGINE = "accounts.sessions"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "WARNING")},
}

# Product limits ------------------------------------------------------------------------------

MESSAGE_PAGE_SIZE = 50
# A reconnecting tab is replayed at most this many messages; beyond it, it reloads.
CATCH_UP_LIMIT = 500

# /giphy: the built-in GIF library unless a GIPHY key is set.
GIPHY_API_KEY = os.environ.get("GIPHY_API_KEY", "")
GIPHY_API_URL = os.environ.get("GIPHY_API_URL", "https://api.giphy.com")


def parse_ice_servers(raw: str) -> list[dict]:
    """ICE_SERVERS: a JSON list of RTCIceServer objects, as RTCPeerConnection takes them."""
    try:
        servers = json.loads(raw)
    except ValueError:
        raise ImproperlyConfigured(f"ICE_SERVERS must be a JSON list, not {raw[:80]!r}") from None
    if not isinstance(servers, list):
        raise ImproperlyConfigured('ICE_SERVERS must be a JSON list of {"urls": ...} objects')
    for server in servers:
        urls = server.get("urls") if isinstance(server, dict) else None
        urls = [urls] if isinstance(urls, str) else urls
        if not urls or not all(
            isinstance(u, str) and u.startswith(("stun:", "turn:", "turns:")) for u in urls
        ):
            raise ImproperlyConfigured(
                f"Each ICE server needs urls starting with stun:, turn: or turns:, not {server!r}"
            )
        extra = set(server) - {"urls", "username", "credential"}
        if extra or not all(isinstance(server.get(k, ""), str) for k in ("username", "credential")):
            raise ImproperlyConfigured(
                f"An ICE server has urls and optional username and credential strings: {server!r}"
            )
    return servers


# Calls: STUN/TURN servers handed to the browsers; none are needed on one network or localhost.
ICE_SERVERS = parse_ice_servers(os.environ.get("ICE_SERVERS", "[]"))

# Notifications: outgoing email, reply-by-email, batching and schedules ------------------------

_EMAIL_SCHEMES = {
    "smtp": ("django.core.mail.backends.smtp.EmailBackend", False, False),
    "smtp+tls": ("django.core.mail.backends.smtp.EmailBackend", True, False),
    "smtps": ("django.core.mail.backends.smtp.EmailBackend", False, True),
    "console": ("django.core.mail.backends.console.EmailBackend", False, False),
    "locmem": ("django.core.mail.backends.locmem.EmailBackend", False, False),
}


def parse_email_url(url: str) -> dict:
    """`smtp://user:password@host:port` (or smtp+tls, smtps, console, locmem) → EMAIL_* settings."""
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(url)
    if parts.scheme not in _EMAIL_SCHEMES:
        raise ImproperlyConfigured(
            f"EMAIL_URL must start with one of {', '.join(_EMAIL_SCHEMES)}, not {url!r}"
        )
    backend, use_tls, use_ssl = _EMAIL_SCHEMES[parts.scheme]
    try:
        port = parts.port
    except ValueError:
        raise ImproperlyConfigured(f"EMAIL_URL has a bad port: {url!r}") from None
    return {
        "EMAIL_BACKEND": backend,
        "EMAIL_HOST": parts.hostname or "localhost",
        "EMAIL_PORT": port or (465 if use_ssl else 587 if use_tls else 25),
        "EMAIL_HOST_USER": unquote(parts.username or ""),
        "EMAIL_HOST_PASSWORD": unquote(parts.password or ""),
        "EMAIL_USE_TLS": use_tls,
        "EMAIL_USE_SSL": use_ssl,
    }


if os.environ.get("EMAIL_URL"):
    globals().update(parse_email_url(os.environ["EMAIL_URL"]))
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 20)
# Off: messages queue no notification work at all (an operator's switch; benchmarks compare).
PARLEY_NOTIFICATIONS_ENABLED = env_bool("PARLEY_NOTIFICATIONS_ENABLED", True)
# Absolute links in emails (room, unsubscribe) start with this.
PARLEY_BASE_URL = os.environ.get("PARLEY_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
# Replies go to reply+<token>@PARLEY_REPLY_DOMAIN; the MTA for it hands mail to Parley.
PARLEY_REPLY_DOMAIN = os.environ.get("PARLEY_REPLY_DOMAIN", "reply.parley.localhost")
PARLEY_REPLY_TOKEN_DAYS = env_int("PARLEY_REPLY_TOKEN_DAYS", 30)
PARLEY_REPLIES_PER_TOKEN_PER_HOUR = env_int("PARLEY_REPLIES_PER_TOKEN_PER_HOUR", 20)
PARLEY_INBOUND_MAX_BYTES = env_int("PARLEY_INBOUND_MAX_BYTES", 10 * 1024 * 1024)
# "Immediately" waits this long so that a burst in one room makes one email, and a message
# read meanwhile makes none.
PARLEY_NOTIFY_BATCH_SECONDS = env_int("PARLEY_NOTIFY_BATCH_SECONDS", 120)
# A sent message's emails are queued this long after it, by one task per room that takes every
# message sent there meanwhile (notifications/dispatch.py); 0 queues a task per message.
PARLEY_NOTIFY_ROOM_DELAY_SECONDS = env_int("PARLEY_NOTIFY_ROOM_DELAY_SECONDS", 1)
# A sender that stops renewing its claim on due emails for this long is taken to be dead, and
# another sends them (the same Message-ID, should the dead one have got one out).
PARLEY_NOTIFY_CLAIM_LEASE_SECONDS = env_int("PARLEY_NOTIFY_CLAIM_LEASE_SECONDS", 120)
if PARLEY_NOTIFY_CLAIM_LEASE_SECONDS <= EMAIL_TIMEOUT:
    raise ImproperlyConfigured(
        "PARLEY_NOTIFY_CLAIM_LEASE_SECONDS must be longer than EMAIL_TIMEOUT "
        f"({EMAIL_TIMEOUT} s): a sender renews its claim once per email"
    )
# Daily digests go out at this hour of TIME_ZONE.
PARLEY_DIGEST_HOUR = env_int("PARLEY_DIGEST_HOUR", 8)
CELERY_BEAT_SCHEDULE = {
    "send-due-notifications": {
        "task": "notifications.tasks.send_due_notifications",
        "schedule": float(env_int("PARLEY_NOTIFY_SWEEP_SECONDS", 30)),
    },
    "delete-old-notification-records": {
        "task": "notifications.tasks.delete_old_records",
        "schedule": 6 * 3600.0,
    },
}

# Rate limits: scope -> (attempts, seconds) per person; per IP address it is FACTOR times more.
RATE_LIMITS = {
    "send": (env_int("RATE_LIMIT_SEND", 30), 10),
    "create_room": (env_int("RATE_LIMIT_CREATE_ROOM", 20), 3600),
    "invite": (env_int("RATE_LIMIT_INVITE", 60), 600),
    "report": (env_int("RATE_LIMIT_REPORT", 20), 3600),
    "login_failure": (env_int("RATE_LIMIT_LOGIN_FAILURES", 10), 900),
    # Reset emails asked for, per address (and 5x per IP): nobody's inbox can be flooded.
    "password_reset": (env_int("RATE_LIMIT_PASSWORD_RESET", 3), 3600),
    # Links to confirm a new email address, per person: the form cannot mail strangers at will.
    "email_change": (env_int("RATE_LIMIT_EMAIL_CHANGE", 3), 3600),
    "upload": (env_int("RATE_LIMIT_UPLOAD", 60), 600),
    # Chunk PUTs, resends included: 2,000 chunks of 8 MiB are 16 GiB in ten minutes.
    "upload_chunk": (env_int("RATE_LIMIT_UPLOAD_CHUNKS", 2000), 600),
}
RATE_LIMIT_IP_FACTOR = env_int("RATE_LIMIT_IP_FACTOR", 5)

# Files & Links: resumable uploads, where files are stored, Dropbox ---------------------------

MAX_UPLOAD_BYTES = env_int("MAX_UPLOAD_BYTES", 1024**3)
# Chunks of a resumable upload: each is held by the server while it arrives, so memory bounds them.
UPLOAD_CHUNK_BYTES = env_int("UPLOAD_CHUNK_BYTES", 8 * 1024**2)
# Unfinished uploads and files never sent in a message are removed after this long.
UPLOAD_EXPIRY_HOURS = env_int("UPLOAD_EXPIRY_HOURS", 24)
# How long a presigned S3 download URL, handed out after the permission check, stays valid.
FILE_URL_EXPIRES = env_int("FILE_URL_EXPIRES", 60)
# Images over this many pixels (after JPEG's reduced decoding) get no thumbnail.
THUMBNAIL_MAX_PIXELS = env_int("THUMBNAIL_MAX_PIXELS", 24_000_000)
# A download waits while this process has more than this many bytes not yet sent to sockets.
DOWNLOAD_BACKLOG_BYTES = env_int("DOWNLOAD_BACKLOG_BYTES", 8 * 1024**2)
# With a key, the attach menu offers Dropbox's Chooser, which shares a Dropbox link.
DROPBOX_APP_KEY = os.environ.get("DROPBOX_APP_KEY", "")
# Record screen (attach menu): a recording stops by itself after this many seconds.
SCREEN_RECORDING_MAX_SECONDS = env_int("SCREEN_RECORDING_MAX_SECONDS", 30 * 60)
if not 1 <= SCREEN_RECORDING_MAX_SECONDS <= 4 * 3600:
    raise ImproperlyConfigured(
        "SCREEN_RECORDING_MAX_SECONDS must be between 1 and 14400 seconds (4 hours), "
        f"not {SCREEN_RECORDING_MAX_SECONDS}"
    )


def parse_storage_url(url: str) -> dict:
    """`file:///path` or `s3://[key:secret@]bucket[/prefix][?endpoint_url=…&region=…]` →
    a STORAGES entry. Without key and secret, boto3 finds credentials as usual (AWS_* env)."""
    from urllib.parse import parse_qsl, unquote, urlsplit

    parts = urlsplit(url)
    if parts.scheme == "file":
        return {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": unquote(parts.path)},
        }
    if parts.scheme != "s3" or not parts.hostname:
        raise ImproperlyConfigured(
            f"STORAGE_URL must look like file:///path or s3://bucket/prefix, not {url!r}"
        )
    known = {
        "endpoint_url": "endpoint_url",
        "region": "region_name",
        "addressing_style": "addressing_style",
        "signature_version": "signature_version",
        "custom_domain": "custom_domain",
    }
    options: dict = {
        "bucket_name": parts.hostname,
        "location": parts.path.strip("/"),
        "file_overwrite": False,
        "default_acl": None,
        "querystring_auth": True,
        "querystring_expire": FILE_URL_EXPIRES,
        "signature_version": "s3v4",
    }
    for key, value in parse_qsl(parts.query):
        if key not in known:
            raise ImproperlyConfigured(f"STORAGE_URL has an unknown option {key!r}")
        options[known[key]] = value
    if parts.username:
        options["access_key"] = unquote(parts.username)
        options["secret_key"] = unquote(parts.password or "")
    return {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": options}


STORAGE_URL = os.environ.get("STORAGE_URL", "")
# S3 refuses multipart parts under 5 MiB, except the last.
_MIN_CHUNK = 5 * 1024**2 if STORAGE_URL.startswith("s3:") else 256 * 1024
if not _MIN_CHUNK <= UPLOAD_CHUNK_BYTES <= 64 * 1024**2:
    raise ImproperlyConfigured(
        f"UPLOAD_CHUNK_BYTES must be between {_MIN_CHUNK} and {64 * 1024**2} bytes here"
    )
STORAGES = {
    "default": parse_storage_url(STORAGE_URL)
    if STORAGE_URL
    else {"BACKEND": "django.core.files.storage.FileSystemStorage"},  # in MEDIA_ROOT
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
CELERY_BEAT_SCHEDULE["purge-stale-uploads"] = {
    "task": "rooms.tasks.purge_stale_uploads",
    "schedule": 3600.0,
}
# A call seat whose server process died (no goodbye) is freed within about 2.5 minutes.
CELERY_BEAT_SCHEDULE["free-orphaned-call-seats"] = {
    "task": "rooms.tasks.free_orphaned_call_seats",
    "schedule": 60.0,
}
