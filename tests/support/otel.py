"""One OpenTelemetry SDK tracer provider for the whole test session, recording spans in memory."""

from __future__ import annotations

import threading
from typing import Any

_lock = threading.Lock()
_exporter: Any = None


def span_exporter() -> Any:
    """The session's ``InMemorySpanExporter`` (installed as the global tracer provider once), cleared."""
    global _exporter
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    with _lock:
        if _exporter is None:
            exporter = InMemorySpanExporter()
            provider = TracerProvider()
            provider.add_span_processor(SimpleSpanProcessor(exporter))
            trace.set_tracer_provider(provider)
            _exporter = exporter
    _exporter.clear()
    return _exporter
