"""3.x's Consumer and Producer facades (factory_consumer/factory_producer) against the real broker."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from django_outbox_pattern import conf, exceptions, payloads
from django_outbox_pattern.factories import factory_consumer, factory_producer
from django_outbox_pattern.listeners import ConsumerListener
from django_outbox_pattern.models import Published, Received
from tests.conftest import STOMP_HOST, STOMP_PORT
from tests.support.broker_helpers import QueueDrain
from tests.support.relay_helpers import make_settings
from tests.support.runner import wait_until
from tests.support.stomp_tools import assert_queue_empty
from tests.support.tcpproxy import TcpProxy

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.broker]

FRAMES: list[tuple[str, Any]] = []


class RecordingListener(ConsumerListener):
    def on_connected(self, frame: Any) -> None:
        FRAMES.append(("connected", self.instance))

    def on_message(self, frame: Any) -> None:
        FRAMES.append(("message", frame.headers.get("dop-msg-id")))


def test_consumer_start_returns_subscribed_and_stop_disconnects(
    outbox_settings: conf.OutboxSettings, unique_name: str
) -> None:
    received: list[payloads.Payload] = []
    done = threading.Event()

    def callback(payload: payloads.Payload) -> None:
        payload.save()
        received.append(payload)
        done.set()

    consumer = factory_consumer()
    consumer.start(callback, f"/topic/{unique_name}", unique_name)  # returns: non-blocking
    try:
        assert consumer.is_connected()
        assert consumer.subscribe_id
        producer = factory_producer()
        producer.start()
        attempts = producer.send_event({"n": 1}, f"/topic/{unique_name}", headers={"dop-msg-id": unique_name})
        producer.stop()
        assert attempts == 0
        assert done.wait(10)
    finally:
        consumer.stop()
    assert not consumer.is_connected()
    assert consumer.subscribe_id is None
    (payload,) = received
    assert payload.connection is consumer.connection
    assert payload.body == {"n": 1}
    assert payload.message.msg_id == unique_name
    assert Received.objects.filter(msg_id=unique_name).exists()
    assert_queue_empty(outbox_settings, unique_name)  # acked


def test_a_custom_consumer_listener_sees_the_frames(
    outbox_settings: conf.OutboxSettings, unique_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    FRAMES.clear()
    monkeypatch.setattr(
        "django_outbox_pattern.settings.DEFAULT_CONSUMER_LISTENER_CLASS", f"{__name__}.RecordingListener"
    )
    consumer = factory_consumer()
    consumer.start(lambda payload: payload.save(), f"/queue/{unique_name}")
    try:
        with factory_producer() as producer:
            producer.send_event(
                body={}, destination=f"/amq/queue/{unique_name}", headers={"dop-msg-id": unique_name}
            )
        assert wait_until(lambda: ("message", unique_name) in FRAMES)
    finally:
        consumer.stop()
    assert ("connected", consumer) in FRAMES


def test_producer_send_relays_a_published_row_with_its_headers(
    outbox_settings: conf.OutboxSettings, unique_name: str
) -> None:
    destination = f"/queue/{unique_name}"
    row = Published.objects.create(destination=destination, body={"order": 5}, headers={"x-tenant": "a"})
    with QueueDrain(outbox_settings, destination) as drain:
        producer = factory_producer()
        producer.start()
        try:
            assert producer.send(row) == 0
        finally:
            producer.stop()
        (message,) = drain.sync()
    assert json.loads(message.body) == {"order": 5}
    assert message.headers["dop-msg-id"] == str(row.id)
    assert message.headers["x-tenant"] == "a"
    assert not producer.is_connected()


def test_send_event_keyword_arguments_become_headers(
    outbox_settings: conf.OutboxSettings, unique_name: str
) -> None:
    destination = f"/queue/{unique_name}"
    with QueueDrain(outbox_settings, destination) as drain, factory_producer() as producer:
        producer.send_event({"a": 1}, destination, headers={"h1": "1"}, h2="2", receipt="mine")
        (message,) = drain.sync()
    assert (message.headers["h1"], message.headers["h2"]) == ("1", "2")
    assert message.headers.get("receipt") != "mine"


def test_send_event_after_its_attempts_raises_exceeded_send_attempts(
    outbox_settings: conf.OutboxSettings, unique_name: str
) -> None:
    with TcpProxy((STOMP_HOST, STOMP_PORT)) as proxy:
        settings = make_settings(
            DEFAULT_STOMP_HOST_AND_PORTS=[(STOMP_HOST, proxy.port)],
            DEFAULT_RECEIPT_TIMEOUT=0.3,
            DEFAULT_MAXIMUM_RETRY_ATTEMPTS=3,
        )
        producer = factory_producer(settings)
        producer.start()
        proxy.stall(True)  # no SEND reaches the broker: no RECEIPT, on any connection
        with pytest.raises(exceptions.ExceededSendAttemptsException) as caught:
            producer.send_event({}, f"/queue/{unique_name}")
        producer.stop()
    assert caught.value.attempts == 3
    assert isinstance(caught.value, exceptions.PublishNotConfirmed)


def test_producer_start_waits_for_the_broker_as_3x(outbox_settings: conf.OutboxSettings) -> None:
    with TcpProxy((STOMP_HOST, STOMP_PORT)) as proxy:
        proxy.refuse(True)
        settings = make_settings(
            DEFAULT_STOMP_HOST_AND_PORTS=[(STOMP_HOST, proxy.port)], DEFAULT_MAXIMUM_BACKOFF=0.2
        )
        producer = factory_producer(settings)
        started = threading.Thread(target=producer.start, daemon=True)
        started.start()
        assert wait_until(lambda: producer.attempts >= 1)
        assert started.is_alive()  # still trying
        proxy.refuse(False)
        started.join(10)
        assert producer.is_connected()
        producer.stop()
