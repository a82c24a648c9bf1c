"""3.x's ``producers.Producer`` (what ``factory_producer()`` returns), over the engine's producer.

Both forms work:

    with factory_producer() as producer:                      # the 2.0 README's form: fails fast
        producer.send_event(destination="/topic/orders", body={"id": 1}, headers={"x-tenant": "a"})

    producer = factory_producer(); producer.start()           # 3.x: start() retries until connected
    attempts = producer.send_event({"id": 1}, "/topic/orders")

``send_event(body, destination, **kwargs)`` and ``send(published)`` send one persistent JSON message and
wait for its RECEIPT (``relaying.producer``); ``kwargs`` are stomp.py's ``send`` arguments (``headers=``,
other keywords become headers). A failed attempt reconnects and tries again with the same ``dop-msg-id``,
pausing as 3.x did (DEFAULT_PAUSE_FOR_RETRY after the third failure, DEFAULT_WAIT_RETRY after each later
one); after DEFAULT_MAXIMUM_RETRY_ATTEMPTS failures ``exceptions.SendNotConfirmed`` (an
``ExceededSendAttemptsException``) is raised. The return value is 3.x's: the failed attempts before the
confirmed one (0 when the first was confirmed).
"""

from __future__ import annotations

import logging
import uuid
from types import TracebackType
from typing import Any

from django_outbox_pattern import bases, conf, exceptions, tracing
from django_outbox_pattern.core import identity
from django_outbox_pattern.relaying import assembly
from django_outbox_pattern.relaying import producer as engine
from django_outbox_pattern.relaying import relay as relaying

logger = logging.getLogger(__name__)

_STOMP_SEND_ARGUMENTS = frozenset({"receipt", "transaction"})  # owned by the engine: dropped


class Producer(bases.Base):
    """``start``, ``stop``, ``send(published)``, ``send_event(body, destination, **kwargs)``."""

    def __init__(self, connection: bases.Connection, username: str | None, passcode: str | None) -> None:
        super().__init__(connection, username, passcode)
        s = connection.settings()
        self.listener_name = f"producer-listener-{uuid.uuid4().hex}"
        self.listener_class = conf.import_object(s.DEFAULT_PRODUCER_LISTENER_CLASS)
        self.published_class = conf.import_object(s.DEFAULT_PUBLISHED_CLASS)
        self.set_listener(self.listener_name, self.listener_class(self))
        self._relay: relaying.Relay | None = None

    def __enter__(self) -> Producer:
        self.connect_once()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Connect, retrying until the broker answers (as 3.x)."""
        self._stopping.clear()
        self.connect()

    def connect_once(self) -> None:
        """Connect with one attempt; raises exceptions.ConnectionFailed."""
        self.connection.connect(**self._credentials)

    def stop(self) -> None:
        """Disconnect; never raises."""
        self._stopping.set()
        if self._relay is not None:
            self._relay.close()
        self._disconnect()

    close = stop  # this project's 2.x name

    def send(self, message: Any, **kwargs: Any) -> int:
        """Send a ``Published`` row's body to its destination with its headers; returns failed attempts."""
        arguments = {"headers": message.headers, **kwargs}
        return self._send_with_retry(message.body, message.destination, arguments)

    def send_event(self, body: Any, destination: str, **kwargs: Any) -> int:
        """Send ``body`` as JSON to ``destination``; returns the failed attempts before the confirmed one."""
        return self._send_with_retry(body, destination, kwargs)

    def _send_with_retry(self, body: Any, destination: str, arguments: dict[str, Any]) -> int:
        s = self.connection.settings()
        message = engine.encode(destination, body, _frame_headers(arguments))  # UnsendableMessage at once
        attempts, error = 0, ""
        while attempts < s.DEFAULT_MAXIMUM_RETRY_ATTEMPTS:
            try:
                if not self.is_connected():
                    self.connect_once()
                sender = engine.Producer(
                    self.connection._require(), receipt_timeout=s.DEFAULT_RECEIPT_TIMEOUT
                )
                outcome = sender.send_many([message], one_at_a_time=True)
                if outcome.confirmed:
                    return attempts
                error = outcome.error
            except exceptions.TransportError as exc:
                error = str(exc)
            attempts += 1
            self._disconnect()  # the next attempt starts on a new connection
            logger.warning(
                "Attempt %s to send to %s failed: %s",
                attempts,
                destination,
                error,
                extra={"action": "facade_send_failed", "destination": destination, "attempt": attempts},
            )
            if attempts < s.DEFAULT_MAXIMUM_RETRY_ATTEMPTS and attempts >= 3:
                pause = s.DEFAULT_PAUSE_FOR_RETRY if attempts == 3 else s.DEFAULT_WAIT_RETRY
                if self._stopping.wait(pause):
                    break
        raise exceptions.SendNotConfirmed(
            attempts,
            f"The broker did not confirm the message to {destination!r} after {attempts} attempts ({error}): "
            "it may not have been stored; send it again (consumers deduplicate by dop-msg-id).",
        )

    def publish_message_from_database(self) -> None:
        """One pass of the relay (3.x's ``manage.py publish`` loop body): send the due rows, then wait
        DEFAULT_PRODUCER_WAITING_TIME when there were none. Broker and database errors are logged."""
        s = self.connection.settings(**self._credentials)
        if self._relay is None:
            self._relay = assembly.build_relay(s)
        try:
            handled = self._relay.run_once()
        except (exceptions.TransportConnectionError, exceptions.StorageError) as exc:
            logger.warning("Relay pass failed: %s", exc, extra={"action": "facade_relay_failed"})
            handled = 0
        if handled == 0:
            self._stopping.wait(s.DEFAULT_PRODUCER_WAITING_TIME)


def _frame_headers(arguments: dict[str, Any]) -> dict[str, Any]:
    """stomp.py ``send`` arguments as message headers: ``headers=`` plus the other keywords."""
    extra = {k: v for k, v in arguments.items() if k not in _STOMP_SEND_ARGUMENTS and k != "headers"}
    if "content_type" in extra:
        extra["content-type"] = extra.pop("content_type")
    merged = {**tracing.trace_headers(), **(arguments.get("headers") or {}), **extra}
    merged.setdefault(identity.ID_HEADER, uuid.uuid4().hex)
    return merged
