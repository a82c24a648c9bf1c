"""Receive what the relay sent: subscribe to a queue on the real broker and collect its messages."""

from __future__ import annotations

import collections
import threading
import time
import uuid
from collections.abc import Iterable

from django_outbox_pattern import conf
from django_outbox_pattern.broker import transport, wire


class QueueDrain:
    """Subscribe to ``destination`` (auto-ack) and keep every message received, in arrival order.

    ``sync()`` proves nothing more is on the way: it sends a marker through the same queue and waits for
    it, so every message queued before it (duplicates included) has arrived when it returns.
    """

    def __init__(self, settings: conf.OutboxSettings, destination: str) -> None:
        self.settings = settings
        self.destination = destination
        self.messages: list[wire.Message] = []
        self._cond = threading.Condition()
        self._transport = transport.StompTransport(settings)
        self._marker = f"sync-{uuid.uuid4().hex}"

    def __enter__(self) -> QueueDrain:
        self._transport.set_message_handler(self._on_message)
        self._transport.connect()
        # Wait for the subscription: a /topic/ drops what is sent before its queue is bound.
        receipt = wire.new_receipt_id()
        self._transport.subscribe(self.destination, "drain", {"receipt": receipt}, ack="auto")
        assert self._transport.wait_for_receipts([receipt], 30) == {receipt}, self._transport.last_error
        return self

    def __exit__(self, *exc: object) -> None:
        self._transport.disconnect()

    def _on_message(self, message: wire.Message) -> None:
        with self._cond:
            self.messages.append(message)
            self._cond.notify_all()

    def wait_for(self, count: int, timeout: float = 30.0) -> list[wire.Message]:
        """Wait until at least ``count`` messages (not markers) arrived; return them all."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.received) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            return self.received

    @property
    def received(self) -> list[wire.Message]:
        return [m for m in self.messages if not m.headers.get("drain-marker")]

    def sync(self, timeout: float = 30.0) -> list[wire.Message]:
        """Send a marker behind everything already queued, wait for it, return the messages before it."""
        marker = f"{self._marker}-{time.monotonic_ns()}"
        sender = transport.StompTransport(self.settings)
        sender.connect()
        try:
            receipt = wire.new_receipt_id()
            sender.send(self.destination, "{}", {"drain-marker": marker}, receipt=receipt)
            assert sender.wait_for_receipts([receipt], timeout), "the broker did not confirm the sync marker"
        finally:
            sender.disconnect()
        deadline = time.monotonic() + timeout
        with self._cond:
            while not any(m.headers.get("drain-marker") == marker for m in self.messages):
                remaining = deadline - time.monotonic()
                assert remaining > 0, "the sync marker never arrived"
                self._cond.wait(remaining)
            return self.received


def count_ids(messages: Iterable[wire.Message]) -> collections.Counter[str]:
    """How many times each ``dop-msg-id`` arrived."""
    return collections.Counter(m.headers.get("dop-msg-id", "") for m in messages)
