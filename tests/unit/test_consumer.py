"""The consumer engine over the in-memory broker: settle semantics, retries, duplicates, stats."""

from __future__ import annotations

import collections
import dataclasses
import logging
import threading
from collections.abc import Callable, Collection
from typing import Any

import pytest
from django.db import OperationalError

from django_outbox_pattern import conf, exceptions, payloads, testing
from django_outbox_pattern.broker import wire
from django_outbox_pattern.consuming import consumer, handling
from django_outbox_pattern.consuming.assembly import build_consumer
from django_outbox_pattern.testing import MemoryInbox
from tests.support.memory import TransportFactory
from tests.support.runner import running, wait_until

DEST = "/queue/orders"
DLQ = "/queue/DLQ.orders"


@pytest.fixture
def factory() -> TransportFactory:
    return TransportFactory()


@pytest.fixture
def store() -> MemoryInbox:
    return MemoryInbox()


@pytest.fixture
def make(factory: TransportFactory, store: MemoryInbox) -> Callable[..., consumer.Consumer]:
    def build(
        callback: Callable[[payloads.Payload], Any], destination: str = DEST, **overrides: Any
    ) -> consumer.Consumer:
        settings = dataclasses.replace(
            conf.OutboxSettings(),
            DEFAULT_RETRY_BASE_DELAY=0.01,
            DEFAULT_CONSUMER_RETRY_WAIT=0.01,
            DEFAULT_RECEIPT_TIMEOUT=2,
            DEFAULT_CONSUMER_SHUTDOWN_TIMEOUT=5,
            **overrides,
        )
        return consumer.Consumer(
            callback, destination, settings=settings, transport_factory=factory, store=store
        )

    return build


def publish(
    factory: TransportFactory, body: str = '{"n": 1}', destination: str = DEST, **headers: str
) -> None:
    factory.broker.publish(destination, body, dict(headers))


def settled_everything(factory: TransportFactory, destination: str = DEST) -> bool:
    broker = factory.broker
    with broker.lock:
        unacked = sum(len(s.unacked) for s in broker.subscriptions)
    return unacked == 0 and not broker.messages(destination)


def saving(calls: list[str]) -> Callable[[payloads.Payload], None]:
    def callback(payload: payloads.Payload) -> None:
        calls.append(payload.msg_id)
        payload.save()

    return callback


def test_saved_messages_are_recorded_and_acked(
    make: Any, factory: TransportFactory, store: MemoryInbox
) -> None:
    calls: list[str] = []
    c = make(saving(calls))
    with running(c):
        for n in range(3):
            publish(factory, f'{{"n": {n}}}', **{"dop-msg-id": f"id-{n}"})
        assert wait_until(lambda: c.stats.processed == 3)
        assert wait_until(lambda: settled_everything(factory))
    assert calls == ["id-0", "id-1", "id-2"]
    assert [store.rows[f"id-{n}"][1] for n in range(3)] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert c.stats == consumer.ConsumerStats(processed=3)
    assert not factory.broker.messages(DLQ)


def test_the_dlq_is_declared_with_its_own_arguments_before_the_main_subscription(
    make: Any, factory: TransportFactory
) -> None:
    c = make(saving([]))
    with running(c):
        pass
    (first_dest, first), (second_dest, second) = factory.subscribes[:2]
    assert (first_dest, first["x-queue-name"], first["x-dead-letter-routing-key"]) == (
        DLQ,
        "DLQ.orders",
        "DLQ.DLQ.DLQ.orders",
    )
    assert (second_dest, second["x-queue-name"], second["x-dead-letter-routing-key"]) == (
        DEST,
        "orders",
        "DLQ.orders",
    )
    # the DLQ was declared on a short-lived connection of its own
    assert factory.made[0].connects == 1 and not factory.made[0].is_connected()


def test_an_exclusive_dlq_is_declared_on_the_consumer_connection_as_3x_did(
    make: Any, factory: TransportFactory
) -> None:
    c = make(saving([]), DEFAULT_EXCLUSIVE_QUEUE=True)
    with running(c):
        pass
    (first_dest, first), (second_dest, second) = factory.subscribes[:2]
    assert (first_dest, first["exclusive"], second_dest, second["exclusive"]) == (DLQ, "true", DEST, "true")
    assert len(factory.made) == 1  # an exclusive queue dies with its connection: no short-lived one


def test_declaring_the_dlq_leaves_its_messages_there(make: Any, factory: TransportFactory) -> None:
    publish(factory, "dead", destination=DLQ)
    c = make(saving([]))
    with running(c):
        assert [m.body for m in factory.broker.messages(DLQ)] == [b"dead"]
    assert c.stats.processed == 0


def test_a_known_message_is_acked_without_calling_the_callback(
    make: Any, factory: TransportFactory, store: MemoryInbox
) -> None:
    store.record("seen", {}, None)
    calls: list[str] = []
    c = make(saving(calls))
    with running(c):
        publish(factory, **{"dop-msg-id": "seen"})
        assert wait_until(lambda: c.stats.duplicates == 1)
        assert wait_until(lambda: settled_everything(factory))
    assert calls == []
    assert not factory.broker.messages(DLQ)
    assert c.stats == consumer.ConsumerStats(duplicates=1)


def test_losing_the_save_race_acks_as_a_duplicate_never_dead_letters(
    make: Any, factory: TransportFactory, store: MemoryInbox
) -> None:
    def callback(payload: payloads.Payload) -> None:
        store.record(payload.msg_id, {}, "the other consumer won")  # committed elsewhere meanwhile
        payload.save()

    c = make(callback)
    with running(c):
        publish(factory, **{"dop-msg-id": "raced"})
        assert wait_until(lambda: c.stats.duplicates == 1)
        assert wait_until(lambda: settled_everything(factory))
    assert c.stats == consumer.ConsumerStats(duplicates=1)
    assert not factory.broker.messages(DLQ)


def test_nack_dead_letters_the_message(make: Any, factory: TransportFactory, store: MemoryInbox) -> None:
    c = make(lambda payload: payload.nack())
    with running(c):
        publish(factory, '{"bad": true}', **{"dop-msg-id": "n1"})
        assert wait_until(lambda: len(factory.broker.messages(DLQ)) == 1)
    assert factory.broker.messages(DLQ)[0].headers["dop-msg-id"] == "n1"
    assert c.stats == consumer.ConsumerStats(nacked=1)
    assert store.rows == {}


def test_a_raising_callback_is_nacked_and_logged_with_traceback(
    make: Any, factory: TransportFactory, caplog: pytest.LogCaptureFixture
) -> None:
    def callback(payload: payloads.Payload) -> None:
        raise ValueError("business rule broken")

    c = make(callback)
    with caplog.at_level(logging.ERROR, logger="django_outbox_pattern"), running(c):
        publish(factory, **{"dop-msg-id": "boom"})
        assert wait_until(lambda: len(factory.broker.messages(DLQ)) == 1)
    assert c.stats == consumer.ConsumerStats(nacked=1, errors=1)
    failed = [r for r in caplog.records if getattr(r, "action", "") == "message_failed"]
    assert len(failed) == 1
    assert failed[0].exc_info is not None and "business rule broken" in str(failed[0].exc_info[1])
    assert "boom" in failed[0].getMessage() and "DLQ.orders" in failed[0].getMessage()


def test_an_unsettled_message_is_warned_about_and_dead_lettered(
    make: Any, factory: TransportFactory, caplog: pytest.LogCaptureFixture
) -> None:
    c = make(lambda payload: None)
    with caplog.at_level(logging.WARNING, logger="django_outbox_pattern"), running(c):
        publish(factory, **{"dop-msg-id": "forgotten"})
        publish(factory, **{"dop-msg-id": "forgotten-too"})  # the queue does not stall
        assert wait_until(lambda: len(factory.broker.messages(DLQ)) == 2)
    warnings = [r for r in caplog.records if getattr(r, "action", "") == "message_left_unsettled"]
    assert [("forgotten" in r.getMessage()) for r in warnings] == [True, True]
    assert "neither saved nor nacked" in warnings[0].getMessage()
    assert c.stats == consumer.ConsumerStats(nacked=2)


def test_transient_database_errors_are_retried_then_succeed(
    make: Any, factory: TransportFactory, store: MemoryInbox
) -> None:
    calls: list[str] = []

    def callback(payload: payloads.Payload) -> None:
        calls.append(payload.msg_id)
        if len(calls) < 3:
            raise OperationalError("server closed the connection unexpectedly")
        payload.save()

    c = make(callback, DEFAULT_CONSUMER_MAX_RETRY_ATTEMPTS=3)
    with running(c):
        publish(factory, **{"dop-msg-id": "flaky"})
        assert wait_until(lambda: c.stats.processed == 1)
    assert calls == ["flaky"] * 3
    assert store.resets >= 2  # the connection was closed before each retry
    assert c.stats == consumer.ConsumerStats(processed=1)
    assert "flaky" in store.rows


def test_transient_errors_beyond_the_retries_dead_letter(make: Any, factory: TransportFactory) -> None:
    calls: list[str] = []

    def callback(payload: payloads.Payload) -> None:
        calls.append(payload.msg_id)
        raise OperationalError("connection lost")

    c = make(callback, DEFAULT_CONSUMER_MAX_RETRY_ATTEMPTS=2)
    with running(c):
        publish(factory, **{"dop-msg-id": "down"})
        assert wait_until(lambda: len(factory.broker.messages(DLQ)) == 1)
    assert calls == ["down"] * 3  # first try plus 2 retries
    assert c.stats == consumer.ConsumerStats(nacked=1, errors=1)


def test_zero_retries_means_one_attempt(make: Any, factory: TransportFactory) -> None:
    calls: list[str] = []

    def callback(payload: payloads.Payload) -> None:
        calls.append(payload.msg_id)
        raise OperationalError("connection lost")

    c = make(callback, DEFAULT_CONSUMER_MAX_RETRY_ATTEMPTS=0)
    with running(c):
        publish(factory, **{"dop-msg-id": "once"})
        assert wait_until(lambda: len(factory.broker.messages(DLQ)) == 1)
    assert calls == ["once"]


def test_callbacks_run_on_the_worker_thread(make: Any, factory: TransportFactory) -> None:
    threads: list[str] = []

    def callback(payload: payloads.Payload) -> None:
        threads.append(threading.current_thread().name)
        payload.ack()

    c = make(callback, DEFAULT_CONSUMER_PROCESS_MSG_ON_BACKGROUND=True)
    with running(c):
        publish(factory)
        assert wait_until(lambda: c.stats.processed == 1)
    assert threads == ["outbox-consumer-orders"]


def test_stats_are_a_read_only_snapshot(make: Any) -> None:
    c = make(saving([]))
    stats = c.stats
    with pytest.raises(dataclasses.FrozenInstanceError):
        stats.processed = 5  # type: ignore[misc]
    assert stats == consumer.ConsumerStats()


def test_build_consumer_refuses_a_bad_callback_path() -> None:
    with pytest.raises(exceptions.CallbackImportError) as info:
        build_consumer("tests.support.nowhere.handle", "/topic/x", settings=conf.OutboxSettings())
    assert "tests.support.nowhere.handle" in str(info.value)
    assert "dotted path" in str(info.value)
    with pytest.raises(exceptions.CallbackImportError, match="not callable"):
        build_consumer("tests.unit.test_consumer.DEST", "/topic/x", settings=conf.OutboxSettings())
    with pytest.raises(exceptions.CallbackImportError):
        build_consumer("nodots", "/topic/x", settings=conf.OutboxSettings())


def test_a_callback_module_that_fails_on_import_is_a_clear_one_line_error() -> None:
    with pytest.raises(exceptions.CallbackImportError) as info:
        build_consumer("tests.support.broken_callbacks.handle", "/topic/x", settings=conf.OutboxSettings())
    assert "RuntimeError: this module is broken on purpose" in str(info.value)
    assert "\n" not in str(info.value)


def test_build_consumer_checks_the_destination_before_importing() -> None:
    with pytest.raises(exceptions.InvalidDestination):
        build_consumer("tests.support.nowhere.handle", "/nope/x", settings=conf.OutboxSettings())


def test_build_consumer_from_a_dotted_path() -> None:
    c = build_consumer(
        "tests.unit.test_consumer.saving", "/topic/orders.created", "billing", settings=conf.OutboxSettings()
    )
    assert (c.destination, c.queue) == ("/topic/orders.created", "billing")
    assert "billing" in repr(c)


def test_build_consumer_reads_the_current_django_settings() -> None:
    from django.test import override_settings

    custom = {
        "DEFAULT_STOMP_QUEUE_HEADERS": {"durable": "true", "auto-delete": "false", "prefetch-count": "7"},
        "DEFAULT_EXCLUSIVE_QUEUE": True,
    }
    with override_settings(DJANGO_OUTBOX_PATTERN=custom):
        c = build_consumer("tests.unit.test_consumer.saving", "/topic/orders")
    assert c._headers["prefetch-count"] == "7"
    assert c._headers["exclusive"] == "true"
    assert (
        c._worker.handoff.maxsize == 0
    )  # unbounded: the prefetch bounds it, and a dropped frame would stall


class _CountingInbox(MemoryInbox):
    def __init__(self) -> None:
        super().__init__()
        self.lookups: list[str] = []

    def exists(self, msg_id: str) -> bool:
        self.lookups.append(f"exists {msg_id}")
        return super().exists(msg_id)

    def existing(self, msg_ids: Collection[str]) -> set[str]:
        self.lookups.append(f"existing {sorted(msg_ids)}")
        return super().existing(msg_ids)


def _message(msg_id: str) -> wire.Message:
    return wire.Message(headers={"dop-msg-id": msg_id, "message-id": msg_id}, body=b"{}")


def _processor(
    callback: Callable[[payloads.Payload], Any],
    inbox: MemoryInbox,
    counts: collections.Counter[str] | None = None,
    dead_letter_queue: str = "DLQ.q",
) -> handling.Processor:
    tally = counts if counts is not None else collections.Counter()
    return handling.Processor(
        callback,
        settings=conf.OutboxSettings(),
        store=inbox,
        subscription="sub",
        dead_letter_queue=dead_letter_queue,
        stopping=threading.Event(),
        count=lambda field: tally.update([field]),
    )


def test_one_lookup_covers_a_run_of_messages_and_copies_within_it_are_duplicates() -> None:
    inbox = _CountingInbox()
    inbox.record("seen", {}, None)
    calls: list[str] = []
    counts: collections.Counter[str] = collections.Counter()
    processor = _processor(saving(calls), inbox, counts)
    source = testing.MemoryTransport()
    source.connect()
    run = [_message(m) for m in ("a", "seen", "dup", "b", "dup")]
    processor.precheck(run)
    for message in run:
        processor.handle(source, message)
    assert calls == ["a", "dup", "b"]  # the second copy of "dup" came after the first was saved
    assert counts == {"processed": 3, "duplicates": 2}
    assert inbox.lookups == ["existing ['a', 'b', 'dup', 'seen']"]  # no query per message
    processor.handle(source, _message("later"))  # not in the last run: looked up on its own
    assert inbox.lookups[-1] == "exists later"


def test_a_copy_after_a_lost_save_race_in_the_same_run_never_reaches_the_callback() -> None:
    inbox = _CountingInbox()
    calls: list[str] = []

    def callback(payload: payloads.Payload) -> None:
        calls.append(payload.msg_id)
        inbox.record(payload.msg_id, {}, "another consumer committed it meanwhile")
        payload.save()  # raises DuplicateMessage

    counts: collections.Counter[str] = collections.Counter()
    processor = _processor(callback, inbox, counts)
    source = testing.MemoryTransport()
    source.connect()
    run = [_message("x"), _message("x")]
    processor.precheck(run)
    for message in run:
        processor.handle(source, message)
    assert calls == ["x"]
    assert counts == {"duplicates": 2}


def test_a_failed_pre_check_falls_back_to_one_lookup_per_message() -> None:
    class Broken(_CountingInbox):
        def existing(self, msg_ids: Collection[str]) -> set[str]:
            raise OperationalError("connection lost")

    inbox = Broken()
    calls: list[str] = []
    processor = _processor(saving(calls), inbox)
    source = testing.MemoryTransport()
    source.connect()
    processor.precheck([_message("a")])
    processor.handle(source, _message("a"))
    assert calls == ["a"] and inbox.lookups == ["exists a"] and inbox.resets == 1


def test_acks_wait_for_the_workers_flush_nacks_do_not() -> None:
    broker = testing.MemoryBroker()
    source = testing.MemoryTransport(broker)
    source.connect()
    source.subscribe(DEST, "sub", {"prefetch-count": "10"}, ack="client-individual")
    delivered: list[wire.Message] = []
    source.set_message_handler(delivered.append)
    for msg_id in ("keep", "reject"):
        broker.publish(DEST, "{}", {"dop-msg-id": msg_id})
    assert [m.headers["dop-msg-id"] for m in delivered] == ["keep", "reject"]

    def callback(payload: payloads.Payload) -> None:
        payload.save() if payload.msg_id == "keep" else payload.nack()

    processor = _processor(callback, MemoryInbox(), dead_letter_queue="DLQ.orders")
    for message in delivered:
        processor.handle(source, message)
    assert len(source.deferred_acks) == 1  # the ACK waits ...
    with broker.lock:
        assert [len(s.unacked) for s in broker.subscriptions] == [1]  # ... the NACK went at once
    source.flush()
    with broker.lock:
        assert [len(s.unacked) for s in broker.subscriptions] == [0]
    assert source.deferred_acks == []
