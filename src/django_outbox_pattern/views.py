"""A health endpoint to mount in a project's urls.py.

    from django_outbox_pattern import views
    urlpatterns = [
        path("outbox/health/", views.health),
        # or fail (503) when the oldest pending row is older than 5 minutes:
        path("outbox/health/", views.health, {"max_lag_s": 300}),
    ]

200 with JSON when the database answers (and the lag is within ``max_lag_s``), 503 otherwise. It never
contacts the broker: use ``outboxctl check --readiness`` for that.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from django_outbox_pattern import exceptions
from django_outbox_pattern.ops import backlog, probes


@never_cache
@require_GET
def health(request: HttpRequest, max_lag_s: float | None = None) -> JsonResponse:
    """``{"status", "database", "backlog"}``; status is "ok" (200) or "failing" (503) with reasons."""
    database = probes.database()
    body: dict[str, Any] = {"database": database.as_probe(), "backlog": None, "reasons": []}
    if not database.ok:
        body["reasons"].append(database.detail)
    else:
        try:
            measured = backlog.measure()
        except exceptions.StorageError as exc:
            body["reasons"].append(str(exc))
        else:
            body["backlog"] = measured.as_dict()
            lag = measured.oldest_pending_age_s
            if max_lag_s is not None and lag is not None and lag > max_lag_s:
                body["reasons"].append(f"oldest pending row is {lag:.0f}s old (over {max_lag_s:g}s)")
    body["status"] = "failing" if body["reasons"] else "ok"
    return JsonResponse(body, status=503 if body["reasons"] else 200)
