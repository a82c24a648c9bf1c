"""Queues declared by 3.2.1 (and 2.x) keep working both ways: same properties and x- arguments, so neither
version gets precondition_failed or resource_locked on the queues the other declared."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.db import transaction

from django_outbox_pattern import payloads
from django_outbox_pattern.broker.transport import StompTransport
from django_outbox_pattern.broker.wire import new_receipt_id
from django_outbox_pattern.models import Received
from tests.support.consumers import make_consumer
from tests.support.runner import running, wait_until
from tests.support.stomp_tools import assert_queue_empty, publish, read, settings_with, subscribe_once

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.broker]


def headers_of_321(queue: str, *, dlq: bool, exclusive: bool = False) -> dict[str, Any]:
    """The SUBSCRIBE headers django-outbox-pattern 3.2.1 sends (its ``Consumer._subscribe``), values as it
    passes them to stomp.py: the settings headers, ``exclusive`` as a Python bool (sent as "False"/"True"),
    ``x-queue-name`` and the x- arguments; the DLQ's routing key carries three ``DLQ.`` prefixes."""
    name = f"DLQ.{queue}" if dlq else queue
    return {
        "durable": "true",
        "auto-delete": "false",
        "prefetch-count": "1",
        "exclusive": exclusive,
        "x-queue-name": name,
        "x-dead-letter-routing-key": f"DLQ.DLQ.{name}" if dlq else f"DLQ.{name}",
        "x-dead-letter-exchange": "",
    }


def declare_the_old_way(destination: str, queue: str) -> None:
    """What 3.2.1 declares on start: SUBSCRIBE (ack=client) to the bare destination ``DLQ.<queue>``, then
    SUBSCRIBE to the destination, with its headers; each must be confirmed without an ERROR. Each on a
    connection of its own, closed after the receipt (3.2.1 sends an UNSUBSCRIBE in between: RabbitMQ
    sometimes answered it with "no current subscription" when the DLQ had a message to deliver, a race of
    the test's own making that says nothing about the declarations)."""
    for dest, dlq, sub_id in ((f"DLQ.{queue}", True, "old-dlq"), (destination, False, "old-main")):
        t = StompTransport(settings_with())
        t.connect()
        try:
            receipt = new_receipt_id()
            t.subscribe(dest, sub_id, {**headers_of_321(queue, dlq=dlq), "receipt": receipt}, ack="client")
            assert t.wait_for_receipts([receipt], 10) == {receipt}, t.last_error
            assert t.last_error is None and t.is_connected()
        finally:
            t.disconnect()


def save_or_nack(payload: payloads.Payload) -> None:
    if payload.body == {"ok": False}:
        payload.nack()
        return
    with transaction.atomic():
        payload.save()


@pytest.mark.parametrize("kind", ["topic", "queue"])
def test_queues_declared_by_earlier_releases_are_consumed_without_error(
    kind: str, unique_name: str, broker_available: None
) -> None:
    destination = f"/{kind}/{unique_name}"
    declare_the_old_way(destination, unique_name)
    settings = settings_with()
    send_to = destination if kind == "topic" else f"/amq/queue/{unique_name}"
    publish(settings, send_to, [('{"ok": true}', {"dop-msg-id": "kept"})])  # waiting in the old queue

    c = make_consumer(save_or_nack, destination)
    with running(c):
        assert wait_until(lambda: c.stats.processed == 1)
        publish(settings, send_to, [('{"ok": false}', {"dop-msg-id": "refused"})])
        assert wait_until(lambda: c.stats.nacked == 1)
    assert c.stats.reconnects == c.stats.errors == 0
    assert list(Received.objects.values_list("msg_id", flat=True)) == ["kept"]
    dead = read(settings, f"DLQ.{unique_name}", 1)  # dead-lettered into the old DLQ
    assert [m.headers["dop-msg-id"] for m in dead] == ["refused"]
    assert_queue_empty(settings, unique_name)


def test_321_can_declare_the_queues_after_ours_did_a_rollback(
    unique_name: str, broker_available: None
) -> None:
    destination = f"/topic/{unique_name}"
    c = make_consumer(save_or_nack, destination)
    with running(c):
        publish(settings_with(), destination, [('{"ok": false}', {"dop-msg-id": "refused"})])
        assert wait_until(lambda: c.stats.nacked == 1)
    declare_the_old_way(destination, unique_name)  # asserts: confirmed, no ERROR, still connected
    dead = read(settings_with(), f"DLQ.{unique_name}", 1)
    assert [m.headers["dop-msg-id"] for m in dead] == ["refused"]


def test_exclusive_queues_are_declared_as_321_did(unique_name: str, broker_available: None) -> None:
    """DEFAULT_EXCLUSIVE_QUEUE: both queues belong to the consumer's connection (locked for any other)
    and go away with it, as with 3.2.1; a NACK while it runs lands in its own DLQ."""
    destination = f"/topic/{unique_name}"
    c = make_consumer(save_or_nack, destination, DEFAULT_EXCLUSIVE_QUEUE=True)
    with running(c):
        publish(settings_with(), destination, [('{"ok": false}', {"dop-msg-id": "refused"})])
        assert wait_until(lambda: c.stats.nacked == 1)
        for queue in (unique_name, f"DLQ.{unique_name}"):
            assert "resource_locked" in refusal(f"/amq/queue/{queue}")
        assert c.stats.reconnects == c.stats.errors == 0
    for queue in (unique_name, f"DLQ.{unique_name}"):
        assert "not_found" in refusal(f"/amq/queue/{queue}")  # exclusive: gone with the connection


def refusal(destination: str) -> str:
    """The broker's ERROR for a SUBSCRIBE to ``destination`` from another connection."""
    t = StompTransport(settings_with())
    t.connect()
    try:
        t.subscribe(destination, "probe", {"receipt": new_receipt_id()}, ack="client-individual")
        assert wait_until(lambda: t.last_error is not None)
        return str(t.last_error).lower().replace(" ", "_")
    finally:
        t.disconnect()


def test_our_consumer_redeclares_its_own_queues(unique_name: str, broker_available: None) -> None:
    destination = f"/topic/{unique_name}"
    first = make_consumer(save_or_nack, destination, "orders-" + unique_name)
    with running(first):
        publish(settings_with(), destination, [('{"n": 1}', {"dop-msg-id": "one"})])
        assert wait_until(lambda: first.stats.processed == 1)
    publish(settings_with(), destination, [('{"n": 2}', {"dop-msg-id": "two"})])  # kept while nobody listens

    second = make_consumer(save_or_nack, destination, "orders-" + unique_name)
    with running(second):
        assert wait_until(lambda: second.stats.processed == 1)
    assert second.stats.reconnects == second.stats.errors == 0
    assert sorted(Received.objects.values_list("msg_id", flat=True)) == ["one", "two"]


def test_a_queue_with_other_arguments_is_reported_clearly(
    unique_name: str, broker_available: None, caplog: pytest.LogCaptureFixture
) -> None:
    subscribe_once(settings_with(), f"/queue/{unique_name}", {"durable": "true", "auto-delete": "false"})
    c = make_consumer(save_or_nack, f"/queue/{unique_name}", DEFAULT_RETRY_BASE_DELAY=5)
    with caplog.at_level(logging.WARNING, logger="django_outbox_pattern"), running(c, ready_timeout=None):
        assert wait_until(
            lambda: any(getattr(r, "action", "") == "consumer_connection_lost" for r in caplog.records)
        )
    lost = next(
        r.getMessage() for r in caplog.records if getattr(r, "action", "") == "consumer_connection_lost"
    )
    assert "precondition_failed" in lost
    assert "delete it or use another queue_name" in lost
    assert not c.wait_ready(0)
