"""One trace from writer to consumer through the real database, relay and RabbitMQ (OpenTelemetry SDK)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import transaction
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from django_outbox_pattern import payloads, tracing
from django_outbox_pattern.models import Published
from tests.support.consumers import make_consumer
from tests.support.otel import span_exporter
from tests.support.relay_helpers import make_relay, make_settings
from tests.support.runner import running, wait_until
from tests.testapp.models import MyModel, Order

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.broker]


@pytest.fixture
def exporter() -> Iterator[Any]:
    tracing.reset()
    yield span_exporter()
    tracing.reset()


def test_the_writers_trace_continues_in_the_consumers_callback(
    exporter: Any, unique_name: str, broker_available: None
) -> None:
    topic = f"/topic/{unique_name}"
    seen: list[Any] = []

    def callback(payload: payloads.Payload) -> None:
        seen.append(trace.get_current_span().get_span_context())
        with transaction.atomic():
            Order.objects.create(msg_id=payload.msg_id, payload=payload.body)
            payload.save()

    tracer = trace.get_tracer("tests")
    with tracer.start_as_current_span("checkout") as writer:
        row = Published.objects.create(destination=topic, body={"order": 1})
    MyModel.objects.create(field_one="outside any span", field_two="")
    assert "traceparent" not in Published.objects.get(destination="/topic/my_route_key").headers
    writer_context = writer.get_span_context()
    assert row.headers["traceparent"].split("-")[1] == f"{writer_context.trace_id:032x}"

    consumer = make_consumer(callback, topic, unique_name)
    with running(consumer):  # subscribed first: the topic's queue exists before the relay sends
        engine = make_relay(make_settings())
        try:
            while engine.run_once():
                pass
        finally:
            engine.close()
        assert wait_until(lambda: consumer.stats.processed == 1, timeout=30)

    [callback_context] = seen
    assert callback_context.trace_id == writer_context.trace_id
    spans = exporter.get_finished_spans()
    [process] = [s for s in spans if s.name == f"{topic} process"]
    assert process.kind is SpanKind.CONSUMER
    assert process.parent is not None and process.parent.span_id == writer_context.span_id
    assert process.context.span_id == callback_context.span_id
    assert process.attributes["messaging.message.id"] == str(row.id)
    batches = [s for s in spans if s.name == "outbox relay batch"]
    linked = {link.context.trace_id for batch in batches for link in batch.links}
    assert writer_context.trace_id in linked
    assert Order.objects.get().msg_id == str(row.id)
