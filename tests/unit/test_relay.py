"""Relay driven by the in-memory broker: receipts, retries, dead letters, order, shutdown, retention."""

from __future__ import annotations

import datetime
import json
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.core.cache import caches
from django.utils import timezone

from django_outbox_pattern import exceptions
from django_outbox_pattern.choices import StatusChoice
from django_outbox_pattern.models import Published
from django_outbox_pattern.relaying import assembly, batches, outbox, relay, store
from django_outbox_pattern.testing import MemoryBroker, MemoryTransport
from tests.support.relay_helpers import (
    RelayThread,
    make_relay,
    make_rows,
    make_settings,
    past,
    statuses,
    wait_until,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def broker() -> MemoryBroker:
    return MemoryBroker()


@pytest.fixture
def memory(broker: MemoryBroker) -> MemoryTransport:
    return MemoryTransport(broker)


def memory_relay(memory: MemoryTransport, **overrides: object) -> relay.Relay:
    settings = make_settings(DEFAULT_RECEIPT_TIMEOUT=0.05, **overrides)
    return make_relay(settings, memory)


def test_rows_are_published_with_json_body_stored_headers_and_forced_headers(memory: MemoryTransport) -> None:
    row = Published.objects.create(destination="/queue/q", body={"a": [1, "é"]}, headers={"x-tenant": "acme"})
    engine = memory_relay(memory)
    assert engine.run_once() == 1
    (sent,) = memory.sent
    assert sent.destination == "/queue/q"
    assert json.loads(sent.body) == {"a": [1, "é"]}
    assert sent.headers["x-tenant"] == "acme"
    assert sent.headers["dop-msg-id"] == str(row.id)
    assert sent.headers["persistent"] == "true"
    assert sent.headers["content-type"] == "application/json"
    row.refresh_from_db()
    assert row.status == StatusChoice.SUCCEEDED and row.published_at is not None and row.locked_by == ""
    assert engine.last_batch is not None and engine.last_batch.published == 1


def test_a_row_without_receipt_stays_scheduled_with_attempt_error_and_backoff(
    broker: MemoryBroker, memory: MemoryTransport
) -> None:
    broker.withhold_receipts = True
    make_rows("/queue/q", 2)
    engine = memory_relay(memory, DEFAULT_RETRY_BASE_DELAY=10, DEFAULT_WAIT_RETRY=60)
    started = timezone.now()
    assert engine.run_once() == 2
    assert len(memory.sent) == 2  # the broker got them, but never confirmed
    for row in Published.objects.all():
        assert (row.status, row.retry, row.locked_by) == (StatusChoice.SCHEDULE, 1, "")
        assert row.last_error == "no RECEIPT within 0.05s"
        assert (
            started + datetime.timedelta(seconds=5)
            <= row.available_at
            <= timezone.now() + datetime.timedelta(seconds=10)
        )
    assert engine.last_batch == batches.BatchResult(
        published=0, failed=2, retried=2, dead_lettered=0, elapsed=engine.last_batch.elapsed
    )
    assert engine.run_once() == 0  # not due yet: retries happen once per interval, for every relay


def test_confirmed_only_after_receipt_then_published_on_retry(
    broker: MemoryBroker, memory: MemoryTransport
) -> None:
    broker.withhold_receipts = True
    make_rows("/queue/q", 1)
    engine = memory_relay(memory)
    engine.run_once()
    assert statuses()[StatusChoice.SUCCEEDED] == 0
    broker.withhold_receipts = False
    assert engine.run_once() == 1
    row = Published.objects.get()
    assert (row.status, row.retry, row.last_error) == (StatusChoice.SUCCEEDED, 1, "")


def test_after_the_maximum_attempts_a_row_is_failed_with_the_last_error(
    broker: MemoryBroker, memory: MemoryTransport
) -> None:
    broker.withhold_receipts = True
    make_rows("/queue/q", 1)
    engine = memory_relay(memory, DEFAULT_MAXIMUM_RETRY_ATTEMPTS=3)
    for _ in range(3):
        assert engine.run_once() == 1
    row = Published.objects.get()
    assert (row.status, row.retry) == (StatusChoice.FAILED, 3)
    assert row.last_error == "gave up after 3 attempts: no RECEIPT within 0.05s"
    assert engine.last_batch is not None and engine.last_batch.dead_lettered == 1
    assert engine.run_once() == 0


def test_expired_rows_are_dead_lettered_not_sent(memory: MemoryTransport) -> None:
    make_rows("/queue/q", 1, expires_at=past())
    fresh = make_rows("/queue/q", 1)
    engine = memory_relay(memory)
    engine._next_housekeeping = time.monotonic() + 3600  # leave the expiry to the batch itself
    assert engine.run_once() == 2
    assert [m.headers["dop-msg-id"] for m in memory.sent] == [str(fresh[0].id)]
    expired = Published.objects.get(status=StatusChoice.FAILED)
    assert expired.last_error.startswith("expired")


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"destination": "/foo/bar"}, "unsendable: destination '/foo/bar' is not valid"),
        ({"headers": {"x-nested": {"a": 1}}}, "unsendable: header 'x-nested' is a dict"),
        ({"body": "x" * 200}, "unsendable: body is 202 bytes, over the 100-byte limit"),
    ],
)
def test_unsendable_rows_fail_with_the_reason_and_the_rest_of_the_batch_goes(
    memory: MemoryTransport, fields: dict[str, object], reason: str
) -> None:
    make_rows("/queue/ok", 2)
    poison = Published(**{"destination": "/queue/ok", "body": {}, **fields})
    poison.save()
    if "headers" in fields:  # save() keeps nested values so the relay can refuse them with a reason
        assert Published.objects.get(id=poison.id).headers["x-nested"] == {"a": 1}
    make_rows("/queue/ok", 2)
    engine = make_relay(make_settings(), memory, max_body_bytes=100)
    assert engine.run_once() == 5
    poison.refresh_from_db()
    assert poison.status == StatusChoice.FAILED
    assert poison.last_error.startswith(reason)
    assert statuses()[StatusChoice.SUCCEEDED] == 4


def test_a_broker_error_mid_batch_retries_only_unconfirmed_rows_and_reconnects(
    broker: MemoryBroker, memory: MemoryTransport
) -> None:
    before = make_rows("/queue/ok", 2)
    bad = make_rows("/queue/bad", 1)
    after = make_rows("/queue/ok", 3)
    broker.reject_destinations["/queue/bad"] = "precondition_failed"
    engine = memory_relay(memory, DEFAULT_MAXIMUM_RETRY_ATTEMPTS=3)
    engine.run_once()
    rows = {r.id: r for r in Published.objects.all()}
    assert all(rows[r.id].status == StatusChoice.SUCCEEDED for r in before)
    assert (rows[bad[0].id].retry, rows[bad[0].id].last_error) == (1, "broker error: precondition_failed")
    assert all(
        (rows[r.id].status, rows[r.id].retry) == (StatusChoice.SCHEDULE, 0) for r in after
    )  # never sent
    assert engine.last_batch is not None and engine.last_batch.released == 3
    while engine.run_once():
        pass
    assert memory.connects >= 3  # reconnected after each failure
    final = statuses()
    assert final == {StatusChoice.SUCCEEDED: 5, StatusChoice.FAILED: 1, StatusChoice.SCHEDULE: 0}
    assert Published.objects.get(status=StatusChoice.FAILED).id == bad[0].id


def test_a_row_the_broker_refuses_as_too_large_is_dead_lettered_once_it_was_sent_alone(
    broker: MemoryBroker, memory: MemoryTransport
) -> None:
    refusal = (
        "precondition_failed: PRECONDITION_FAILED - message size 70000 is larger than configured max size 1"
    )
    broker.reject_destinations["/queue/big"] = refusal
    make_rows("/queue/ok", 2)
    big = make_rows("/queue/big", 1)[0]
    after = make_rows("/queue/ok", 2)
    engine = memory_relay(memory, DEFAULT_MAXIMUM_RETRY_ATTEMPTS=50)
    engine.run_once()  # pipelined: the broker closes the connection at the big row
    big.refresh_from_db()
    assert (big.status, big.retry) == (StatusChoice.SCHEDULE, 1)
    engine.run_once()  # sent alone now: refused again, for good
    big.refresh_from_db()
    assert (big.status, big.retry) == (StatusChoice.FAILED, 2)
    assert big.last_error == f"unsendable: the broker refused it (broker error: {refusal})"
    assert engine.last_batch is not None and engine.last_batch.dead_lettered == 1
    while engine.run_once():
        pass
    assert statuses() == {StatusChoice.SUCCEEDED: 4, StatusChoice.FAILED: 1, StatusChoice.SCHEDULE: 0}
    assert {r.id for r in after} <= set(
        Published.objects.filter(status=StatusChoice.SUCCEEDED).values_list("id", flat=True)
    )


def test_rows_that_failed_before_are_sent_one_at_a_time_first(
    broker: MemoryBroker, memory: MemoryTransport
) -> None:
    again = make_rows("/queue/q", 2, retry=1)
    fresh = make_rows("/queue/q", 2)
    engine = memory_relay(memory)
    launched: list[int] = []
    original = engine.producer.launch

    def spy(messages):  # type: ignore[no-untyped-def]
        launched.append(len(messages))
        return original(messages)

    engine.producer.launch = spy  # type: ignore[method-assign]
    engine.run_once()
    assert launched == [1, 1, 2]  # each retried row alone (its receipt awaited), then the fresh ones together
    order = [m.headers["dop-msg-id"] for m in memory.sent]
    assert order == [str(r.id) for r in again + fresh]


def test_a_full_batch_is_confirmed_while_the_next_one_is_claimed(
    broker: MemoryBroker, memory: MemoryTransport
) -> None:
    make_rows("/queue/q", 5)
    engine = memory_relay(memory, DEFAULT_PUBLISHED_CHUNK_SIZE=3)
    assert engine.run_once() == 3
    assert statuses()[StatusChoice.SUCCEEDED] == 0  # full: in flight, its receipts are collected later
    assert engine.run_once() == 2
    assert statuses()[StatusChoice.SUCCEEDED] == 5  # both landed: the second was not full
    assert engine.run_once() == 0


def test_while_draining_two_full_batches_stay_in_flight_and_the_oldest_lands_first(
    broker: MemoryBroker, memory: MemoryTransport
) -> None:
    make_rows("/queue/q", 10)
    engine = memory_relay(memory, DEFAULT_PUBLISHED_CHUNK_SIZE=3)
    assert relay.IN_FLIGHT_BATCHES == 2
    assert [engine.run_once(), engine.run_once()] == [3, 3]
    assert len(memory.sent) == 6  # both sent at once ...
    assert statuses()[StatusChoice.SUCCEEDED] == 0  # ... and neither landed yet
    assert engine.run_once() == 3
    assert statuses()[StatusChoice.SUCCEEDED] == 3  # a third in flight: the oldest lands
    assert engine.run_once() == 1
    assert statuses()[StatusChoice.SUCCEEDED] == 10  # not full: everything lands before going idle


def test_stop_lands_every_batch_in_flight(memory: MemoryTransport) -> None:
    make_rows("/queue/q", 9)
    engine = memory_relay(memory, DEFAULT_PUBLISHED_CHUNK_SIZE=3)
    results: list[batches.BatchResult] = []
    engine.run_once()
    engine.run_once()
    engine.stop()
    engine.run(on_batch=results.append)  # stopped before its first pass: only lands what is in flight
    assert [r.published for r in results] == [3, 3]
    assert statuses() == {StatusChoice.SUCCEEDED: 6, StatusChoice.FAILED: 0, StatusChoice.SCHEDULE: 3}


def test_once_claims_one_batch_and_lands_it(memory: MemoryTransport) -> None:
    make_rows("/queue/q", 9)
    engine = memory_relay(memory, DEFAULT_PUBLISHED_CHUNK_SIZE=3)
    results: list[batches.BatchResult] = []
    engine.run(once=True, on_batch=results.append)
    assert [r.published for r in results] == [3]
    assert statuses()[StatusChoice.SUCCEEDED] == 3 and len(memory.sent) == 3


def test_rows_of_a_destination_go_out_in_creation_order(memory: MemoryTransport) -> None:
    rows = []
    for i in range(30):
        rows += make_rows("/queue/a" if i % 2 else "/queue/b", 1)
    engine = memory_relay(memory, DEFAULT_PUBLISHED_CHUNK_SIZE=7)
    while engine.run_once():
        pass
    sent_a = [m.headers["dop-msg-id"] for m in memory.sent if m.destination == "/queue/a"]
    assert sent_a == [str(r.id) for r in rows if r.destination == "/queue/a"]


def test_broker_down_claims_nothing_and_run_once_raises(
    broker: MemoryBroker, memory: MemoryTransport
) -> None:
    broker.down = True
    make_rows("/queue/q", 1)
    engine = memory_relay(memory)
    with pytest.raises(exceptions.ConnectionFailed):
        engine.run_once()
    assert Published.objects.get().locked_by == ""


@pytest.mark.django_db(transaction=True)
def test_run_reconnects_with_backoff_and_a_stop_during_retries_exits_promptly(
    broker: MemoryBroker, memory: MemoryTransport
) -> None:
    broker.down = True
    make_rows("/queue/q", 3)
    engine = memory_relay(memory, DEFAULT_MAXIMUM_BACKOFF=0.05)
    thread = RelayThread(engine)
    thread.start()
    try:
        assert wait_until(lambda: engine._connect_failures >= 3, timeout=5)
        broker.down = False
        assert wait_until(lambda: bool(thread.batches), timeout=5)
        assert thread.batches[0].published == 3
    finally:
        thread.stop()


@pytest.mark.django_db(transaction=True)
def test_stop_during_a_long_reconnect_wait_returns_at_once(
    broker: MemoryBroker, memory: MemoryTransport
) -> None:
    broker.down = True
    engine = memory_relay(memory, DEFAULT_MAXIMUM_BACKOFF=3600)
    engine._connect_failures = 20  # the next wait would be about an hour
    thread = RelayThread(engine)
    thread.start()
    assert wait_until(lambda: engine._connect_failures >= 21, timeout=5)
    started = time.monotonic()
    thread.stop(timeout=5)
    assert time.monotonic() - started < 2


@pytest.mark.django_db(transaction=True)
def test_run_until_empty_drains_and_reports_each_batch(memory: MemoryTransport) -> None:
    make_rows("/queue/q", 25)
    engine = memory_relay(memory, DEFAULT_PUBLISHED_CHUNK_SIZE=10)
    landed: list[batches.BatchResult] = []
    engine.run(until_empty=True, on_batch=landed.append)
    assert [b.published for b in landed] == [10, 10, 5]
    assert statuses()[StatusChoice.SUCCEEDED] == 25
    assert not memory.is_connected()  # closed on the way out


@pytest.mark.django_db(transaction=True)
def test_an_idle_relay_waits_for_the_poll_interval_or_a_wake_up(memory: MemoryTransport) -> None:
    engine = memory_relay(memory, DEFAULT_PRODUCER_WAITING_TIME=30)
    thread = RelayThread(engine)
    thread.start()
    try:
        assert wait_until(memory.is_connected, timeout=5)
        make_rows("/queue/q", 1)
        started = time.monotonic()
        engine.wake()
        assert wait_until(lambda: bool(thread.batches), timeout=5)
        assert time.monotonic() - started < 5  # far below the 30 s poll interval
    finally:
        thread.stop()


def test_retention_deletes_old_published_rows_once_per_ttl(memory: MemoryTransport) -> None:
    cache = caches["default"]
    engine = make_relay(make_settings(OUTBOX_PATTERN_PUBLISHER_CACHE_KEY="relay-test-key"), memory)
    cache.delete("relay-test-key")
    old = timezone.now() - datetime.timedelta(days=31)
    for status in StatusChoice:
        make_rows("/queue/q", 2, status=status)
    Published.objects.update(added=old)
    engine.housekeep()
    assert statuses() == {StatusChoice.SCHEDULE: 2, StatusChoice.SUCCEEDED: 0, StatusChoice.FAILED: 2}
    assert cache.get("relay-test-key") is True
    make_rows("/queue/q", 1, status=StatusChoice.SUCCEEDED)
    Published.objects.update(added=old)
    engine.housekeep()
    assert statuses()[StatusChoice.SUCCEEDED] == 1  # the cache key holds retention off until the TTL ends
    cache.delete("relay-test-key")


def test_housekeeping_dead_letters_expired_rows_even_while_the_broker_is_down(
    broker: MemoryBroker, memory: MemoryTransport
) -> None:
    broker.down = True
    make_rows("/queue/q", 2, expires_at=past(), available_at=timezone.now() + datetime.timedelta(hours=1))
    engine = memory_relay(memory)
    with pytest.raises(exceptions.ConnectionFailed):
        engine.run_once()
    assert {r.last_error[:7] for r in Published.objects.all()} == {"expired"}
    assert statuses()[StatusChoice.FAILED] == 2


def test_build_relay_applies_overrides_and_validates_them() -> None:
    engine = assembly.build_relay(
        assembly.relay_settings(make_settings(), chunk_size=7, poll_interval=0.25, notify=False)
    )
    assert engine.settings.DEFAULT_PUBLISHED_CHUNK_SIZE == 7
    assert engine.settings.DEFAULT_PRODUCER_WAITING_TIME == 0.25
    assert engine.notifier is None
    with pytest.raises(exceptions.ConfigurationError, match="DEFAULT_PUBLISHED_CHUNK_SIZE"):
        assembly.build_relay(assembly.relay_settings(make_settings(), chunk_size=0))


def test_relay_ids_are_unique_and_fit_the_lease_column() -> None:
    ids = {relay.default_relay_id() for _ in range(5)}
    assert len(ids) == 5
    assert all(len(f"{i}#{10**15}") <= Published._meta.get_field("locked_by").max_length for i in ids)


@pytest.mark.django_db(transaction=True)
def test_a_database_failure_is_waited_out_and_the_relay_goes_on(memory: MemoryTransport) -> None:
    make_rows("/queue/q", 2)
    failures = [exceptions.StorageError("database is down")]

    class FlakyStore(store.OutboxStore):
        def claim(self, *args: Any, **kwargs: Any) -> list[outbox.OutboxRow]:
            if failures:
                raise failures.pop()
            return super().claim(*args, **kwargs)

    engine = assembly.build_relay(
        make_settings(), outbox_store=FlakyStore(), transport=memory, rng=random.Random(0)
    )  # first retry after 0.5-1 s
    landed: list[batches.BatchResult] = []
    engine.run(until_empty=True, on_batch=landed.append)
    assert engine._storage_failures == 0 and not failures
    assert [b.published for b in landed] == [2]


@pytest.mark.django_db(transaction=True)
def test_a_dead_wake_up_listener_stops_the_relay_with_an_error(memory: MemoryTransport) -> None:
    class DyingNotifier:
        def start(self, wakeup: threading.Event, on_failure: Callable[[BaseException], None]) -> None:
            on_failure(RuntimeError("listener crashed"))

        def stop(self) -> None:
            pass

    engine = make_relay(make_settings(), memory, notifier=DyingNotifier())
    with pytest.raises(exceptions.OutboxError, match="listener crashed"):
        engine.run()
