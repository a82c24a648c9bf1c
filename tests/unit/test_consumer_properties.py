"""Property: whatever bytes and headers arrive, every delivered message is settled exactly once (ACK, or
dead letter), nothing stays unacknowledged, and a callback's effect happens at most once per message id.

One consumer over the in-memory broker runs for the whole test; Hypothesis feeds it batches of arbitrary
messages, each with a behaviour for the callback (save, nack, ack, raise, leave unsettled, keep failing
with a database error, raise a BaseException).
"""

from __future__ import annotations

import collections
import dataclasses
import threading
from typing import Any

from django.db import OperationalError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from django_outbox_pattern import conf, payloads
from django_outbox_pattern.broker import wire
from django_outbox_pattern.consuming import consumer
from django_outbox_pattern.testing import MemoryInbox
from tests.support.memory import ReceiptMemoryTransport, TransportFactory
from tests.support.runner import running, wait_until

DEST = "/queue/fuzzed"
DLQ = "/queue/DLQ.fuzzed"
BEHAVIOUR = "x-test-behaviour"
BEHAVIOURS = ("save", "nack", "ack", "raise", "nothing", "transient", "fatal", "save_then_raise")

HOSTILE_BODIES = [
    b"[" * 100_000 + b"]" * 100_000,
    b'{"k": "nul \\u0000"}',
    b"nul \x00 raw",
    b"\xff\xfe\xfd not utf-8",
    b'["\\ud800 lone"]',
    b"NaN",
    b"9" * 5000,
    b"",
]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=10,
)
bodies = st.one_of(
    st.binary(max_size=200),
    st.sampled_from(HOSTILE_BODIES),
    json_values.map(lambda v: __import__("json").dumps(v).encode("utf-8")),
)
ids = st.one_of(st.none(), st.text(max_size=5), st.sampled_from(["dup-1", "dup-2", "x" * 300, "nul\x00id"]))
headers = st.dictionaries(st.text(min_size=1, max_size=20), st.text(max_size=50), max_size=5)
messages = st.tuples(bodies, headers, ids, st.sampled_from(BEHAVIOURS))


class Fatal(BaseException):
    pass


class CountingTransport(ReceiptMemoryTransport):
    """Records every delivery of the main subscription and every ACK/NACK written for it."""

    delivered: collections.Counter[str]
    settled: collections.Counter[str]

    def set_message_handler(self, handler: wire.MessageHandler | None) -> None:
        def record(message: wire.Message) -> None:
            if message.headers.get("destination") == DEST:
                self.delivered[message.ack_id] += 1
            if handler is not None:
                handler(message)

        super().set_message_handler(record if handler is not None else None)

    def ack(self, ack_id: str, subscription_id: str, *, defer: bool = False) -> None:
        self.settled[ack_id] += 1
        super().ack(ack_id, subscription_id, defer=defer)

    def nack(self, ack_id: str, subscription_id: str, *, requeue: bool = False) -> None:
        self.settled[ack_id] += 1
        super().nack(ack_id, subscription_id, requeue=requeue)


class CountingFactory(TransportFactory):
    def __init__(self) -> None:
        super().__init__()
        self.delivered: collections.Counter[str] = collections.Counter()
        self.settled: collections.Counter[str] = collections.Counter()

    def __call__(self) -> CountingTransport:
        t = CountingTransport(self.broker, self.subscribes)
        t.delivered, t.settled = self.delivered, self.settled
        self.made.append(t)
        return t


def callback_for(effects: collections.Counter[str], lock: threading.Lock) -> Any:
    def callback(payload: payloads.Payload) -> None:
        behaviour = payload.headers.get(BEHAVIOUR, "save")
        if behaviour in ("save", "save_then_raise"):
            payload.save()
            with lock:
                effects[payload.msg_id] += 1
            if behaviour == "save_then_raise":
                raise RuntimeError("after the save")
        elif behaviour == "nack":
            payload.nack()
        elif behaviour == "ack":
            payload.ack()
        elif behaviour == "raise":
            raise ValueError("callback failed")
        elif behaviour == "transient":
            raise OperationalError("database went away")
        elif behaviour == "fatal":
            raise Fatal()

    return callback


def test_every_message_gets_exactly_one_outcome() -> None:
    factory, store = CountingFactory(), MemoryInbox()
    effects: collections.Counter[str] = collections.Counter()
    lock = threading.Lock()
    s = dataclasses.replace(
        conf.OutboxSettings(),
        DEFAULT_CONSUMER_RETRY_WAIT=0.001,
        DEFAULT_RETRY_BASE_DELAY=0.01,
        DEFAULT_RECEIPT_TIMEOUT=2,
        DEFAULT_CONSUMER_SHUTDOWN_TIMEOUT=5,
        DEFAULT_STOMP_QUEUE_HEADERS={"durable": "true", "auto-delete": "false", "prefetch-count": "3"},
    )
    c = consumer.Consumer(
        callback_for(effects, lock), DEST, settings=s, transport_factory=factory, store=store
    )
    broker = factory.broker

    def quiet() -> bool:
        with broker.lock:
            pending = sum(len(sub.unacked) for sub in broker.subscriptions if sub.destination == DEST)
        return (
            pending == 0
            and not broker.messages(DEST)
            and sum(factory.settled.values()) == sum(factory.delivered.values())
        )

    @settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
    @given(batch=st.lists(messages, min_size=1, max_size=4))
    def check(batch: list[tuple[bytes, dict[str, str], str | None, str]]) -> None:
        dead_before = len(broker.messages(DLQ))
        nacked_before = c.stats.nacked
        for body, extra, msg_id, behaviour in batch:
            hdrs = {k: v for k, v in extra.items() if k not in ("dop-msg-id", "cap-msg-id")}
            if msg_id is not None:
                hdrs["dop-msg-id"] = msg_id
            hdrs[BEHAVIOUR] = behaviour
            broker.publish(DEST, body, hdrs)
        assert wait_until(quiet, timeout=10), "a message was left unsettled"
        assert all(n == 1 for n in factory.settled.values()), "a delivery was settled twice"
        assert set(factory.settled) == set(factory.delivered)
        assert all(n == 1 for n in factory.delivered.values())  # nothing redelivered: no connection lost
        assert all(n == 1 for n in effects.values()), "a callback's effect ran twice"
        assert c.oldest_unsettled_age() == 0.0
        # the stats are counted just after the settle: wait for them
        assert wait_until(lambda: len(broker.messages(DLQ)) - dead_before == c.stats.nacked - nacked_before)

    with running(c):
        check()
    assert c.stats.reconnects == 0
    assert sum(factory.delivered.values()) >= 200
