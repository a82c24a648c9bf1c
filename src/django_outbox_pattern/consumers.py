"""3.x's ``consumers.Consumer``: a non-blocking consumer for custom runners and tests, over the engine.

    consumer = factory_consumer()
    consumer.start(callback, "/topic/orders.v1", "orders")  # returns once subscribed
    ...
    consumer.stop()

``start()`` runs the engine's ``consuming.consumer.Consumer`` (the one ``manage.py subscribe`` runs: its
DLQ declaration, hand-off queue, worker thread, inbox, retries and reconnects) in a background thread and
returns once the broker confirmed the subscription; like 3.x it keeps trying while the broker is down.
The callback gets a ``Payload`` whose ``connection`` is this consumer's ``connection``.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from typing import Any

from django_outbox_pattern import bases, conf, exceptions, payloads
from django_outbox_pattern.consuming import consumer as engine
from django_outbox_pattern.consuming import inbox

logger = logging.getLogger(__name__)

READY_POLL_S = 0.25  # how often start() checks that the engine thread is still alive


class Consumer(bases.Base):
    """``start(callback, destination, queue_name=None)``, ``stop()``, ``is_connected()`` (see above)."""

    def __init__(self, connection: bases.Connection, username: str | None, passcode: str | None) -> None:
        super().__init__(connection, username, passcode)
        s = connection.settings()
        self.callback: Callable[[payloads.Payload], Any] = lambda p: p
        self.destination: str | None = None
        self.queue_name: str | None = None
        self.listener_name = f"consumer-listener-{uuid.uuid4().hex}"
        self.listener_class = conf.import_object(s.DEFAULT_CONSUMER_LISTENER_CLASS)
        self.received_class = conf.import_object(s.DEFAULT_RECEIVED_CLASS)
        self.subscribe_headers = dict(s.DEFAULT_STOMP_QUEUE_HEADERS)
        self._engine: engine.Consumer | None = None
        self._thread: threading.Thread | None = None
        self.set_listener(self.listener_name, self.listener_class(self))

    @property
    def subscribe_id(self) -> str | None:
        """The subscription's id while started (3.x's listener matches frames' ``subscription`` to it)."""
        return self._engine.subscription_id if self._engine is not None else None

    @property
    def stats(self) -> engine.ConsumerStats | None:
        return self._engine.stats if self._engine is not None else None

    def start(
        self, callback: Callable[[payloads.Payload], Any], destination: str, queue_name: str | None = None
    ) -> None:
        """Subscribe and return; messages go to ``callback`` on a worker thread until ``stop()``."""
        self._stop_engine()
        self.callback, self.destination, self.queue_name = callback, destination, queue_name
        self._stopping.clear()
        settings = self.connection.settings(**self._credentials)
        consumer = engine.Consumer(
            self._deliver,
            destination,
            queue_name,
            settings=settings,
            transport_factory=lambda: self.connection.new_transport(**self._credentials),
            store=inbox.DatabaseInbox(settings.DEFAULT_RECEIVED_CLASS),
        )
        thread = threading.Thread(
            target=consumer.run, name=f"outbox-consumer-facade-{consumer.queue}", daemon=True
        )
        self._engine, self._thread = consumer, thread
        thread.start()
        while not consumer.wait_ready(READY_POLL_S):
            if self._stopping.is_set() or not thread.is_alive():
                raise exceptions.ConnectionClosed(
                    f"The consumer of {destination} stopped before it subscribed."
                )
        logger.info(
            "Consumer started with id: %s",
            consumer.subscription_id,
            extra={"action": "facade_consumer_started", "queue": consumer.queue},
        )

    def _deliver(self, payload: payloads.Payload) -> Any:
        payload.connection = self.connection
        return self.callback(payload)

    def stop(self) -> None:
        """Finish the current message (within DEFAULT_CONSUMER_SHUTDOWN_TIMEOUT), unsubscribe, disconnect."""
        self._stopping.set()
        self._stop_engine()
        self.remove_listener(self.listener_name)  # as 3.x: a later start() runs without it
        self._disconnect()

    def _stop_engine(self) -> None:
        consumer, thread = self._engine, self._thread
        if consumer is not None:
            consumer.stop()
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        self._engine = self._thread = None
