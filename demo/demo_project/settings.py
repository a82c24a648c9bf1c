"""Settings of the demo shop: SQLite outbox, RabbitMQ STOMP on 127.0.0.1:61613."""

from __future__ import annotations

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = "demo-only"
DEBUG = False
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django_outbox_pattern",
    "shop",
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DEMO_DB", str(BASE_DIR / "var" / "demo.sqlite3")),
    }
}
SILENCED_SYSTEM_CHECKS = ["django_outbox_pattern.W001"]  # one relay per SQLite database: the demo runs one
DJANGO_OUTBOX_PATTERN = {
    "DEFAULT_STOMP_HOST_AND_PORTS": [("127.0.0.1", 61613)],
    "DEFAULT_STOMP_USERNAME": "guest",
    "DEFAULT_STOMP_PASSCODE": "guest",
    "DEFAULT_PRODUCER_WAITING_TIME": 0.2,
}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django_outbox_pattern": {"handlers": ["console"], "level": "INFO"}},
}
