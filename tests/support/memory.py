"""In-memory doubles for consumer unit tests: a MemoryTransport that answers SUBSCRIBE receipts, an inbox."""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Mapping
from datetime import datetime
from typing import Any

from django_outbox_pattern import testing
from django_outbox_pattern.broker import wire
from django_outbox_pattern.consuming import inbox


class ReceiptMemoryTransport(testing.MemoryTransport):
    """MemoryTransport that logs every SUBSCRIBE as (destination, headers without the receipt) in ``log``."""

    def __init__(self, broker: testing.MemoryBroker, log: list[tuple[str, dict[str, str]]]) -> None:
        super().__init__(broker)
        self.log = log

    def subscribe(self, destination: str, subscription_id: str, headers: wire.Headers, *, ack: str) -> None:
        self.log.append((destination, {k: v for k, v in headers.items() if k != "receipt"}))
        super().subscribe(destination, subscription_id, headers, ack=ack)


class TransportFactory:
    """Builds ReceiptMemoryTransports on one broker and remembers them (the consumer asks for a new one
    per connection, plus one short-lived connection per DLQ declaration)."""

    def __init__(self, broker: testing.MemoryBroker | None = None) -> None:
        self.broker = broker or testing.MemoryBroker()
        self.made: list[ReceiptMemoryTransport] = []
        self.subscribes: list[tuple[str, dict[str, str]]] = []

    def __call__(self) -> ReceiptMemoryTransport:
        t = ReceiptMemoryTransport(self.broker, self.subscribes)
        self.made.append(t)
        return t

    def connected(self) -> list[ReceiptMemoryTransport]:
        return [t for t in self.made if t.is_connected()]


class MemoryInbox:
    """``inbox.InboxStore`` in a dict: no transactions, so on_commit runs at once."""

    def __init__(self) -> None:
        self.rows: dict[str, tuple[dict[str, str], Any, datetime | None]] = {}
        self.resets = 0
        self.purges: list[datetime] = []
        self.lock = threading.Lock()

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
            self.rows[msg_id] = (dict(headers), body, None)

    def on_commit(self, func: Callable[[], None]) -> None:
        func()

    def reset(self) -> None:
        self.resets += 1

    def purge_older_than(self, cutoff: datetime, *, batch_size: int, should_stop: Callable[[], bool]) -> int:
        self.purges.append(cutoff)
        return 0
