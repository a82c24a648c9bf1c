"""Hostile messages sent with a raw stomp.py connection each end in one outcome; none stalls the queue
(prefetch 1), and the inbox stores every body the callback saved, on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import collections
import threading
import uuid
from typing import Any

import pytest
import stomp
from django.db import transaction

from django_outbox_pattern import payloads
from django_outbox_pattern.consuming import settling, storable
from django_outbox_pattern.models import Received
from tests.conftest import STOMP_HOST, STOMP_PORT
from tests.support.consumers import make_consumer
from tests.support.runner import running, wait_until
from tests.support.stomp_tools import assert_queue_empty, read, settings_with

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.broker]

DEEP = b"[" * 100_000 + b"]" * 100_000


class _Receipts(stomp.ConnectionListener):  # type: ignore[misc]
    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.receipts: set[str] = set()

    def on_receipt(self, frame: Any) -> None:
        with self.cond:
            self.receipts.add(frame.headers["receipt-id"])
            self.cond.notify_all()


def send_raw(destination: str, messages: list[tuple[bytes, dict[str, str]]]) -> None:
    """Persistent SENDs of raw bytes on a plain stomp.py connection, each confirmed by its RECEIPT."""
    conn = stomp.StompConnection12([(STOMP_HOST, STOMP_PORT)], vhost="/", auto_decode=False)
    listener = _Receipts()
    conn.set_listener("receipts", listener)
    conn.connect("guest", "guest", wait=True)
    try:
        wanted = set()
        for body, headers in messages:
            receipt = uuid.uuid4().hex
            wanted.add(receipt)
            conn.send(destination, body, headers={"persistent": "true", **headers}, receipt=receipt)
        with listener.cond:
            assert listener.cond.wait_for(lambda: wanted <= listener.receipts, 20)
    finally:
        conn.disconnect()


def test_hostile_messages_never_stall_the_queue(unique_name: str, broker_available: None) -> None:
    effects: collections.Counter[str] = collections.Counter()

    def callback(payload: payloads.Payload) -> None:
        behaviour = payload.headers.get("x-behaviour", "save")
        if behaviour == "nack":
            payload.nack()
            return
        if behaviour == "raise":
            raise ValueError("cannot handle it")
        with transaction.atomic():
            payload.save()
        effects[payload.msg_id] += 1

    queue = unique_name
    hostile = [
        (DEEP, {"dop-msg-id": "deep"}),
        (b"nul \x00 in the middle", {"dop-msg-id": "nul-raw"}),
        (b'{"text": "nul \\u0000 escaped"}', {"dop-msg-id": "nul-json"}),
        (b'{"text": "lone \\ud800"}', {"dop-msg-id": "surrogate"}),
        (b"\xff\xfe not utf-8 \xc3", {"dop-msg-id": "latin"}),
        ('{"e": "\U0001f600 four bytes"}'.encode(), {"dop-msg-id": "emoji", "x-e": "\U0001f600"}),
        (b'{"big": true}', {"dop-msg-id": "huge-header", "x-big": "h" * 100_000}),
        (b'{"no": "id"}', {}),  # no dop-msg-id: identified by the broker's message-id
        (b'{"n": 1}', {"dop-msg-id": "dup"}),
        (b'{"n": 2}', {"dop-msg-id": "dup"}),
        (b'{"n": 3}', {"dop-msg-id": "refused", "x-behaviour": "nack"}),
        (b'{"n": 4}', {"dop-msg-id": "broken", "x-behaviour": "raise"}),
        (b'{"n": 5}', {"dop-msg-id": "too-big-to-copy", "x-behaviour": "raise", "x-big": "h" * 50_000}),
        (b'{"last": true}', {"dop-msg-id": "sentinel"}),
    ]
    c = make_consumer(callback, f"/queue/{queue}")
    with running(c):
        send_raw(f"/amq/queue/{queue}", hostile)  # /queue/ would redeclare it without the x- arguments
        assert wait_until(lambda: effects["sentinel"] == 1, timeout=60), c.stats  # nothing stalled before it
        assert wait_until(lambda: c.oldest_unsettled_age() == 0.0)
    assert c.stats.reconnects == 0
    assert effects["dup"] == 1 and all(n == 1 for n in effects.values())
    assert c.stats.duplicates == 1 and c.stats.nacked == 3
    rows = {row.msg_id: row for row in Received.objects.all()}
    expected = {
        "deep",
        "nul-raw",
        "nul-json",
        "surrogate",
        "latin",
        "emoji",
        "huge-header",
        "dup",
        "sentinel",
    }
    assert expected <= set(rows)
    assert len(rows) == 10  # plus the message identified by its broker message-id
    assert (
        rows["emoji"].body == {"e": "\U0001f600 four bytes"} and rows["emoji"].headers["x-e"] == "\U0001f600"
    )
    assert storable.raw_body(rows["nul-raw"].body) == b"nul \x00 in the middle"
    assert storable.raw_body(rows["nul-json"].body) == b'{"text": "nul \\u0000 escaped"}'
    assert storable.raw_body(rows["surrogate"].body) == b'{"text": "lone \\ud800"}'
    assert storable.raw_body(rows["latin"].body) == b"\xff\xfe not utf-8 \xc3"
    assert rows["deep"].body == DEEP.decode()  # too deep to decode: the text, stored as a JSON string
    assert rows["dup"].body == {"n": 1}
    assert_queue_empty(settings_with(), queue)

    dead = {m.headers.get("dop-msg-id"): m for m in read(settings_with(), f"DLQ.{queue}", 3)}
    assert set(dead) == {"refused", "broken", "too-big-to-copy"}
    assert dead["refused"].headers[settling.REASON_HEADER] == "the callback called nack()"
    assert "ValueError: cannot handle it" in dead["broken"].headers[settling.REASON_HEADER]
    assert dead["broken"].headers[settling.QUEUE_HEADER] == queue
    # headers too large to send back: NACKed, the broker's own dead-letter headers say why
    assert settling.REASON_HEADER not in dead["too-big-to-copy"].headers
    assert dead["too-big-to-copy"].headers.get("x-first-death-reason") == "rejected"
