"""``factory_producer()``: the spec's way to send a message directly, without the outbox.

    with factory_producer() as producer:
        producer.send_event(destination="/topic/orders", body={"id": 1}, headers={"x-tenant": "a"})

``send_event`` waits for the broker's RECEIPT and raises exceptions.PublishNotConfirmed when none comes
within DEFAULT_RECEIPT_TIMEOUT. Prefer the outbox (``Published`` rows) when the message must be sent if and
only if a database transaction commits.
"""

from __future__ import annotations

from django_outbox_pattern import conf
from django_outbox_pattern.broker import transport
from django_outbox_pattern.relaying import producer


def factory_producer(settings: conf.OutboxSettings | None = None) -> producer.Producer:
    """A Producer for the configured broker; ``with`` connects it and closes it on exit."""
    s = settings or conf.get_settings()
    return producer.Producer(transport.StompTransport(s), receipt_timeout=s.DEFAULT_RECEIPT_TIMEOUT)
