"""Pure functions building the SUBSCRIBE headers of the consumer's queues (their names and the
destination grammar: core/addressing.py).

The headers are byte-compatible with the queues that the 2.x/3.x releases declared, because RabbitMQ
refuses to redeclare a queue with different ``x-`` arguments (``precondition_failed``) and closes the
connection:

- the main queue: ``DEFAULT_STOMP_QUEUE_HEADERS`` (durable, not auto-delete, prefetch), ``exclusive``
  from ``DEFAULT_EXCLUSIVE_QUEUE``, ``x-queue-name: <queue>``, ``x-dead-letter-exchange: ""`` and
  ``x-dead-letter-routing-key: DLQ.<queue>``;
- the dead-letter queue ``DLQ.<queue>``: the same base headers, ``x-queue-name: DLQ.<queue>``,
  ``x-dead-letter-exchange: ""`` and ``x-dead-letter-routing-key: DLQ.DLQ.<queue>``.

The DLQ is always declared non-exclusive: an exclusive queue is deleted with the connection that
declared it, which would silently drop every dead letter (``exclusive`` is a queue property, not an
``x-`` argument, so this never causes ``precondition_failed``). The settings mapping is never mutated.
"""

from __future__ import annotations

from django_outbox_pattern import conf
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
    """SUBSCRIBE headers that declare ``DLQ.<queue>`` exactly as earlier releases did (never exclusive)."""
    dlq = dead_letter_queue(queue)
    headers = _base_headers(settings, exclusive=False)
    headers["x-queue-name"] = dlq
    headers["x-dead-letter-exchange"] = ""
    headers["x-dead-letter-routing-key"] = dead_letter_queue(dlq)
    return headers
