"""Producer and encode() with the in-memory broker: receipts, refusals, batches."""

from __future__ import annotations

import datetime
import decimal
import json
import uuid

import pytest

from django_outbox_pattern import exceptions, producer
from django_outbox_pattern.testing import MemoryBroker, MemoryTransport


@pytest.fixture
def broker() -> MemoryBroker:
    return MemoryBroker()


@pytest.fixture
def connected(broker: MemoryBroker) -> producer.Producer:
    p = producer.Producer(MemoryTransport(broker), receipt_timeout=0.05)
    p.connect()
    return p


def test_encode_serialises_django_types_and_forces_content_type_and_persistence() -> None:
    when = datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    message = producer.encode(
        "/topic/k",
        {"when": when, "price": decimal.Decimal("1.50"), "id": uuid.UUID(int=1)},
        {
            "x-count": 3,
            "x-flag": True,
            "persistent": "false",
            "content-type": "text/plain",
            "receipt": "mine",
        },
    )
    assert json.loads(message.body) == {
        "when": "2024-01-02T03:04:05Z",
        "price": "1.50",
        "id": str(uuid.UUID(int=1)),
    }
    assert message.headers == {
        "x-count": "3",
        "x-flag": "true",
        "persistent": "true",
        "content-type": "application/json",
    }


@pytest.mark.parametrize(
    "destination",
    [
        "/queue/a",
        "/topic/a.b",
        "/exchange/ex",
        "/exchange/ex/key",
        "/amq/queue/a",
        "/temp-queue/t",
        "plain_name",
    ],
)
def test_destinations_rabbitmq_accepts(destination: str) -> None:
    producer.validate_destination(destination)


@pytest.mark.parametrize(
    "destination",
    ["", "  ", "/foo/bar", "/queue/", "/queue/a/b", "/topic/", "/queue/a\nb", "/queue/amq.mine"],
)
def test_destinations_rabbitmq_refuses(destination: str) -> None:
    with pytest.raises(exceptions.UnsendableMessage):
        producer.validate_destination(destination)


def test_only_a_too_large_message_is_refused_for_good() -> None:
    too_large = "broker error: precondition_failed: PRECONDITION_FAILED - message size 70000 is larger than "
    assert producer.refused_for_good(too_large + "configured max size 65536")
    assert not producer.refused_for_good("broker error: not_found: NOT_FOUND - no exchange 'x' in vhost '/'")
    assert not producer.refused_for_good("no RECEIPT within 5s")


@pytest.mark.parametrize(
    ("body", "headers", "match"),
    [
        ({"x": object()}, {}, "not JSON-serialisable"),
        ({}, {"x": None}, "header 'x' is a NoneType"),
        ({}, {"x": ["a"]}, "header 'x' is a list"),
        ({}, {"x": "a\0b"}, "NUL"),
        ({}, {1: "a"}, "header name 1"),
        ({}, ["not", "a", "mapping"], "headers must be a mapping"),
        ("x" * 50, {}, "over the 40-byte limit"),
    ],
)
def test_encode_refuses_what_can_never_be_sent(body: object, headers: object, match: str) -> None:
    with pytest.raises(exceptions.UnsendableMessage, match=match):
        producer.encode("/queue/q", body, headers, max_body_bytes=40)  # type: ignore[arg-type]


def test_send_event_waits_for_the_receipt_and_returns_the_message_id(
    broker: MemoryBroker, connected: producer.Producer
) -> None:
    msg_id = connected.send_event(destination="/queue/q", body={"a": 1}, headers={"x-h": "v"})
    (sent,) = broker.sent
    assert sent.headers["dop-msg-id"] == msg_id and sent.headers["x-h"] == "v"
    assert connected.send_event("/queue/q", {"a": 2}, headers={"dop-msg-id": "given"}) == "given"


def test_send_event_raises_publish_not_confirmed_without_a_receipt(
    broker: MemoryBroker, connected: producer.Producer
) -> None:
    broker.withhold_receipts = True
    with pytest.raises(exceptions.PublishNotConfirmed, match=r"no RECEIPT within 0\.05s"):
        connected.send_event(destination="/queue/q", body={"a": 1})


def test_send_event_on_a_closed_producer_says_how_to_open_it(broker: MemoryBroker) -> None:
    p = producer.Producer(MemoryTransport(broker), receipt_timeout=0.05)
    with pytest.raises(exceptions.ConnectionClosed, match="factory_producer"):
        p.send_event(destination="/queue/q", body={})
    with p:
        assert p.is_connected()
    assert not p.is_connected()


def messages(*destinations: str) -> list[producer.OutgoingMessage]:
    return [producer.encode(d, {"i": i}, key=i) for i, d in enumerate(destinations)]


def test_send_many_pipelined_reports_confirmed_unconfirmed_and_unsent(
    broker: MemoryBroker, connected: producer.Producer
) -> None:
    broker.reject_destinations["/queue/bad"] = "access_refused"
    outcome = connected.send_many(messages("/queue/a", "/queue/a", "/queue/bad", "/queue/a"))
    assert (outcome.confirmed, outcome.unconfirmed, outcome.unsent) == ([0, 1], [2], [3])
    assert outcome.error == "broker error: access_refused"
    assert not outcome.ok


def test_send_many_one_at_a_time_stops_at_the_first_failure(
    broker: MemoryBroker, connected: producer.Producer
) -> None:
    broker.reject_destinations["/queue/bad"] = "not_found"
    outcome = connected.send_many(messages("/queue/a", "/queue/bad", "/queue/a"), one_at_a_time=True)
    assert (outcome.confirmed, outcome.unconfirmed, outcome.unsent) == ([0], [1], [2])


def test_send_many_with_everything_confirmed_is_ok(connected: producer.Producer) -> None:
    outcome = connected.send_many(messages("/queue/a", "/queue/b"))
    assert outcome.ok and outcome.confirmed == [0, 1] and outcome.error == ""
