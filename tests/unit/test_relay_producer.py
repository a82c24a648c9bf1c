"""Producer and encode() with the in-memory broker: receipts, refusals, batches."""

from __future__ import annotations

import datetime
import decimal
import json
import uuid
from collections.abc import Sequence

import pytest

from django_outbox_pattern import exceptions
from django_outbox_pattern.broker import wire
from django_outbox_pattern.relaying import producer
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
            "x-none": None,  # no header, as stomp.py (and so 3.x) sends it
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


class _WriteLog(MemoryTransport):
    """Records the size of every ``send_many()``; the write numbered ``fail_on`` raises ConnectionClosed
    (a socket error: how much of it went out is unknown)."""

    def __init__(self, broker: MemoryBroker, fail_on: int | None = None) -> None:
        super().__init__(broker)
        self.writes: list[int] = []
        self.fail_on = fail_on

    def send_many(self, messages: Sequence[wire.OutgoingFrame]) -> None:
        self.writes.append(len(messages))
        if len(self.writes) == self.fail_on:
            self.close_abruptly("broken pipe")
            raise exceptions.ConnectionClosed("broken pipe")
        super().send_many(messages)


def _messages(count: int, body: str = "{}", first: int = 0) -> list[producer.OutgoingMessage]:
    return [producer.OutgoingMessage("/queue/q", body, {}, key=i) for i in range(first, first + count)]


def test_a_pipelined_batch_goes_out_in_writes_of_bounded_size(broker: MemoryBroker) -> None:
    log = _WriteLog(broker)
    p = producer.Producer(log, receipt_timeout=0.05)
    p.connect()
    outcome = p.send_many(_messages(600))
    assert log.writes == [producer.WRITE_MESSAGES, producer.WRITE_MESSAGES, 100]
    assert outcome.ok and len(outcome.confirmed) == 600
    big = "x" * (producer.WRITE_BYTES // 3 + 1)
    log.writes.clear()
    p.send_many(_messages(7, body=f'"{big}"'))
    assert log.writes == [3, 3, 1]  # cut by bytes long before the message count


def test_a_failed_write_counts_its_messages_as_sent_and_the_rest_as_never_sent(broker: MemoryBroker) -> None:
    log = _WriteLog(broker, fail_on=2)
    p = producer.Producer(log, receipt_timeout=0.05)
    p.connect()
    outcome = p.send_many(_messages(600))
    assert outcome.confirmed == list(range(250))
    assert outcome.unconfirmed == list(range(250, 500))  # may have left: the attempt counts
    assert outcome.unsent == list(range(500, 600))
    assert "broken pipe" in outcome.error


def test_a_transport_that_knows_how_far_it_got_leaves_the_rest_unsent(broker: MemoryBroker) -> None:
    broker.reject_destinations["/queue/bad"] = "precondition_failed"
    p = producer.Producer(MemoryTransport(broker), receipt_timeout=0.05)
    p.connect()
    bad = producer.OutgoingMessage("/queue/bad", "{}", {}, key="bad")
    outcome = p.send_many([*_messages(2), bad, *_messages(3, first=10)])
    assert (outcome.confirmed, outcome.unconfirmed, outcome.unsent) == ([0, 1], ["bad"], [10, 11, 12])


def test_an_encoded_json_body_is_sent_as_it_is() -> None:
    text = '{"b": 1, "a": "caf\u00e9"}'
    assert producer.encode("/queue/q", producer.EncodedJSON(text)).body == text
    assert producer.encode("/queue/q", text).body == json.dumps(text)  # a plain str is a JSON string
