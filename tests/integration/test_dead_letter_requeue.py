"""``operations.requeue`` against RabbitMQ: real dead-lettering (NACK requeue:false) and back again."""

from __future__ import annotations

import queue
from collections.abc import Iterator

import pytest

from django_outbox_pattern import conf, exceptions, operations, transport

pytestmark = pytest.mark.broker
EXPIRES = {"x-expires": "120000"}  # test queues vanish two minutes after their last use


class Peer:
    """A consumer of ``<name>`` declared as the consumer declares it (dead-lettering to DLQ.<name>)."""

    def __init__(self, settings: conf.OutboxSettings, name: str) -> None:
        self.name, self.got = name, queue.Queue()
        self.conn = transport.StompTransport(settings)
        self.conn.connect()
        self.conn.set_message_handler(self.got.put)
        self.conn.subscribe(f"/queue/DLQ.{name}", "declare-dlq", EXPIRES, ack="client-individual")
        self.conn.unsubscribe("declare-dlq")
        headers = {
            **EXPIRES,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": f"DLQ.{name}",
            "prefetch-count": "10",
        }
        self.conn.subscribe(f"/queue/{name}", "q", headers, ack="client-individual")
        barrier = transport.new_receipt_id()  # frames are handled in order: the queues exist after this
        self.conn.send(f"/topic/{name}.barrier", "", {}, receipt=barrier)
        assert self.conn.wait_for_receipts([barrier], 10) == {barrier}

    def send(self, n: int) -> None:
        receipts = [transport.new_receipt_id() for _ in range(n)]
        for i, receipt in enumerate(receipts):
            headers = {
                "dop-msg-id": f"{self.name}-{i}",
                "persistent": "true",
                "content-type": "application/json",
            }
            self.conn.send(f"/amq/queue/{self.name}", f'{{"i": {i}}}', headers, receipt=receipt)
        assert self.conn.wait_for_receipts(receipts, 10) == set(receipts)

    def take(self, n: int) -> list[transport.Message]:
        return [self.got.get(timeout=10) for _ in range(n)]


@pytest.fixture
def peer(outbox_settings: conf.OutboxSettings, unique_name: str) -> Iterator[Peer]:
    p = Peer(outbox_settings, unique_name)
    yield p
    p.conn.disconnect()


def test_dead_letters_go_back_to_their_queue(peer: Peer, outbox_settings: conf.OutboxSettings) -> None:
    peer.send(3)
    for message in peer.take(3):
        peer.conn.nack(message.ack_id, "q", requeue=False)  # the broker dead-letters them to DLQ.<name>
    result = operations.requeue(transport.StompTransport(outbox_settings), peer.name, idle_timeout=0.5)
    assert (result.requeued, result.stopped, result.source) == (3, "empty", f"DLQ.{peer.name}")
    again = peer.take(3)
    assert sorted(m.headers["dop-msg-id"] for m in again) == [f"{peer.name}-{i}" for i in range(3)]
    assert sorted(m.body for m in again) == [b'{"i": 0}', b'{"i": 1}', b'{"i": 2}']
    assert all(m.headers["content-type"] == "application/json" for m in again)
    for message in again:
        peer.conn.ack(message.ack_id, "q")
    empty = operations.requeue(transport.StompTransport(outbox_settings), peer.name, idle_timeout=0.3)
    assert (empty.requeued, empty.stopped) == (0, "empty")


def test_missing_target_queue_loses_nothing(outbox_settings: conf.OutboxSettings, unique_name: str) -> None:
    keeper = transport.StompTransport(outbox_settings)
    keeper.connect()
    receipt = transport.new_receipt_id()
    keeper.send(f"/queue/DLQ.{unique_name}", "kept", {**EXPIRES, "persistent": "true"}, receipt=receipt)
    assert keeper.wait_for_receipts([receipt], 10) == {receipt}
    with pytest.raises(exceptions.BrokerRejected, match=f"Cannot requeue into the queue {unique_name}"):
        operations.requeue(transport.StompTransport(outbox_settings), unique_name, idle_timeout=0.3)
    got: queue.Queue[transport.Message] = queue.Queue()
    keeper.set_message_handler(got.put)
    keeper.subscribe(f"/amq/queue/DLQ.{unique_name}", "check", {}, ack="auto")
    assert got.get(timeout=10).body == b"kept"
    keeper.disconnect()


def test_missing_dead_letter_queue(peer: Peer, outbox_settings: conf.OutboxSettings) -> None:
    with pytest.raises(exceptions.BrokerRejected, match=r"Cannot read DLQ\.x"):
        operations.requeue(
            transport.StompTransport(outbox_settings), peer.name, dlq_prefix="DLQ.x", idle_timeout=0.3
        )
