"""Operator actions on the outbox (replay, dead-letter, purge): shared by the CLI and the admin."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.utils import timezone

from django_outbox_pattern.choices import StatusChoice
from django_outbox_pattern.models import Published

BATCH_SIZE = 1000


def _batches(ids: Iterable[Any]) -> Iterable[list[Any]]:
    batch: list[Any] = []
    for value in ids:
        batch.append(value)
        if len(batch) >= BATCH_SIZE:
            yield batch
            batch = []
    if batch:
        yield batch


def replay(ids: Iterable[Any]) -> int:
    """Failed rows back to Schedule, due now, attempts and lease reset. Returns how many changed."""
    count = 0
    for batch in _batches(list(ids)):
        with transaction.atomic():
            count += Published.objects.filter(id__in=batch, status=StatusChoice.FAILED).update(
                status=StatusChoice.SCHEDULE,
                retry=0,
                available_at=timezone.now(),
                locked_by="",
                last_error="",
            )
    return count


def dead_letter(ids: Iterable[Any], *, reason: str) -> int:
    """Scheduled rows parked as Failed with a reason, so the relay skips them."""
    count = 0
    for batch in _batches(list(ids)):
        count += Published.objects.filter(id__in=batch, status=StatusChoice.SCHEDULE).update(
            status=StatusChoice.FAILED, last_error=reason, locked_by=""
        )
    return count


def purge_outbox_ids(ids: Iterable[Any], *, include_unsent: bool = False) -> int:
    """Delete rows by id; unsent (Schedule) rows are kept unless ``include_unsent``."""
    count = 0
    for batch in _batches(list(ids)):
        qs = Published.objects.filter(id__in=batch)
        if not include_unsent:
            qs = qs.exclude(status=StatusChoice.SCHEDULE)
        count += qs.delete()[0]
    return count
