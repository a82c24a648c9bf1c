"""``MemoryInbox``: the inbox in a dict, a real twin of ``inbox.DatabaseInbox`` (the ``InboxStore`` protocol).

A message id is recorded once (a second ``record`` raises ``DuplicateMessage``, as the unique column
does); there are no transactions, so ``on_commit`` runs at once. ``purge_older_than`` deletes the rows
recorded before the cutoff. ``resets`` and ``purges`` count what the consumer asked for.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Mapping
from datetime import datetime
from typing import Any

from django.utils import timezone

from django_outbox_pattern.consuming import inbox


class MemoryInbox:
    """``inbox.InboxStore`` in a dict: ``rows[msg_id] = (headers, body, recorded_at)``."""

    def __init__(self, *, clock: Callable[[], datetime] = timezone.now) -> None:
        self.rows: dict[str, tuple[dict[str, str], Any, datetime]] = {}
        self.resets = 0
        self.purges: list[datetime] = []
        self.lock = threading.Lock()
        self._clock = clock

    def exists(self, msg_id: str) -> bool:
        with self.lock:
            return msg_id in self.rows

    def existing(self, msg_ids: Collection[str]) -> set[str]:
        with self.lock:
            return {msg_id for msg_id in msg_ids if msg_id in self.rows}

    def record(self, msg_id: str, headers: Mapping[str, str], body: Any) -> None:
        with self.lock:
            if msg_id in self.rows:
                raise inbox.DuplicateMessage(f"{msg_id} already recorded")
            self.rows[msg_id] = (dict(headers), body, self._clock())

    def on_commit(self, func: Callable[[], None]) -> None:
        func()

    def reset(self) -> None:
        self.resets += 1

    def purge_older_than(self, cutoff: datetime, *, batch_size: int, should_stop: Callable[[], bool]) -> int:
        with self.lock:
            self.purges.append(cutoff)
            old = [msg_id for msg_id, (_, _, recorded) in self.rows.items() if recorded < cutoff]
            for msg_id in old:
                del self.rows[msg_id]
            return len(old)


def _check_protocol(memory: MemoryInbox) -> inbox.InboxStore:
    return memory  # mypy proves MemoryInbox satisfies the InboxStore protocol
