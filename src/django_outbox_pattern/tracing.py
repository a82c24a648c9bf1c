"""OpenTelemetry trace propagation (optional: ``pip install django-outbox-pattern[tracing]``).

One trace spans writer, relay and consumer:

- writer: when a ``Published`` row is created inside an active span, ``trace_headers()`` adds that
  span's context (W3C ``traceparent``/``tracestate``, or whatever propagators are configured) to the
  row's headers (headers.py), so the relay sends them with the message;
- relay: ``relay_batch_span()`` wraps a batch, with a link to each message's trace;
- consumer: ``consumer_span(headers)`` restores the context from the headers and opens a CONSUMER span
  around the callback, so spans of the callback belong to the writer's trace.

Without opentelemetry-api installed (or without a tracer provider, so no span is ever valid) every
function does nothing. The import is tried once; ``reset()`` forgets the result (for tests).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from django_outbox_pattern import __version__
from django_outbox_pattern.core import identity

TRACER_NAME = "django_outbox_pattern"
TRACE_HEADERS = ("traceparent", "tracestate")
MAX_BATCH_LINKS = 128  # links recorded on a relay batch span


@functools.cache
def _api() -> tuple[Any, Any] | None:
    """``(opentelemetry.trace, opentelemetry.propagate)``, or None when OpenTelemetry is not installed."""
    try:
        from opentelemetry import propagate, trace
    except ImportError:
        return None
    return trace, propagate


def reset() -> None:
    """Forget whether OpenTelemetry is importable (tests simulate its absence)."""
    _api.cache_clear()


def available() -> bool:
    return _api() is not None


def trace_headers() -> dict[str, str]:
    """The active span's context as message headers, or {} when there is no valid active span."""
    api = _api()
    if api is None:
        return {}
    trace, propagate = api
    if not trace.get_current_span().get_span_context().is_valid:
        return {}
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return {str(k): str(v) for k, v in carrier.items()}


def _tracer(trace: Any) -> Any:
    return trace.get_tracer(TRACER_NAME, __version__)


@contextlib.contextmanager
def consumer_span(headers: Mapping[str, Any], *, destination: str | None = None) -> Iterator[Any]:
    """Around a consumer callback: a CONSUMER span whose parent is the context carried by ``headers``.

    Yields the span (None without OpenTelemetry). An exception is recorded on the span and re-raised.
    """
    api = _api()
    if api is None:
        yield None
        return
    trace, propagate = api
    carrier = {str(k): str(v) for k, v in headers.items()}
    destination = destination or carrier.get("destination") or carrier.get(identity.DESTINATION_HEADER, "")
    attributes = {
        "messaging.system": "rabbitmq",
        "messaging.operation": "process",
        "messaging.destination.name": destination,
        "messaging.message.id": carrier.get(identity.ID_HEADER, carrier.get(identity.BROKER_ID_HEADER, "")),
    }
    with _tracer(trace).start_as_current_span(
        f"{destination} process",
        context=propagate.extract(carrier),
        kind=trace.SpanKind.CONSUMER,
        attributes=attributes,
    ) as span:
        yield span


@contextlib.contextmanager
def relay_batch_span(message_headers: Sequence[Mapping[str, Any]]) -> Iterator[Any]:
    """Around one relay batch: a PRODUCER span linked to the trace of each message that carries one."""
    api = _api()
    if api is None:
        yield None
        return
    trace, propagate = api
    links: list[Any] = []
    for headers in message_headers:
        if len(links) >= MAX_BATCH_LINKS:
            break
        if not isinstance(headers, Mapping) or "traceparent" not in headers:
            continue
        carrier = {str(k): str(v) for k, v in headers.items()}
        context = trace.get_current_span(propagate.extract(carrier)).get_span_context()
        if context.is_valid:
            links.append(trace.Link(context))
    with _tracer(trace).start_as_current_span(
        "outbox relay batch",
        kind=trace.SpanKind.PRODUCER,
        links=links,
        attributes={"messaging.system": "rabbitmq", "messaging.batch.message_count": len(message_headers)},
    ) as span:
        yield span
