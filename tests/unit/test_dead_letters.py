"""``dead_letters.requeue`` over the in-memory broker: DLQ.<queue> back to <queue>, acked once confirmed."""

from __future__ import annotations

import logging

import pytest

from django_outbox_pattern import exceptions
from django_outbox_pattern.ops import dead_letters, operations
from django_outbox_pattern.testing import MemoryBroker, MemoryTransport

DLQ, TARGET = "/amq/queue/DLQ.orders", "/amq/queue/orders"


def dead_letter(broker: MemoryBroker, n: int, *, prefix: str = "m") -> None:
    for i in range(n):
        headers = {
            "dop-msg-id": f"{prefix}{i}",
            "x-first-death-reason": "rejected",
            "x-first-death-queue": "orders",
            "content-type": "application/json",
        }
        broker.publish(DLQ, f'{{"i": {i}}}', headers)


def test_moves_every_message_with_its_application_headers() -> None:
    broker = MemoryBroker()
    dead_letter(broker, 3)
    result = dead_letters.requeue(MemoryTransport(broker), "orders", idle_timeout=0.05)
    assert result == dead_letters.RequeueResult(
        queue="orders", source="DLQ.orders", requeued=3, stopped="empty"
    )
    assert broker.messages(DLQ) == []
    moved = broker.messages(TARGET)
    assert [m.body for m in moved] == [b'{"i": 0}', b'{"i": 1}', b'{"i": 2}']
    headers = moved[0].headers
    assert headers["dop-msg-id"] == "m0" and headers["content-type"] == "application/json"
    assert headers["persistent"] == "true"
    assert not any(key.startswith("x-first-death") for key in headers)


def test_limit() -> None:
    broker = MemoryBroker()
    dead_letter(broker, 3)
    result = dead_letters.requeue(MemoryTransport(broker), "orders", limit=2, idle_timeout=0.05)
    assert (result.requeued, result.stopped) == (2, "limit")
    assert len(broker.messages(DLQ)) == 1 and len(broker.messages(TARGET)) == 2


def test_stops_when_a_moved_message_comes_back() -> None:
    broker = MemoryBroker()
    dead_letter(broker, 1)
    dead_letter(broker, 1)  # the same dop-msg-id again: the consumer failed it a second time
    result = dead_letters.requeue(MemoryTransport(broker), "orders", idle_timeout=0.05)
    assert (result.requeued, result.stopped) == (1, "loop")
    assert len(broker.messages(DLQ)) == 1  # left unacked, back in the DLQ on disconnect


def test_unconfirmed_resend_keeps_the_message_in_the_dlq() -> None:
    broker = MemoryBroker()
    dead_letter(broker, 2)
    conn = MemoryTransport(broker)
    original_send = conn.send

    def send(destination: str, body: str, headers, *, receipt: str | None = None) -> None:
        broker.withhold_receipts = destination == TARGET
        original_send(destination, body, headers, receipt=receipt)

    conn.send = send  # type: ignore[method-assign]
    with pytest.raises(exceptions.PublishNotConfirmed, match="stays in the DLQ"):
        dead_letters.requeue(conn, "orders", idle_timeout=0.05, receipt_timeout=0.05)
    assert len(broker.messages(DLQ)) == 2


def test_broker_down_is_a_connection_error() -> None:
    broker = MemoryBroker()
    broker.down = True
    with pytest.raises(exceptions.ConnectionFailed):
        dead_letters.requeue(MemoryTransport(broker), "orders")


@pytest.mark.parametrize("name", ["", "/queue/orders", "DLQ/x"])
def test_rejects_a_destination_instead_of_a_queue_name(name: str) -> None:
    with pytest.raises(exceptions.InvalidDestination):
        operations.requeue(MemoryTransport(), name)


def test_a_requeue_is_logged_with_its_actor(caplog: pytest.LogCaptureFixture) -> None:
    broker = MemoryBroker()
    dead_letter(broker, 2)
    with caplog.at_level(logging.INFO, logger="django_outbox_pattern"):
        operations.requeue(MemoryTransport(broker), "orders", idle_timeout=0.05, actor="night-shift")
    [line] = [r for r in caplog.records if getattr(r, "action", "") == "broker_repair_requeued"]
    assert (line.actor, line.via, line.count) == ("night-shift", "api", 2)  # type: ignore[attr-defined]
    assert line.selection == {"queue": "orders", "source": "DLQ.orders", "stopped": "empty"}  # type: ignore[attr-defined]
