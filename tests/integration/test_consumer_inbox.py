"""The idempotent inbox against the real broker and the configured database (OUTBOX_TEST_DB)."""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

import pytest
from django.db import transaction

from django_outbox_pattern import payloads
from django_outbox_pattern.choices import StatusChoice
from django_outbox_pattern.models import Received
from tests.support import dbfaults
from tests.support.consumers import make_consumer
from tests.support.runner import running, wait_until
from tests.support.stomp_tools import assert_queue_empty, publish, read, settings_with
from tests.testapp.models import Order

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.broker]


@pytest.fixture
def topic(unique_name: str, broker_available: None) -> str:
    return f"/topic/{unique_name}"


def send(topic: str, *messages: tuple[Any, dict[str, str]]) -> None:
    publish(settings_with(), topic, [(b if isinstance(b, str) else json.dumps(b), h) for b, h in messages])


def test_save_inserts_the_row_in_the_callers_transaction_and_acks_after_commit(
    topic: str, unique_name: str
) -> None:
    acked_inside: list[bool] = []

    def callback(payload: payloads.Payload) -> None:
        with transaction.atomic():
            Order.objects.create(msg_id=payload.msg_id, payload=payload.body)
            payload.save()
            acked_inside.append(payload.acked)
        assert payload.acked

    c = make_consumer(callback, topic)
    with running(c):
        send(topic, ({"id": 1}, {"dop-msg-id": "order-1"}))
        assert wait_until(lambda: c.stats.processed == 1)
    assert acked_inside == [False]  # no ACK before the commit
    row = Received.objects.get(msg_id="order-1")
    assert (row.body, row.status) == ({"id": 1}, StatusChoice.SUCCEEDED)
    assert row.headers["dop-msg-id"] == "order-1"
    assert row.headers["destination"] == topic
    assert Order.objects.get().payload == {"id": 1}
    assert c.stats.nacked == c.stats.errors == 0
    assert_queue_empty(settings_with(), unique_name)  # the ACK reached the broker


def test_a_rolled_back_save_sends_no_ack_and_the_message_is_dead_lettered(
    topic: str, unique_name: str
) -> None:
    def callback(payload: payloads.Payload) -> None:
        with transaction.atomic():
            Order.objects.create(msg_id=payload.msg_id)
            payload.save()
            raise ValueError("failed after save, before commit")

    c = make_consumer(callback, topic)
    with running(c):
        send(topic, ({"id": 2}, {"dop-msg-id": "order-2"}))
        assert wait_until(lambda: c.stats.nacked == 1)
    assert not Received.objects.exists()
    assert not Order.objects.exists()
    dead = read(settings_with(), f"DLQ.{unique_name}", 1)
    assert [m.headers["dop-msg-id"] for m in dead] == ["order-2"]
    assert dead[0].headers["x-first-death-reason"] == "rejected"


def test_identity_is_cap_msg_id_then_dop_msg_id_then_message_id(topic: str) -> None:
    seen: list[tuple[str, str]] = []

    def callback(payload: payloads.Payload) -> None:
        seen.append((payload.msg_id, payload.headers["message-id"]))
        payload.save()

    c = make_consumer(callback, topic)
    with running(c):
        send(
            topic,
            ("a", {"cap-msg-id": "cap-1", "dop-msg-id": "dop-1"}),
            ("b", {"dop-msg-id": "dop-2"}),
            ("c", {}),
        )
        assert wait_until(lambda: c.stats.processed == 3)
    assert [msg_id for msg_id, _ in seen[:2]] == ["cap-1", "dop-2"]
    assert seen[2][0] == seen[2][1]  # the broker's message-id
    assert set(Received.objects.values_list("msg_id", flat=True)) == {"cap-1", "dop-2", seen[2][1]}


def test_a_duplicate_is_acked_without_the_callback_and_not_dead_lettered(
    topic: str, unique_name: str
) -> None:
    calls: list[str] = []

    def callback(payload: payloads.Payload) -> None:
        calls.append(payload.msg_id)
        with transaction.atomic():
            Order.objects.create(msg_id=payload.msg_id)
            payload.save()

    c = make_consumer(callback, topic)
    with running(c):
        send(topic, ({"v": 1}, {"dop-msg-id": "twice"}), ({"v": 1}, {"dop-msg-id": "twice"}))
        assert wait_until(lambda: c.stats.processed == 1 and c.stats.duplicates == 1)
    assert calls == ["twice"]
    assert Order.objects.count() == 1
    assert c.stats.nacked == 0
    assert_queue_empty(settings_with(), unique_name)
    assert_queue_empty(settings_with(), f"DLQ.{unique_name}")


def test_two_consumers_racing_on_one_message_process_it_once(topic: str, unique_name: str) -> None:
    barrier = threading.Barrier(2, timeout=20)
    calls: list[str] = []

    def callback(payload: payloads.Payload) -> None:
        calls.append(payload.msg_id)
        barrier.wait()  # both copies passed the duplicate check; now both try to save
        with transaction.atomic():
            payload.save()
            Order.objects.create(msg_id=payload.msg_id)

    first, second = make_consumer(callback, topic), make_consumer(callback, topic)
    with running(first), running(second):
        send(topic, ({"v": 1}, {"dop-msg-id": "raced"}), ({"v": 1}, {"dop-msg-id": "raced"}))
        assert wait_until(lambda: first.stats.duplicates + second.stats.duplicates == 1, timeout=30)
        assert wait_until(lambda: first.stats.processed + second.stats.processed == 1)
    assert calls == ["raced", "raced"]  # each consumer got one copy (prefetch 1)
    assert Order.objects.count() == 1
    assert Received.objects.count() == 1
    assert first.stats.nacked + second.stats.nacked == 0
    assert first.stats.errors + second.stats.errors == 0
    assert_queue_empty(settings_with(), unique_name)
    assert_queue_empty(settings_with(), f"DLQ.{unique_name}")


def test_nack_moves_the_message_to_the_dead_letter_queue_without_the_database(
    topic: str, unique_name: str
) -> None:
    c = make_consumer(lambda payload: payload.nack(), topic)
    with running(c):
        send(topic, ({"invalid": True}, {"dop-msg-id": "rejected-1"}))
        assert wait_until(lambda: c.stats.nacked == 1)
    dead = read(settings_with(), f"DLQ.{unique_name}", 1)
    assert [json.loads(m.body) for m in dead] == [{"invalid": True}]
    assert dead[0].headers["x-first-death-queue"] == unique_name
    assert not Received.objects.exists()


def test_a_raising_callback_is_dead_lettered_and_logged(
    topic: str, unique_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    def callback(payload: payloads.Payload) -> None:
        raise RuntimeError("callback exploded")

    c = make_consumer(callback, topic)
    with caplog.at_level(logging.ERROR, logger="django_outbox_pattern"), running(c):
        send(topic, ({"x": 1}, {"dop-msg-id": "exploded"}))
        assert wait_until(lambda: c.stats.errors == 1)
    assert [m.headers["dop-msg-id"] for m in read(settings_with(), f"DLQ.{unique_name}", 1)] == ["exploded"]
    failed = [r for r in caplog.records if getattr(r, "action", "") == "message_failed"]
    assert failed and failed[0].exc_info and "callback exploded" in str(failed[0].exc_info[1])


def test_a_callback_that_neither_saves_nor_nacks_is_warned_and_does_not_stall(
    topic: str, unique_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[str] = []
    c = make_consumer(lambda payload: calls.append(payload.msg_id), topic)
    with caplog.at_level(logging.WARNING, logger="django_outbox_pattern"), running(c):
        send(topic, ({"x": 1}, {"dop-msg-id": "idle-1"}), ({"x": 2}, {"dop-msg-id": "idle-2"}))
        assert wait_until(lambda: c.stats.nacked == 2)  # prefetch 1: the second came only after the first
    assert calls == ["idle-1", "idle-2"]
    dead = read(settings_with(), f"DLQ.{unique_name}", 2)
    assert [m.headers["dop-msg-id"] for m in dead] == ["idle-1", "idle-2"]
    warned = [r.getMessage() for r in caplog.records if getattr(r, "action", "") == "message_left_unsettled"]
    assert len(warned) == 2 and "idle-1" in warned[0]


def test_a_body_that_is_not_json_arrives_as_text(topic: str, caplog: pytest.LogCaptureFixture) -> None:
    bodies: list[Any] = []

    def callback(payload: payloads.Payload) -> None:
        bodies.append(payload.body)
        payload.save()

    c = make_consumer(callback, topic)
    with caplog.at_level(logging.WARNING, logger="django_outbox_pattern"), running(c):
        send(topic, ("plain <text> ção", {"dop-msg-id": "text-1"}))
        assert wait_until(lambda: c.stats.processed == 1)
    assert bodies == ["plain <text> ção"]
    assert Received.objects.get(msg_id="text-1").body == "plain <text> ção"
    assert any(getattr(r, "action", "") == "message_body_not_json" for r in caplog.records)


def test_a_lost_database_connection_is_reopened_and_the_callback_retried(topic: str) -> None:
    calls: list[str] = []

    def callback(payload: payloads.Payload) -> None:
        calls.append(payload.msg_id)
        if len(calls) == 1:
            dbfaults.break_connection()
        with transaction.atomic():
            Order.objects.create(msg_id=payload.msg_id)
            payload.save()

    c = make_consumer(callback, topic)
    with running(c):
        send(topic, ({"x": 1}, {"dop-msg-id": "retried"}))
        assert wait_until(lambda: c.stats.processed == 1)
    assert calls == ["retried", "retried"]
    assert Order.objects.count() == Received.objects.count() == 1
    assert c.stats.errors == c.stats.nacked == 0


def test_database_errors_beyond_the_retries_dead_letter(topic: str, unique_name: str) -> None:
    calls: list[str] = []

    def callback(payload: payloads.Payload) -> None:
        calls.append(payload.msg_id)
        dbfaults.break_connection()

    c = make_consumer(callback, topic, DEFAULT_CONSUMER_MAX_RETRY_ATTEMPTS=2)
    with running(c):
        send(topic, ({"x": 1}, {"dop-msg-id": "hopeless"}))
        assert wait_until(lambda: c.stats.nacked == 1)
    assert calls == ["hopeless"] * 3
    assert c.stats.errors == 1
    assert [m.headers["dop-msg-id"] for m in read(settings_with(), f"DLQ.{unique_name}", 1)] == ["hopeless"]
