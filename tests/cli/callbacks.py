"""Callbacks for the real ``outboxctl subscribe`` tests."""

from __future__ import annotations

from typing import Any

from django.db import transaction


def record(payload: Any) -> None:
    """Save the message in the inbox (the idempotent path of the spec)."""
    with transaction.atomic():
        payload.save()
