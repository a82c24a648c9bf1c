"""The relay reports to its observer (over the in-memory broker): batches, failures, up/down, heartbeats."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from django_outbox_pattern import tracing
from django_outbox_pattern.choices import StatusChoice
from django_outbox_pattern.core import observer as observing
from django_outbox_pattern.models import Published
from django_outbox_pattern.relaying import relay
from django_outbox_pattern.testing import MemoryBroker, MemoryTransport
from tests.support.otel import span_exporter
from tests.support.relay_helpers import RelayThread, make_relay, make_rows, make_settings, past, wait_until
from tests.unit.test_observability import Recorder

pytestmark = pytest.mark.django_db


def observed_relay(broker: MemoryBroker, recorder: observing.Observer, **overrides: Any) -> relay.Relay:
    settings = make_settings(**{"DEFAULT_RECEIPT_TIMEOUT": 0.05, **overrides})
    return make_relay(settings, MemoryTransport(broker), observer=recorder)


def events(recorder: Recorder, name: str) -> list[tuple[Any, ...]]:
    return [args for event, args in recorder.calls if event == name]


def test_a_confirmed_batch_is_reported_with_its_destinations_and_latency() -> None:
    broker, recorder = MemoryBroker(), Recorder()
    make_rows("/queue/a", 3)
    make_rows("/queue/b", 2)
    engine = observed_relay(broker, recorder)
    assert engine.run_once() == 5
    [(count, destinations, latencies)] = events(recorder, "batch_published")
    assert count == 5
    assert destinations == {"/queue/a": 3, "/queue/b": 2}
    assert len(latencies) == 1 and 0 <= latencies[0] < 5
    assert events(recorder, "relay_up") == [(True,)]
    assert not events(recorder, "send_failed") and not events(recorder, "dead_lettered")


def test_unconfirmed_rows_are_reported_failed_and_retried() -> None:
    broker, recorder = MemoryBroker(), Recorder()
    broker.withhold_receipts = True
    make_rows("/queue/a", 2)
    engine = observed_relay(broker, recorder, DEFAULT_RETRY_BASE_DELAY=30, DEFAULT_WAIT_RETRY=60)
    engine.run_once()
    [(failed, reason)] = events(recorder, "send_failed")
    assert failed == 2 and "RECEIPT" in reason
    assert events(recorder, "retried") == [(2,)]
    [(published, destinations, _)] = events(recorder, "batch_published")
    assert (published, destinations) == (0, {})


def test_dead_letters_are_reported_from_batches_and_from_the_expiry_sweep() -> None:
    broker, recorder = MemoryBroker(), Recorder()
    Published.objects.create(destination="/nope/x", body={})
    make_rows("/queue/a", 2, expires_at=past())
    engine = observed_relay(broker, recorder)
    engine.run_once()
    dead = events(recorder, "dead_lettered")
    assert [count for count, _ in dead] == [2, 1]  # the expiry sweep, then the unsendable row of the batch
    assert dead[0][1].startswith("expired")
    assert Published.objects.filter(status=StatusChoice.FAILED).count() == 3


def test_the_relay_reports_down_and_keeps_its_heartbeat_while_the_broker_is_down(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(relay, "HEARTBEAT_EVERY_S", 0.02)
    broker, recorder = MemoryBroker(), Recorder()
    engine = observed_relay(broker, recorder, DEFAULT_MAXIMUM_BACKOFF=30)
    monkeypatch.setattr(relay, "CONNECT_BACKOFF_BASE_S", 30.0)  # one long wait after the first failure
    broker.down = True
    thread = RelayThread(engine)
    thread.start()
    try:
        assert wait_until(lambda: len(events(recorder, "heartbeat")) >= 10, timeout=10)
        assert events(recorder, "relay_up")[0] == (False,)
        assert not events(recorder, "batch_published")
    finally:
        thread.stop()
    assert events(recorder, "relay_up")[-1] == (False,)


def test_a_raising_observer_never_stops_the_relay() -> None:
    class Broken(observing.NullObserver):
        def batch_published(self, *args: Any) -> None:
            raise RuntimeError("exporter down")

    broker = MemoryBroker()
    make_rows("/queue/a", 3)
    engine = observed_relay(broker, Broken())
    assert engine.run_once() == 3
    assert Published.objects.filter(status=StatusChoice.SUCCEEDED).count() == 3


@pytest.fixture
def exporter() -> Iterator[Any]:
    tracing.reset()
    yield span_exporter()
    tracing.reset()


def test_a_relay_batch_span_links_to_the_writers_trace(exporter: Any) -> None:
    from opentelemetry import trace

    with trace.get_tracer("tests").start_as_current_span("writer") as writer:
        row = Published.objects.create(destination="/queue/traced", body={})
    broker = MemoryBroker()
    engine = observed_relay(broker, observing.NullObserver())
    assert engine.run_once() == 1
    [sent] = broker.sent
    assert sent.headers["traceparent"] == row.headers["traceparent"]
    [batch] = [s for s in exporter.get_finished_spans() if s.name == "outbox relay batch"]
    assert [link.context.trace_id for link in batch.links] == [writer.get_span_context().trace_id]
