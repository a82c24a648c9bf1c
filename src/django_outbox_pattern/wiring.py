"""What the settings choose, resolved once per settings object: the one place model classes are resolved.

- ``published_model()``: DEFAULT_PUBLISHED_CLASS, the outbox model every writer and reader uses (the
  ``@publish`` decorator, bulk writes, the relay's store, repairs, inspection, diagnostics, the test kit).
- ``received_model()``: DEFAULT_RECEIVED_CLASS, the inbox model (the consumer, ``Payload``, inspection).
- ``rows_inserted(using)``: what an outbox insert calls to wake the relay: the NOTIFY of
  relaying/notify.py when DEFAULT_RELAY_NOTIFY is on, else nothing.

``conf.get_settings()`` returns a new settings object after every change (``setting_changed``,
outboxctl's bootstrap), so each choice is resolved on first use after a change and never again on the
write path (``Published.save()``, bulk writes). Nothing is imported at module import: models need a ready
app registry.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from django_outbox_pattern import conf

if TYPE_CHECKING:
    from django_outbox_pattern.models import AbstractPublished, AbstractReceived


class Wiring:
    """The choices of one settings object, each resolved on first use."""

    def __init__(self, settings: conf.OutboxSettings) -> None:
        self.settings = settings

    @functools.cached_property
    def published_model(self) -> type[AbstractPublished]:
        model: type[AbstractPublished] = conf.import_object(self.settings.DEFAULT_PUBLISHED_CLASS)
        return model

    @functools.cached_property
    def received_model(self) -> type[AbstractReceived]:
        model: type[AbstractReceived] = conf.import_object(self.settings.DEFAULT_RECEIVED_CLASS)
        return model

    @functools.cached_property
    def wake_relay(self) -> Callable[[str | None], None] | None:
        if self.settings.DEFAULT_RELAY_NOTIFY is False:
            return None
        from django_outbox_pattern.relaying import notify

        return notify.rows_inserted


_lock = threading.Lock()
_current: Wiring | None = None


def wiring(settings: conf.OutboxSettings | None = None) -> Wiring:
    """The wiring of the current settings, kept until they change; other settings: resolved for the caller."""
    global _current
    wanted = conf.get_settings(strict=False)  # the write path never fails because of the settings
    if settings is not None and settings is not wanted:
        return Wiring(settings)
    current = _current
    if current is not None and current.settings is wanted:
        return current
    with _lock:
        if _current is None or _current.settings is not wanted:
            _current = Wiring(wanted)
        return _current


def published_model(settings: conf.OutboxSettings | None = None) -> type[AbstractPublished]:
    """The outbox model class (DEFAULT_PUBLISHED_CLASS)."""
    return wiring(settings).published_model


def received_model(settings: conf.OutboxSettings | None = None) -> type[AbstractReceived]:
    """The inbox model class (DEFAULT_RECEIVED_CLASS)."""
    return wiring(settings).received_model


def rows_inserted(using: str | None) -> None:
    """Outbox rows were inserted on ``using``: wake the relay if DEFAULT_RELAY_NOTIFY asks for it."""
    wake = wiring().wake_relay
    if wake is not None:
        wake(using)


__all__: list[str] = ["Wiring", "published_model", "received_model", "rows_inserted", "wiring"]
