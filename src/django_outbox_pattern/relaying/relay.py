"""The relay: moves outbox rows to the broker, marking each one published only on its RECEIPT.

Read top to bottom: ``Relay.run()`` loops over ``run_once()``. A pass claims a batch (a lease, see
store.py), *launches* it (sends every message with a receipt, without waiting), then *lands* the oldest
batch still in flight (collects its receipts, which arrived meanwhile, and records every row's outcome
with one UPDATE per outcome). While draining, IN_FLIGHT_BATCHES full batches stay in flight: as the broker
stores and confirms batches N-1 and N, the relay records batch N-2 and claims N+1, so the broker always
has the next batch before it finishes the current one. A batch that is not full is landed in its own
pass, with everything before it, before the relay goes idle. Inside ``run()`` on PostgreSQL, a landed
batch's UPDATEs run on the recording thread (recording.py) while this thread claims and sends the next
one; the relay waits for them before it goes idle or stops. No database transaction is open while
sending, waiting or sleeping.

Django's ``close_old_connections()`` (CONN_MAX_AGE, broken connections) runs at the start of a pass,
except right after a full batch or a wake-up: there rows are waiting, and a reconnect would only add
latency. An idle relay still applies it on every poll, and after any database error.

What becomes of each row of a batch, and how rows that failed before are sent: batches.py.
"""

from __future__ import annotations

import collections
import datetime
import itertools
import logging
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Protocol

from django.db import connections
from django.utils import timezone

from django_outbox_pattern import conf, exceptions, tracing
from django_outbox_pattern.broker import hosts
from django_outbox_pattern.core import backoff
from django_outbox_pattern.core import observer as observing
from django_outbox_pattern.relaying import (
    batches,
    housekeeping,
    liveness,
    outbox,
    producer,
    recording,
    routing,
)

logger = logging.getLogger(__name__)

CONNECT_BACKOFF_BASE_S = 1.0  # first reconnect delay; doubles up to DEFAULT_MAXIMUM_BACKOFF
STORAGE_BACKOFF_CAP_S = 30.0  # longest wait between passes while the database fails
IN_FLIGHT_BATCHES = 2  # full batches sent and not yet landed while draining (the broker's queue)
UNRECORDED_BATCHES = 1  # landed batches whose UPDATEs may still run on the recording thread while draining
HEARTBEAT_EVERY_S = 1.0  # the observer's heartbeat keeps coming while the relay waits out a failure
WAKE_STRANDED_EVERY_S = 5.0  # how often a keyed row whose wake-up was lost is looked for (store.py)


class Notifier(Protocol):
    """A side thread that sets ``wakeup`` when new rows may be due (see notify.py)."""

    def start(self, wakeup: threading.Event, on_failure: Callable[[BaseException], None]) -> None: ...

    def stop(self) -> None: ...


class Relay:
    """Outbox -> broker loop over injected collaborators (``assembly.build_relay()`` builds them).

    ``stop()`` is safe from a signal handler or another thread.
    """

    last_batch: batches.BatchResult | None
    _in_flight: collections.deque[batches.InFlight]
    _landed: list[batches.BatchResult]

    def __init__(
        self,
        *,
        store: outbox.Outbox,
        producer: producer.Producer,
        batches: batches.Batches,
        housekeeper: housekeeping.Housekeeper,
        settings: conf.OutboxSettings,
        observer: observing.Observer | None = None,
        relay_id: str | None = None,
        clock: Callable[[], datetime.datetime] = timezone.now,
        rng: random.Random | None = None,
        notifier: Notifier | None = None,
        heartbeat: liveness.Heartbeat | None = None,
        routing_gate: routing.RoutingGate | None = None,
        recorder: recording.BackgroundRecorder | None = None,
    ) -> None:
        self.store = store
        self.recorder = recorder  # None: every batch is recorded on the relay's thread
        self.routing_gate = routing_gate  # None: every row is sent (no management API configured)
        self.producer = producer
        self.batches = batches
        self.housekeeper = housekeeper
        self.settings = settings
        self.observer = observing.shielded(observer)
        self.relay_id = relay_id or default_relay_id()
        self.notifier = notifier
        self.heartbeat = heartbeat
        self.last_batch = None
        self._clock = clock
        self._rng = rng
        self._stop = threading.Event()
        self._wakeup = threading.Event()
        self._claims = itertools.count(1)
        self._in_flight = collections.deque()  # launched, oldest first
        self._landed = []
        self._draining = False  # the last pass claimed a full batch: more are waiting
        self._woken = False  # the idle wait was cut short by a wake-up (NOTIFY): new rows are waiting
        self._background = False  # run() records landed batches on the recorder's thread
        self._connect_failures = 0
        self._storage_failures = 0
        self._next_housekeeping = 0.0
        self._next_wake = 0.0
        self._fatal: BaseException | None = None
        if settings.DEFAULT_RELAY_LEASE < 3 * settings.DEFAULT_RECEIPT_TIMEOUT:
            logger.warning(
                "DEFAULT_RELAY_LEASE (%gs) should be at least 3 x DEFAULT_RECEIPT_TIMEOUT (%gs): a batch "
                "still waiting for receipts when its lease ends can be sent again by another relay",
                *(settings.DEFAULT_RELAY_LEASE, settings.DEFAULT_RECEIPT_TIMEOUT),
                extra={"action": "relay_lease_too_short"},
            )

    def stop(self) -> None:
        self._stop.set()
        self._wakeup.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def wake(self) -> None:
        self._wakeup.set()

    def close(self) -> None:
        """Close the broker connection (``run()`` does it on the way out; callers of ``run_once()`` do)."""
        self.producer.close()

    def run(
        self,
        *,
        until_empty: bool = False,
        once: bool = False,
        on_batch: Callable[[batches.BatchResult], None] | None = None,
    ) -> None:
        """Relay until ``stop()``; with ``until_empty``, return once no row is due; with ``once``, after
        one batch (or none, when nothing is due) is claimed, sent and landed."""
        if self.notifier is not None:
            self.notifier.start(self._wakeup, self._side_thread_died)
        if self.heartbeat is not None:
            self.heartbeat.start(self.wake, self._side_thread_died)
        self._background = self.recorder is not None and self.recorder.usable()
        logger.info(
            "Relay %s started", self.relay_id, extra={"action": "relay_started", "relay": self.relay_id}
        )
        try:
            while not self._stop.is_set():
                self.observer.heartbeat()
                handled = self._guarded_run_once()
                self._report(on_batch)
                if until_empty and handled == 0 and not self._stranded():
                    break
                if once and handled is not None:
                    break
                if handled and not self._draining:
                    # The rows just landed may have let the next rows of their ordering keys go: claim
                    # again at once; only a pass that found nothing due waits for the poll interval.
                    self._woken = True
                elif handled is not None and not self._draining:
                    self._woken = self._wakeup.wait(self.settings.DEFAULT_PRODUCER_WAITING_TIME)
                    self._wakeup.clear()
        finally:
            self._land_in_flight_safely()
            self._background = False
            if self.recorder is not None:
                self.recorder.close()
            self._report(on_batch)
            if self.notifier is not None:
                self.notifier.stop()
            if self.heartbeat is not None:
                self.heartbeat.stop()
            self.close()
            self.observer.relay_up(False)
            logger.info(
                "Relay %s stopped", self.relay_id, extra={"action": "relay_stopped", "relay": self.relay_id}
            )
        if self._fatal is not None:
            raise exceptions.OutboxError(
                f"The relay stopped because its wake-up listener or heartbeat died: {self._fatal}"
            )

    def _guarded_run_once(self) -> int | None:
        """``run_once()``, or None after waiting out a broker or database failure (cut short by stop)."""
        try:
            handled = self.run_once()
        except (exceptions.TransportConnectionError, exceptions.StorageError) as exc:
            self._draining = self._woken = False
            self._land_in_flight_safely()
            self._wait(self._failure_delay(exc))
            return None
        self._storage_failures = 0
        return handled

    def _wait(self, delay: float) -> None:
        """Sleep ``delay`` seconds (cut short by stop), still beating the observer's heartbeat."""
        deadline = time.monotonic() + delay
        while not self._stop.wait(min(HEARTBEAT_EVERY_S, max(0.0, deadline - time.monotonic()))):
            if time.monotonic() >= deadline:
                return
            self.observer.heartbeat()

    def _failure_delay(self, exc: exceptions.OutboxError) -> float:
        """Backoff before the next pass: reconnects up to DEFAULT_MAXIMUM_BACKOFF, database retries 30 s."""
        if isinstance(exc, exceptions.TransportConnectionError):
            self.observer.relay_up(False)
            self._connect_failures += 1
            attempt, what, cap = self._connect_failures, "Broker", self.settings.DEFAULT_MAXIMUM_BACKOFF
            delay = backoff.compute_backoff(attempt, base=CONNECT_BACKOFF_BASE_S, cap=cap, rng=self._rng)
        else:
            self._storage_failures += 1
            attempt, what = self._storage_failures, "Database"
            delay = backoff.compute_backoff(attempt, base=1.0, cap=STORAGE_BACKOFF_CAP_S, rng=self._rng)
        action = "relay_connect_failed" if what == "Broker" else "relay_storage_failed"
        logger.warning(
            "%s unavailable, retrying in %.1fs: %s",
            what,
            delay,
            exc,
            extra={"action": action, "attempt": attempt},
        )
        return delay

    def run_once(self) -> int:
        """One pass: claim a batch, launch it, land older ones; returns the due rows looked at (or, when
        there were none, the rows of ordering keys that landing made due)."""
        if not (self._draining or self._woken):  # the hot path never pays a database reconnect
            _close_old_connections()
        self._woken = False
        if time.monotonic() >= self._next_housekeeping:
            self._next_housekeeping = time.monotonic() + housekeeping.INTERVAL_S
            expired = self.housekeeper.run()
            if expired:
                self.observer.dead_lettered(expired, housekeeping.EXPIRED_REASON)
        if not self.producer.is_connected():
            self._land_in_flight()  # its receipts can no longer come: record that before reconnecting
            self.producer.connect()
            self.observer.relay_up(True)
            broker = hosts.address_of(self.producer.transport)
            logger.info(
                "Relay connected to the broker at %s",
                broker,
                extra={"action": "relay_connected", "broker": broker},
            )
        self._connect_failures = 0
        started, now = time.monotonic(), self._clock()
        if started >= self._next_wake:
            self._next_wake = started + WAKE_STRANDED_EVERY_S
            self.store.wake_stranded(now=now)
        token = f"{self.relay_id}#{next(self._claims)}"
        lease_until = now + datetime.timedelta(seconds=self.settings.DEFAULT_RELAY_LEASE)
        chunk = self.settings.DEFAULT_PUBLISHED_CHUNK_SIZE
        self._draining = False
        rows = self.store.claim(token, limit=chunk, now=now, lease_until=lease_until)
        claimed = getattr(rows, "scanned", len(rows))  # rows set aside for their key count: more may be due
        if rows and self.routing_gate is not None:  # rows no queue would receive are held, not sent
            rows, held = self.routing_gate.partition(rows)
            for reason, group in held.items():
                due = self.routing_gate.retry_at(now)
                self.store.hold([row.id for row in group], token=token, reason=reason, available_at=due)
        if rows:  # sent before older batches are landed, so the broker always has the next one queued
            with tracing.relay_batch_span([row.headers for row in rows]):
                self._in_flight.append(self.batches.launch(rows, token, started))
        self._draining = claimed >= chunk
        # Land the oldest batches, whose receipts came meanwhile; when no full batch is right behind them,
        # land every one: none is left waiting.
        woken = 0
        while len(self._in_flight) > (IN_FLIGHT_BATCHES if self._draining else 0):
            woken += self._land(self._in_flight.popleft())
        # outside a drain nothing stays unrecorded
        woken += self._collect_records(keep=None if self._draining else 0)
        if woken:  # the next rows of ordering keys are due now: no pause before the next pass
            self._draining = True
        return claimed or woken

    def _stranded(self) -> int:
        """Rows of ordering keys whose wake-up was lost, due again now (so ``until_empty`` sends them)."""
        try:
            return self.store.wake_stranded(now=self._clock())
        except exceptions.StorageError:
            return 0  # the next run, or the next pass of a running relay, finds them

    def _land_in_flight(self) -> None:
        """Land every batch in flight, oldest first, and wait until every one is recorded."""
        while self._in_flight:
            self._land(self._in_flight.popleft())
        self._collect_records(keep=0)

    def _land(self, batch: batches.InFlight) -> int:
        """Land one batch; the rows of ordering keys it made due (0 while its record is pending)."""
        if self._background and self.recorder is not None:  # recorded while the next batch goes out
            self.recorder.submit(self.batches.collect(batch))
            return self._collect_records(keep=UNRECORDED_BATCHES)
        return self._landed_one(self.batches.land(batch))

    def _collect_records(self, *, keep: int | None) -> int:
        """Report the batches recorded meanwhile (with ``keep``, wait until at most that many are not);
        the rows of ordering keys they made due."""
        if self.recorder is None:
            return 0
        woken = 0
        for collected, result in self.recorder.finished(keep=keep):
            self.batches.report(collected, result)
            woken += self._landed_one(result)
        return woken

    def _landed_one(self, result: batches.BatchResult) -> int:
        self.last_batch = result
        self._landed.append(result)
        return result.woken

    def _land_in_flight_safely(self) -> None:
        while True:
            try:
                self._land_in_flight()
                return
            except exceptions.StorageError as exc:  # its rows come back when their lease ends
                logger.error("Could not record a batch: %s", exc, extra={"action": "relay_batch_unrecorded"})
                if self.recorder is None or not self.recorder.pending:
                    return

    def _report(self, on_batch: Callable[[batches.BatchResult], None] | None) -> None:
        landed, self._landed = self._landed, []
        for result in landed:
            if on_batch is not None:
                on_batch(result)

    def housekeep(self) -> None:
        """Dead-letter expired rows nobody holds; delete old published rows at most once per TTL."""
        self.housekeeper.run()

    def _side_thread_died(self, exc: BaseException) -> None:
        logger.error(
            "A side thread of the relay (wake-up listener or heartbeat) died: %s",
            exc,
            extra={"action": "relay_notifier_died"},
        )
        self._fatal = exc
        self.stop()


def _close_old_connections() -> None:
    """Django's ``close_old_connections()`` (CONN_MAX_AGE, broken connections), sparing any connection a
    caller holds a transaction on."""
    for conn in connections.all(initialized_only=True):
        if not conn.in_atomic_block:
            conn.close_if_unusable_or_obsolete()


def default_relay_id() -> str:
    return f"{socket.gethostname()[:32]}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
