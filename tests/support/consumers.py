"""Building consumers on the real broker for integration tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django_outbox_pattern import payloads
from django_outbox_pattern.consuming import assembly as consumer_assembly
from django_outbox_pattern.consuming import consumer
from tests.support.stomp_tools import settings_with

FAST = {
    "DEFAULT_RETRY_BASE_DELAY": 0.1,
    "DEFAULT_CONSUMER_RETRY_WAIT": 0.05,
    "DEFAULT_RECEIPT_TIMEOUT": 10,
    "DEFAULT_CONSUMER_SHUTDOWN_TIMEOUT": 10,
}


def make_consumer(
    callback: Callable[[payloads.Payload], Any],
    destination: str,
    queue_name: str | None = None,
    **overrides: Any,
) -> consumer.Consumer:
    """``build_consumer`` with the test settings and short retry waits."""
    return consumer_assembly.build_consumer(
        callback, destination, queue_name, settings=settings_with(**{**FAST, **overrides})
    )
