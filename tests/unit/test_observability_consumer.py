"""The consumer reports to its observer (over the in-memory broker): up/down, outcomes, heartbeats, spans."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from django_outbox_pattern import conf, payloads, tracing
from django_outbox_pattern.consuming import consumer
from django_outbox_pattern.core import observer as observing
from django_outbox_pattern.ops import health, metrics
from django_outbox_pattern.testing import MemoryInbox
from tests.support.memory import TransportFactory
from tests.support.otel import span_exporter
from tests.support.runner import running, wait_until
from tests.unit.test_observability import Recorder

DEST = "/queue/observed"


def make(callback: Any, factory: TransportFactory, observer: observing.Observer) -> consumer.Consumer:
    settings = dataclasses.replace(
        conf.OutboxSettings(), DEFAULT_RETRY_BASE_DELAY=0.01, DEFAULT_RECEIPT_TIMEOUT=2
    )
    return consumer.Consumer(
        callback, DEST, settings=settings, transport_factory=factory, store=MemoryInbox(), observer=observer
    )


def by_id(payload: payloads.Payload) -> None:
    if payload.msg_id.startswith("bad"):
        payload.nack()
    elif payload.msg_id.startswith("boom"):
        raise ValueError("broken")
    else:
        payload.save()


def events(recorder: Recorder, name: str) -> list[tuple[Any, ...]]:
    return [args for event, args in recorder.calls if event == name]


def test_the_consumer_reports_every_outcome() -> None:
    factory, recorder = TransportFactory(), Recorder()
    c = make(by_id, factory, recorder)
    with running(c):
        assert events(recorder, "consumer_up") == [(True,)]
        for msg_id in ("ok-1", "ok-2", "bad-1", "boom-1", "ok-1"):
            factory.broker.publish(DEST, "{}", {"dop-msg-id": msg_id})
        assert wait_until(lambda: sum(dataclasses.astuple(c.stats)) >= 6)
    assert c.stats == consumer.ConsumerStats(processed=2, duplicates=1, nacked=2, errors=1)
    assert len(events(recorder, "consumed")) == 2
    assert len(events(recorder, "duplicate_discarded")) == 1
    assert len(events(recorder, "consumer_nacked")) == 2
    assert events(recorder, "consumer_up")[-1] == (False,)
    assert events(recorder, "heartbeat")


def test_a_lost_connection_reports_the_consumer_down_then_up_again() -> None:
    factory, recorder = TransportFactory(), Recorder()
    c = make(by_id, factory, recorder)
    with running(c):
        factory.connected()[0].close_abruptly()
        assert wait_until(lambda: c.stats.reconnects == 1)
        assert wait_until(lambda: events(recorder, "consumer_up")[-1] == (True,))
    assert events(recorder, "consumer_up")[:3] == [(True,), (False,), (True,)]


def test_an_observer_that_raises_never_stops_the_consumer() -> None:
    class Broken(observing.NullObserver):
        def consumed(self) -> None:
            raise RuntimeError("exporter down")

        def heartbeat(self) -> None:
            raise RuntimeError("disk full")

    factory = TransportFactory()
    c = make(by_id, factory, Broken())
    with running(c):
        for n in range(3):
            factory.broker.publish(DEST, "{}", {"dop-msg-id": f"ok-{n}"})
        assert wait_until(lambda: c.stats.processed == 3)


def test_metrics_and_heartbeat_file_follow_the_consumer(tmp_path: Path) -> None:
    factory = TransportFactory()
    outbox_metrics = metrics.OutboxMetrics(
        registry=CollectorRegistry(), backlog=metrics.BacklogCollector(object)
    )
    heartbeat = tmp_path / "consumer.alive"
    observer = observing.MultiObserver(
        outbox_metrics, health.HeartbeatObserver(heartbeat, component="consumer")
    )
    c = make(by_id, factory, observer)
    with running(c):
        factory.broker.publish(DEST, "{}", {"dop-msg-id": "ok-1"})
        assert wait_until(lambda: c.stats.processed == 1)
        assert outbox_metrics.registry.get_sample_value("outbox_consumer_up") == 1
        assert health.read_heartbeat(heartbeat, max_age_s=5).ok
    assert outbox_metrics.registry.get_sample_value("outbox_messages_consumed_total") == 1
    assert outbox_metrics.registry.get_sample_value("outbox_consumer_up") == 0


@pytest.fixture
def exporter() -> Iterator[Any]:
    tracing.reset()
    yield span_exporter()
    tracing.reset()


def test_the_callback_runs_inside_a_span_continuing_the_message_trace(exporter: Any) -> None:
    from opentelemetry import trace

    seen: list[Any] = []

    def callback(payload: payloads.Payload) -> None:
        seen.append(trace.get_current_span().get_span_context())
        payload.save()

    with trace.get_tracer("tests").start_as_current_span("writer") as writer:
        headers = {**tracing.trace_headers(), "dop-msg-id": "traced-1"}
    factory = TransportFactory()
    c = make(callback, factory, observing.NullObserver())
    with running(c):
        factory.broker.publish(DEST, "{}", headers)
        assert wait_until(lambda: c.stats.processed == 1)
    assert seen[0].trace_id == writer.get_span_context().trace_id
    [span] = [s for s in exporter.get_finished_spans() if s.name == f"{DEST} process"]
    assert span.parent.span_id == writer.get_span_context().span_id
    assert span.context.span_id == seen[0].span_id
