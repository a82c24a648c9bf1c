"""Real-broker helpers for consumer integration tests: publish with receipts, read a queue raw."""

from __future__ import annotations

import dataclasses
import threading
import uuid
from collections.abc import Iterable
from typing import Any

from django_outbox_pattern import conf
from django_outbox_pattern.broker.transport import StompTransport
from django_outbox_pattern.broker.wire import Message, new_receipt_id
from django_outbox_pattern.consuming import queues


def settings_with(**overrides: Any) -> conf.OutboxSettings:
    """The test settings (real broker) with some values replaced."""
    return dataclasses.replace(conf.get_settings(), **overrides)


def publish(
    settings: conf.OutboxSettings, destination: str, messages: Iterable[tuple[str, dict[str, str]]]
) -> None:
    """Send persistent messages and wait for every RECEIPT."""
    t = StompTransport(settings)
    t.connect()
    try:
        receipts = []
        for body, headers in messages:
            receipt = new_receipt_id()
            t.send(destination, body, {"persistent": "true", **headers}, receipt=receipt)
            receipts.append(receipt)
        assert t.wait_for_receipts(receipts, 10) == set(receipts), t.last_error
    finally:
        t.disconnect()


def declare(settings: conf.OutboxSettings, destination: str, queue: str) -> None:
    """Declare the main queue and its DLQ with the consumer's headers (SUBSCRIBE, receipt, UNSUBSCRIBE)."""
    subscribe_once(
        settings, queues.dead_letter_destination(queue), queues.dead_letter_headers(settings, queue)
    )
    subscribe_once(settings, destination, queues.subscribe_headers(settings, queue))


def subscribe_once(settings: conf.OutboxSettings, destination: str, headers: dict[str, Any]) -> None:
    """One SUBSCRIBE (confirmed by a receipt) and UNSUBSCRIBE on a connection of its own."""
    t = StompTransport(settings)
    t.connect()
    try:
        receipt = new_receipt_id()
        t.subscribe(destination, "declare", {**headers, "receipt": receipt}, ack="client-individual")
        assert t.wait_for_receipts([receipt], 10) == {receipt}, t.last_error
        t.unsubscribe("declare")
    finally:
        t.disconnect()


class Reader:
    """Reads an existing queue through /amq/queue/<name> (which never declares it); nothing is acked."""

    def __init__(self, settings: conf.OutboxSettings, queue: str) -> None:
        self._transport = StompTransport(settings)
        self._queue = queue
        self._cond = threading.Condition()
        self.messages: list[Message] = []

    def __enter__(self) -> Reader:
        self._transport.set_message_handler(self._on_message)
        self._transport.connect()
        receipt = new_receipt_id()
        headers = {"prefetch-count": "100", "receipt": receipt}
        self._transport.subscribe(f"/amq/queue/{self._queue}", "reader", headers, ack="client-individual")
        assert self._transport.wait_for_receipts([receipt], 10) == {receipt}, self._transport.last_error
        return self

    def __exit__(self, *exc: object) -> None:
        self._transport.disconnect()  # unacked messages go back to the queue

    def _on_message(self, message: Message) -> None:
        with self._cond:
            self.messages.append(message)
            self._cond.notify_all()

    def wait_for(self, count: int, timeout: float = 10) -> list[Message]:
        with self._cond:
            self._cond.wait_for(lambda: len(self.messages) >= count, timeout)
            return list(self.messages)


def read(settings: conf.OutboxSettings, queue: str, count: int, timeout: float = 10) -> list[Message]:
    """The first ``count`` messages waiting in ``queue`` (left in the queue)."""
    with Reader(settings, queue) as reader:
        return reader.wait_for(count, timeout)


def assert_queue_empty(settings: conf.OutboxSettings, queue: str) -> None:
    """Nothing unacked is left in ``queue``: a sentinel sent now is the first message delivered."""
    sentinel = f"sentinel-{uuid.uuid4().hex}"
    publish(settings, f"/amq/queue/{queue}", [(sentinel, {})])
    first = read(settings, queue, 1)
    assert first, f"nothing arrived from {queue}"
    assert first[0].body.decode() == sentinel, f"{queue} still held {first[0].body!r} ({first[0].headers})"
