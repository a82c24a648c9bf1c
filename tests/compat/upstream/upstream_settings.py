"""Django settings of the 3.2.1 side: the same PostgreSQL database and RabbitMQ as the test run.

Loaded by driver.py inside the side venv (.venv-321), never by this project's tests. The database name
comes from the test (OUTBOX_COMPAT_DB_NAME: pytest-django's test database).
"""

from __future__ import annotations

import os

SECRET_KEY = "compat-tests-only"
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "django_outbox_pattern"]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ["OUTBOX_COMPAT_DB_NAME"],
        "USER": os.environ.get("OUTBOX_PG_USER", "postgres"),
        "PASSWORD": os.environ.get("OUTBOX_PG_PASSWORD", ""),
        "HOST": os.environ.get("OUTBOX_PG_HOST", "127.0.0.1"),
        "PORT": os.environ.get("OUTBOX_PG_PORT", "5432"),
    }
}
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
DJANGO_OUTBOX_PATTERN = {
    "DEFAULT_STOMP_HOST_AND_PORTS": [("127.0.0.1", int(os.environ.get("OUTBOX_STOMP_PORT", "61613")))],
    "DEFAULT_PRODUCER_WAITING_TIME": 0,
    "DEFAULT_CONSUMER_LISTENER_CLASS": "driver.CountingListener",
    "DEFAULT_CONSUMER_SHUTDOWN_TIMEOUT": 5,
}
LOGGING = {"version": 1, "disable_existing_loggers": False}
