"""``dead_letters.requeue`` against RabbitMQ: real dead-lettering (NACK requeue:false) and back again."""

from __future__ import annotations

import queue
from collections.abc import Iterator

import pytest

from django_outbox_pattern import conf, exceptions
from django_outbox_pattern.broker import transport, wire
from django_outbox_pattern.ops import dead_letters
from tests.cli import peers

pytestmark = pytest.mark.broker
EXPIRES = peers.EXPIRES
Peer = peers.Peer


@pytest.fixture
def peer(outbox_settings: conf.OutboxSettings, unique_name: str) -> Iterator[Peer]:
    p = Peer(outbox_settings, unique_name)
    yield p
    p.close()


def test_dead_letters_go_back_to_their_queue(peer: Peer, outbox_settings: conf.OutboxSettings) -> None:
    peer.dead_letter(3)
    result = dead_letters.requeue(transport.StompTransport(outbox_settings), peer.name, idle_timeout=0.5)
    assert (result.requeued, result.stopped, result.source) == (3, "empty", f"DLQ.{peer.name}")
    again = peer.take(3)
    assert sorted(m.headers["dop-msg-id"] for m in again) == [f"{peer.name}-{i}" for i in range(3)]
    assert sorted(m.body for m in again) == [b'{"i": 0}', b'{"i": 1}', b'{"i": 2}']
    assert all(m.headers["content-type"] == "application/json" for m in again)
    for message in again:
        peer.conn.ack(message.ack_id, "q")
    empty = dead_letters.requeue(transport.StompTransport(outbox_settings), peer.name, idle_timeout=0.3)
    assert (empty.requeued, empty.stopped) == (0, "empty")


def test_missing_target_queue_loses_nothing(outbox_settings: conf.OutboxSettings, unique_name: str) -> None:
    keeper = transport.StompTransport(outbox_settings)
    keeper.connect()
    receipt = wire.new_receipt_id()
    keeper.send(f"/queue/DLQ.{unique_name}", "kept", {**EXPIRES, "persistent": "true"}, receipt=receipt)
    assert keeper.wait_for_receipts([receipt], 10) == {receipt}
    with pytest.raises(exceptions.BrokerRejected, match=f"Cannot requeue into the queue {unique_name}"):
        dead_letters.requeue(transport.StompTransport(outbox_settings), unique_name, idle_timeout=0.3)
    got: queue.Queue[wire.Message] = queue.Queue()
    keeper.set_message_handler(got.put)
    keeper.subscribe(f"/amq/queue/DLQ.{unique_name}", "check", {}, ack="auto")
    assert got.get(timeout=10).body == b"kept"
    keeper.disconnect()


def test_missing_dead_letter_queue(peer: Peer, outbox_settings: conf.OutboxSettings) -> None:
    with pytest.raises(exceptions.BrokerRejected, match=r"Cannot read DLQ\.x"):
        dead_letters.requeue(
            transport.StompTransport(outbox_settings), peer.name, dlq_prefix="DLQ.x", idle_timeout=0.3
        )
