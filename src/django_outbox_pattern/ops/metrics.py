"""Prometheus metrics (optional: ``pip install django-outbox-pattern[metrics]``).

``OutboxMetrics`` is an ``observing.Observer`` that counts what the relay and the consumer report,
plus a collector that measures the backlog (backlog.py) when Prometheus scrapes, cached for a few
seconds so frequent scrapes cost one query pair. ``start_metrics_server()`` serves ``/metrics`` on a
port (loopback by default). Importing this module never fails; using it without prometheus-client
raises ``ConfigurationError`` saying what to install.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from django_outbox_pattern import exceptions
from django_outbox_pattern.ops import labels

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from prometheus_client.registry import Collector

    from django_outbox_pattern.ops.backlog import Backlog

logger = logging.getLogger(__name__)

INSTALL_HINT = "Metrics need prometheus-client: pip install django-outbox-pattern[metrics]"
BACKLOG_CACHE_S = 5.0  # a scrape within this many seconds of the last query reuses its result
RECEIPT_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

_default: OutboxMetrics | None = None
_default_lock = threading.Lock()


def prometheus() -> Any:
    """The prometheus_client module, or ConfigurationError with the install command."""
    try:
        import prometheus_client
    except ImportError as exc:
        raise exceptions.ConfigurationError(INSTALL_HINT) from exc
    return prometheus_client


class BacklogCollector:
    """Yields the backlog gauges on each scrape, re-measuring at most every ``cache_s`` seconds."""

    def __init__(
        self,
        measure: Callable[[], Backlog] | None = None,
        *,
        cache_s: float = BACKLOG_CACHE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._measure = measure or _measure_and_release
        self._cache_s = cache_s
        self._clock = clock
        self._lock = threading.Lock()
        self._cached: tuple[float, Backlog | None] | None = None

    def snapshot(self) -> Backlog | None:
        """The backlog (cached), or None when the database could not be queried."""
        with self._lock:
            now = self._clock()
            if self._cached is not None and now - self._cached[0] < self._cache_s:
                return self._cached[1]
            try:
                value: Backlog | None = self._measure()
            except exceptions.OutboxError as exc:
                logger.warning("Backlog not measured: %s", exc, extra={"action": "backlog_measure_failed"})
                value = None
            self._cached = (now, value)
            return value

    def describe(self) -> Iterator[Any]:
        return iter(self._families(None))

    def collect(self) -> Iterator[Any]:
        return iter(self._families(self.snapshot(), filled=True))

    def _families(self, backlog: Backlog | None, *, filled: bool = False) -> list[Any]:
        prometheus()
        from prometheus_client.core import GaugeMetricFamily

        rows = GaugeMetricFamily(
            "outbox_backlog_messages",
            "Unsent outbox rows by status and destination.",
            labels=["status", "destination"],
        )
        oldest = GaugeMetricFamily(
            "outbox_oldest_pending_age_seconds",
            "Age of the oldest pending outbox row (0 when none): the lag.",
        )
        ok = GaugeMetricFamily("outbox_backlog_up", "1 when the last backlog query succeeded.")
        if filled:
            ok.add_metric([], 0 if backlog is None else 1)
            if backlog is not None:
                for (status, destination), n in sorted(backlog.counts.items()):
                    rows.add_metric([status, destination], n)
                oldest.add_metric([], backlog.oldest_pending_age_s or 0.0)
        return [rows, oldest, ok]


def _measure_and_release() -> Backlog:
    """``backlog.measure()``; off the main thread (a scrape), the thread's DB connection is closed after."""
    from django.db import connections

    from django_outbox_pattern.ops import backlog

    try:
        return backlog.measure()
    finally:
        if threading.current_thread() is not threading.main_thread():
            connections.close_all()


class OutboxMetrics:
    """Counters, gauges and the receipt-latency histogram; an ``observing.Observer``."""

    def __init__(
        self, registry: CollectorRegistry | None = None, *, backlog: BacklogCollector | None = None
    ) -> None:
        client = prometheus()
        self.registry: CollectorRegistry = registry if registry is not None else client.CollectorRegistry()
        counter = _factory(client.Counter, self.registry)
        self.published = counter(
            "outbox_messages_published", "Messages confirmed by the broker (RECEIPT).", ["destination"]
        )
        self.send_failed_total = counter("outbox_messages_send_failed", "Messages sent but not confirmed.")
        self.dead_lettered_total = counter("outbox_messages_dead_lettered", "Outbox rows made FAILED.")
        self.retried_total = counter("outbox_messages_retried", "Outbox rows rescheduled with a backoff.")
        self.consumed_total = counter(
            "outbox_messages_consumed", "Messages the consumer processed and acked."
        )
        self.duplicates_total = counter(
            "outbox_messages_duplicates_discarded", "Messages discarded as already in the inbox."
        )
        self.nacked_total = counter("outbox_messages_nacked", "Messages the consumer nacked.")
        self.receipt_latency = client.Histogram(
            "outbox_receipt_latency_seconds",
            "Seconds from sending a pipelined batch to collecting its RECEIPTs (one observation per batch).",
            buckets=RECEIPT_BUCKETS_S,
            registry=self.registry,
        )
        gauge = _factory(client.Gauge, self.registry)
        self.relay_up_gauge = gauge("outbox_relay_up", "1 while the relay is connected to the broker.")
        self.consumer_up_gauge = gauge("outbox_consumer_up", "1 while the consumer is subscribed.")
        self.unsettled_age_gauge = gauge(
            "outbox_consumer_oldest_unsettled_age_seconds",
            "Age of the consumer's oldest message received and not yet acked or nacked (0 when none).",
        )
        self.unroutable_total = counter(
            "outbox_messages_unroutable",
            "Outbox rows of a destination no queue is bound to: held back, or sent anyway.",
            ["destination", "action"],
        )
        self.heartbeat_gauge = gauge(
            "outbox_last_heartbeat_timestamp_seconds",
            "Unix time of the relay's or consumer's last loop pass.",
        )
        self.backlog = backlog or BacklogCollector()
        self.registry.register(cast("Collector", self.backlog))
        self._destinations: set[str] = set()

    def render(self) -> str:
        """Every metric once, in the Prometheus text format."""
        return str(prometheus().generate_latest(self.registry).decode("utf-8"))

    def _label(self, destination: str) -> str:
        if destination in self._destinations:
            return destination
        if len(self._destinations) >= labels.MAX_DESTINATION_LABELS:
            return labels.OTHER_DESTINATION
        self._destinations.add(destination)
        return destination

    def batch_published(
        self, count: int, destination_counts: Mapping[str, int], receipt_latencies_s: Sequence[float]
    ) -> None:
        for destination, n in destination_counts.items():
            if n:
                self.published.labels(destination=self._label(destination)).inc(n)
        for latency in receipt_latencies_s:
            self.receipt_latency.observe(latency)

    def send_failed(self, count: int, reason: str) -> None:
        self.send_failed_total.inc(count)

    def dead_lettered(self, count: int, reason: str) -> None:
        self.dead_lettered_total.inc(count)

    def retried(self, count: int) -> None:
        self.retried_total.inc(count)

    def consumed(self) -> None:
        self.consumed_total.inc()

    def duplicate_discarded(self) -> None:
        self.duplicates_total.inc()

    def consumer_nacked(self) -> None:
        self.nacked_total.inc()

    def relay_up(self, up: bool) -> None:
        self.relay_up_gauge.set(1 if up else 0)

    def consumer_up(self, up: bool) -> None:
        self.consumer_up_gauge.set(1 if up else 0)

    def heartbeat(self) -> None:
        self.heartbeat_gauge.set_to_current_time()

    def consumer_unsettled_age(self, age_s: float, threshold_s: float) -> None:
        self.unsettled_age_gauge.set(age_s)

    def destination_unroutable(self, destination: str, count: int, held: bool) -> None:
        action = "held" if held else "sent"
        self.unroutable_total.labels(destination=self._label(destination), action=action).inc(count)


def render_backlog() -> str:
    """The backlog gauges measured now, in the Prometheus text format (``outboxctl inspect --metrics``).

    Raises StorageError when the database cannot be queried (a scrape would report outbox_backlog_up 0).
    """
    from django_outbox_pattern.ops import backlog

    client = prometheus()
    measured = backlog.measure()
    registry = client.CollectorRegistry()
    registry.register(cast("Collector", BacklogCollector(lambda: measured)))
    return str(client.generate_latest(registry).decode("utf-8"))


def _factory(kind: Any, registry: CollectorRegistry) -> Callable[..., Any]:
    def make(name: str, documentation: str, labels: Sequence[str] = ()) -> Any:
        return kind(name, documentation, list(labels), registry=registry)

    return make


def default_metrics() -> OutboxMetrics:
    """The process-wide metrics on prometheus_client's default registry (created once)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = OutboxMetrics(registry=prometheus().REGISTRY)
        return _default


def start_metrics_server(
    port: int, *, addr: str = "127.0.0.1", registry: CollectorRegistry | None = None
) -> tuple[Any, threading.Thread]:
    """Serve ``/metrics`` on ``addr:port`` from a daemon thread; returns (server, thread).

    ``port=0`` picks a free port (``server.server_port``). Stop with ``server.shutdown()``.
    Raises ConfigurationError when prometheus-client is missing or the port cannot be bound.
    """
    client = prometheus()
    try:
        server, thread = client.start_http_server(port, addr=addr, registry=registry or client.REGISTRY)
    except OSError as exc:
        raise exceptions.ConfigurationError(
            f"Cannot serve metrics on {addr}:{port} ({exc}): choose a free port with --metrics-port."
        ) from exc
    logger.info(
        "Serving metrics on http://%s:%s/metrics",
        addr,
        server.server_port,
        extra={"action": "metrics_server_started", "port": server.server_port},
    )
    return server, thread
