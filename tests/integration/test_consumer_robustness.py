"""Slow callbacks keep heartbeats alive; a cut connection loses nothing and processes nothing twice."""

from __future__ import annotations

import collections
import logging
import threading

import pytest
from django.db import transaction

from django_outbox_pattern import payloads
from django_outbox_pattern.models import Received
from tests.conftest import STOMP_HOST, STOMP_PORT
from tests.support.consumers import make_consumer
from tests.support.runner import running, wait_until
from tests.support.stomp_tools import assert_queue_empty, publish, settings_with
from tests.support.tcpproxy import TcpProxy
from tests.testapp.models import Order

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.broker]

HEARTBEAT_MS = 1000


def test_a_callback_slower_than_two_heartbeats_keeps_the_connection(
    unique_name: str, broker_available: None, caplog: pytest.LogCaptureFixture
) -> None:
    took_long = threading.Event()

    def slow(payload: payloads.Payload) -> None:
        took_long.wait(2.5 * HEARTBEAT_MS / 1000)  # the message path is busy for 2.5 heartbeat intervals
        with transaction.atomic():
            payload.save()

    topic = f"/topic/{unique_name}"
    c = make_consumer(slow, topic, DEFAULT_STOMP_HEARTBEATS=(HEARTBEAT_MS, HEARTBEAT_MS))
    with caplog.at_level(logging.INFO, logger="django_outbox_pattern"), running(c):
        publish(settings_with(), topic, [("{}", {"dop-msg-id": "slow-1"}), ("{}", {"dop-msg-id": "slow-2"})])
        assert wait_until(lambda: c.stats.processed == 2, timeout=20)
    assert c.stats.reconnects == 0
    actions = {getattr(r, "action", "") for r in caplog.records}
    assert not actions & {"consumer_connection_lost", "broker_heartbeat_timed_out", "message_settle_failed"}
    assert_queue_empty(settings_with(), unique_name)


def test_cutting_the_connection_mid_stream_loses_nothing_and_doubles_nothing(
    unique_name: str, broker_available: None
) -> None:
    total, cut_at = 30, 10
    calls: collections.Counter[str] = collections.Counter()
    cut = threading.Event()

    with TcpProxy((STOMP_HOST, STOMP_PORT)) as proxy:

        def callback(payload: payloads.Payload) -> None:
            calls[payload.msg_id] += 1
            with transaction.atomic():
                Order.objects.create(msg_id=payload.msg_id, payload=payload.body)
                if payload.body["n"] == cut_at and not cut.is_set():
                    cut.set()
                    transaction.on_commit(proxy.cut)  # runs before save()'s ACK: the ACK is lost
                payload.save()

        topic = f"/topic/{unique_name}"
        c = make_consumer(
            callback,
            topic,
            DEFAULT_STOMP_HOST_AND_PORTS=(("127.0.0.1", proxy.port),),
            DEFAULT_STOMP_QUEUE_HEADERS={"durable": "true", "auto-delete": "false", "prefetch-count": "5"},
        )
        with running(c):
            messages = [(f'{{"n": {n}}}', {"dop-msg-id": f"m-{n}"}) for n in range(total)]
            publish(settings_with(), topic, messages)  # straight to the broker, not through the proxy
            assert wait_until(lambda: Order.objects.count() == total, timeout=30)
            assert wait_until(lambda: c.stats.duplicates >= 1)  # the message whose ACK was cut came back
        assert cut.is_set() and proxy.accepted >= 4  # DLQ declaration + connection, twice

    assert c.stats.reconnects >= 1
    assert c.stats.errors == c.stats.nacked == 0
    assert set(calls) == {f"m-{n}" for n in range(total)}
    assert set(calls.values()) == {1}  # no callback ran twice
    assert Received.objects.count() == total
    assert_queue_empty(settings_with(), unique_name)
    assert_queue_empty(settings_with(), f"DLQ.{unique_name}")


def test_a_reconnect_consumes_the_declared_queue_without_declaring_it_again(
    unique_name: str, broker_available: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After the subscription held, a reconnect subscribes to /amq/queue/<queue> on the real broker (a
    cluster's hung node cannot hold it up): no DLQ declaration, no binding, and messages keep coming."""
    from django_outbox_pattern.consuming import consumer as consumer_module

    monkeypatch.setattr(consumer_module, "DECLARED_AFTER_S", 0.1)
    seen: list[str] = []
    with TcpProxy((STOMP_HOST, STOMP_PORT)) as proxy:

        def callback(payload: payloads.Payload) -> None:
            seen.append(payload.msg_id)
            payload.save()

        topic = f"/topic/{unique_name}"
        c = make_consumer(callback, topic, DEFAULT_STOMP_HOST_AND_PORTS=(("127.0.0.1", proxy.port),))
        with running(c):
            publish(settings_with(), topic, [('{"n": 1}', {"dop-msg-id": "first"})])
            assert wait_until(lambda: seen == ["first"], timeout=10)
            assert wait_until(lambda: c._declared)
            proxy.cut()
            assert wait_until(lambda: c.stats.reconnects == 1, timeout=20)
            publish(settings_with(), topic, [('{"n": 2}', {"dop-msg-id": "second"})])  # the binding holds
            assert wait_until(lambda: seen == ["first", "second"], timeout=10)
        assert proxy.accepted == 3  # DLQ declaration + connection, then one connection: nothing declared
    assert_queue_empty(settings_with(), unique_name)
