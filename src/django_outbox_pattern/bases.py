"""3.x's ``bases``: ``Base``, the parent of ``consumers.Consumer`` and ``producers.Producer``, and
``Connection``, what ``factories.factory_connection()`` returns in place of 3.x's stomp.py connection.

``Connection`` is a handle that stays the same object for the life of its owner while the engine opens a
new ``StompTransport`` for every (re)connection (never acking a message of an old connection on a new
one). Listeners set on it (``set_listener``) are registered on every transport it opens. It offers the
stomp.py calls 3.x code makes on ``.connection``: ``connect``, ``disconnect``, ``is_connected``, ``send``,
``ack``, ``nack`` and the listener methods.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from typing import Any

from django_outbox_pattern import conf, exceptions
from django_outbox_pattern.broker import transport
from django_outbox_pattern.core import backoff

logger = logging.getLogger(__name__)


class Connection:
    """The broker connection of one Consumer or Producer (see the module docstring)."""

    def __init__(self, settings: conf.OutboxSettings | None = None, *, use_heartbeats: bool = True) -> None:
        self._settings = settings
        self.use_heartbeats = use_heartbeats
        self._listeners: dict[str, Any] = {}
        self.transport: transport.StompTransport | None = None  # the one opened last

    def __repr__(self) -> str:
        return f"<Connection {self.transport!r}>"

    def settings(self, username: str | None = None, passcode: str | None = None) -> conf.OutboxSettings:
        """The settings its transports use: the given ones (default: Django's), 3.x's credentials."""
        s = self._settings or conf.get_settings()
        changes: dict[str, Any] = {}
        if not self.use_heartbeats:
            changes["DEFAULT_STOMP_HEARTBEATS"] = (0, 0)
        if username is not None:
            changes["DEFAULT_STOMP_USERNAME"] = username
        if passcode is not None:
            changes["DEFAULT_STOMP_PASSCODE"] = passcode
        return dataclasses.replace(s, **changes) if changes else s

    def new_transport(
        self, username: str | None = None, passcode: str | None = None
    ) -> transport.StompTransport:
        """A new, unconnected transport with this connection's listeners; it becomes ``transport``."""
        t = transport.StompTransport(self.settings(username, passcode))
        for name, listener in self._listeners.items():
            t.set_listener(name, listener)
        self.transport = t
        return t

    def connect(
        self, username: str | None = None, passcode: str | None = None, wait: bool = True, **kwargs: Any
    ) -> None:
        """Open a new transport unless connected; raises exceptions.ConnectionFailed (one attempt)."""
        if not self.is_connected():
            self.new_transport(username, passcode).connect()

    def disconnect(self, *args: Any, **kwargs: Any) -> None:
        if self.transport is not None:
            self.transport.disconnect()

    def is_connected(self) -> bool:
        return self.transport is not None and self.transport.is_connected()

    def _require(self) -> transport.StompTransport:
        if self.transport is None:
            raise exceptions.ConnectionClosed("Not connected to the broker: call start() first.")
        return self.transport

    def send(
        self,
        destination: str,
        body: Any,
        content_type: str | None = None,
        headers: dict[str, Any] | None = None,
        **keyword_headers: Any,
    ) -> None:
        """stomp.py's ``send``: one SEND, no receipt awaited (``Producer.send_event`` awaits one)."""
        frame_headers = {str(k): str(v) for k, v in {**(headers or {}), **keyword_headers}.items()}
        if content_type:
            frame_headers["content-type"] = content_type
        text = body.decode("utf-8") if isinstance(body, bytes) else str(body)
        self._require().send(destination, text, frame_headers)

    def ack(self, id: str, subscription: str | None = None, *args: Any, **kwargs: Any) -> None:
        self._require().ack(id, subscription or "")

    def nack(
        self,
        id: str,
        subscription: str | None = None,
        *args: Any,
        requeue: bool = False,
        **kwargs: Any,
    ) -> None:
        self._require().nack(id, subscription or "", requeue=requeue)

    def set_listener(self, name: str, listener: Any) -> None:
        self._listeners[name] = listener
        if self.transport is not None:
            self.transport.set_listener(name, listener)

    def get_listener(self, name: str) -> Any:
        return self._listeners.get(name)

    def remove_listener(self, name: str) -> None:
        self._listeners.pop(name, None)
        if self.transport is not None:
            self.transport.remove_listener(name)


class Base:
    """What 3.x's Consumer and Producer share: ``connection``, credentials, listeners, ``connect()``."""

    def __init__(self, connection: Connection, username: str | None, passcode: str | None) -> None:
        self._credentials: dict[str, Any] = {"username": username, "passcode": passcode}
        self.attempts = 0
        self.connection = connection
        self._stopping = threading.Event()

    def connect(self) -> None:
        """Connect, retrying with backoff (capped at DEFAULT_MAXIMUM_BACKOFF) until connected, as 3.x."""
        while not self.is_connected():
            try:
                self.connection.connect(**self._credentials, wait=True)
            except exceptions.TransportError as exc:
                self.attempts += 1
                s = self.connection.settings()
                delay = backoff.compute_backoff(
                    self.attempts, base=max(1.0, s.DEFAULT_RETRY_BASE_DELAY), cap=s.DEFAULT_MAXIMUM_BACKOFF
                )
                logger.warning(
                    "%s could not connect (%s): retrying in %.1fs",
                    type(self).__name__,
                    exc,
                    delay,
                    extra={"action": "facade_connect_failed", "attempt": self.attempts},
                )
                if self._stopping.wait(delay):
                    raise
            else:
                self.attempts = 0

    def is_connected(self) -> bool:
        return self.connection.is_connected()

    def get_listener(self, name: str) -> Any:
        return self.connection.get_listener(name)

    def set_listener(self, name: str, listener: Any) -> None:
        self.connection.set_listener(name, listener)

    def remove_listener(self, name: str) -> None:
        self.connection.remove_listener(name)

    def _disconnect(self) -> None:
        self.connection.disconnect()
