"""Django settings for the benchmark workers. Environment variables pick the database and the knobs.

BENCH_DB: sqlite | postgres | mysql (MariaDB here). BENCH_DB_NAME: database name (default ``bench``).
BENCH_NOTIFY: 1 turns DEFAULT_RELAY_NOTIFY on, 0 off (unset: the default).
BENCH_POLL: DEFAULT_PRODUCER_WAITING_TIME in seconds.
BENCH_CHUNK: DEFAULT_PUBLISHED_CHUNK_SIZE. BENCH_PREFETCH: prefetch-count of consumer subscriptions.
BENCH_QUEUE_EXPIRES_MS: x-expires of the queues consumers declare, so benchmark queues clean themselves up.
BENCH_CONN_MAX_AGE: Django's CONN_MAX_AGE (default 0, Django's own default).
BENCH_STOMP_HOSTS: ``host:port[,host:port...]`` brokers (the cluster scenario), instead of OUTBOX_STOMP_PORT.
BENCH_QUEUE_TYPE: ``x-queue-type`` of the queues consumers declare (the cluster scenario: quorum).
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DB = os.environ.get("BENCH_DB", "postgres")
DB_NAME = os.environ.get("BENCH_DB_NAME", "bench")
CONN_MAX_AGE = int(os.environ.get("BENCH_CONN_MAX_AGE", "0"))

if DB == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": DB_NAME,
            "USER": os.environ.get("OUTBOX_PG_USER", "postgres"),
            "PASSWORD": os.environ.get("OUTBOX_PG_PASSWORD", ""),
            "HOST": os.environ.get("OUTBOX_PG_HOST", "127.0.0.1"),
            "PORT": os.environ.get("OUTBOX_PG_PORT", "5432"),
            "CONN_MAX_AGE": CONN_MAX_AGE,
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
            "CONN_MAX_AGE": CONN_MAX_AGE,
        }
    }
elif DB == "sqlite":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(ROOT / "var" / "bench" / f"{DB_NAME}.sqlite3"),
            "CONN_MAX_AGE": CONN_MAX_AGE,
        }
    }
else:
    raise ValueError(f"BENCH_DB must be sqlite, postgres or mysql, not {DB!r}")

SECRET_KEY = "bench-only"
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = ["django.contrib.contenttypes", "django_outbox_pattern", "bench.benchapp"]
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
SILENCED_SYSTEM_CHECKS = ["django_outbox_pattern.W001"]  # SQLite relaying is measured on purpose

_queue_headers = {
    "durable": "true",
    "auto-delete": "false",
    "prefetch-count": os.environ.get("BENCH_PREFETCH", "1"),
}
if os.environ.get("BENCH_QUEUE_EXPIRES_MS"):
    _queue_headers["x-expires"] = os.environ["BENCH_QUEUE_EXPIRES_MS"]
if os.environ.get("BENCH_QUEUE_TYPE"):
    _queue_headers["x-queue-type"] = os.environ["BENCH_QUEUE_TYPE"]

DJANGO_OUTBOX_PATTERN: dict[str, object] = {
    "DEFAULT_STOMP_HOST_AND_PORTS": [("127.0.0.1", int(os.environ.get("OUTBOX_STOMP_PORT", "61613")))],
    "DEFAULT_STOMP_USERNAME": os.environ.get("OUTBOX_STOMP_USERNAME", "guest"),
    "DEFAULT_STOMP_PASSCODE": os.environ.get("OUTBOX_STOMP_PASSCODE", "guest"),
    "DEFAULT_STOMP_QUEUE_HEADERS": _queue_headers,
}
if os.environ.get("BENCH_STOMP_HOSTS"):
    DJANGO_OUTBOX_PATTERN["DEFAULT_STOMP_HOST_AND_PORTS"] = [
        (h, int(p)) for h, p in (x.rsplit(":", 1) for x in os.environ["BENCH_STOMP_HOSTS"].split(","))
    ]
if os.environ.get("BENCH_NOTIFY"):  # unset: the default (on with PostgreSQL and psycopg 3)
    DJANGO_OUTBOX_PATTERN["DEFAULT_RELAY_NOTIFY"] = os.environ["BENCH_NOTIFY"] == "1"
if os.environ.get("BENCH_POLL"):
    DJANGO_OUTBOX_PATTERN["DEFAULT_PRODUCER_WAITING_TIME"] = float(os.environ["BENCH_POLL"])
if os.environ.get("BENCH_CHUNK"):
    DJANGO_OUTBOX_PATTERN["DEFAULT_PUBLISHED_CHUNK_SIZE"] = int(os.environ["BENCH_CHUNK"])

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["stderr"], "level": os.environ.get("BENCH_LOG_LEVEL", "WARNING")},
}
