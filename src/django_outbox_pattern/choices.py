"""Statuses shared by the outbox and the inbox (integer values fixed by existing databases)."""

from __future__ import annotations

from django.db import models


class StatusChoice(models.IntegerChoices):
    FAILED = -1, "Failed"  # dead-lettered: the relay skips it until replayed
    SCHEDULE = 1, "Schedule"  # waiting to be sent (or being retried)
    SUCCEEDED = 2, "Succeeded"  # confirmed by the broker (outbox) or processed (inbox)
