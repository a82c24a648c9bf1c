"""Statuses shared by the outbox and the inbox (integer values fixed by existing databases)."""

from __future__ import annotations

from django.db import models


class StatusChoice(models.IntegerChoices):
    FAILED = -1, "Failed"  # dead-lettered: the relay skips it until replayed
    SCHEDULE = 1, "Schedule"  # waiting to be sent (or being retried)
    SUCCEEDED = 2, "Succeeded"  # confirmed by the broker (outbox) or processed (inbox)


# The names operators see (outboxctl, the health view, metrics labels), one home for all of them.
OUTBOX_STATUS_NAMES: dict[int, str] = {
    StatusChoice.SCHEDULE: "pending",
    StatusChoice.FAILED: "failed",
    StatusChoice.SUCCEEDED: "published",
}
INBOX_STATUS_NAMES: dict[int, str] = {
    StatusChoice.SCHEDULE: "pending",
    StatusChoice.FAILED: "failed",
    StatusChoice.SUCCEEDED: "processed",
}
UNSENT_STATUS_NAMES: dict[int, str] = {  # the outbox backlog
    status: OUTBOX_STATUS_NAMES[status] for status in (StatusChoice.SCHEDULE, StatusChoice.FAILED)
}
STATUS_BY_NAME: dict[str, int] = {
    **{name: status for status, name in OUTBOX_STATUS_NAMES.items()},
    **{name: status for status, name in INBOX_STATUS_NAMES.items()},
}
