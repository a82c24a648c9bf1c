"""Would RabbitMQ route a destination to at least one queue? And what the relay does when it would not.

RabbitMQ confirms a SEND to ``/topic/x`` that no queue is bound to (or to ``/exchange/e/k`` that no
binding matches, or to an ``/amq/queue/`` that does not exist) with a RECEIPT, then drops the message.
Only the topology tells, so ``RouteInspector`` asks the management HTTP API (broker/management.py):

  /topic/<key>            a binding of ``amq.topic`` whose pattern matches <key> (``*`` one word, ``#``
                          zero or more words)
  /exchange/<e>[/<key>]   a binding of <e> matching <key> as its type says (direct: equal, topic:
                          pattern, fanout: any); bindings to other exchanges are followed; a headers
                          exchange cannot be judged by key (unknown)
  /amq/queue/<q>, <q>     the queue exists (a bare name goes to the default exchange)
  /queue/<q>              always routable: the SEND declares the queue when it is missing
  anything else           unknown (/temp-queue/, /reply-queue/)

``RoutingGate`` is the relay's collaborator: it partitions a claimed batch into rows to send and rows to
hold. A destination is checked once and the answer cached for DEFAULT_ROUTING_CHECK_INTERVAL; held rows
stay pending (SCHEDULE, ``last_error`` "no queue bound to ...") and come back after that interval, so a
binding added later lets them go without an operator. With DEFAULT_UNROUTABLE_MESSAGES = "send" they go
anyway, with a warning. When the API cannot answer the relay keeps sending and warns (once per interval).
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from django_outbox_pattern import conf, exceptions
from django_outbox_pattern.broker import management
from django_outbox_pattern.core import observer as observing

logger = logging.getLogger(__name__)

MAX_EXCHANGE_HOPS = 5  # exchange-to-exchange bindings followed at most this deep


@dataclasses.dataclass(frozen=True)
class Verdict:
    """``routable``: True, False, or None when it cannot be told; ``detail`` says why."""

    destination: str
    routable: bool | None
    detail: str


@functools.lru_cache(maxsize=4096)
def topic_matches(pattern: str, key: str) -> bool:
    """AMQP topic matching: words split on ".", ``*`` is exactly one word, ``#`` zero or more."""
    return _match(tuple(pattern.split(".")), tuple(key.split(".")))


def _match(pattern: tuple[str, ...], words: tuple[str, ...]) -> bool:
    if not pattern:
        return not words
    head, rest = pattern[0], pattern[1:]
    if head == "#":
        return any(_match(rest, words[i:]) for i in range(len(words) + 1))
    if not words:
        return False
    return (head == "*" or head == words[0]) and _match(rest, words[1:])


class RouteInspector:
    """Answers ``check(destination)`` from the management API; raises ``ManagementError`` (or its
    ``ManagementUnavailable``) when the API cannot answer."""

    def __init__(self, client: management.ManagementClient) -> None:
        self.client = client

    def check(self, destination: str) -> Verdict:
        if destination.startswith("/topic/"):
            key = destination[len("/topic/") :]
            return self._exchange(destination, "amq.topic", key, "topic")
        if destination.startswith("/exchange/"):
            name, _, key = destination[len("/exchange/") :].partition("/")
            kind = self.client.exchange_type(name)
            if kind is None:
                return Verdict(destination, False, f"exchange {name!r} does not exist")
            return self._exchange(destination, name, key, kind)
        if destination.startswith("/queue/"):
            return Verdict(destination, True, "a SEND to /queue/ declares the queue when it is missing")
        if destination.startswith("/amq/queue/") or not destination.startswith("/"):
            queue = destination[len("/amq/queue/") :] if destination.startswith("/") else destination
            if self.client.queue_exists(queue):
                return Verdict(destination, True, f"queue {queue!r} exists")
            return Verdict(destination, False, f"queue {queue!r} does not exist")
        return Verdict(destination, None, "this kind of destination is not checked")

    def _exchange(self, destination: str, exchange: str, key: str, kind: str) -> Verdict:
        queues = self._queues(exchange, key, kind, hops=0, seen=set())
        if queues is None:
            return Verdict(destination, None, f"{exchange!r} is a {kind} exchange: routing is not checked")
        if queues:
            shown = ", ".join(sorted(queues)[:3]) + (", ..." if len(queues) > 3 else "")
            return Verdict(destination, True, f"routed to {len(queues)} queue(s): {shown}")
        return Verdict(destination, False, f"no queue bound to {exchange!r} matches routing key {key!r}")

    def _queues(self, exchange: str, key: str, kind: str, *, hops: int, seen: set[str]) -> set[str] | None:
        """The queues ``key`` reaches from ``exchange``; None when that cannot be told."""
        if kind not in ("topic", "direct", "fanout"):
            return None
        seen.add(exchange)
        found: set[str] = set()
        for binding in self.client.bindings_from(exchange):
            if not _binding_matches(kind, binding.routing_key, key):
                continue
            if binding.destination_type == "queue":
                found.add(binding.destination)
            elif binding.destination not in seen and hops < MAX_EXCHANGE_HOPS:
                inner = self.client.exchange_type(binding.destination)
                reached = self._queues(binding.destination, key, inner or "", hops=hops + 1, seen=seen)
                if reached is None and not found:
                    return None
                found |= reached or set()
        return found


def _binding_matches(kind: str, binding_key: str, key: str) -> bool:
    if kind == "fanout":
        return True
    if kind == "direct":
        return binding_key == key
    return topic_matches(binding_key, key)


Row = Any  # relaying.store.OutboxRow: anything with ``id`` and ``destination``


class RoutingGate:
    """The relay's routing collaborator: caches verdicts and holds rows no queue would receive."""

    def __init__(
        self,
        inspector: RouteInspector,
        *,
        settings: conf.OutboxSettings,
        observer: observing.Observer | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.inspector = inspector
        self.hold = settings.DEFAULT_UNROUTABLE_MESSAGES == "hold"
        self.interval_s = settings.DEFAULT_ROUTING_CHECK_INTERVAL
        self.observer = observer or observing.NullObserver()
        self._clock = clock
        self._cache: dict[str, tuple[float, Verdict]] = {}
        self._api_down_until = 0.0

    def verdict(self, destination: str) -> Verdict:
        """The cached verdict, checked again once it is DEFAULT_ROUTING_CHECK_INTERVAL old."""
        now = self._clock()
        cached = self._cache.get(destination)
        if cached is not None and cached[0] > now:
            return cached[1]
        if now < self._api_down_until:
            return Verdict(destination, None, "the management API is unreachable")
        try:
            verdict = self.inspector.check(destination)
        except exceptions.ManagementError as exc:
            self._api_down_until = now + self.interval_s  # no call per destination while it is down
            logger.warning(
                "Cannot check the routing of %s, sending anyway: %s",
                destination,
                exc,
                extra={"action": "relay_routing_unknown", "destination": destination},
            )
            return Verdict(destination, None, str(exc))
        self._cache[destination] = (now + self.interval_s, verdict)
        return verdict

    def partition(self, rows: Sequence[Row]) -> tuple[list[Row], dict[str, list[Row]]]:
        """(rows to send, {"no queue bound to ...": rows to hold}); with the "send" policy none is held."""
        send: list[Row] = []
        held: dict[str, list[Row]] = defaultdict(list)
        unroutable: dict[str, tuple[Verdict, int]] = {}
        for row in rows:
            verdict = self.verdict(row.destination)
            if verdict.routable is False:
                unroutable[row.destination] = (verdict, unroutable.get(row.destination, (verdict, 0))[1] + 1)
                if self.hold:
                    held[f"no queue bound to {row.destination}: held ({verdict.detail})"].append(row)
                    continue
            send.append(row)
        for destination, (verdict, count) in unroutable.items():
            self._report(destination, count, verdict)
        return send, dict(held)

    def retry_at(self, now: datetime.datetime) -> datetime.datetime:
        """When held rows are due again: once their verdict is stale and will be checked again."""
        return now + datetime.timedelta(seconds=self.interval_s)

    def _report(self, destination: str, count: int, verdict: Verdict) -> None:
        observing.report(self.observer, "destination_unroutable", destination, count, self.hold)
        logger.warning(
            "No queue is bound to %s (%s): %d row(s) %s",
            destination,
            verdict.detail,
            count,
            f"held, checked again in {self.interval_s:g}s"
            if self.hold
            else "sent anyway: the broker drops them",
            extra={
                "action": "relay_destination_held" if self.hold else "relay_destination_unroutable",
                "destination": destination,
                "count": count,
            },
        )


def build_gate(
    settings: conf.OutboxSettings, observer: observing.Observer | None = None
) -> RoutingGate | None:
    """The gate for DEFAULT_RABBITMQ_MANAGEMENT_URL, or None when the management API is not configured."""
    client = management.ManagementClient.from_settings(settings)
    if client is None:
        return None
    return RoutingGate(RouteInspector(client), settings=settings, observer=observer)
