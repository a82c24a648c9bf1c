"""In-memory doubles for consumer unit tests: a MemoryTransport that logs SUBSCRIBEs (the inbox twin is
``testing.MemoryInbox``)."""

from __future__ import annotations

from django_outbox_pattern import testing
from django_outbox_pattern.broker import wire


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
