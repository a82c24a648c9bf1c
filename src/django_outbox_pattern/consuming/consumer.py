"""Consumer: a supervisor owning the broker connection, a hand-off queue, and one worker thread.

- stomp.py's receiver thread only puts each MESSAGE on the hand-off queue of the worker thread
  (worker.py), which checks the waiting messages for duplicates in one query and handles them one at a
  time. ``DEFAULT_CONSUMER_PROCESS_MSG_ON_BACKGROUND`` has no effect (system
  check W012): callbacks always run on this worker, never on the receiver thread.
- The supervisor (``run()``) declares ``DLQ.<queue>`` on a short-lived connection (frames that
  subscription receives are requeued when it closes; an exclusive one on its own connection, which owns
  it), connects, subscribes with ``client-individual`` acks, watches the connection and deletes old inbox
  rows. Once a durable queue is declared and bound, a reconnect subscribes to ``/amq/queue/<queue>`` (no
  declaration, no binding): in a cluster with a hung node, declaring and binding wait for that node
  (RabbitMQ's metadata transactions), consuming does not. If the queue is gone meanwhile (``not_found``),
  the next attempt declares everything again. When the connection is lost it reconnects with backoff on a
  *new* transport (the backoff starts over only once a connection stayed up for ``STABLE_CONNECTION_S``):
  messages of the old connection are never acked on the new one (they are dropped, the broker redelivers
  them, and the inbox skips those already saved).
- What happens to each message (dedupe, retries, ACK/NACK) is ``handling.Processor``'s job; it settles
  every message exactly once (settling.py).
- The supervisor also watches the oldest message received and not yet settled: older than
  ``DEFAULT_CONSUMER_STALL_THRESHOLD`` it logs ``consumer_stalled`` (once per message) and reports the age
  to the observer (the ``outbox_consumer_oldest_unsettled_age_seconds`` metric, the health file).
- ``stop()`` (safe from a signal handler) stops taking messages, lets the current callback finish within
  ``DEFAULT_CONSUMER_SHUTDOWN_TIMEOUT``, unsubscribes and disconnects; ``run()`` then returns.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import threading
import time
import uuid
from collections.abc import Callable

from django_outbox_pattern import conf, exceptions
from django_outbox_pattern.broker import hosts, wire
from django_outbox_pattern.consuming import handling, inbox, queues, unsettled, worker
from django_outbox_pattern.core import addressing, backoff
from django_outbox_pattern.core import observer as observing

logger = logging.getLogger(__name__)

WATCH_INTERVAL_S = 0.25  # how often the supervisor checks the connection
# A connection must stay up this long before the reconnect backoff starts over: a broker that accepts the
# SUBSCRIBE and then closes the connection (a queue declared with other arguments) must not cause a tight
# reconnect loop.
STABLE_CONNECTION_S = 10.0
# A subscription that stayed up this long declared its queue for good (RabbitMQ sends a RECEIPT, then an
# ERROR for a queue declared with other arguments): later reconnects subscribe to /amq/queue/<queue>.
DECLARED_AFTER_S = 2.0
PURGE_CHECK_INTERVAL_S = 60.0  # how often the supervisor asks the cache whether retention is due
ACK_MODE = "client-individual"

TransportFactory = Callable[[], wire.Transport]


@dataclasses.dataclass(frozen=True, slots=True)
class ConsumerStats:
    """Counters since ``run()`` started."""

    processed: int = 0  # callbacks that ended with an ACK (saved and committed, or ack())
    duplicates: int = 0  # messages already in the inbox: acked without calling the callback
    nacked: int = 0  # messages sent to DLQ.<queue>
    errors: int = 0  # callbacks that raised (including database errors left after the retries)
    reconnects: int = 0  # broker connections re-established after a loss


class Consumer:
    """Runs ``callback`` for every message of ``destination`` until ``stop()``."""

    def __init__(
        self,
        callback: handling.Callback,
        destination: str,
        queue_name: str | None = None,
        *,
        settings: conf.OutboxSettings,
        transport_factory: TransportFactory,
        store: inbox.InboxStore | None = None,
        observer: observing.Observer | None = None,
    ) -> None:
        self.queue = addressing.queue_name_for(destination, queue_name)
        self._observer = observing.shielded(observer)
        self.destination = destination
        self._settings = settings
        self._new_transport = transport_factory
        self._store = store or inbox.DatabaseInbox(settings=settings)
        self._headers = queues.subscribe_headers(settings, self.queue)
        self._subscription = f"dop-{uuid.uuid4().hex[:12]}"
        self._unsettled = unsettled.Unsettled()
        self._transport: wire.Transport | None = None
        self._stopping = threading.Event()
        self._ready = threading.Event()
        self._lock = threading.Lock()
        self._counts = ConsumerStats()
        self._next_purge = 0.0
        self._subscribed_before = False
        self._declared = False  # the queue and its binding exist (see DECLARED_AFTER_S)
        processor = handling.Processor(
            callback,
            settings=settings,
            store=self._store,
            subscription=self._subscription,
            dead_letter_queue=addressing.dead_letter_queue(self.queue),
            stopping=self._stopping,
            count=self._count,
            on_settled=lambda message, outcome: self._unsettled.remove(message),
        )
        self._worker = worker.Worker(
            processor=processor,
            store=self._store,
            observer=self._observer,
            stopping=self._stopping,
            current=lambda: self._transport,
            queue_name=self.queue,
            unsettled=self._unsettled,
            batch_size=settings.DEFAULT_CONSUMER_BATCH_SIZE,
        )

    def __repr__(self) -> str:
        return f"<Consumer {self.destination} queue={self.queue}>"

    @property
    def stats(self) -> ConsumerStats:
        with self._lock:
            return self._counts

    @property
    def subscription_id(self) -> str:
        return self._subscription

    def _count(self, field: str) -> None:
        with self._lock:
            value = getattr(self._counts, field) + 1
            self._counts = dataclasses.replace(self._counts, **{field: value})
        event = _OBSERVED.get(field)
        if event is not None:
            getattr(self._observer, event)()

    def stop(self) -> None:
        """Ask ``run()`` to finish; only sets an event, so it is safe from a signal handler."""
        self._stopping.set()

    def oldest_unsettled_age(self) -> float:
        """Seconds since the oldest message received on the current connection and not yet settled."""
        return self._unsettled.oldest_age()

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Wait until the subscription is confirmed by the broker (True) or the timeout passes."""
        return self._ready.wait(timeout)

    # --- supervisor -------------------------------------------------------------------------------

    def run(self) -> None:
        """Consume until ``stop()``: connect, subscribe and watch; reconnect with backoff on a loss."""
        thread = threading.Thread(target=self._worker.run, name=f"outbox-consumer-{self.queue}", daemon=True)
        thread.start()
        failures = 0
        try:
            while not self._stopping.is_set():
                opened: float | None = None
                try:
                    self._open()
                    opened = time.monotonic()
                    self._watch()
                except exceptions.TransportError as exc:
                    if opened is not None and time.monotonic() - opened >= STABLE_CONNECTION_S:
                        failures = 0  # the connection worked for a while: a new outage starts over
                    failures += 1
                    self._stopping.wait(self._connection_lost(exc, failures))
        finally:
            self._shutdown(thread)

    def _connection_lost(self, exc: exceptions.TransportError, failures: int) -> float:
        """Report the loss; the backoff before the next connection attempt, in seconds."""
        self._ready.clear()
        self._observer.consumer_up(False)
        s = self._settings
        delay = backoff.compute_backoff(
            failures, base=s.DEFAULT_RETRY_BASE_DELAY, cap=s.DEFAULT_MAXIMUM_BACKOFF
        )
        logger.warning(
            "Consumer of %s has no broker connection (%s): retrying in %.1fs",
            *(self.queue, exc, delay),
            extra={"action": "consumer_connection_lost", "queue": self.queue, "attempt": failures},
        )
        return delay

    def _open(self) -> None:
        """Declare the DLQ, then connect a new transport and subscribe to the destination (on a reconnect,
        to the queue already declared, when it outlives connections)."""
        self._close_transport()
        exclusive = self._settings.DEFAULT_EXCLUSIVE_QUEUE
        resume = queues.resume_headers(self._headers) if self._declared else None  # None for exclusive queues
        if resume is None and not exclusive:
            self._declare_dead_letter_queue(None)
        conn = self._new_transport()
        conn.set_message_handler(functools.partial(self._worker.receive, conn))
        self._worker.drop_stale()
        self._transport = conn
        conn.connect()
        if resume is None:
            if exclusive:
                self._declare_dead_letter_queue(conn)
            self._subscribe(conn, self.destination, self._subscription, self._headers)
        else:
            try:
                self._subscribe(conn, f"/amq/queue/{self.queue}", self._subscription, resume)
            except exceptions.BrokerRejected:
                if "not_found" in str(getattr(conn, "last_error", None) or ""):
                    self._declared = False  # the queue was deleted: declare it again
                raise
        if self._subscribed_before:
            self._count("reconnects")
        self._subscribed_before = True
        self._ready.set()
        self._observer.consumer_up(True)
        broker = hosts.address_of(conn)
        logger.info(
            "Consuming %s from queue %s at %s",
            self.destination,
            self.queue,
            broker,
            extra={
                "action": "consumer_subscribed",
                "queue": self.queue,
                "destination": self.destination,
                "broker": broker,
            },
        )

    def _declare_dead_letter_queue(self, main: wire.Transport | None) -> None:
        """Declare DLQ.<queue> on a connection of its own (closing it requeues anything it was sent), or,
        exclusive, on the consumer's connection ``main`` (it owns the queue, which is new and empty)."""
        conn = main or self._new_transport()
        if main is None:
            conn.connect()
        try:
            headers = queues.dead_letter_headers(self._settings, self.queue)
            self._subscribe(conn, queues.dead_letter_destination(self.queue), "dop-declare", headers)
            if main is not None:
                conn.unsubscribe("dop-declare")
        finally:
            if main is None:
                conn.disconnect()

    def _subscribe(self, conn: wire.Transport, destination: str, sub_id: str, headers: wire.Headers) -> None:
        receipt = wire.new_receipt_id()
        conn.subscribe(destination, sub_id, {**headers, "receipt": receipt}, ack=ACK_MODE)
        confirmed = receipt in conn.wait_for_receipts([receipt], self._settings.DEFAULT_RECEIPT_TIMEOUT)
        if not confirmed or getattr(conn, "last_error", None):  # RabbitMQ may confirm, then send ERROR
            reason = _reason(conn, "no RECEIPT in time")
            raise exceptions.BrokerRejected(
                f"The broker did not confirm SUBSCRIBE to {destination} ({reason})."
            )

    def _watch(self) -> None:
        """Return on stop(); raise ConnectionClosed when the broker connection drops."""
        conn = self._transport
        declared_at = time.monotonic() + DECLARED_AFTER_S
        while not self._stopping.wait(WATCH_INTERVAL_S):
            if conn is None or not conn.is_connected():
                raise exceptions.ConnectionClosed(f"Lost the broker connection ({_reason(conn, 'closed')}).")
            if not self._declared and time.monotonic() >= declared_at:
                self._declared = True
            self._purge_if_due()
            self._report_unsettled()

    def _report_unsettled(self) -> None:
        age = self._unsettled.oldest_age()
        threshold = self._settings.DEFAULT_CONSUMER_STALL_THRESHOLD
        observing.report(self._observer, "consumer_unsettled_age", age, threshold)
        stalled = self._unsettled.newly_stalled(threshold)
        if stalled is not None:
            logger.warning(
                "Consumer of %s has held message %s unsettled for %.0fs (threshold %gs): a stuck callback?",
                self.queue,
                stalled,
                age,
                threshold,
                extra={"action": "consumer_stalled", "queue": self.queue, "age_s": round(age, 1)},
            )

    def _purge_if_due(self) -> None:
        if time.monotonic() < self._next_purge:
            return
        self._next_purge = time.monotonic() + min(
            PURGE_CHECK_INTERVAL_S, max(1, self._settings.REMOVE_DATA_CACHE_TTL)
        )
        inbox.purge_if_due(self._store, self._settings, should_stop=self._stopping.is_set)

    def _close_transport(self) -> None:
        conn, self._transport = self._transport, None
        if conn is not None:
            conn.disconnect()

    def _shutdown(self, worker: threading.Thread) -> None:
        self._stopping.set()
        self._ready.clear()
        self._observer.consumer_up(False)
        worker.join(self._settings.DEFAULT_CONSUMER_SHUTDOWN_TIMEOUT)
        if worker.is_alive():
            logger.warning(
                "The callback did not finish within %ss: disconnecting, the broker redelivers its message",
                self._settings.DEFAULT_CONSUMER_SHUTDOWN_TIMEOUT,
                extra={"action": "consumer_shutdown_timed_out", "queue": self.queue},
            )
        conn = self._transport
        if conn is not None and conn.is_connected():
            with contextlib.suppress(exceptions.TransportError):
                conn.unsubscribe(self._subscription)
        self._close_transport()
        self._store.reset()
        logger.info(
            "Consumer of %s stopped", self.queue, extra={"action": "consumer_stopped", "queue": self.queue}
        )


# ConsumerStats fields reported to the observer, and the Observer method for each.
_OBSERVED = {"processed": "consumed", "duplicates": "duplicate_discarded", "nacked": "consumer_nacked"}


def _reason(conn: wire.Transport | None, default: str) -> str:
    """The broker's last ERROR (with a hint for a queue declared with other arguments), else ``default``."""
    reason = str(getattr(conn, "last_error", None) or default)
    if "precondition_failed" in reason:
        reason += "; the queue exists with other arguments: delete it or use another queue_name"
    return reason
