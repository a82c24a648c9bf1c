"""How far behind the outbox is: unsent rows by status and destination, and the age of the oldest one.

Two indexed queries (``status`` is indexed): a GROUP BY over pending and failed rows, and MIN(added) over
pending rows. Published rows are not counted (they are history, counted by the relay's metrics). Used by
the metrics collector (on scrape, cached), the health view and ``outboxctl inspect --metrics``.
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

from django.db import DatabaseError, router
from django.db.models import Count, Min
from django.utils import timezone

from django_outbox_pattern import choices, exceptions, wiring
from django_outbox_pattern.choices import StatusChoice
from django_outbox_pattern.ops import labels

STATUS_NAMES = choices.UNSENT_STATUS_NAMES
MAX_DESTINATIONS = labels.MAX_DESTINATION_LABELS  # beyond this, rows are summed into destination="(other)"


@dataclasses.dataclass(frozen=True)
class Backlog:
    """Unsent outbox rows. ``counts`` maps (status name, destination) to rows."""

    counts: dict[tuple[str, str], int]
    oldest_pending_age_s: float | None  # None when nothing is pending

    def by_status(self) -> dict[str, int]:
        totals = dict.fromkeys(STATUS_NAMES.values(), 0)
        for (status, _), n in self.counts.items():
            totals[status] = totals.get(status, 0) + n
        return totals

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: totals by status, rows by destination, and the lag in seconds."""
        by_destination: dict[str, dict[str, int]] = {}
        for (status, destination), n in sorted(self.counts.items(), key=lambda item: item[0][1]):
            by_destination.setdefault(destination, dict.fromkeys(STATUS_NAMES.values(), 0))[status] = n
        return {
            "by_status": self.by_status(),
            "by_destination": by_destination,
            "oldest_pending_age_seconds": self.oldest_pending_age_s,
        }


def measure(
    *, model: Any = None, now: datetime.datetime | None = None, max_destinations: int = MAX_DESTINATIONS
) -> Backlog:
    """Count the unsent rows now; raises StorageError when the database cannot be queried."""
    if model is None:
        model = wiring.published_model()
    now = now or timezone.now()
    qs = model.objects.using(router.db_for_read(model))
    try:
        rows = list(
            qs.filter(status__in=list(STATUS_NAMES))
            .values_list("status", "destination")
            .annotate(n=Count("pk"))
            .order_by()
        )
        oldest = qs.filter(status=StatusChoice.SCHEDULE).aggregate(oldest=Min("added"))["oldest"]
    except DatabaseError as exc:
        raise exceptions.StorageError(f"Could not measure the outbox backlog: {exc}") from exc
    return Backlog(
        counts=_cap_destinations(rows, max_destinations),
        oldest_pending_age_s=None if oldest is None else max(0.0, (now - oldest).total_seconds()),
    )


def _cap_destinations(rows: list[tuple[int, str, int]], limit: int) -> dict[tuple[str, str], int]:
    """Keep the ``limit`` largest destinations as labels and sum the rest, so label sets stay bounded."""
    totals: dict[str, int] = {}
    for _, destination, n in rows:
        totals[destination] = totals.get(destination, 0) + n
    kept = set(sorted(totals, key=lambda d: (-totals[d], d))[:limit])
    counts: dict[tuple[str, str], int] = {}
    for status, destination, n in rows:
        key = (
            STATUS_NAMES[StatusChoice(status)],
            destination if destination in kept else labels.OTHER_DESTINATION,
        )
        counts[key] = counts.get(key, 0) + n
    return counts
