"""The listener classes of DEFAULT_CONSUMER_LISTENER_CLASS and DEFAULT_PRODUCER_LISTENER_CLASS.

As in 3.x, ``consumers.Consumer`` and ``producers.Producer`` build one with themselves as ``instance``
(``listener_class(self)``) and register it on their connection, so it is called with stomp.py's frames
(``on_connected(frame)``, ``on_message(frame)``, ``on_error(frame)``, ``on_disconnected()``, ...) next to the
project's own listener. The defaults here only log: receiving, acking and reconnecting are the engine's
job, never a listener's. A listener runs on stomp.py's receiver thread: it must return quickly (a slow one
delays heart-beats) and must not reconnect. Message bodies reach it as bytes.
"""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger(__name__)


class BaseListener:
    """An observer of broker frames; every hook does nothing unless overridden."""

    def __init__(self, instance: Any = None) -> None:
        self.instance = instance  # 3.x's name: the Consumer or Producer that registered this listener
        self.owner = instance

    def on_connecting(self, host_and_port: Any) -> None:
        """Called when the TCP connection is being opened."""

    def on_connected(self, frame: Any) -> None:
        """Called for the CONNECTED frame."""
        logger.debug("%s connected", type(self.instance).__name__, extra={"action": "listener_connected"})

    def on_disconnecting(self) -> None:
        """Called before DISCONNECT is sent."""

    def on_disconnected(self) -> None:
        """Called when the connection drops or is closed (the engine reconnects; a listener must not)."""

    def on_heartbeat_timeout(self) -> None:
        """Called when the broker's heart-beats stop."""

    def on_before_message(self, frame: Any) -> None:
        """Called before ``on_message``."""

    def on_message(self, frame: Any) -> None:
        """Called for every MESSAGE frame (the engine hands it to the callback; this only observes)."""

    def on_receipt(self, frame: Any) -> None:
        """Called for RECEIPT frames."""

    def on_error(self, frame: Any) -> None:
        """Called for ERROR frames."""

    def on_send(self, frame: Any) -> None:
        """Called for every frame sent by stomp.py itself."""

    def on_heartbeat(self) -> None:
        """Called for every heart-beat received."""

    def on_receiver_loop_completed(self, frame: Any) -> None:
        """Called when stomp.py's receiver thread ends."""


class ConsumerListener(BaseListener):
    """Default DEFAULT_CONSUMER_LISTENER_CLASS."""


class ProducerListener(BaseListener):
    """Default DEFAULT_PRODUCER_LISTENER_CLASS."""
