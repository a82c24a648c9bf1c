"""A broker-side peer for the dead-letter tests: a consumer of ``<name>`` declared as the consumer engine
declares it (dead-lettering to ``DLQ.<name>``), able to send, take and NACK messages."""

from __future__ import annotations

import queue

from django_outbox_pattern import conf
from django_outbox_pattern.broker import transport, wire

EXPIRES = {"x-expires": "120000"}  # test queues vanish two minutes after their last use


class Peer:
    def __init__(self, settings: conf.OutboxSettings, name: str) -> None:
        self.name = name
        self.got: queue.Queue[wire.Message] = queue.Queue()
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
        self.barrier()

    def barrier(self) -> None:
        """Frames are handled in order: after this RECEIPT the queues above exist."""
        receipt = wire.new_receipt_id()
        self.conn.send(f"/topic/{self.name}.barrier", "", {}, receipt=receipt)
        assert self.conn.wait_for_receipts([receipt], 10) == {receipt}

    def send(self, n: int) -> None:
        receipts = [wire.new_receipt_id() for _ in range(n)]
        for i, receipt in enumerate(receipts):
            headers = {
                "dop-msg-id": f"{self.name}-{i}",
                "persistent": "true",
                "content-type": "application/json",
            }
            self.conn.send(f"/amq/queue/{self.name}", f'{{"i": {i}}}', headers, receipt=receipt)
        assert self.conn.wait_for_receipts(receipts, 10) == set(receipts)

    def take(self, n: int) -> list[wire.Message]:
        return [self.got.get(timeout=10) for _ in range(n)]

    def dead_letter(self, n: int) -> None:
        """Send n messages and NACK them: the broker moves them to DLQ.<name>."""
        self.send(n)
        for message in self.take(n):
            self.conn.nack(message.ack_id, "q", requeue=False)
        self.barrier()

    def close(self) -> None:
        self.conn.disconnect()
