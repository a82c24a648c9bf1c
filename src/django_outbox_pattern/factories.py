"""``factory_producer()``, ``factory_consumer()`` and ``factory_connection()``, as in 3.x.

    with factory_producer() as producer:                      # the 2.0 README's form
        producer.send_event(destination="/topic/orders", body={"id": 1}, headers={"x-tenant": "a"})

``send_event`` waits for the broker's RECEIPT (see producers.py). Prefer the outbox (``Published`` rows)
when the message must be sent if and only if a database transaction commits. ``factory_consumer()``
returns a ``consumers.Consumer``. Each takes optional ``settings`` (default: the Django settings, read
when called).
"""

from __future__ import annotations

from django_outbox_pattern import bases, conf, consumers, producers


def factory_connection(
    use_heartbeats: bool = True, *, settings: conf.OutboxSettings | None = None
) -> bases.Connection:
    """A broker connection handle built from the settings (not connected yet)."""
    return bases.Connection(settings, use_heartbeats=use_heartbeats)


def factory_consumer(*, settings: conf.OutboxSettings | None = None) -> consumers.Consumer:
    """A ``consumers.Consumer``; ``start(callback, destination, queue_name=None)`` subscribes."""
    s = settings or conf.get_settings()
    connection = factory_connection(settings=settings)  # None: read when used, so patches apply
    return consumers.Consumer(connection, s.DEFAULT_STOMP_USERNAME, s.DEFAULT_STOMP_PASSCODE)


def factory_producer(settings: conf.OutboxSettings | None = None) -> producers.Producer:
    """A ``producers.Producer`` (no heart-beats, as 3.x); ``with`` connects it and closes it on exit."""
    s = settings or conf.get_settings()
    connection = factory_connection(use_heartbeats=False, settings=settings)
    return producers.Producer(connection, s.DEFAULT_STOMP_USERNAME, s.DEFAULT_STOMP_PASSCODE)
