"""Batched consuming's database work, counted statement by statement (the in-memory broker, the configured
database): what a batch costs, and that the lean pass (no savepoint of the worker's per message, the inbox
rows in one INSERT, empty savepoints not written) keeps the semantics of the careful one."""

from __future__ import annotations

import collections
import dataclasses
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import transaction
from django.db.backends import utils as db_utils
from django.db.backends.base import base as db_base

from django_outbox_pattern import conf, payloads
from django_outbox_pattern.consuming import consumer, inbox
from django_outbox_pattern.models import Received
from tests.support.memory import TransportFactory
from tests.support.runner import running, wait_until
from tests.testapp.models import Effect

pytestmark = pytest.mark.django_db(transaction=True)

DEST = "/queue/orders"
DLQ = "/queue/DLQ.orders"
COUNT = 20


@dataclasses.dataclass
class Statements:
    """What the consumer's worker thread sent to the database: statement kinds and COMMITs."""

    kinds: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    commits: int = 0

    def per_batch(self) -> dict[str, float]:
        return {kind: n / self.commits for kind, n in self.kinds.items()}


@pytest.fixture
def statements(monkeypatch: pytest.MonkeyPatch) -> Iterator[Statements]:
    """Counts the statements really executed (below every execute wrapper) on the consumer's threads."""
    seen = Statements()
    lock = threading.Lock()
    execute, commit = db_utils.CursorWrapper._execute, db_base.BaseDatabaseWrapper.commit

    def counting_execute(self: Any, sql: str, params: Any, *rest: Any) -> Any:
        if threading.current_thread().name.startswith("outbox-consumer"):
            with lock:
                seen.kinds[sql.split()[0].upper()] += 1
        return execute(self, sql, params, *rest)

    def counting_commit(self: Any) -> Any:
        if threading.current_thread().name.startswith("outbox-consumer"):
            with lock:
                seen.commits += 1
        return commit(self)

    monkeypatch.setattr(db_utils.CursorWrapper, "_execute", counting_execute)
    monkeypatch.setattr(db_base.BaseDatabaseWrapper, "commit", counting_commit)
    yield seen


def build(
    factory: TransportFactory, callback: Callable[[payloads.Payload], Any], batch: int
) -> consumer.Consumer:
    settings = dataclasses.replace(
        conf.OutboxSettings(),
        DEFAULT_CONSUMER_BATCH_SIZE=batch,
        DEFAULT_STOMP_QUEUE_HEADERS={"durable": "true", "auto-delete": "false", "prefetch-count": "100"},
        DEFAULT_RECEIPT_TIMEOUT=2,
        DEFAULT_CONSUMER_SHUTDOWN_TIMEOUT=5,
    )
    return consumer.Consumer(
        callback, DEST, settings=settings, transport_factory=factory, store=inbox.DatabaseInbox()
    )


def publish(
    factory: TransportFactory, numbers: range | list[int], msg_id: Callable[[int], str] = str
) -> None:
    for n in numbers:
        factory.broker.publish(DEST, f'{{"n": {n}}}', {"dop-msg-id": f"m-{n}"})


def settled(factory: TransportFactory, c: consumer.Consumer, processed: int, nacked: int = 0) -> bool:
    broker = factory.broker
    with broker.lock:
        unacked = sum(len(s.unacked) for s in broker.subscriptions if s.destination == DEST)
    stats = c.stats
    return stats.processed + stats.duplicates == processed and stats.nacked == nacked and unacked == 0


def saving_in_atomic(payload: payloads.Payload) -> None:
    with transaction.atomic():
        payload.save()


def test_a_batch_of_saves_costs_one_lookup_one_insert_and_one_commit(
    statements: Statements,
) -> None:
    factory = TransportFactory()
    publish(factory, range(COUNT))  # all waiting before the consumer starts
    c = build(factory, saving_in_atomic, batch=COUNT)
    with running(c):
        assert wait_until(lambda: settled(factory, c, COUNT), timeout=20), c.stats
    assert Received.objects.count() == COUNT
    assert 1 <= statements.commits < COUNT  # batches formed of whatever was waiting
    # per batch: the duplicate lookup (SELECT) and the inbox rows (INSERT); the callback's own savepoint,
    # with nothing in it, is not written, and the worker adds none
    assert statements.kinds["INSERT"] == statements.commits
    # (MySQL's new connection adds a SET and a SELECT of its own, SQLite writes its BEGIN)
    assert statements.commits <= statements.kinds["SELECT"] <= statements.commits + 1
    assert statements.kinds["BEGIN"] <= statements.commits
    assert set(statements.kinds) <= {"SELECT", "INSERT", "BEGIN", "SET"}, statements.kinds


def test_a_callback_writing_in_its_atomic_costs_its_own_savepoint_only(statements: Statements) -> None:
    def callback(payload: payloads.Payload) -> None:
        with transaction.atomic():
            Effect.objects.create(msg_id=payload.msg_id)
            payload.save()

    factory = TransportFactory()
    publish(factory, range(COUNT))
    c = build(factory, callback, batch=COUNT)
    with running(c):
        assert wait_until(lambda: settled(factory, c, COUNT), timeout=20), c.stats
    assert Effect.objects.count() == Received.objects.count() == COUNT
    assert statements.kinds["SAVEPOINT"] == COUNT  # the callback's, none of the worker's
    assert statements.kinds["RELEASE"] == COUNT
    assert statements.kinds["INSERT"] == COUNT + statements.commits  # the effects, one inbox INSERT a batch


def test_default_mode_keeps_one_transaction_per_message(statements: Statements) -> None:
    factory = TransportFactory()
    publish(factory, range(5))
    c = build(factory, saving_in_atomic, batch=1)
    with running(c):
        assert wait_until(lambda: settled(factory, c, 5), timeout=20), c.stats
    assert Received.objects.count() == 5
    assert statements.commits == 5
    assert statements.kinds["INSERT"] == 5


def test_a_failure_after_a_write_outside_its_atomic_reruns_the_batch_with_savepoints(
    statements: Statements,
) -> None:
    calls: collections.Counter[str] = collections.Counter()

    def callback(payload: payloads.Payload) -> None:
        calls[payload.msg_id] += 1
        Effect.objects.create(msg_id=payload.msg_id)  # outside any atomic() of its own
        if payload.body["n"] == 3:
            raise ValueError("refused")
        payload.save()

    factory = TransportFactory()
    publish(factory, range(8))
    c = build(factory, callback, batch=8)
    with running(c):
        assert wait_until(lambda: settled(factory, c, 7, nacked=1), timeout=20), c.stats
    effects = collections.Counter(Effect.objects.values_list("msg_id", flat=True))
    assert effects == collections.Counter({f"m-{n}": 1 for n in range(8) if n != 3})  # m-3's write undone
    assert set(Received.objects.values_list("msg_id", flat=True)) == {f"m-{n}" for n in range(8) if n != 3}
    assert calls["m-3"] == 1  # dead-lettered once, not run again
    assert [m.headers["dop-msg-id"] for m in factory.broker.messages(DLQ)] == ["m-3"]
    if statements.kinds["SAVEPOINT"]:  # m-3 shared a batch with others: they ran again, with savepoints
        assert sum(calls.values()) > 8


def test_a_failure_inside_its_own_atomic_needs_no_rerun() -> None:
    calls: collections.Counter[str] = collections.Counter()

    def callback(payload: payloads.Payload) -> None:
        calls[payload.msg_id] += 1
        with transaction.atomic():
            Effect.objects.create(msg_id=payload.msg_id)
            if payload.body["n"] == 3:
                raise ValueError("refused")
            payload.save()

    factory = TransportFactory()
    publish(factory, range(8))
    c = build(factory, callback, batch=8)
    with running(c):
        assert wait_until(lambda: settled(factory, c, 7, nacked=1), timeout=20), c.stats
    assert set(Effect.objects.values_list("msg_id", flat=True)) == {f"m-{n}" for n in range(8) if n != 3}
    assert set(calls.values()) == {1}  # nobody ran twice
    assert [m.headers["dop-msg-id"] for m in factory.broker.messages(DLQ)] == ["m-3"]


def test_a_save_rolled_back_by_the_callback_is_not_acked_but_dead_lettered() -> None:
    def callback(payload: payloads.Payload) -> None:
        try:
            with transaction.atomic():
                payload.save()
                if payload.body["n"] == 2:
                    raise ValueError("changed my mind")
        except ValueError:
            pass

    factory = TransportFactory()
    publish(factory, range(5))
    c = build(factory, callback, batch=5)
    with running(c):
        assert wait_until(lambda: settled(factory, c, 4, nacked=1), timeout=20), c.stats
    assert set(Received.objects.values_list("msg_id", flat=True)) == {"m-0", "m-1", "m-3", "m-4"}
    assert [m.headers["dop-msg-id"] for m in factory.broker.messages(DLQ)] == ["m-2"]


def test_two_copies_in_one_batch_apply_their_effect_once() -> None:
    def callback(payload: payloads.Payload) -> None:
        with transaction.atomic():
            Effect.objects.create(msg_id=payload.msg_id)
            payload.save()

    factory = TransportFactory()
    publish(factory, [0, 1, 1, 2])  # m-1 twice (a relay sent it again)
    c = build(factory, callback, batch=4)
    with running(c):
        assert wait_until(lambda: settled(factory, c, 4), timeout=20), c.stats
    assert c.stats.duplicates == 1
    assert sorted(Effect.objects.values_list("msg_id", flat=True)) == ["m-0", "m-1", "m-2"]
    assert Received.objects.count() == 3
