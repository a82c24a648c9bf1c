"""``JsonFormatter``: one JSON object per log record, with the ``extra`` fields the engine attaches.

Every record of django_outbox_pattern carries ``action`` (a snake_case past-tense event) and, where
known, ids (``relay``, ``destination``, ``msg_id``, ``count`` ...) in ``extra``; this formatter puts them
at the top level, so a log pipeline can filter on ``action``. Standard library only:

    LOGGING = {
        "version": 1,
        "formatters": {"json": {"()": "django_outbox_pattern.logformat.JsonFormatter"}},
        "handlers": {"stdout": {"class": "logging.StreamHandler", "formatter": "json"}},
        "loggers": {"django_outbox_pattern": {"handlers": ["stdout"], "level": "INFO"}},
    }
"""

from __future__ import annotations

import datetime
import json
import logging
from typing import Any

# Attributes every LogRecord has: anything else on a record came from ``extra``.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "taskName",
}


class JsonFormatter(logging.Formatter):
    """Formats ``time``, ``level``, ``logger``, ``message``, the extra fields, and ``exc_info`` as text."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.datetime.fromtimestamp(record.created, tz=datetime.timezone.utc).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            out["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(out, default=str)
