"""factory_producer() against the real RabbitMQ: confirmed sends, and a clear error when none comes."""

from __future__ import annotations

import json

import pytest

from django_outbox_pattern import conf, exceptions
from django_outbox_pattern.factories import factory_producer
from tests.conftest import STOMP_HOST, STOMP_PORT
from tests.support.broker_helpers import QueueDrain
from tests.support.relay_helpers import make_settings
from tests.support.tcpproxy import TcpProxy

pytestmark = pytest.mark.broker


def test_send_event_is_confirmed_and_arrives_with_json_and_headers(
    outbox_settings: conf.OutboxSettings, unique_name: str
) -> None:
    destination = f"/queue/{unique_name}"
    with QueueDrain(outbox_settings, destination) as drain:
        with factory_producer() as producer:  # the spec's form, with the Django settings
            attempts = producer.send_event(destination=destination, body={"a": 1}, headers={"x-h": "v"})
        (message,) = drain.sync()
    assert json.loads(message.body) == {"a": 1}
    assert message.headers["x-h"] == "v"
    assert attempts == 0  # 3.x's return value: failed attempts before the confirmed one
    assert len(message.headers["dop-msg-id"]) == 32  # a new id, so consumers can deduplicate resends
    assert message.headers["persistent"] == "true"
    assert message.headers["content-type"] == "application/json"


def test_send_event_without_a_receipt_raises_publish_not_confirmed(
    outbox_settings: conf.OutboxSettings, unique_name: str
) -> None:
    with TcpProxy((STOMP_HOST, STOMP_PORT)) as proxy:
        settings = make_settings(
            DEFAULT_STOMP_HOST_AND_PORTS=[(STOMP_HOST, proxy.port)],
            DEFAULT_RECEIPT_TIMEOUT=0.3,
            DEFAULT_MAXIMUM_RETRY_ATTEMPTS=1,  # send_event retries (as 3.x); one attempt keeps this short
        )
        with factory_producer(settings) as producer:
            proxy.stall(True)  # the SEND never reaches the broker, so no RECEIPT can come
            with pytest.raises(exceptions.PublishNotConfirmed, match="did not confirm"):
                producer.send_event(destination=f"/queue/{unique_name}", body={})


def test_factory_producer_with_the_broker_down_raises_connection_failed(
    outbox_settings: conf.OutboxSettings,
) -> None:
    with TcpProxy((STOMP_HOST, STOMP_PORT)) as proxy:
        proxy.refuse(True)
        settings = make_settings(DEFAULT_STOMP_HOST_AND_PORTS=[(STOMP_HOST, proxy.port)])
        with pytest.raises(exceptions.ConnectionFailed, match="outboxctl check"), factory_producer(settings):
            pass
