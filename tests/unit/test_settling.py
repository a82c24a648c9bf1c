"""The one settle point: dead letters carry the reason, fall back to NACK, never leave a message pending."""

from __future__ import annotations

import base64
import json
import logging
import threading
from typing import Any

import pytest

from django_outbox_pattern import conf, exceptions, testing
from django_outbox_pattern.broker import wire
from django_outbox_pattern.consuming import handling, settling, storable, unsettled
from django_outbox_pattern.testing import MemoryInbox

DEST = "/queue/orders"
DLQ = "/queue/DLQ.orders"


def subscribed(
    broker: testing.MemoryBroker, cls: type[testing.MemoryTransport] = testing.MemoryTransport
) -> tuple[testing.MemoryTransport, list[wire.Message]]:
    conn = cls(broker)
    conn.connect()
    delivered: list[wire.Message] = []
    conn.set_message_handler(delivered.append)
    headers = {"prefetch-count": "10", "x-dead-letter-routing-key": "DLQ.orders"}
    conn.subscribe(DEST, "sub", headers, ack="client-individual")
    return conn, delivered


def processor(callback: Any, **settings: Any) -> handling.Processor:
    return handling.Processor(
        callback,
        settings=conf.OutboxSettings(**settings),
        store=MemoryInbox(),
        subscription="sub",
        dead_letter_queue="DLQ.orders",
        stopping=threading.Event(),
        count=lambda field: None,
    )


def unacked(broker: testing.MemoryBroker) -> int:
    with broker.lock:
        return sum(len(s.unacked) for s in broker.subscriptions)


def test_a_raising_callback_dead_letters_with_the_reason_in_a_header() -> None:
    broker = testing.MemoryBroker()
    conn, delivered = subscribed(broker)
    broker.publish(DEST, '{"n": 1}', {"dop-msg-id": "m1", "app": "yes", "user-id": "someone-else"})

    def boom(payload: Any) -> None:
        raise ValueError("no such customer")

    outcome = processor(boom).handle(conn, delivered[0])
    assert outcome is settling.Outcome.DEAD_LETTERED
    [dead] = broker.messages(DLQ)
    assert dead.headers[settling.REASON_HEADER] == "the callback raised: ValueError: no such customer"
    assert dead.headers[settling.QUEUE_HEADER] == "orders"
    assert dead.headers["app"] == "yes" and dead.headers["persistent"] == "true"
    assert "user-id" not in dead.headers  # RabbitMQ refuses a user-id other than the connection's
    assert dead.body == b'{"n": 1}'
    assert unacked(broker) == 0


def test_headers_too_large_to_send_back_fall_back_to_a_nack(caplog: pytest.LogCaptureFixture) -> None:
    broker = testing.MemoryBroker()
    conn, delivered = subscribed(broker)
    broker.publish(DEST, "x", {"dop-msg-id": "big", "huge": "h" * (settling.MAX_COPY_HEADER_BYTES + 1)})
    with caplog.at_level(logging.WARNING):
        processor(lambda p: p.nack()).handle(conn, delivered[0])
    [dead] = broker.messages(DLQ)  # dead-lettered by the broker (x-dead-letter-routing-key), no copy
    assert settling.REASON_HEADER not in dead.headers
    assert "the callback called nack()" in caplog.text  # the reason is in the log
    assert unacked(broker) == 0


def test_a_copy_without_receipt_falls_back_to_nack_and_is_not_tried_again() -> None:
    broker = testing.MemoryBroker()
    conn, delivered = subscribed(broker)
    broker.publish(DEST, "x", {"dop-msg-id": "same"})
    broker.publish(DEST, "x", {"dop-msg-id": "same"})
    p = processor(lambda payload: payload.nack(), DEFAULT_RECEIPT_TIMEOUT=0.05)
    broker.withhold_receipts = True
    p.handle(conn, delivered[0])
    broker.withhold_receipts = False
    p.handle(conn, delivered[1])  # same message again: straight to NACK, no second wait
    dead = broker.messages(DLQ)
    assert sum(settling.REASON_HEADER in m.headers for m in dead) == 1  # the unconfirmed copy arrived late
    assert len(dead) == 3 and unacked(broker) == 0


class BrokenAcks(testing.MemoryTransport):
    def ack(self, ack_id: str, subscription_id: str, *, defer: bool = False) -> None:
        raise exceptions.ConnectionClosed("socket gone")


def test_an_ack_that_cannot_be_written_closes_the_connection_so_the_broker_redelivers() -> None:
    broker = testing.MemoryBroker()
    conn, delivered = subscribed(broker, BrokenAcks)
    broker.publish(DEST, "{}", {"dop-msg-id": "a"})
    outcome = processor(lambda p: p.save()).handle(conn, delivered[0])
    assert outcome is settling.Outcome.ACKED
    assert not conn.is_connected()
    assert [m.headers["dop-msg-id"] for m in broker.messages(DEST)] == ["a"]  # back on the queue


class Fatal(BaseException):
    pass


def _fatal(payload: Any) -> None:
    raise Fatal()


@pytest.mark.parametrize(
    ("body", "headers", "callback"),
    [
        (b"[" * 100_000 + b"]" * 100_000, {"dop-msg-id": "deep"}, lambda p: p.save()),  # RecursionError
        (b"{}", {}, lambda p: p.save()),  # no id at all: cannot be deduplicated
        (b"{}", {"dop-msg-id": "fatal"}, _fatal),  # a BaseException from the callback
    ],
    ids=["deep-json", "no-id", "base-exception"],
)
def test_every_failure_path_ends_settled(body: bytes, headers: dict[str, str], callback: Any) -> None:
    broker = testing.MemoryBroker()
    conn, _ = subscribed(broker)
    message = wire.Message(headers={**headers, "ack": "mem-x"}, body=body)
    with broker.lock:
        broker.subscriptions[0].unacked["mem-x"] = message
    outcome = processor(callback).handle(conn, message)
    conn.flush()
    assert outcome in (settling.Outcome.ACKED, settling.Outcome.DEAD_LETTERED)
    assert unacked(broker) == 0


def test_settling_twice_writes_once() -> None:
    broker = testing.MemoryBroker()
    conn, delivered = subscribed(broker)
    broker.publish(DEST, "{}", {"dop-msg-id": "a"})
    outcomes: list[settling.Outcome] = []
    s = settling.Settlement(
        conn,
        delivered[0],
        subscription="sub",
        dead_letters=settling.DeadLetters("orders", "DLQ.orders", receipt_timeout=1),
        on_settled=outcomes.append,
    )
    s.ack()
    s.dead_letter("too late")
    s.leave("too late")
    conn.flush()
    assert outcomes == [settling.Outcome.ACKED] and not broker.messages(DLQ) and unacked(broker) == 0


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"a": "nul\\u0000"}', "NUL"),
        (b'["\\ud800"]', "surrogate"),
        (b"\xff\xfe not utf-8", "not UTF-8"),
        (b"[" * 300 + b"]" * 300, "deeper"),
        (b"NaN", "NaN"),
        (b"123456789012345678901234567890", "64 bits"),
    ],
)
def test_bodies_a_database_rejects_are_stored_raw(raw: bytes, reason: str) -> None:
    from django_outbox_pattern import payloads

    body = payloads.decode_body(raw, "m")
    stored = storable.storable_body(body, raw)
    assert reason in stored[storable.RAW_REASON_KEY]
    assert storable.raw_body(stored) == raw
    assert base64.b64decode(stored[storable.RAW_BODY_KEY]) == raw
    json.dumps(stored, allow_nan=False)  # plain JSON now


def test_ordinary_bodies_and_headers_are_stored_as_they_are() -> None:
    assert storable.storable_body({"a": [1, "é", None]}, b'{"a": [1, "\\u00e9", null]}') == {
        "a": [1, "é", None]
    }
    assert storable.storable_headers({"k": "v\x00w", "s": "\ud800"}) == {"k": "v\\x00w", "s": "\\ud800"}


def test_unsettled_messages_report_their_age_and_a_stall_once() -> None:
    now = [100.0]
    tracker = unsettled.Unsettled(clock=lambda: now[0])
    first = wire.Message(headers={"ack": "a"}, body=b"")
    second = wire.Message(headers={"ack": "b"}, body=b"")
    tracker.add(first)
    now[0] += 5
    tracker.add(second)
    now[0] += 5
    assert tracker.oldest_age() == 10.0
    assert tracker.newly_stalled(8) == "a" and tracker.newly_stalled(8) is None
    tracker.remove(first)
    assert tracker.oldest_age() == 5.0
    tracker.clear()
    assert tracker.oldest_age() == 0.0 and len(tracker) == 0
