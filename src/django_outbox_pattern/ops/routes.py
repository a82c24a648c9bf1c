"""``outboxctl check --destinations``: would RabbitMQ route each destination of the outbox to a queue?

The destinations checked are those with pending rows or rows added within ``RECENT``. The answers come
from the management API (relaying/routing.py); when it is not configured or cannot be reached, every
destination is reported as "cannot tell", never as fine.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

from django.db.models import Count, Q
from django.utils import timezone

from django_outbox_pattern import conf, exceptions
from django_outbox_pattern.broker import management
from django_outbox_pattern.choices import StatusChoice
from django_outbox_pattern.ops import probes
from django_outbox_pattern.ops.probes import CheckResult
from django_outbox_pattern.relaying import routing

RECENT = timedelta(days=1)
MAX_DESTINATIONS = 200
HINT = (
    "Bind a queue to it (start its consumer, which declares and binds its queue), or fix the destination; "
    "rows held by the relay go out by themselves once a queue is bound."
)


@dataclasses.dataclass(frozen=True)
class DestinationRoute:
    destination: str
    pending: int  # SCHEDULE rows
    recent: int  # rows added within RECENT
    routable: bool | None  # None: cannot tell
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def outbox_destinations(*, now: Any = None) -> list[tuple[str, int, int]]:
    """(destination, pending rows, recent rows) for destinations with pending or recent rows."""
    model = conf.import_object(conf.get_settings().DEFAULT_PUBLISHED_CLASS)
    since = (now or timezone.now()) - RECENT
    pending = Q(status=StatusChoice.SCHEDULE)
    recent = Q(added__gte=since)
    rows = (
        model.objects.filter(pending | recent)
        .values("destination")
        .annotate(pending=Count("pk", filter=pending), recent=Count("pk", filter=recent))
        .order_by("-pending", "destination")[:MAX_DESTINATIONS]
    )
    return [(r["destination"], r["pending"], r["recent"]) for r in rows]


def check_routes(settings: conf.OutboxSettings) -> tuple[list[DestinationRoute], str | None]:
    """Every outbox destination with its verdict, and why nothing can be told (None when it can)."""
    found = outbox_destinations()
    client = management.ManagementClient.from_settings(settings)
    if client is None:
        why = "cannot tell: DEFAULT_RABBITMQ_MANAGEMENT_URL is not set"
        return [DestinationRoute(d, p, r, None, why) for d, p, r in found], why
    inspector = routing.RouteInspector(client)
    routes: list[DestinationRoute] = []
    for destination, pending, recent in found:
        try:
            verdict = inspector.check(destination)
        except exceptions.ManagementError as exc:
            why = f"cannot tell: {exc}"
            return [DestinationRoute(d, p, r, None, why) for d, p, r in found], why
        routes.append(DestinationRoute(destination, pending, recent, verdict.routable, verdict.detail))
    return routes, None


def check_results(settings: conf.OutboxSettings, *, each: bool) -> list[CheckResult]:
    """One "routing" line, or (``each``) one line per destination (``outboxctl check --destinations``)."""
    routes, why = check_routes(settings)
    configured = settings.DEFAULT_RABBITMQ_MANAGEMENT_URL is not None
    if why is not None:
        status: probes.Status = "fail" if configured else "skip"  # configured but unreachable is a fault
        hint = "" if not configured else "Enable rabbitmq_management, or fix DEFAULT_RABBITMQ_MANAGEMENT_URL."
        if not configured:
            why += " (set it to check that every destination reaches a queue)"
        return [CheckResult("routing", status, why, hint)]
    if each:
        return [_one(route) for route in routes] or [
            CheckResult("routing", "pass", "no pending or recent rows")
        ]
    lost = [r.destination for r in routes if r.routable is False]
    unknown = [r.destination for r in routes if r.routable is None]
    if lost:
        shown = ", ".join(lost[:5]) + (", ..." if len(lost) > 5 else "")
        detail = f"{len(lost)} of {len(routes)} destination(s) route to no queue: {shown}"
        return [CheckResult("routing", "fail", detail, HINT + " Details: `outboxctl check --destinations`.")]
    detail = f"{len(routes) - len(unknown)} destination(s) route to a queue"
    if unknown:
        detail += f"; {len(unknown)} not checked ({', '.join(unknown[:3])})"
    return [CheckResult("routing", "pass", detail)]


def _one(route: DestinationRoute) -> CheckResult:
    counts = f"{route.pending} pending, {route.recent} recent"
    if route.routable is None:
        return CheckResult(route.destination, "skip", f"cannot tell: {route.detail} ({counts})")
    if route.routable:
        return CheckResult(route.destination, "pass", f"{route.detail} ({counts})")
    return CheckResult(route.destination, "fail", f"{route.detail} ({counts})", HINT)
