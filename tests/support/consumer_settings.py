"""Settings for consumer subprocesses: tests.settings, plus DJANGO_OUTBOX_PATTERN overrides given as JSON in
OUTBOX_TEST_SETTINGS_JSON, plus INFO logs of this project on stderr (so a test can follow the process)."""

from __future__ import annotations

import json
import os

from tests.settings import *  # noqa: F403
from tests.settings import DJANGO_OUTBOX_PATTERN as _BASE

DJANGO_OUTBOX_PATTERN = {**_BASE, **json.loads(os.environ.get("OUTBOX_TEST_SETTINGS_JSON", "{}"))}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(levelname)s %(name)s: %(message)s"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {"django_outbox_pattern": {"handlers": ["stderr"], "level": "INFO", "propagate": False}},
}
