"""Read-only operator queries on the outbox and the inbox (``outboxctl inspect``, the repair previews).

``Filter`` selects rows; ``outbox_summary``/``inbox_summary`` give counts at a glance; ``list_rows``,
``preview`` and ``get_row`` give rows as plain dicts with stable keys (the CLI's ``--json``). The tables are
DEFAULT_PUBLISHED_CLASS and DEFAULT_RECEIVED_CLASS (wiring.py).
"""

from __future__ import annotations

import contextlib
import dataclasses
from datetime import datetime
from typing import Any, Literal

from django.db import models
from django.db.models import Count, Max, Min, Q
from django.utils import timezone

from django_outbox_pattern import choices, wiring
from django_outbox_pattern.choices import StatusChoice

Table = Literal["outbox", "inbox"]


@dataclasses.dataclass(frozen=True)
class Filter:
    """Which rows: any of these statuses, a destination (``prefix*`` matches a prefix), added since/before."""

    statuses: tuple[int, ...] = ()
    destination: str | None = None
    since: datetime | None = None
    before: datetime | None = None
    ids: tuple[Any, ...] = ()
    limit: int | None = None

    @property
    def narrows(self) -> bool:
        """True when something other than ``limit`` restricts the rows."""
        return bool(self.statuses or self.destination or self.since or self.before or self.ids)

    def apply(
        self, qs: models.QuerySet[Any], *, destination_field: str = "destination"
    ) -> models.QuerySet[Any]:
        if self.statuses:
            qs = qs.filter(status__in=self.statuses)
        if self.destination:
            if self.destination.endswith("*"):
                qs = qs.filter(**{f"{destination_field}__startswith": self.destination[:-1]})
            else:
                qs = qs.filter(**{destination_field: self.destination})
        if self.since is not None:
            qs = qs.filter(added__gte=self.since)
        if self.before is not None:
            qs = qs.filter(added__lt=self.before)
        if self.ids:
            qs = qs.filter(id__in=self.ids)
        return qs


def _model(table: Table) -> type[Any]:
    return wiring.published_model() if table == "outbox" else wiring.received_model()


def query(table: Table, selection: Filter) -> models.QuerySet[Any]:
    """The rows a filter selects (``limit`` not applied), newest first."""
    field = "destination" if table == "outbox" else "headers__destination"
    return selection.apply(_model(table).objects.all(), destination_field=field).order_by("-added", "id")


# --- at a glance -------------------------------------------------------------------------------------------


def outbox_summary(*, now: datetime | None = None, max_destinations: int = 50) -> dict[str, Any]:
    """Counts by status and destination, the oldest pending row, due/in-flight/retrying rows, attempts."""
    now = now or timezone.now()
    rows = wiring.published_model().objects.all()
    by_status = _by_status(rows, choices.OUTBOX_STATUS_NAMES)
    destinations = _by_destination(rows.values_list("destination", "status"), choices.OUTBOX_STATUS_NAMES)
    pending = rows.filter(status=StatusChoice.SCHEDULE)
    oldest = pending.order_by("added", "id").values("id", "destination", "added").first()
    return {
        "total": sum(by_status.values()),
        "by_status": by_status,
        "by_destination": destinations[:max_destinations],
        "destinations": len(destinations),
        "oldest_pending": None
        if oldest is None
        else {
            "id": str(oldest["id"]),
            "destination": oldest["destination"],
            "added": oldest["added"],
            "age_seconds": round((now - oldest["added"]).total_seconds(), 3),
        },
        "due_now": pending.filter(available_at__lte=now).count(),
        "in_flight": pending.filter(available_at__gt=now).exclude(locked_by="").count(),
        "retrying": pending.filter(retry__gt=0).count(),
        "max_attempts": pending.aggregate(m=Max("retry"))["m"] or 0,
    }


def inbox_summary(*, max_destinations: int = 50) -> dict[str, Any]:
    """Counts by status and destination, and the oldest and newest received row."""
    rows = wiring.received_model().objects.all()
    by_status = _by_status(rows, choices.INBOX_STATUS_NAMES)
    destinations = _by_destination(
        rows.values_list("headers__destination", "status"), choices.INBOX_STATUS_NAMES
    )
    span = rows.aggregate(oldest=Min("added"), newest=Max("added"))
    return {
        "total": sum(by_status.values()),
        "by_status": by_status,
        "by_destination": destinations[:max_destinations],
        "destinations": len(destinations),
        "oldest": span["oldest"],
        "newest": span["newest"],
    }


def _by_status(qs: models.QuerySet[Any], names: dict[int, str]) -> dict[str, int]:
    counts = {name: 0 for name in names.values()}
    for row in qs.values("status").annotate(n=Count("id")).order_by():
        counts[names.get(row["status"], str(row["status"]))] = row["n"]
    return counts


def _by_destination(pairs: models.QuerySet[Any], names: dict[int, str]) -> list[dict[str, Any]]:
    grouped: dict[str, dict[str, Any]] = {}
    for destination, status, n in pairs.annotate(n=Count("id")).order_by():
        key = "" if destination is None else str(destination)
        entry = grouped.setdefault(
            key, {"destination": key, **{name: 0 for name in names.values()}, "total": 0}
        )
        entry[names.get(status, str(status))] += n
        entry["total"] += n
    return sorted(grouped.values(), key=lambda e: (-e["total"], e["destination"]))


# --- rows --------------------------------------------------------------------------------------------------


def list_rows(table: Table, selection: Filter) -> dict[str, Any]:
    """``{"table", "matching", "rows"}``: rows (newest first, at most ``limit``) and how many match in all."""
    qs = query(table, selection)
    rows = qs[: selection.limit] if selection.limit else qs
    return {"table": table, "matching": qs.count(), "rows": [_row(table, obj, full=False) for obj in rows]}


def preview(table: Table, qs: models.QuerySet[Any], limit: int = 20) -> list[dict[str, Any]]:
    """The first rows of a selection (oldest first), as ``list_rows`` shows them."""
    return [_row(table, obj, full=False) for obj in qs.order_by("added", "id")[:limit]]


def id_states(ids: list[Any], *, now: datetime | None = None) -> dict[str, str]:
    """Each outbox id's state: its status name, ``in flight`` (a relay holds it now) or ``not found``."""
    now = now or timezone.now()
    found = {
        str(pk): "in flight"
        if status == StatusChoice.SCHEDULE and locked_by and available_at > now
        else choices.OUTBOX_STATUS_NAMES.get(status, str(status))
        for pk, status, locked_by, available_at in wiring.published_model()
        .objects.filter(id__in=ids)
        .values_list("id", "status", "locked_by", "available_at")
    }
    return {str(pk): found.get(str(pk), "not found") for pk in ids}


def blocked_keys(*, limit: int | None = None) -> dict[str, Any]:
    """Ordering keys held by a row that failed for good: ``{"matching": n, "keys": [...]}``, oldest blocker
    first. Each key: the failed row that holds it (``blocked_by``), its error and destination, and how many
    pending rows wait behind it (``held``). ``outboxctl replay`` or ``dead-letter`` on that row frees the key.
    """
    rows = wiring.published_model().objects
    blockers = (
        rows.filter(status=StatusChoice.FAILED, ordering_key__isnull=False)
        .exclude(ordering_seq=None)
        .order_by("ordering_key", "ordering_seq")
        .values_list("ordering_key", "ordering_seq", "id", "destination", "added", "last_error")
    )
    first: dict[str, tuple[Any, ...]] = {}
    for key, *rest in blockers:
        first.setdefault(key, tuple(rest))
    oldest = sorted(first.items(), key=lambda item: item[1][3])
    keys = []
    for key, (seq, blocker, destination, added, error) in oldest[:limit] if limit else oldest:
        held = rows.filter(ordering_key=key, status=StatusChoice.SCHEDULE, ordering_seq__gt=seq).count()
        keys.append(
            {
                "ordering_key": key,
                "blocked_by": str(blocker),
                "destination": destination,
                "blocker_added": added,
                "held": held,
                "last_error": error,
            }
        )
    return {"matching": len(first), "keys": keys}


def get_row(table: Table, key: str) -> dict[str, Any] | None:
    """One row in full: by id, or for the inbox also by ``msg_id``."""
    model = _model(table)
    condition = Q(msg_id=key) if table == "inbox" else Q(pk__in=[])
    with contextlib.suppress(Exception):  # not a valid id for this table: look up by the other key only
        condition |= Q(pk=model._meta.pk.to_python(key))  # type: ignore[union-attr, unused-ignore]
    obj = model.objects.filter(condition).first()
    return None if obj is None else _row(table, obj, full=True)


def _row(table: Table, obj: Any, *, full: bool) -> dict[str, Any]:
    if table == "outbox":
        out: dict[str, Any] = {
            "id": str(obj.id),
            "destination": obj.destination,
            "status": choices.OUTBOX_STATUS_NAMES.get(obj.status, obj.status),
            "attempts": obj.retry,
            "added": obj.added,
            "available_at": obj.available_at,
            "published_at": obj.published_at,
            "last_error": obj.last_error,
        }
        if full:
            out.update(
                version=obj.version,
                ordering_key=obj.ordering_key,
                ordering_seq=obj.ordering_seq,
                expires_at=obj.expires_at,
                locked_by=obj.locked_by,
                headers=obj.headers,
                body=obj.body,
            )
        return out
    out = {
        "id": str(obj.id),
        "msg_id": obj.msg_id,
        "destination": obj.destination,
        "status": choices.INBOX_STATUS_NAMES.get(obj.status, obj.status),
        "added": obj.added,
    }
    if full:
        out.update(attempts=obj.retry, expires_at=obj.expires_at, headers=obj.headers, body=obj.body)
    return out
