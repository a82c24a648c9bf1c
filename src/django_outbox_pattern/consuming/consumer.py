"""Consumer: a supervisor owning the broker connection, a hand-off queue, and one worker thread.

- stomp.py's receiver thread only puts each MESSAGE on the hand-off queue (sized for the prefetch), so
  heartbeats keep flowing however long a callback takes.
- The worker thread takes the messages waiting on the hand-off queue (up to PRECHECK_MAX), looks up in
  one query which of them are in the inbox already, then handles them one at a time: skips a duplicate,
  else builds the ``Payload`` and runs the callback. ``DEFAULT_CONSUMER_PROCESS_MSG_ON_BACKGROUND`` is
  accepted for compatibility: callbacks always run on this worker, never on the receiver thread.
- The supervisor (``run()``) declares ``DLQ.<queue>`` on a short-lived connection (frames that
  subscription receives are requeued when it closes), connects, subscribes with ``client-individual``
  acks, watches the connection and deletes old inbox rows. Once a durable queue is declared and bound, a
  reconnect subscribes to ``/amq/queue/<queue>`` (no declaration, no binding): in a cluster with a hung
  node, declaring and binding wait for that node (RabbitMQ's metadata transactions), consuming does not.
  If the queue is gone meanwhile (``not_found``), the next attempt declares everything again. When the
  connection is lost it reconnects with backoff on a *new* transport (the backoff starts over only once
  a connection stayed up for ``STABLE_CONNECTION_S``): messages of the old connection are never acked
  on the new one (they are dropped, the broker redelivers them, and the inbox skips those already saved).
- What happens to each message (dedupe, retries, ACK/NACK) is ``handling.Processor``'s job.
- ``stop()`` (safe from a signal handler) stops taking messages, lets the current callback finish within
  ``DEFAULT_CONSUMER_SHUTDOWN_TIMEOUT``, unsubscribes and disconnects; ``run()`` then returns.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable

from django_outbox_pattern import conf, exceptions
from django_outbox_pattern.broker import hosts, transport
from django_outbox_pattern.consuming import handling, inbox, queues
from django_outbox_pattern.core import backoff
from django_outbox_pattern.ops import observability

logger = logging.getLogger(__name__)

WATCH_INTERVAL_S = 0.25  # how often the supervisor checks the connection
# A connection must stay up this long before the reconnect backoff starts over: a broker that accepts the
# SUBSCRIBE and then closes the connection (a queue declared with other arguments) must not cause a tight
# reconnect loop.
STABLE_CONNECTION_S = 10.0
# A subscription that stayed up this long declared its queue for good (RabbitMQ sends a RECEIPT, then an
# ERROR for a queue declared with other arguments): later reconnects subscribe to /amq/queue/<queue>.
DECLARED_AFTER_S = 2.0
WORKER_POLL_S = 0.2  # how long the worker waits for a message before checking for stop
PRECHECK_MAX = 50  # messages the worker takes from the hand-off queue per duplicate check (one query)
ACK_FLUSH_S = 0.05  # longest an ACK waits for the end of its run of messages (then all go in one write)
PURGE_CHECK_INTERVAL_S = 60.0  # how often the supervisor asks the cache whether retention is due
ACK_MODE = "client-individual"

Callback = handling.Callback
TransportFactory = Callable[[], transport.Transport]


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
        callback: Callback,
        destination: str,
        queue_name: str | None = None,
        *,
        settings: conf.OutboxSettings,
        transport_factory: TransportFactory,
        store: inbox.InboxStore | None = None,
        observer: observability.Observer | None = None,
    ) -> None:
        self.queue = queues.queue_name_for(destination, queue_name)
        self._observer = observability.shielded(observer)
        self.destination = destination
        self._settings = settings
        self._new_transport = transport_factory
        self._store = store or inbox.DatabaseInbox(settings.DEFAULT_RECEIVED_CLASS)
        self._headers = queues.subscribe_headers(settings, self.queue)
        self._subscription = f"dop-{uuid.uuid4().hex[:12]}"
        self._handoff: queue.Queue[tuple[transport.Transport, transport.Message]] = queue.Queue(
            maxsize=2 * _prefetch(self._headers)  # 0 (unbounded) when the broker's prefetch is unlimited
        )
        self._transport: transport.Transport | None = None
        self._stopping = threading.Event()
        self._ready = threading.Event()
        self._lock = threading.Lock()
        self._counts = ConsumerStats()
        self._next_purge = 0.0
        self._subscribed_before = False
        self._declared = False  # the queue and its binding exist (see DECLARED_AFTER_S)
        self._processor = handling.Processor(
            callback,
            settings=settings,
            store=self._store,
            subscription=self._subscription,
            dead_letter_queue=queues.dead_letter_queue(self.queue),
            stopping=self._stopping,
            count=self._count,
        )

    def __repr__(self) -> str:
        return f"<Consumer {self.destination} queue={self.queue}>"

    @property
    def stats(self) -> ConsumerStats:
        with self._lock:
            return self._counts

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

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Wait until the subscription is confirmed by the broker (True) or the timeout passes."""
        return self._ready.wait(timeout)

    # --- supervisor -------------------------------------------------------------------------------

    def run(self) -> None:
        """Consume until ``stop()``: connect, subscribe and watch; reconnect with backoff on a loss."""
        worker = threading.Thread(target=self._work, name=f"outbox-consumer-{self.queue}", daemon=True)
        worker.start()
        failures = 0
        try:
            while not self._stopping.is_set():
                opened: float | None = None
                try:
                    self._open()
                    opened = time.monotonic()
                    self._watch()
                except exceptions.TransportError as exc:
                    self._ready.clear()
                    self._observer.consumer_up(False)
                    if opened is not None and time.monotonic() - opened >= STABLE_CONNECTION_S:
                        failures = 0  # the connection worked for a while: a new outage starts over
                    failures += 1
                    s = self._settings
                    delay = backoff.compute_backoff(
                        failures, base=s.DEFAULT_RETRY_BASE_DELAY, cap=s.DEFAULT_MAXIMUM_BACKOFF
                    )
                    logger.warning(
                        "Consumer of %s has no broker connection (%s): retrying in %.1fs",
                        self.queue,
                        exc,
                        delay,
                        extra={
                            "action": "consumer_connection_lost",
                            "queue": self.queue,
                            "attempt": failures,
                        },
                    )
                    self._stopping.wait(delay)
        finally:
            self._shutdown(worker)

    def _open(self) -> None:
        """Declare the DLQ, then connect a new transport and subscribe to the destination (on a reconnect,
        to the queue already declared, when it outlives connections)."""
        self._close_transport()
        resume = _resume_headers(self._headers) if self._declared else None
        if resume is None:
            self._declare_dead_letter_queue()
        conn = self._new_transport()
        conn.set_message_handler(functools.partial(self._receive, conn))
        self._drop_stale()
        self._transport = conn
        conn.connect()
        if resume is None:
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

    def _declare_dead_letter_queue(self) -> None:
        """Declare DLQ.<queue> on its own connection; closing it requeues anything it was sent."""
        conn = self._new_transport()
        conn.connect()
        try:
            headers = queues.dead_letter_headers(self._settings, self.queue)
            self._subscribe(conn, queues.dead_letter_destination(self.queue), "dop-declare", headers)
        finally:
            conn.disconnect()

    def _subscribe(
        self, conn: transport.Transport, destination: str, sub_id: str, headers: transport.Headers
    ) -> None:
        receipt = transport.new_receipt_id()
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

    # --- receiver thread --------------------------------------------------------------------------

    def _receive(self, source: transport.Transport, message: transport.Message) -> None:
        """Called on stomp.py's receiver thread: hand the message off, never block."""
        try:
            self._handoff.put_nowait((source, message))
        except queue.Full:  # only if the broker ignored prefetch-count: it redelivers after a reconnect
            logger.error(
                "Hand-off queue of %s is full: message %s left unacknowledged",
                self.queue,
                message.headers.get("message-id", ""),
                extra={"action": "consumer_handoff_overflowed", "queue": self.queue},
            )

    def _drop_stale(self) -> None:
        with contextlib.suppress(queue.Empty):
            while True:
                self._handoff.get_nowait()

    # --- worker thread ----------------------------------------------------------------------------

    def _work(self) -> None:
        while not self._stopping.is_set():
            self._observer.heartbeat()  # from the worker: a callback stuck for good stops the heartbeat
            try:
                run = [self._handoff.get(timeout=WORKER_POLL_S)]
            except queue.Empty:
                continue
            with contextlib.suppress(queue.Empty):  # whatever else is waiting: one duplicate check for all
                while len(run) < PRECHECK_MAX:
                    run.append(self._handoff.get_nowait())
            self._processor.precheck([message for source, message in run if source is self._transport])
            flushed = time.monotonic()
            for source, message in run:
                if self._stopping.is_set():  # the rest stay unacknowledged: the broker redelivers them
                    break
                self._observer.heartbeat()
                if source is not self._transport:  # from a closed connection: the broker redelivers it
                    continue
                try:
                    self._processor.handle(source, message)
                except Exception:  # the worker must survive anything
                    logger.exception(
                        "Unexpected error handling a message", extra={"action": "consumer_worker_failed"}
                    )
                if time.monotonic() - flushed >= ACK_FLUSH_S:  # slow callbacks: no ACK waits long
                    self._flush(source)
                    flushed = time.monotonic()
            self._flush(self._transport)
        self._store.reset()

    def _flush(self, source: transport.Transport | None) -> None:
        """Write the ACKs deferred by the messages handled so far. On a connection that is gone they are
        lost: the broker redelivers those messages and the inbox skips them (only logged)."""
        if source is None or not source.is_connected():
            return
        try:
            source.flush()
        except exceptions.TransportError as exc:
            logger.warning(
                "Could not send ACKs (%s): the broker will redeliver those messages",
                exc,
                extra={"action": "consumer_ack_flush_failed"},
            )


# ConsumerStats fields reported to the observer, and the Observer method for each.
_OBSERVED = {"processed": "consumed", "duplicates": "duplicate_discarded", "nacked": "consumer_nacked"}


def _reason(conn: transport.Transport | None, default: str) -> str:
    """The broker's last ERROR (with a hint for a queue declared with other arguments), else ``default``."""
    reason = str(getattr(conn, "last_error", None) or default)
    if "precondition_failed" in reason:
        reason += "; the queue exists with other arguments: delete it or use another queue_name"
    return reason


def _resume_headers(headers: transport.Headers) -> dict[str, str] | None:
    """SUBSCRIBE headers for ``/amq/queue/<queue>`` after a reconnect, or None when the queue may not
    outlive a connection (exclusive, auto-delete or not durable: declare it again)."""
    lowered = {key.lower(): str(value).lower() for key, value in headers.items()}
    if lowered.get("exclusive") == "true" or lowered.get("auto-delete") == "true":
        return None
    if lowered.get("durable") != "true":
        return None
    return {key: value for key, value in headers.items() if key.lower() == "prefetch-count"}


def _prefetch(headers: transport.Headers) -> int:
    try:
        return max(0, int(headers.get("prefetch-count", "0")))
    except ValueError:
        return 0


def import_callback(path: str) -> Callback:
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
    callback: str | Callback,
    destination: str,
    queue_name: str | None = None,
    *,
    settings: conf.OutboxSettings | None = None,
    observer: observability.Observer | None = None,
) -> Consumer:
    """A ``Consumer`` over ``StompTransport`` built from the settings (default: the Django settings)."""
    settings = settings or conf.get_settings()
    queues.queue_name_for(destination, queue_name)  # fail on a bad destination before importing anything
    func = import_callback(callback) if isinstance(callback, str) else callback
    return Consumer(
        func,
        destination,
        queue_name,
        settings=settings,
        transport_factory=functools.partial(transport.StompTransport, settings),
        store=inbox.DatabaseInbox(settings.DEFAULT_RECEIVED_CLASS),
        observer=observer,
    )
