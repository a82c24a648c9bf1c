"""A real in-memory broker and transport, for unit tests of the engine and for users' own tests.

``MemoryBroker`` keeps queues per destination, delivers to subscriptions honouring ``prefetch-count``,
tracks unacked messages, requeues on NACK with ``requeue:true`` and dead-letters to
``x-dead-letter-routing-key`` otherwise. ``MemoryTransport`` implements ``wire.Transport`` over it.
Faults can be switched on: ``broker.down`` refuses connects, ``broker.withhold_receipts`` keeps RECEIPTs
back, ``broker.reject_destinations`` answers a SEND with an ERROR and closes the connection (as RabbitMQ).
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
import threading
from collections.abc import Collection, Sequence

from django_outbox_pattern import exceptions
from django_outbox_pattern.broker import wire
from django_outbox_pattern.core import addressing


@dataclasses.dataclass
class _Subscription:
    conn: MemoryTransport
    sub_id: str
    destination: str
    headers: dict[str, str]
    ack: str
    unacked: dict[str, wire.Message] = dataclasses.field(default_factory=dict)
    active: bool = True  # False after UNSUBSCRIBE: no new deliveries, unacked kept until disconnect

    @property
    def prefetch(self) -> int:
        return addressing.prefetch_count(self.headers)


@dataclasses.dataclass(frozen=True)
class SentMessage:
    destination: str
    body: str
    headers: dict[str, str]


class MemoryBroker:
    """The state of an in-memory broker, shared by any number of ``MemoryTransport`` connections."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.queues: dict[str, collections.deque[wire.Message]] = collections.defaultdict(collections.deque)
        self.sent: list[SentMessage] = []
        self.subscriptions: list[_Subscription] = []
        self.dead_letter_keys: dict[str, str] = {}
        self.named_queues: dict[str, str] = {}  # x-queue-name -> the destination that declared it
        self.down = False
        self.withhold_receipts = False
        self.reject_destinations: dict[str, str] = {}
        self._ids = itertools.count(1)

    def messages(self, destination: str) -> list[wire.Message]:
        """Messages waiting (not delivered) on a destination."""
        with self.lock:
            return list(self.queues[queue_key(destination)])

    def publish(
        self, destination: str, body: str | bytes, headers: dict[str, str], *, redelivered: bool = False
    ) -> None:
        """Put a message on a destination (``/amq/queue/x`` is the queue ``/queue/x``, as on RabbitMQ)."""
        destination = queue_key(destination)
        raw = body if isinstance(body, bytes) else body.encode("utf-8")
        with self.lock:
            n = next(self._ids)
            full = {**headers, "destination": destination, "message-id": f"mem-{n}", "ack": f"mem-{n}"}
            if redelivered:
                full["redelivered"] = "true"
            self.queues[destination].append(wire.Message(headers=full, body=raw))
            self.dispatch()

    def dispatch(self) -> None:
        """Deliver waiting messages to subscriptions with room under their prefetch."""
        deliveries: list[tuple[_Subscription, wire.Message]] = []
        with self.lock:
            for sub in [s for s in self.subscriptions if s.active]:
                queue = self.queues[sub.destination]
                while queue and (sub.prefetch <= 0 or len(sub.unacked) < sub.prefetch):
                    message = queue.popleft()
                    headers = {**message.headers, "subscription": sub.sub_id}
                    message = wire.Message(headers=headers, body=message.body)
                    if sub.ack != "auto":
                        sub.unacked[message.ack_id] = message
                    deliveries.append((sub, message))
        for sub, message in deliveries:
            handler = sub.conn.handler
            if handler is not None:
                handler(message)

    def settle(self, conn: MemoryTransport, sub_id: str, ack_id: str, *, ack: bool, requeue: bool) -> None:
        with self.lock:
            sub = next((s for s in self.subscriptions if s.conn is conn and s.sub_id == sub_id), None)
            if sub is None or ack_id not in sub.unacked:
                raise exceptions.BrokerRejected(f"Unknown delivery {ack_id!r} on subscription {sub_id!r}.")
            message = sub.unacked.pop(ack_id)
            if not ack:
                headers = {
                    k: v for k, v in message.headers.items() if k not in ("message-id", "ack", "subscription")
                }
                if requeue:
                    self.queues[sub.destination].appendleft(
                        wire.Message(headers={**message.headers, "redelivered": "true"}, body=message.body)
                    )
                else:
                    dlq = sub.headers.get("x-dead-letter-routing-key")
                    if dlq:
                        self.publish(f"/queue/{dlq}", message.body, headers)
            self.dispatch()

    def drop_subscriptions_of(self, conn: MemoryTransport) -> None:
        """A closed connection's unacked messages go back to their queues, as on a real broker."""
        with self.lock:
            for sub in [s for s in self.subscriptions if s.conn is conn]:
                self.subscriptions.remove(sub)
                for message in reversed(list(sub.unacked.values())):
                    headers = {**message.headers, "redelivered": "true"}
                    self.queues[sub.destination].appendleft(wire.Message(headers=headers, body=message.body))
            self.dispatch()


def queue_key(destination: str) -> str:
    """``/amq/queue/x`` and ``/queue/x`` name the same queue."""
    return (
        "/queue/" + destination[len("/amq/queue/") :]
        if destination.startswith("/amq/queue/")
        else destination
    )


class MemoryTransport:
    """``wire.Transport`` over a ``MemoryBroker``."""

    def __init__(self, broker: MemoryBroker | None = None) -> None:
        self.broker = broker or MemoryBroker()
        self.handler: wire.MessageHandler | None = None
        self._connected = False
        self._receipts: set[str] = set()
        self._cond = threading.Condition()
        self.last_error: str | None = None
        self.connects = 0
        self.deferred_acks: list[tuple[str, str]] = []  # ack(..., defer=True) until flush()

    @property
    def sent(self) -> list[SentMessage]:
        return self.broker.sent

    def connect(self) -> None:
        if self.broker.down:
            raise exceptions.ConnectionFailed("Could not connect to the in-memory broker (it is down).")
        self._connected = True
        self.last_error = None
        self.connects += 1
        self.deferred_acks = []

    def disconnect(self) -> None:
        if self._connected and not self.broker.down and self.deferred_acks:
            self.flush()
        if self._connected:
            self._connected = False
            self.broker.drop_subscriptions_of(self)
        with self._cond:
            self._cond.notify_all()

    def close_abruptly(self, error: str = "connection reset") -> None:
        """Simulate the broker dropping this connection (deferred ACKs are lost with it)."""
        self.last_error = error
        self.deferred_acks = []
        self.disconnect()

    def is_connected(self) -> bool:
        return self._connected and not self.broker.down

    def _require(self) -> None:
        if not self.is_connected():
            raise exceptions.ConnectionClosed("Not connected to the in-memory broker.")

    def send(
        self, destination: str, body: str | bytes, headers: wire.Headers, *, receipt: str | None = None
    ) -> None:
        self._require()
        reason = self.broker.reject_destinations.get(destination)
        if reason is not None:
            self.close_abruptly(reason)
            return
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        with self.broker.lock:
            self.broker.sent.append(SentMessage(destination, text, dict(headers)))
        self.broker.publish(destination, body, dict(headers))
        if receipt is not None and not self.broker.withhold_receipts:
            with self._cond:
                self._receipts.add(receipt)
                self._cond.notify_all()

    def send_many(self, messages: Sequence[wire.OutgoingFrame]) -> None:
        for index, m in enumerate(messages):
            try:
                self.send(m.destination, m.body, m.headers, receipt=m.receipt)
            except exceptions.ConnectionClosed as exc:
                raise exceptions.SendInterrupted(str(exc), written=index) from exc

    def wait_for_receipts(self, receipts: Collection[str], timeout: float) -> set[str]:
        wanted = set(receipts)
        with self._cond:
            self._cond.wait_for(lambda: wanted <= self._receipts or not self._connected, timeout)
            got = wanted & self._receipts
            self._receipts -= got
        return got

    def subscribe(self, destination: str, subscription_id: str, headers: wire.Headers, *, ack: str) -> None:
        """Subscribe; a ``receipt`` header is confirmed, as RabbitMQ does."""
        self._require()
        headers = dict(headers)
        receipt = headers.pop("receipt", None)
        with self.broker.lock:
            if destination.startswith("/amq/queue/"):  # an existing queue, by name (as RabbitMQ)
                destination = self.broker.named_queues.get(destination[len("/amq/queue/") :], destination)
            elif "x-queue-name" in headers:
                self.broker.named_queues[headers["x-queue-name"]] = destination
            if destination.startswith("/queue/") and "x-dead-letter-routing-key" in headers:
                self.broker.dead_letter_keys[destination] = headers["x-dead-letter-routing-key"]
            sub = _Subscription(self, subscription_id, queue_key(destination), headers, ack)
            self.broker.subscriptions.append(sub)
        if receipt is not None:
            with self._cond:
                self._receipts.add(receipt)
                self._cond.notify_all()
        self.broker.dispatch()

    def unsubscribe(self, subscription_id: str) -> None:
        """Like RabbitMQ: no new deliveries; unacked messages stay unacked until the connection closes."""
        self._require()
        with self.broker.lock:
            for sub in self.broker.subscriptions:
                if sub.conn is self and sub.sub_id == subscription_id:
                    sub.active = False

    def ack(self, ack_id: str, subscription_id: str, *, defer: bool = False) -> None:
        self._require()
        if defer:
            self.deferred_acks.append((ack_id, subscription_id))
            return
        self.broker.settle(self, subscription_id, ack_id, ack=True, requeue=False)

    def flush(self) -> None:
        self._require()
        pending, self.deferred_acks = self.deferred_acks, []
        for ack_id, subscription_id in pending:
            self.broker.settle(self, subscription_id, ack_id, ack=True, requeue=False)

    def nack(self, ack_id: str, subscription_id: str, *, requeue: bool = False) -> None:
        self._require()
        self.broker.settle(self, subscription_id, ack_id, ack=False, requeue=requeue)

    def set_message_handler(self, handler: wire.MessageHandler | None) -> None:
        self.handler = handler


def _check_protocol(t: MemoryTransport) -> wire.Transport:
    return t  # mypy proves MemoryTransport satisfies the Transport protocol
