"""Supervisor behaviour over the in-memory broker: reconnects, stale frames, shutdown, retention."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.core.cache import cache
from django.db import OperationalError

from django_outbox_pattern import conf, payloads
from django_outbox_pattern.consuming import consumer, inbox
from django_outbox_pattern.testing import MemoryInbox
from tests.support.memory import TransportFactory
from tests.support.runner import running, wait_until

DEST = "/queue/orders"
PREFETCH_2 = {"durable": "true", "auto-delete": "false", "prefetch-count": "2"}


@pytest.fixture
def factory() -> TransportFactory:
    return TransportFactory()


@pytest.fixture
def store() -> MemoryInbox:
    return MemoryInbox()


@pytest.fixture
def make(factory: TransportFactory, store: MemoryInbox) -> Callable[..., consumer.Consumer]:
    def build(callback: Callable[[payloads.Payload], Any], **overrides: Any) -> consumer.Consumer:
        values: dict[str, Any] = {
            "DEFAULT_RETRY_BASE_DELAY": 0.01,
            "DEFAULT_CONSUMER_RETRY_WAIT": 0.01,
            "DEFAULT_RECEIPT_TIMEOUT": 2,
            "DEFAULT_CONSUMER_SHUTDOWN_TIMEOUT": 5,
        }
        settings = dataclasses.replace(conf.OutboxSettings(), **{**values, **overrides})
        return consumer.Consumer(callback, DEST, settings=settings, transport_factory=factory, store=store)

    return build


def unacked(factory: TransportFactory) -> int:
    with factory.broker.lock:
        return sum(len(s.unacked) for s in factory.broker.subscriptions)


def test_after_a_reconnect_nothing_is_lost_or_processed_twice(
    make: Any, factory: TransportFactory, store: MemoryInbox, caplog: pytest.LogCaptureFixture
) -> None:
    release = threading.Event()
    calls: list[str] = []

    def callback(payload: payloads.Payload) -> None:
        calls.append(payload.msg_id)
        if payload.msg_id == "m1":
            assert release.wait(10)
        payload.save()

    c = make(callback, DEFAULT_STOMP_QUEUE_HEADERS=PREFETCH_2)
    for n in (1, 2):
        factory.broker.publish(DEST, "{}", {"dop-msg-id": f"m{n}"})
    with caplog.at_level(logging.DEBUG, logger="django_outbox_pattern"), running(c):
        assert wait_until(lambda: calls == ["m1"])  # m1 in the callback, m2 waiting in the hand-off queue
        first = factory.connected()[-1]
        first.close_abruptly()  # the broker requeues both
        assert wait_until(lambda: c.stats.reconnects == 1)
        release.set()  # m1 saves now; its ACK cannot go out on the dead connection
        assert wait_until(lambda: c.stats.processed == 2 and c.stats.duplicates == 1)
        assert wait_until(lambda: unacked(factory) == 0 and not factory.broker.messages(DEST))
    assert sorted(calls) == ["m1", "m2"]  # m2's stale frame was dropped; its redelivery ran once
    assert sorted(store.rows) == ["m1", "m2"]
    assert c.stats == consumer.ConsumerStats(processed=2, duplicates=1, reconnects=1)
    # an ack id of the old connection never reached the new one
    assert not any("Unknown delivery" in r.getMessage() for r in caplog.records)
    failed_acks = [r for r in caplog.records if getattr(r, "action", "") == "message_settle_failed"]
    assert len(failed_acks) == 1 and "m1" in failed_acks[0].getMessage()


def test_stop_during_connection_retries_returns_promptly(make: Any, factory: TransportFactory) -> None:
    factory.broker.down = True
    c = make(lambda payload: payload.save(), DEFAULT_RETRY_BASE_DELAY=30)
    with running(c, ready_timeout=None) as thread:
        assert wait_until(lambda: len(factory.made) >= 1)
        started = time.monotonic()
        c.stop()
        thread.join(5)
        assert not thread.is_alive()
    assert time.monotonic() - started < 2
    assert not c.wait_ready(0)


def test_the_supervisor_keeps_retrying_until_the_broker_is_back(make: Any, factory: TransportFactory) -> None:
    factory.broker.down = True
    c = make(lambda payload: payload.save())
    with running(c, ready_timeout=None):
        assert wait_until(lambda: len(factory.made) >= 3)  # several attempts with backoff
        factory.broker.down = False
        assert c.wait_ready(10)
        factory.broker.publish(DEST, "{}", {"dop-msg-id": "late"})
        assert wait_until(lambda: c.stats.processed == 1)
    assert c.stats.reconnects == 0  # never subscribed before: not a reconnect


class ClosingSoonFactory(TransportFactory):
    """Transports whose broker confirms the SUBSCRIBE of the main queue, then closes the connection
    (what RabbitMQ does when the queue exists with other arguments); ``at_once`` closes it before the
    consumer checks its receipt."""

    def __init__(self, *, at_once: bool) -> None:
        super().__init__()
        self.at_once = at_once

    def __call__(self) -> Any:
        t = super().__call__()
        subscribe = t.subscribe

        def subscribe_then_close(destination: str, subscription_id: str, headers: Any, *, ack: str) -> None:
            subscribe(destination, subscription_id, headers, ack=ack)
            if destination == DEST:
                reason = (
                    "precondition_failed: PRECONDITION_FAILED - inequivalent arg 'x-dead-letter-exchange'"
                )
                if self.at_once:
                    t.close_abruptly(reason)
                else:
                    threading.Timer(0.05, t.close_abruptly, args=(reason,)).start()

        t.subscribe = subscribe_then_close  # type: ignore[method-assign]
        return t


@pytest.mark.parametrize("at_once", [True, False])
def test_a_subscription_the_broker_confirms_then_drops_backs_off_more_and_more(
    at_once: bool, store: MemoryInbox, caplog: pytest.LogCaptureFixture
) -> None:
    factory = ClosingSoonFactory(at_once=at_once)
    settings = dataclasses.replace(
        conf.OutboxSettings(), DEFAULT_RETRY_BASE_DELAY=0.01, DEFAULT_MAXIMUM_BACKOFF=0.2
    )
    c = consumer.Consumer(lambda p: p.save(), DEST, settings=settings, transport_factory=factory, store=store)
    with caplog.at_level(logging.WARNING, logger="django_outbox_pattern"), running(c, ready_timeout=None):
        assert wait_until(
            lambda: sum(getattr(r, "action", "") == "consumer_connection_lost" for r in caplog.records) >= 5
        )
    lost = [r for r in caplog.records if getattr(r, "action", "") == "consumer_connection_lost"]
    assert [r.attempt for r in lost[:5]] == [1, 2, 3, 4, 5]  # never back to the first delay
    if at_once:
        assert "precondition_failed" in lost[0].getMessage()


def test_stop_lets_the_current_callback_finish_and_acks_it(make: Any, factory: TransportFactory) -> None:
    entered, release = threading.Event(), threading.Event()

    def callback(payload: payloads.Payload) -> None:
        entered.set()
        assert release.wait(10)
        payload.save()

    c = make(callback, DEFAULT_STOMP_QUEUE_HEADERS=PREFETCH_2)
    for n in (1, 2):
        factory.broker.publish(DEST, "{}", {"dop-msg-id": f"s{n}"})
    with running(c) as thread:
        assert entered.wait(5)
        c.stop()
        thread.join(0.3)
        assert thread.is_alive()  # waiting for the callback
        release.set()
        thread.join(5)
        assert not thread.is_alive()
    assert c.stats.processed == 1  # s1 finished and acked; s2 was never taken
    assert [m.headers["dop-msg-id"] for m in factory.broker.messages(DEST)] == ["s2"]
    assert not factory.connected()


def test_a_callback_slower_than_the_shutdown_timeout_is_abandoned(
    make: Any, factory: TransportFactory, caplog: pytest.LogCaptureFixture
) -> None:
    entered, release = threading.Event(), threading.Event()

    def callback(payload: payloads.Payload) -> None:
        entered.set()
        release.wait(10)

    c = make(callback, DEFAULT_CONSUMER_SHUTDOWN_TIMEOUT=0.2)
    factory.broker.publish(DEST, "{}", {"dop-msg-id": "slow"})
    try:
        with caplog.at_level(logging.WARNING, logger="django_outbox_pattern"), running(c):
            assert entered.wait(5)
            started = time.monotonic()
        assert time.monotonic() - started < 3
        assert any(getattr(r, "action", "") == "consumer_shutdown_timed_out" for r in caplog.records)
        # back in the queue, for the next consumer
        assert [m.headers["dop-msg-id"] for m in factory.broker.messages(DEST)] == ["slow"]
    finally:
        release.set()


def test_a_shutdown_timeout_of_none_waits_for_the_callback_without_a_limit(
    make: Any, factory: TransportFactory
) -> None:
    entered, release = threading.Event(), threading.Event()

    def callback(payload: payloads.Payload) -> None:
        entered.set()
        release.wait(30)
        payload.save()

    c = make(callback, DEFAULT_CONSUMER_SHUTDOWN_TIMEOUT=None)  # 3.x: None waits for ever
    factory.broker.publish(DEST, "{}", {"dop-msg-id": "slow"})
    stopper = threading.Thread(target=c.stop)
    try:
        with running(c) as thread:
            assert entered.wait(5)
            stopper.start()
            stopper.join(5)
            thread.join(0.5)  # bounded: the consumer must still be waiting for the callback
            assert thread.is_alive()
            release.set()
    finally:
        release.set()
    assert c.stats.processed == 1 and not factory.broker.messages(DEST)


def test_a_stop_during_a_retry_wait_leaves_the_message_to_the_broker(
    make: Any, factory: TransportFactory
) -> None:
    calls: list[str] = []

    def callback(payload: payloads.Payload) -> None:
        calls.append(payload.msg_id)
        raise OperationalError("connection lost")

    c = make(callback, DEFAULT_CONSUMER_RETRY_WAIT=30)
    factory.broker.publish(DEST, "{}", {"dop-msg-id": "later"})
    with running(c) as thread:
        assert wait_until(lambda: calls == ["later"])
        c.stop()
        thread.join(3)
        assert not thread.is_alive()
    assert c.stats == consumer.ConsumerStats()
    assert [m.headers["dop-msg-id"] for m in factory.broker.messages(DEST)] == ["later"]
    assert not factory.broker.messages("/queue/DLQ.orders")


def test_a_busy_callback_never_blocks_the_receiving_side(make: Any, factory: TransportFactory) -> None:
    entered, release = threading.Event(), threading.Event()

    def callback(payload: payloads.Payload) -> None:
        entered.set()
        release.wait(10)
        payload.save()

    c = make(callback, DEFAULT_STOMP_QUEUE_HEADERS=PREFETCH_2)
    try:
        with running(c):
            factory.broker.publish(DEST, "{}", {"dop-msg-id": "b1"})
            assert entered.wait(5)
            done = threading.Event()
            threading.Thread(
                target=lambda: (factory.broker.publish(DEST, "{}", {"dop-msg-id": "b2"}), done.set()),
                daemon=True,
            ).start()
            assert done.wait(2)  # delivery to on_message returned while the callback is still busy
            assert unacked(factory) == 2
            release.set()
            assert wait_until(lambda: c.stats.processed == 2)
    finally:
        release.set()


def test_retention_runs_at_most_once_per_ttl(store: MemoryInbox) -> None:
    settings = dataclasses.replace(conf.OutboxSettings(), DAYS_TO_KEEP_DATA=7, REMOVE_DATA_CACHE_TTL=60)
    cache.delete(settings.OUTBOX_PATTERN_CONSUMER_CACHE_KEY)
    try:
        assert inbox.purge_if_due(store, settings) == 0
        assert inbox.purge_if_due(store, settings) is None
    finally:
        cache.delete(settings.OUTBOX_PATTERN_CONSUMER_CACHE_KEY)
    assert len(store.purges) == 1
    from django.utils import timezone

    age = timezone.now() - store.purges[0]
    assert 7 * 86400 - 5 < age.total_seconds() < 7 * 86400 + 5


def test_the_supervisor_runs_retention_off_the_message_path(make: Any, store: MemoryInbox) -> None:
    c = make(lambda payload: payload.save(), OUTBOX_PATTERN_CONSUMER_CACHE_KEY="test-consumer-retention")
    cache.delete("test-consumer-retention")
    try:
        with running(c):
            assert wait_until(lambda: len(store.purges) == 1)
    finally:
        cache.delete("test-consumer-retention")


def test_a_reconnect_after_the_queue_was_declared_consumes_it_by_name(
    make: Any, factory: TransportFactory, store: MemoryInbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a cluster with a hung node, declaring and binding wait for that node, consuming does not: once
    the subscription held, a reconnect subscribes to /amq/queue/<queue> and declares nothing."""
    monkeypatch.setattr(consumer, "DECLARED_AFTER_S", 0.05)
    c = make(lambda p: p.save(), DEFAULT_STOMP_QUEUE_HEADERS=PREFETCH_2)
    with running(c):
        factory.broker.publish(DEST, "{}", {"dop-msg-id": "m1"})
        assert wait_until(lambda: c.stats.processed == 1)
        assert wait_until(lambda: c._declared)
        factory.connected()[-1].close_abruptly()
        assert wait_until(lambda: c.stats.reconnects == 1)
        factory.broker.publish(DEST, "{}", {"dop-msg-id": "m2"})
        assert wait_until(lambda: c.stats.processed == 2)
    destinations = [destination for destination, _ in factory.subscribes]
    assert destinations == ["/queue/DLQ.orders", DEST, "/amq/queue/orders"]
    assert factory.subscribes[-1][1] == {"prefetch-count": "2"}  # nothing to declare


@pytest.mark.parametrize(
    "headers",
    [
        {**PREFETCH_2, "auto-delete": "true"},
        {"prefetch-count": "2"},  # not durable
    ],
)
def test_a_queue_that_may_not_outlive_its_connection_is_declared_again(
    make: Any, factory: TransportFactory, headers: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(consumer, "DECLARED_AFTER_S", 0.05)
    c = make(lambda p: p.save(), DEFAULT_STOMP_QUEUE_HEADERS=headers)
    with running(c):
        assert wait_until(lambda: c._declared)
        factory.connected()[-1].close_abruptly()
        assert wait_until(lambda: c.stats.reconnects == 1)
    destinations = [destination for destination, _ in factory.subscribes]
    assert destinations == ["/queue/DLQ.orders", DEST] * 2
