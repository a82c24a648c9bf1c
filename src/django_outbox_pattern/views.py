"""A health endpoint to mount in a project's urls.py.

    from django_outbox_pattern import views
    urlpatterns = [
        path("outbox/health/", views.health),
        # or fail (503) when the oldest pending row is older than 5 minutes:
        path("outbox/health/", views.health, {"max_lag_s": 300}),
        # per-destination counts too: only behind a login or on an internal network (names say a lot)
        path("internal/outbox/health/", views.health, {"detail": True}),
    ]

200 with JSON when the database answers (and the lag is within ``max_lag_s``), 503 otherwise. It never
contacts the broker: use ``outboxctl check --readiness`` for that. The body is quiet by default: status,
totals by status and the lag; destination names only with ``detail``; never an error text (which may name
hosts and users): that goes to the log, with passwords masked.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from django_outbox_pattern import exceptions
from django_outbox_pattern.ops import backlog, probes

logger = logging.getLogger(__name__)

MASK = "********"
_SECRET_PAIRS = re.compile(r"(?i)\b(password|passcode|passwd|pwd|secret)(\s*[=:]\s*)(\"[^\"]*\"|'[^']*'|\S+)")
_URL_PASSWORD = re.compile(r"(//[^:/@\s]+:)[^@/\s]+@")


@never_cache
@require_GET
def health(request: HttpRequest, max_lag_s: float | None = None, detail: bool = False) -> JsonResponse:
    """``{"status", "database", "backlog", "reasons"}``: "ok" (200) or "failing" (503) with reasons."""
    database = probes.database()
    body: dict[str, Any] = {"database": {"ok": database.ok}, "backlog": None, "reasons": []}
    if not database.ok:
        _log_failure("health_database_failed", database.detail)
        body["reasons"].append("the database is not reachable (details in the server log)")
    else:
        try:
            measured = backlog.measure()
        except exceptions.StorageError as exc:
            _log_failure("health_backlog_failed", str(exc))
            body["reasons"].append("the outbox backlog could not be measured (details in the server log)")
        else:
            shown = measured.as_dict()
            if not detail:
                del shown["by_destination"]
            body["backlog"] = shown
            lag = measured.oldest_pending_age_s
            if max_lag_s is not None and lag is not None and lag > max_lag_s:
                body["reasons"].append(f"oldest pending row is {lag:.0f}s old (over {max_lag_s:g}s)")
    body["status"] = "failing" if body["reasons"] else "ok"
    return JsonResponse(body, status=503 if body["reasons"] else 200)


def _log_failure(action: str, text: str) -> None:
    logger.warning("Health check failed: %s", mask_secrets(text), extra={"action": action})


def mask_secrets(text: str) -> str:
    """``text`` with the configured passwords, ``password=...`` pairs and URL passwords replaced by a mask."""
    from django.db import connections

    from django_outbox_pattern import conf

    known: list[str | None] = []
    try:
        settings = conf.get_settings()
        known += [settings.DEFAULT_STOMP_PASSCODE, settings.DEFAULT_STOMP_SSL_PASSWORD]
    except exceptions.ConfigurationError:
        pass  # invalid settings: the patterns below still mask what they can
    known += [str(connections.settings[alias].get("PASSWORD") or "") for alias in connections.settings]
    for secret in sorted((s for s in known if s and len(s) >= 3), key=len, reverse=True):
        text = text.replace(secret, MASK)
    text = _SECRET_PAIRS.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
    return _URL_PASSWORD.sub(lambda m: f"{m.group(1)}{MASK}@", text)
