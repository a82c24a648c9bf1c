"""Test settings. OUTBOX_TEST_DB picks the database: sqlite (default), postgres or mysql."""

from __future__ import annotations

import os
from typing import Any

DB = os.environ.get("OUTBOX_TEST_DB", "sqlite")
DB_NAME = os.environ.get("OUTBOX_TEST_DB_NAME", "outbox")

if DB == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": DB_NAME,
            "USER": os.environ.get("OUTBOX_PG_USER", "postgres"),
            "PASSWORD": os.environ.get("OUTBOX_PG_PASSWORD", ""),
            "HOST": os.environ.get("OUTBOX_PG_HOST", "127.0.0.1"),
            "PORT": os.environ.get("OUTBOX_PG_PORT", "5432"),
            "TEST": {"NAME": f"test_{DB_NAME}"},
        }
    }
elif DB == "mysql":
    import pymysql

    pymysql.install_as_MySQLdb()
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.mysql",
            "NAME": DB_NAME,
            "USER": os.environ.get("OUTBOX_MYSQL_USER", "root"),
            "PASSWORD": os.environ.get("OUTBOX_MYSQL_PASSWORD", ""),
            "HOST": os.environ.get("OUTBOX_MYSQL_HOST", "127.0.0.1"),
            "PORT": os.environ.get("OUTBOX_MYSQL_PORT", "3306"),
            "OPTIONS": {"charset": "utf8mb4"},
            "TEST": {"NAME": f"test_{DB_NAME}", "CHARSET": "utf8mb4", "COLLATION": "utf8mb4_unicode_ci"},
        }
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("OUTBOX_SQLITE_PATH", "/tmp/outbox-test.sqlite3"),
            "TEST": {"NAME": os.environ.get("OUTBOX_SQLITE_TEST_PATH", f"/tmp/test_{DB_NAME}.sqlite3")},
        }
    }

SECRET_KEY = "tests-only"
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django_outbox_pattern",
    "tests.testapp",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.request",
            ]
        },
    }
]
ROOT_URLCONF = "tests.urls"
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
SILENCED_SYSTEM_CHECKS = ["django_outbox_pattern.W001"]
DJANGO_OUTBOX_PATTERN: dict[str, Any] = {
    "DEFAULT_STOMP_HOST_AND_PORTS": [("127.0.0.1", int(os.environ.get("OUTBOX_STOMP_PORT", "61613")))],
    "DEFAULT_STOMP_USERNAME": "guest",
    "DEFAULT_STOMP_PASSCODE": "guest",
    "DEFAULT_STOMP_HEARTBEATS": (2000, 2000),
}
# Knobs for tests that run the relay or the consumer in subprocesses (fault tests shorten leases etc.).
for _key, _env, _kind in (
    ("DEFAULT_RELAY_LEASE", "OUTBOX_RELAY_LEASE", float),
    ("DEFAULT_PRODUCER_WAITING_TIME", "OUTBOX_POLL_INTERVAL", float),
    ("DEFAULT_PUBLISHED_CHUNK_SIZE", "OUTBOX_CHUNK_SIZE", int),
    ("DEFAULT_MAXIMUM_BACKOFF", "OUTBOX_MAXIMUM_BACKOFF", float),
    ("DEFAULT_RECEIPT_TIMEOUT", "OUTBOX_RECEIPT_TIMEOUT", float),
):
    if os.environ.get(_env):
        DJANGO_OUTBOX_PATTERN[_key] = _kind(os.environ[_env])
if os.environ.get("OUTBOX_STOMP_HOSTS"):  # a cluster: "host:port,host:port,..." (OUTBOX_CLUSTER_STOMP)
    DJANGO_OUTBOX_PATTERN["DEFAULT_STOMP_HOST_AND_PORTS"] = [
        (h, int(p)) for h, p in (x.rsplit(":", 1) for x in os.environ["OUTBOX_STOMP_HOSTS"].split(","))
    ]
if os.environ.get("OUTBOX_HEARTBEAT_MS"):
    _hb = int(os.environ["OUTBOX_HEARTBEAT_MS"])
    DJANGO_OUTBOX_PATTERN["DEFAULT_STOMP_HEARTBEATS"] = (_hb, _hb)
if os.environ.get("OUTBOX_DB_APP_NAME") and DB == "postgres":
    DATABASES["default"]["OPTIONS"] = {"application_name": os.environ["OUTBOX_DB_APP_NAME"]}
LOGGING = {"version": 1, "disable_existing_loggers": False}
