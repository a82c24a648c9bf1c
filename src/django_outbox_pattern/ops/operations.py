"""Operator repairs of the outbox and the broker's dead letters: one implementation for outboxctl and admin.

Repairs work in batches, each batch in its own short transaction, re-checking the status in the
UPDATE/DELETE so a row that changed meanwhile is left alone: ``replay`` (Failed -> Schedule), ``dead_letter``
(Schedule -> Failed with a reason, skipping rows a relay holds right now), ``purge`` (delete old rows;
unsent rows only with ``include_unsent``). The read-only queries live in ``inspection.py`` and the
broker-side ``requeue`` of ``DLQ.<queue>`` in ``dead_letters.py``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone

from django_outbox_pattern import wiring
from django_outbox_pattern.choices import StatusChoice
from django_outbox_pattern.models import AbstractPublished
from django_outbox_pattern.ops import inspection

logger = logging.getLogger(__name__)

BATCH_SIZE = 1000
Progress = Callable[[int], None]


# --- repairs -----------------------------------------------------------------------------------------------


def replayable(selection: inspection.Filter) -> models.QuerySet[AbstractPublished]:
    """Failed rows a replay would change."""
    return inspection.query("outbox", dataclasses.replace(selection, statuses=(StatusChoice.FAILED,)))


def parkable(
    selection: inspection.Filter, *, now: datetime | None = None
) -> models.QuerySet[AbstractPublished]:
    """Scheduled rows a dead-letter would park: never one a relay holds right now (in flight)."""
    now = now or timezone.now()
    qs = inspection.query("outbox", dataclasses.replace(selection, statuses=(StatusChoice.SCHEDULE,)))
    return qs.filter(Q(locked_by="") | Q(available_at__lte=now))


def purgeable(
    table: inspection.Table,
    *,
    older_than: timedelta,
    statuses: Iterable[int] | None = None,
    include_unsent: bool = False,
    now: datetime | None = None,
) -> models.QuerySet[Any]:
    """Rows a purge would delete: added before ``now - older_than``; outbox default: published only."""
    statuses = tuple(statuses or ((StatusChoice.SUCCEEDED,) if table == "outbox" else ()))
    if table == "outbox" and StatusChoice.SCHEDULE in statuses and not include_unsent:
        raise ValueError("Purging unsent (pending) outbox rows needs include_unsent=True.")
    cutoff = (now or timezone.now()) - older_than
    return inspection.query(table, inspection.Filter(statuses=statuses, before=cutoff)).order_by()


def replay(ids: Iterable[Any]) -> int:
    """Failed rows back to Schedule, due now, attempts and lease reset. Returns how many changed."""
    return _in_batches(list(ids), _replay_batch)


def dead_letter(ids: Iterable[Any], *, reason: str) -> int:
    """Scheduled rows (not in flight) parked as Failed with a reason, so the relay skips them."""
    now = timezone.now()
    return _in_batches(list(ids), lambda batch: _park_batch(batch, reason, now))


def purge_outbox_ids(ids: Iterable[Any], *, include_unsent: bool = False) -> int:
    """Delete outbox rows by id; unsent (Schedule) rows are kept unless ``include_unsent``."""

    def delete(batch: list[Any]) -> int:
        qs = wiring.published_model().objects.filter(id__in=batch)
        return (qs if include_unsent else qs.exclude(status=StatusChoice.SCHEDULE)).delete()[0]

    return _in_batches(list(ids), delete)


def replay_matching(
    selection: inspection.Filter, *, batch_size: int | None = None, on_batch: Progress | None = None
) -> int:
    """Replay every failed row the filter selects (at most ``limit``), batch by batch."""
    return _drain(replayable(selection), _replay_batch, selection.limit, batch_size, on_batch, "replayed")


def dead_letter_matching(
    selection: inspection.Filter,
    *,
    reason: str,
    batch_size: int | None = None,
    on_batch: Progress | None = None,
) -> int:
    """Park every scheduled, not-in-flight row the filter selects (at most ``limit``), batch by batch."""
    now = timezone.now()
    return _drain(
        parkable(selection, now=now),
        lambda b: _park_batch(b, reason, now),
        selection.limit,
        batch_size,
        on_batch,
        "dead_lettered",
    )


def purge(
    table: inspection.Table,
    *,
    older_than: timedelta,
    statuses: Iterable[int] | None = None,
    include_unsent: bool = False,
    batch_size: int | None = None,
    on_batch: Progress | None = None,
    now: datetime | None = None,
) -> int:
    """Delete the rows ``purgeable`` selects, batch by batch (re-checking status and age in each DELETE)."""
    qs = purgeable(table, older_than=older_than, statuses=statuses, include_unsent=include_unsent, now=now)

    def delete(batch: list[Any]) -> int:
        return int(qs.filter(id__in=batch).delete()[0])

    return _drain(qs, delete, None, batch_size, on_batch, f"{table}_purged")


def _replay_batch(batch: list[Any]) -> int:
    with transaction.atomic():
        return (
            wiring.published_model()
            .objects.filter(id__in=batch, status=StatusChoice.FAILED)
            .update(
                status=StatusChoice.SCHEDULE,
                retry=0,
                available_at=timezone.now(),
                locked_by="",
                last_error="",
            )
        )


def _park_batch(batch: list[Any], reason: str, now: datetime) -> int:
    with transaction.atomic():
        qs = wiring.published_model().objects.filter(id__in=batch, status=StatusChoice.SCHEDULE)
        return qs.filter(Q(locked_by="") | Q(available_at__lte=now)).update(
            status=StatusChoice.FAILED, last_error=reason, locked_by=""
        )


def _in_batches(ids: list[Any], apply: Callable[[list[Any]], int]) -> int:
    return sum(apply(ids[start : start + BATCH_SIZE]) for start in range(0, len(ids), BATCH_SIZE))


def _drain(
    qs: models.QuerySet[Any],
    apply: Callable[[list[Any]], int],
    limit: int | None,
    batch_size: int | None,
    on_batch: Progress | None,
    action: str,
) -> int:
    """Apply to the selected rows batch by batch until none is left (each batch leaves the selection)."""
    done, batch_size = 0, batch_size or BATCH_SIZE
    while limit is None or done < limit:
        size = batch_size if limit is None else min(batch_size, limit - done)
        batch = list(qs.order_by("added", "id").values_list("id", flat=True)[:size])
        if not batch:
            break
        changed = apply(batch)
        done += changed
        if on_batch is not None:
            on_batch(changed)
        logger.info(
            "%s rows %s",
            changed,
            action.replace("_", " "),
            extra={"action": f"rows_{action}", "count": changed},
        )
        if changed == 0:
            break
    return done
