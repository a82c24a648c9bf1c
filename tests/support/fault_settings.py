"""Settings for the fault suite's subprocesses (relays, consumers, writers).

tests.settings (with its OUTBOX_* env knobs) plus the DJANGO_OUTBOX_PATTERN overrides given as JSON in
OUTBOX_TEST_SETTINGS_JSON, and every logger (this project's, stomp.py's, Django's) on stderr at
OUTBOX_TEST_LOG_LEVEL (default INFO), so a test can follow the process and grep what it printed.
"""

from __future__ import annotations

import os

from tests.support.consumer_settings import *  # noqa: F403

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["stderr"], "level": os.environ.get("OUTBOX_TEST_LOG_LEVEL", "INFO")},
}
