"""Trace context captured into outbox rows and restored around callbacks; nothing without OpenTelemetry."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode

from django_outbox_pattern import tracing
from django_outbox_pattern.models import Published
from tests.support.otel import span_exporter
from tests.testapp import models as m


@pytest.fixture
def exporter() -> Iterator[Any]:
    tracing.reset()
    yield span_exporter()
    tracing.reset()


def hex_trace_id(span: Any) -> str:
    return f"{span.get_span_context().trace_id:032x}"


def test_no_active_span_means_no_trace_headers(exporter: Any) -> None:
    assert tracing.trace_headers() == {}


@pytest.mark.django_db
def test_a_row_written_inside_a_span_carries_its_trace_context(exporter: Any) -> None:
    tracer = trace.get_tracer("tests")
    with tracer.start_as_current_span("checkout") as span:
        m.MyModel.objects.create(field_one="a", field_two="b")
        Published.objects.create(destination="/queue/x", body={"n": 1})
    Published.objects.create(destination="/queue/untraced", body={"n": 2})
    traced = list(Published.objects.exclude(destination="/queue/untraced"))
    assert len(traced) == 2
    context = span.get_span_context()
    for row in traced:
        version, trace_id, span_id, _flags = row.headers["traceparent"].split("-")
        assert (version, trace_id, span_id) == ("00", f"{context.trace_id:032x}", f"{context.span_id:016x}")
    assert "traceparent" not in Published.objects.get(destination="/queue/untraced").headers


@pytest.mark.django_db
def test_a_traceparent_given_by_the_writer_wins(exporter: Any) -> None:
    mine = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    with trace.get_tracer("tests").start_as_current_span("other"):
        row = Published.objects.create(destination="/queue/x", body={}, headers={"traceparent": mine})
    assert row.headers["traceparent"] == mine


def test_the_consumer_span_continues_the_writers_trace(exporter: Any) -> None:
    tracer = trace.get_tracer("tests")
    with tracer.start_as_current_span("writer") as writer:
        headers = {**tracing.trace_headers(), "dop-msg-id": "m-1", "destination": "/queue/orders"}
    with tracing.consumer_span(headers) as span:
        assert span is not None
        with tracer.start_as_current_span("inside the callback"):
            pass
    finished = {s.name: s for s in exporter.get_finished_spans()}
    consumer = finished["/queue/orders process"]
    assert consumer.kind is SpanKind.CONSUMER
    assert hex_trace_id(consumer) == hex_trace_id(writer)
    assert consumer.parent is not None and consumer.parent.span_id == writer.get_span_context().span_id
    assert consumer.attributes["messaging.message.id"] == "m-1"
    assert consumer.attributes["messaging.destination.name"] == "/queue/orders"
    inner = finished["inside the callback"]
    assert inner.parent is not None and inner.parent.span_id == consumer.context.span_id


def test_a_callback_error_is_recorded_on_the_span_and_raised(exporter: Any) -> None:
    with pytest.raises(ValueError, match="bad message"), tracing.consumer_span({"destination": "/queue/q"}):
        raise ValueError("bad message")
    [span] = exporter.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert [e.name for e in span.events] == ["exception"]
    assert span.parent is None  # no context in the headers: a new trace


def test_a_relay_batch_span_links_to_each_traced_message(exporter: Any) -> None:
    tracer = trace.get_tracer("tests")
    contexts = []
    rows: list[dict[str, Any]] = []
    for name in ("first", "second"):
        with tracer.start_as_current_span(name) as span:
            contexts.append(span.get_span_context())
            rows.append(tracing.trace_headers())
    rows.append({"dop-msg-id": "untraced"})
    with tracing.relay_batch_span(rows):
        pass
    batch = next(s for s in exporter.get_finished_spans() if s.name == "outbox relay batch")
    assert batch.kind is SpanKind.PRODUCER
    assert batch.attributes["messaging.batch.message_count"] == 3
    assert [link.context.trace_id for link in batch.links] == [c.trace_id for c in contexts]


@pytest.mark.django_db
def test_without_opentelemetry_nothing_changes(exporter: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    with trace.get_tracer("tests").start_as_current_span("active but invisible"):
        monkeypatch.setitem(sys.modules, "opentelemetry", None)  # `import opentelemetry` now fails
        tracing.reset()
        assert not tracing.available()
        assert tracing.trace_headers() == {}
        row = Published.objects.create(destination="/queue/x", body={"n": 1})
    assert not any(key.startswith("trace") for key in row.headers)
    ran = []
    with tracing.consumer_span(
        {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
    ) as s:
        ran.append(s)
    with tracing.relay_batch_span([row.headers]) as batch:
        ran.append(batch)
    assert ran == [None, None]
