"""Batched consuming (DEFAULT_CONSUMER_BATCH_SIZE > 1) against the real broker and the configured database:
one transaction per batch, each message in a savepoint, the ACKs only after the commit."""

from __future__ import annotations

import json
import threading
from collections import Counter

import pytest
from django.db import OperationalError, connection, transaction

from django_outbox_pattern import payloads
from django_outbox_pattern.models import Received
from tests.support.consumers import make_consumer
from tests.support.runner import running, wait_until
from tests.support.stomp_tools import assert_queue_empty, publish, read, settings_with
from tests.testapp.models import Effect, Order

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.broker]

BATCHED = {
    "DEFAULT_CONSUMER_BATCH_SIZE": 10,
    "DEFAULT_STOMP_QUEUE_HEADERS": {"durable": "true", "auto-delete": "false", "prefetch-count": "50"},
}


def send(queue: str, count: int) -> None:
    """``count`` messages into the queue the consumer declared (``/amq/queue/``: no redeclaration)."""
    messages = [(json.dumps({"n": n}), {"dop-msg-id": f"m-{n}"}) for n in range(count)]
    publish(settings_with(), f"/amq/queue/{queue}", messages)


def ids(*numbers: int) -> set[str]:
    return {f"m-{n}" for n in numbers}


def test_a_batch_commits_once_acks_after_the_commit_and_a_failing_callback_loses_only_its_writes(
    unique_name: str, broker_available: None
) -> None:
    acked_after_own_atomic: list[bool] = []

    def callback(payload: payloads.Payload) -> None:
        with transaction.atomic():
            Order.objects.create(msg_id=payload.msg_id, payload=payload.body)
            if payload.body["n"] == 7:
                raise ValueError("order 7 is refused")
            if (
                payload.body["n"] == 5
            ):  # an SQL error inside the batch: its savepoint rolls back, not the batch
                with connection.cursor() as cursor:
                    cursor.execute("SELECT * FROM no_such_table_anywhere")
            payload.save()
        acked_after_own_atomic.append(payload.acked)

    destination = f"/queue/{unique_name}"
    c = make_consumer(callback, destination, **BATCHED)
    with running(c):
        send(unique_name, 20)
        # settled: 18 saved, 2 dead-lettered, and no redelivered copy left unsettled (SQLite aborts batches)
        assert wait_until(
            lambda: c.stats.processed == 18 and c.stats.nacked == 2 and c.oldest_unsettled_age() == 0,
            timeout=30,
        ), c.stats
    assert set(Received.objects.values_list("msg_id", flat=True)) == {f"m-{n}" for n in range(20)} - {
        "m-5",
        "m-7",
    }
    assert set(Order.objects.values_list("msg_id", flat=True)) == {f"m-{n}" for n in range(20)} - {
        "m-5",
        "m-7",
    }
    assert acked_after_own_atomic and not any(acked_after_own_atomic)  # the ACK waits for the batch commit
    dead = read(settings_with(), f"DLQ.{unique_name}", 2)
    assert sorted(m.headers["dop-msg-id"] for m in dead) == ["m-5", "m-7"]
    assert_queue_empty(settings_with(), unique_name)  # every other message was acked


def test_a_database_error_rolls_the_whole_batch_back_and_the_broker_redelivers_it(
    unique_name: str, broker_available: None
) -> None:
    failed_once = threading.Event()
    calls: Counter[str] = Counter()

    def callback(payload: payloads.Payload) -> None:
        calls[payload.msg_id] += 1
        with transaction.atomic():
            Effect.objects.create(msg_id=payload.msg_id)
            payload.save()
        if payload.body["n"] == 6 and not failed_once.is_set():
            failed_once.set()
            raise OperationalError("the database went away in the middle of the batch")

    destination = f"/queue/{unique_name}"
    c = make_consumer(callback, destination, **BATCHED)
    with running(c):
        send(unique_name, 12)
        assert wait_until(lambda: Received.objects.count() == 12, timeout=30), c.stats
        assert wait_until(lambda: c.stats.reconnects >= 1, timeout=10)  # the batch's connection was closed
        assert wait_until(lambda: c.oldest_unsettled_age() == 0, timeout=10)  # redelivered copies settled
    assert failed_once.is_set()
    assert sum(calls.values()) > 12  # the rolled-back batch ran again
    effects = Counter(Effect.objects.values_list("msg_id", flat=True))
    assert effects == Counter({f"m-{n}": 1 for n in range(12)})  # each effect exactly once
    assert c.stats.nacked == 0
    assert_queue_empty(settings_with(), unique_name)
    assert read(settings_with(), f"DLQ.{unique_name}", 1, timeout=1) == []
