"""3.2.1 (subprocesses in .venv-321) and this project against the same PostgreSQL database and RabbitMQ.

Each test is one step of a real migration: 3.2.1 declared the queues, wrote rows, relayed and consumed
before the switch, keeps doing so while both run, and again after a rollback.
"""

from __future__ import annotations

from typing import Any

import pytest

from django_outbox_pattern import payloads
from django_outbox_pattern.choices import StatusChoice
from django_outbox_pattern.factories import factory_producer
from django_outbox_pattern.models import Published, Received
from tests.compat.conftest import Upstream
from tests.support.broker_helpers import QueueDrain
from tests.support.consumers import make_consumer
from tests.support.relay_helpers import make_relay, make_settings
from tests.support.runner import running, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.broker]


def relay_all() -> None:
    make_relay(make_settings()).run(until_empty=True)


def write_rows(destination: str, count: int) -> list[Published]:
    return [Published.objects.create(destination=destination, body={"n": n}) for n in range(count)]


class Calls:
    def __init__(self) -> None:
        self.ids: list[str] = []

    def __call__(self, payload: payloads.Payload) -> None:
        self.ids.append(payload.msg_id)
        payload.save()


def test_ours_consumes_the_queues_3_2_1_declared(upstream: Upstream, unique_name: str) -> None:
    topic = f"/topic/{unique_name}"
    assert upstream.run("declare", {"destination": topic, "queue": unique_name}) == {
        "connected": True,
        "errors": [],
    }
    calls = Calls()
    consumer = make_consumer(calls, topic, unique_name, DEFAULT_RECEIPT_TIMEOUT=3)
    with running(consumer, ready_timeout=8):
        (row,) = write_rows(topic, 1)
        relay_all()
        assert wait_until(lambda: consumer.stats.processed == 1)
    assert calls.ids == [str(row.id)]


def test_rows_3_2_1_writes_after_our_migrations_are_relayed_by_ours(
    upstream: Upstream, unique_name: str
) -> None:
    destination = f"/queue/{unique_name}"
    with QueueDrain(make_settings(), destination) as drain:
        ids = upstream.run("write", {"destination": destination, "bodies": [{"n": 1}, {"n": 2}]})["ids"]
        relay_all()
        messages = drain.sync()
    assert sorted(m.headers["dop-msg-id"] for m in messages) == sorted(ids)
    assert set(Published.objects.values_list("status", flat=True)) == {StatusChoice.SUCCEEDED}


def test_rows_ours_writes_are_relayed_by_3_2_1_and_consumed_once_by_ours(
    upstream: Upstream, unique_name: str
) -> None:
    topic = f"/topic/{unique_name}"
    calls = Calls()
    consumer = make_consumer(calls, topic, unique_name)
    with running(consumer):
        rows = write_rows(topic, 2)
        assert upstream.run("relay") == {"published": 2}
        assert wait_until(lambda: consumer.stats.processed == 2)
        with factory_producer() as producer:  # the same rows again, now sent by ours: duplicates
            for row in rows:
                producer.send(Published.objects.get(pk=row.pk))
        assert wait_until(lambda: consumer.stats.duplicates == 2)
    assert sorted(calls.ids) == sorted(str(r.id) for r in rows)
    assert Received.objects.filter(msg_id__in=calls.ids).count() == 2
    assert set(Published.objects.values_list("status", flat=True)) == {StatusChoice.SUCCEEDED}


def test_messages_are_processed_once_across_both_versions(upstream: Upstream, unique_name: str) -> None:
    """One topic, a queue for each version, one inbox table: whichever version saw a message first wins."""
    topic, theirs, ours = f"/topic/{unique_name}", f"{unique_name}-321", f"{unique_name}-ours"
    calls = Calls()
    consumer = make_consumer(calls, topic, ours)
    with running(consumer):  # declares our queue; messages wait there while it is stopped
        pass
    # 3.2.1 consumes first; ours then finds both in the inbox
    process = upstream.start("consume", {"destination": topic, "queue": theirs, "expect": 2, "timeout": 20})
    try:
        assert Upstream.line(process) == {"started": True, "errors": []}
        first = write_rows(topic, 2)
        relay_all()
        result = Upstream.line(process)
    finally:
        process.kill()
        _, stderr = process.communicate()
    assert sorted(result["called"]) == sorted(str(r.id) for r in first), stderr[-3000:]
    consumer = make_consumer(calls, topic, ours)
    with running(consumer):
        assert wait_until(lambda: consumer.stats.duplicates == 2)
        # ours consumes first; 3.2.1 then finds both in the inbox
        second = write_rows(topic, 2)
        relay_all()
        assert wait_until(lambda: consumer.stats.processed == 2)
    assert sorted(calls.ids) == sorted(str(r.id) for r in second)
    result = _consume(upstream, topic, theirs, expect=2)
    assert result == {"handled": 2, "called": []}


def test_rollback_to_3_2_1_after_ours_ran(upstream: Upstream, unique_name: str) -> None:
    topic = f"/topic/{unique_name}"
    calls = Calls()
    consumer = make_consumer(calls, topic, unique_name)
    with running(consumer):  # ours ran: declared the queues, relayed and consumed
        write_rows(topic, 1)
        relay_all()
        assert wait_until(lambda: consumer.stats.processed == 1)
    # rolled back: 3.2.1 writes, relays and consumes on the database and queues ours left
    ids = upstream.run("write", {"destination": topic, "bodies": [{"after": "rollback"}]})["ids"]
    process = upstream.start(
        "consume", {"destination": topic, "queue": unique_name, "expect": 1, "timeout": 10}
    )
    try:
        assert Upstream.line(process) == {"started": True, "errors": []}
        assert upstream.run("relay") == {"published": 1}
        result = Upstream.line(process)
    finally:
        process.kill()
        process.wait()
    assert result == {"handled": 1, "called": ids}


def _consume(upstream: Upstream, topic: str, queue: str, *, expect: int) -> Any:
    process = upstream.start(
        "consume", {"destination": topic, "queue": queue, "expect": expect, "timeout": 15}
    )
    try:
        assert Upstream.line(process) == {"started": True, "errors": []}
        return Upstream.line(process)
    finally:
        process.kill()
        process.wait()
