"""Rows for the CLI, admin and operations tests, written directly (no decorator involved)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any


def make_published(
    n: int = 1,
    *,
    status: int = 1,
    destination: str = "/topic/cli",
    age: timedelta | None = None,
    **fields: Any,
) -> list[Any]:
    """Outbox rows with a status and (optionally) an age, written directly (no decorator involved)."""
    from django.utils import timezone

    from django_outbox_pattern.models import Published

    rows = [
        Published.objects.create(destination=destination, body={"n": i}, status=status, **fields)
        for i in range(n)
    ]
    if age is not None:
        Published.objects.filter(id__in=[r.id for r in rows]).update(added=timezone.now() - age)
    return rows


def make_received(n: int = 1, *, destination: str = "/topic/in", age: timedelta | None = None) -> list[Any]:
    from django.utils import timezone

    from django_outbox_pattern.models import Received

    rows = [
        Received.objects.create(msg_id=uuid.uuid4().hex, headers={"destination": destination}, body={"n": i})
        for i in range(n)
    ]
    if age is not None:
        Received.objects.filter(id__in=[r.id for r in rows]).update(added=timezone.now() - age)
    return rows
