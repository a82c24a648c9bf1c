"""``build_consumer()``: the one place a ``Consumer`` and its collaborators are assembled.

The consumer receives its callback, transport factory (``StompTransport`` here), inbox store
(``DatabaseInbox`` over DEFAULT_RECEIVED_CLASS) and observer; the ``subscribe`` commands, outboxctl and the
tests call this factory. A dotted-path callback is imported here, after the destination was checked.
"""

from __future__ import annotations

import dataclasses

from django_outbox_pattern import conf, exceptions
from django_outbox_pattern.broker import transport
from django_outbox_pattern.consuming import consumer, handling, inbox
from django_outbox_pattern.core import addressing
from django_outbox_pattern.core import observer as observing


def import_callback(path: str) -> handling.Callback:
    """The callback named by a dotted path; ``CallbackImportError`` with the reason otherwise."""
    from django.utils.module_loading import import_string

    try:
        func = import_string(path)
    except Exception as exc:  # ImportError, or whatever its module raised while being imported
        raise exceptions.CallbackImportError(
            f"Cannot import the callback {path!r} ({conf.describe_error(exc)}): give a dotted path to a "
            "function, such as `myapp.callbacks.handle`."
        ) from exc
    if not callable(func):
        raise exceptions.CallbackImportError(
            f"{path!r} is not callable: point it at a function taking a Payload."
        )
    return func  # type: ignore[no-any-return]


def build_consumer(
    callback: str | handling.Callback,
    destination: str,
    queue_name: str | None = None,
    *,
    settings: conf.OutboxSettings | None = None,
    observer: observing.Observer | None = None,
) -> consumer.Consumer:
    """A ``Consumer`` over ``StompTransport`` built from the settings (default: the Django settings)."""
    settings = settings or conf.get_settings()
    addressing.queue_name_for(destination, queue_name)  # fail on a bad destination before importing anything
    func = import_callback(callback) if isinstance(callback, str) else callback
    listeners: dict[str, object] = {}  # DEFAULT_CONSUMER_LISTENER_CLASS, on every connection (as 3.x)

    def new_transport() -> transport.StompTransport:
        conn = transport.StompTransport(settings)
        for name, listener in listeners.items():
            conn.set_listener(name, listener)
        return conn

    built = consumer.Consumer(
        func,
        destination,
        queue_name,
        settings=settings,
        transport_factory=new_transport,
        store=inbox.DatabaseInbox(settings=settings),
        observer=observer,
    )
    listener_class = conf.import_object(settings.DEFAULT_CONSUMER_LISTENER_CLASS)
    listeners[f"consumer-listener-{built.subscription_id}"] = listener_class(built)
    return built


def consumer_settings(
    settings: conf.OutboxSettings | None = None, *, batch_size: int | None = None
) -> conf.OutboxSettings:
    """``settings`` (default: Django's) with the ``subscribe`` command's overrides, validated
    (ConfigurationError)."""
    s = settings or conf.get_settings()
    if batch_size is None:
        return s
    checked = conf.OutboxSettings.from_mapping({"DEFAULT_CONSUMER_BATCH_SIZE": batch_size})
    return dataclasses.replace(s, DEFAULT_CONSUMER_BATCH_SIZE=checked.DEFAULT_CONSUMER_BATCH_SIZE)
