"""The relay loop on the in-memory outbox and broker: no database at all (no ``django_db`` mark)."""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest
from django.core.cache.backends.locmem import LocMemCache

from django_outbox_pattern import conf, testing
from django_outbox_pattern.choices import StatusChoice
from django_outbox_pattern.relaying import assembly, batches, relay
from tests.support.relay_helpers import make_settings

T0 = datetime.datetime(2026, 1, 1, 12, 0, tzinfo=datetime.timezone.utc)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += datetime.timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def broker() -> testing.MemoryBroker:
    return testing.MemoryBroker()


@pytest.fixture
def outbox(clock: Clock) -> testing.MemoryOutbox:
    return testing.MemoryOutbox(clock=clock)


def build(
    outbox: testing.MemoryOutbox,
    broker: testing.MemoryBroker,
    clock: Clock,
    cache: LocMemCache | None = None,
    **overrides: Any,
) -> relay.Relay:
    settings: conf.OutboxSettings = make_settings(DEFAULT_RECEIPT_TIMEOUT=0.05, **overrides)
    return assembly.build_relay(
        settings,
        outbox_store=outbox,
        transport=testing.MemoryTransport(broker),
        clock=clock,
        cache=cache or LocMemCache("relay-memory", {}),
    )


def test_due_rows_are_published_in_order_and_marked_on_their_receipt(
    outbox: testing.MemoryOutbox, broker: testing.MemoryBroker, clock: Clock
) -> None:
    rows = [outbox.add("/queue/orders", {"n": n}, headers={"x-tenant": "acme"}) for n in range(3)]
    engine = build(outbox, broker, clock)
    assert engine.run_once() == 3
    assert [json.loads(m.body) for m in broker.sent] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert [m.headers["dop-msg-id"] for m in broker.sent] == [str(r.id) for r in rows]
    assert broker.sent[0].headers["x-tenant"] == "acme"
    assert outbox.statuses() == {"SUCCEEDED": 3}
    assert all(r.published_at == T0 and r.locked_by == "" for r in rows)
    assert engine.last_batch == batches.BatchResult(
        published=3, failed=0, retried=0, dead_lettered=0, elapsed=engine.last_batch.elapsed
    )
    assert engine.run_once() == 0  # nothing left to claim
    engine.close()


def test_an_unconfirmed_row_is_retried_after_its_backoff(
    outbox: testing.MemoryOutbox, broker: testing.MemoryBroker, clock: Clock
) -> None:
    row = outbox.add("/queue/orders", {"n": 1})
    engine = build(outbox, broker, clock, DEFAULT_RETRY_BASE_DELAY=10, DEFAULT_WAIT_RETRY=60)
    broker.withhold_receipts = True
    assert engine.run_once() == 1
    assert (row.status, row.retry, row.locked_by) == (StatusChoice.SCHEDULE, 1, "")
    assert row.last_error == "no RECEIPT within 0.05s"
    assert T0 + datetime.timedelta(seconds=5) <= row.available_at <= T0 + datetime.timedelta(seconds=10)
    assert engine.run_once() == 0  # not due before its backoff ends
    broker.withhold_receipts = False
    clock.advance(seconds=11)
    assert engine.run_once() == 1
    assert (row.status, row.retry, row.last_error) == (StatusChoice.SUCCEEDED, 1, "")
    assert len(broker.sent) == 2  # the same message, sent twice (at-least-once)
    engine.close()


def test_a_row_is_dead_lettered_after_the_maximum_attempts(
    outbox: testing.MemoryOutbox, broker: testing.MemoryBroker, clock: Clock
) -> None:
    row = outbox.add("/queue/orders", {"n": 1})
    engine = build(outbox, broker, clock, DEFAULT_MAXIMUM_RETRY_ATTEMPTS=3)
    broker.withhold_receipts = True
    for attempt in range(1, 4):
        assert engine.run_once() == 1
        assert row.retry == attempt
        clock.advance(hours=1)
    assert row.status == StatusChoice.FAILED
    assert row.last_error == "gave up after 3 attempts: no RECEIPT within 0.05s"
    assert engine.run_once() == 0  # FAILED rows are never claimed again
    assert len(broker.sent) == 3
    engine.close()


def test_expired_rows_are_dead_lettered_not_sent(
    outbox: testing.MemoryOutbox, broker: testing.MemoryBroker, clock: Clock
) -> None:
    expired = outbox.add("/queue/orders", {"n": 1}, expires_at=T0 - datetime.timedelta(seconds=1))
    fresh = outbox.add("/queue/orders", {"n": 2})
    engine = build(outbox, broker, clock)
    engine.run(until_empty=True)
    assert expired.status == StatusChoice.FAILED and expired.last_error.startswith("expired")
    assert fresh.status == StatusChoice.SUCCEEDED
    assert [json.loads(m.body) for m in broker.sent] == [{"n": 2}]


def test_until_empty_drains_every_batch_and_closes_the_connection(
    outbox: testing.MemoryOutbox, broker: testing.MemoryBroker, clock: Clock
) -> None:
    for n in range(25):
        outbox.add("/queue/orders", {"n": n})
    engine = build(outbox, broker, clock, DEFAULT_PUBLISHED_CHUNK_SIZE=10)
    landed: list[batches.BatchResult] = []
    engine.run(until_empty=True, on_batch=landed.append)
    assert [b.published for b in landed] == [10, 10, 5]
    assert outbox.statuses() == {"SUCCEEDED": 25}
    assert [json.loads(m.body)["n"] for m in broker.sent] == list(range(25))
    assert not engine.producer.is_connected()


def test_once_relays_one_batch_and_returns(
    outbox: testing.MemoryOutbox, broker: testing.MemoryBroker, clock: Clock
) -> None:
    for n in range(25):
        outbox.add("/queue/orders", {"n": n})
    engine = build(outbox, broker, clock, DEFAULT_PUBLISHED_CHUNK_SIZE=10)
    landed: list[batches.BatchResult] = []
    engine.run(once=True, on_batch=landed.append)
    assert [b.published for b in landed] == [10]
    assert outbox.statuses() == {"SUCCEEDED": 10, "SCHEDULE": 15}


def test_a_broker_that_is_down_leaves_the_rows_waiting(
    outbox: testing.MemoryOutbox, broker: testing.MemoryBroker, clock: Clock
) -> None:
    from django_outbox_pattern import exceptions

    row = outbox.add("/queue/orders", {"n": 1})
    broker.down = True
    engine = build(outbox, broker, clock)
    with pytest.raises(exceptions.ConnectionFailed):
        engine.run_once()
    assert (row.status, row.retry, row.locked_by) == (StatusChoice.SCHEDULE, 0, "")
    broker.down = False
    assert engine.run_once() == 1
    assert row.status == StatusChoice.SUCCEEDED
    engine.close()


def test_a_lease_keeps_a_claimed_row_from_other_relays_until_it_ends(
    outbox: testing.MemoryOutbox, clock: Clock
) -> None:
    row = outbox.add("/queue/orders", {"n": 1})
    lease_end = T0 + datetime.timedelta(seconds=30)
    [claimed] = outbox.claim("a#1", limit=10, now=T0, lease_until=lease_end)
    assert claimed.id == row.id and claimed.retry == 0 and not claimed.expired
    assert outbox.claim("b#1", limit=10, now=T0 + datetime.timedelta(seconds=29), lease_until=lease_end) == []
    assert outbox.reschedule([row.id], token="b#1", error="x", available_at=T0) == 0  # not b's lease
    [again] = outbox.claim("b#2", limit=10, now=lease_end, lease_until=lease_end + datetime.timedelta(30))
    assert again.id == row.id and row.locked_by == "b#2"
    assert outbox.mark_published([row.id], now=lease_end) == 1  # a receipt is proof, whoever holds the lease


def test_retention_deletes_only_old_published_rows(
    outbox: testing.MemoryOutbox, broker: testing.MemoryBroker, clock: Clock
) -> None:
    old = outbox.add("/queue/orders", {"n": 1})
    failed = outbox.add("/queue/orders", {"n": 2}, expires_at=T0)
    cache = LocMemCache("relay-retention", {})
    engine = build(outbox, broker, clock, cache, DAYS_TO_KEEP_DATA=1)
    engine.run(until_empty=True)  # retention ran once: nothing old yet
    clock.advance(days=2)
    engine.housekeep()
    assert old.id in outbox.rows  # at most once per REMOVE_DATA_CACHE_TTL
    cache.clear()
    engine.housekeep()
    assert old.id not in outbox.rows
    assert outbox.rows[failed.id].status == StatusChoice.FAILED


def test_a_key_goes_out_one_row_at_a_time_in_order_and_a_failed_row_holds_the_rest(
    outbox: testing.MemoryOutbox, broker: testing.MemoryBroker
) -> None:
    from django_outbox_pattern import sequencing

    rows = {
        key: [outbox.add("/queue/o", {"key": key, "n": n}, ordering_key=key) for n in range(4)]
        for key in "ab"
    }
    first = outbox.claim("t#1", limit=100, now=T0, lease_until=T0 + datetime.timedelta(minutes=2))
    assert [r.id for r in first] == [rows["a"][0].id, rows["b"][0].id]
    outbox.dead_letter([rows["a"][0].id], token="t#1", reason="poison")
    outbox.mark_published([rows["b"][0].id], now=T0)
    second = outbox.claim("t#2", limit=100, now=T0, lease_until=T0 + datetime.timedelta(minutes=2))
    assert [r.id for r in second] == [rows["b"][1].id]
    assert rows["a"][1].last_error == sequencing.held_reason(rows["a"][0].id, "a")
