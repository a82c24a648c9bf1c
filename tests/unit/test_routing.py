"""Routing verdicts: topic matching, the inspector's rules, the gate's cache and hold decision, settings."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from django_outbox_pattern import conf, exceptions
from django_outbox_pattern.broker import management
from django_outbox_pattern.relaying import routing


@pytest.mark.parametrize(
    ("pattern", "key", "matches"),
    [
        ("orders.created", "orders.created", True),
        ("orders.*", "orders.created", True),
        ("orders.*", "orders.created.v1", False),
        ("orders.#", "orders", True),
        ("orders.#", "orders.created.v1", True),
        ("#", "anything.at.all", True),
        ("*.created.#", "orders.created", True),
        ("*", "", True),  # the empty key is one empty word
        ("orders", "orders.created", False),
        ("#.v1", "orders.created.v1", True),
        ("#.v1", "orders.created.v2", False),
    ],
)
def test_topic_matching(pattern: str, key: str, matches: bool) -> None:
    assert routing.topic_matches(pattern, key) is matches


class Topology:
    """A stand-in for the management API: exchanges with their type and bindings, and queues."""

    def __init__(self) -> None:
        self.exchanges: dict[str, str] = {"amq.topic": "topic", "amq.direct": "direct"}
        self.bindings: dict[str, list[management.Binding]] = {}
        self.queues: set[str] = set()
        self.calls = 0
        self.down = False

    def bind(self, exchange: str, key: str, queue: str, kind: str = "queue") -> None:
        self.bindings.setdefault(exchange, []).append(management.Binding(queue, kind, key))

    def _call(self) -> None:
        self.calls += 1
        if self.down:
            raise exceptions.ManagementUnavailable("connection refused")

    def exchange_type(self, name: str) -> str | None:
        self._call()
        return self.exchanges.get(name)

    def bindings_from(self, exchange: str) -> list[management.Binding]:
        self._call()
        return self.bindings.get(exchange, [])

    def queue_exists(self, name: str) -> bool:
        self._call()
        return name in self.queues


def inspector(topology: Topology) -> routing.RouteInspector:
    return routing.RouteInspector(topology)  # type: ignore[arg-type]


def test_the_inspector_follows_rabbitmqs_rules() -> None:
    t = Topology()
    t.bind("amq.topic", "orders.#", "billing")
    t.exchanges.update({"fan": "fanout", "hdr": "headers", "hop": "topic"})
    t.bind("fan", "", "hop", kind="exchange")
    t.bind("hop", "#", "audit")
    t.queues.add("existing")
    check = inspector(t).check
    assert check("/topic/orders.created").routable is True
    assert "billing" in check("/topic/orders.created").detail
    assert check("/topic/users.created").routable is False
    assert check("/exchange/amq.direct/k").routable is False
    assert check("/exchange/nope/k").routable is False
    assert check("/exchange/fan").routable is True  # fanout -> exchange -> queue
    assert check("/exchange/hdr/k").routable is None  # headers exchange: cannot tell by key
    assert check("/amq/queue/existing").routable is True
    assert check("/amq/queue/missing").routable is False
    assert check("/queue/missing").routable is True  # declared by the SEND
    assert check("existing").routable is True  # default exchange
    assert check("/temp-queue/x").routable is None


@dataclasses.dataclass
class Row:
    id: int
    destination: str


def gate(topology: Topology, clock: list[float], **settings: Any) -> routing.RoutingGate:
    s = dataclasses.replace(conf.OutboxSettings(), DEFAULT_ROUTING_CHECK_INTERVAL=10, **settings)
    return routing.RoutingGate(inspector(topology), settings=s, clock=lambda: clock[0])


def test_the_gate_holds_unroutable_rows_and_caches_each_verdict() -> None:
    t, clock = Topology(), [0.0]
    g = gate(t, clock)
    rows = [Row(1, "/topic/a"), Row(2, "/topic/b"), Row(3, "/topic/a")]
    t.bind("amq.topic", "b", "q")
    send, held = g.partition(rows)
    assert [r.id for r in send] == [2]
    [(reason, group)] = held.items()
    assert reason.startswith("no queue bound to /topic/a") and [r.id for r in group] == [1, 3]
    calls = t.calls
    g.partition(rows)
    assert t.calls == calls  # cached
    t.bind("amq.topic", "a", "q2")
    clock[0] += 11  # the verdict is stale: checked again
    send, held = g.partition(rows)
    assert len(send) == 3 and not held


def test_the_gate_sends_when_the_api_is_down_and_does_not_ask_per_destination() -> None:
    t, clock = Topology(), [0.0]
    t.down = True
    g = gate(t, clock)
    send, held = g.partition([Row(1, "/topic/a"), Row(2, "/topic/b")])
    assert len(send) == 2 and not held and t.calls == 1


def test_the_send_policy_holds_nothing() -> None:
    send, held = gate(Topology(), [0.0], DEFAULT_UNROUTABLE_MESSAGES="send").partition([Row(1, "/topic/a")])
    assert len(send) == 1 and not held


def test_management_settings_are_validated_and_masked() -> None:
    s = conf.OutboxSettings.from_mapping(
        {
            "DEFAULT_RABBITMQ_MANAGEMENT_URL": "http://ops:hunter22@rabbit:15672",
            "DEFAULT_STOMP_PASSCODE": "pc",
        }
    )
    shown = s.public_dict()
    assert shown["DEFAULT_RABBITMQ_MANAGEMENT_URL"] == "http://ops:********@rabbit:15672"
    assert "hunter22" not in repr(s)
    assert s.management_credentials == ("guest", "pc")  # defaults to the STOMP login
    client = management.ManagementClient.from_settings(s)
    assert client is not None and "hunter22" not in repr(client) and client.base == "http://rabbit:15672"
    problems = conf.validate(
        {"DEFAULT_RABBITMQ_MANAGEMENT_URL": "ftp://x", "DEFAULT_UNROUTABLE_MESSAGES": "drop"}
    )
    assert [key for key, _, _ in problems] == [
        "DEFAULT_RABBITMQ_MANAGEMENT_URL",
        "DEFAULT_UNROUTABLE_MESSAGES",
    ]
    assert conf.OutboxSettings().DEFAULT_RABBITMQ_MANAGEMENT_URL is None
    assert conf.OutboxSettings().DEFAULT_UNROUTABLE_MESSAGES == "hold"


def test_an_unreachable_api_is_reported_in_our_words() -> None:
    client = management.ManagementClient("http://127.0.0.1:9", username="u", password="p", timeout=1)
    with pytest.raises(exceptions.ManagementUnavailable, match="rabbitmq_management plugin"):
        client.queue_exists("q")


@pytest.mark.django_db
def test_the_relay_holds_rows_of_an_unbound_topic_and_sends_the_rest() -> None:
    from django_outbox_pattern.choices import StatusChoice
    from django_outbox_pattern.models import Published
    from django_outbox_pattern.testing import MemoryTransport
    from tests.support.relay_helpers import make_relay, make_settings

    t, clock = Topology(), [0.0]
    t.bind("amq.topic", "orders.*", "billing")
    settings = make_settings(DEFAULT_RECEIPT_TIMEOUT=0.05)
    memory = MemoryTransport()
    engine = make_relay(settings, memory, routing_gate=gate(t, clock))
    lost = Published.objects.create(destination="/topic/users.created", body={})
    kept = Published.objects.create(destination="/topic/orders.created", body={})
    assert engine.run_once() == 2  # both claimed
    assert [m.destination for m in memory.sent] == ["/topic/orders.created"]
    lost.refresh_from_db()
    kept.refresh_from_db()
    assert kept.status == StatusChoice.SUCCEEDED
    assert lost.status == StatusChoice.SCHEDULE and lost.retry == 0 and lost.locked_by == ""
    assert lost.last_error.startswith("no queue bound to /topic/users.created: held")
