"""Pure functions building the SUBSCRIBE headers of the consumer's queues (their names and the
destination grammar: core/addressing.py).

The queues are declared with the names, properties and arguments that the 2.x/3.x releases (3.2.1 is the
reference) give them, because RabbitMQ refuses to redeclare a queue with other ``x-`` arguments
(``precondition_failed``) or another ``exclusive`` flag (``resource_locked``) and closes the connection:

- the main queue: ``DEFAULT_STOMP_QUEUE_HEADERS`` (durable, not auto-delete, prefetch), ``exclusive``
  from ``DEFAULT_EXCLUSIVE_QUEUE``, ``x-queue-name: <queue>``, ``x-dead-letter-exchange: ""`` and
  ``x-dead-letter-routing-key: DLQ.<queue>``;
- the dead-letter queue ``DLQ.<queue>``: the same base headers and ``exclusive`` flag,
  ``x-queue-name: DLQ.<queue>``, ``x-dead-letter-exchange: ""`` and
  ``x-dead-letter-routing-key: DLQ.DLQ.DLQ.<queue>`` (three prefixes: what 3.x has always declared).

An exclusive queue (RabbitMQ then also makes it non-durable) lives only as long as the connection that
declared it, so with ``DEFAULT_EXCLUSIVE_QUEUE`` the consumer declares both on its own connection, as 3.x
did. Where the headers are spelled differently from 3.x (``exclusive: true``, not Python's ``True``; the
DLQ addressed as ``/queue/DLQ.<queue>``, not a bare ``DLQ.<queue>``), RabbitMQ declares the same queue.
The settings mapping is never mutated.
"""

from __future__ import annotations

from collections.abc import Mapping

from django_outbox_pattern import conf
from django_outbox_pattern.core import addressing
from django_outbox_pattern.core.addressing import dead_letter_queue


def dead_letter_destination(queue: str) -> str:
    """The destination that declares (and addresses) the dead-letter queue of ``queue``."""
    return f"/queue/{dead_letter_queue(queue)}"


def _base_headers(settings: conf.OutboxSettings, *, exclusive: bool) -> dict[str, str]:
    headers = dict(settings.DEFAULT_STOMP_QUEUE_HEADERS)  # a copy: the settings stay untouched
    headers["exclusive"] = "true" if exclusive else "false"
    return headers


def subscribe_headers(settings: conf.OutboxSettings, queue: str) -> dict[str, str]:
    """SUBSCRIBE headers of the main queue (they also declare it on first use)."""
    headers = _base_headers(settings, exclusive=settings.DEFAULT_EXCLUSIVE_QUEUE)
    headers["x-queue-name"] = queue
    headers["x-dead-letter-exchange"] = ""
    headers["x-dead-letter-routing-key"] = dead_letter_queue(queue)
    return headers


def dead_letter_headers(settings: conf.OutboxSettings, queue: str) -> dict[str, str]:
    """SUBSCRIBE headers that declare ``DLQ.<queue>`` exactly as 3.x did (``DLQ.DLQ.DLQ.<queue>`` too)."""
    dlq = dead_letter_queue(queue)
    headers = _base_headers(settings, exclusive=settings.DEFAULT_EXCLUSIVE_QUEUE)
    headers["x-queue-name"] = dlq
    headers["x-dead-letter-exchange"] = ""
    headers["x-dead-letter-routing-key"] = (
        f"{addressing.DEAD_LETTER_PREFIX}{addressing.DEAD_LETTER_PREFIX}{dlq}"
    )
    return headers


def resume_headers(headers: Mapping[str, str]) -> dict[str, str] | None:
    """SUBSCRIBE headers for ``/amq/queue/<queue>`` after a reconnect, or None when the queue may not
    outlive a connection (exclusive, auto-delete or not durable: declare it again)."""
    lowered = {key.lower(): str(value).lower() for key, value in headers.items()}
    if lowered.get("exclusive") == "true" or lowered.get("auto-delete") == "true":
        return None
    if lowered.get("durable") != "true":
        return None
    return {key: value for key, value in headers.items() if key.lower() == "prefetch-count"}
