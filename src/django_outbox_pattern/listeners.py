"""Names kept for settings written for 2.x (DEFAULT_*_LISTENER_CLASS).

The stomp.py listener of this project lives in ``transport.py`` and only records frames (it never runs
callbacks or reconnects on the receiver thread). These classes stay importable so that settings naming
them keep validating; the settings are accepted and otherwise have no effect.
"""

from __future__ import annotations

from typing import Any


class BaseListener:
    """An observer of broker frames. Called on stomp.py's receiver thread: it must never block."""

    def __init__(self, owner: Any = None) -> None:
        self.owner = owner

    def on_error(self, frame: Any) -> None:
        """Called for ERROR frames."""

    def on_disconnected(self) -> None:
        """Called when the connection drops."""


class ConsumerListener(BaseListener):
    """Default DEFAULT_CONSUMER_LISTENER_CLASS."""


class ProducerListener(BaseListener):
    """Default DEFAULT_PRODUCER_LISTENER_CLASS."""
