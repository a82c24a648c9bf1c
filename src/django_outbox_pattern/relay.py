"""The relay: moves outbox rows to the broker, marking each one published only on its RECEIPT.

Read top to bottom: ``Relay.run()`` loops over ``run_once()``; ``run_once()`` claims a batch (a lease, see
store.py), sends it through the Producer and records every row's outcome with one UPDATE per outcome.
No database transaction is open while sending, waiting for receipts or sleeping.

Outcomes of a claimed row:
  confirmed (RECEIPT)          -> SUCCEEDED, published_at set
  sent, no RECEIPT             -> SCHEDULE, retry + 1, last_error, due again after ``retry_delay()``;
                                  after DEFAULT_MAXIMUM_RETRY_ATTEMPTS failed attempts -> FAILED
  never sent (connection gone) -> SCHEDULE, due at once, retry unchanged
  past expires_at              -> FAILED, last_error "expired: ..." (replay it to send it anyway)
  can never be sent            -> FAILED, last_error "unsendable: <reason>"; the rest of the batch goes on

Fresh rows are sent pipelined (send all, then collect the receipts). Rows that failed before are sent one
at a time, so a message that makes the broker close the connection fails alone and cannot drag the rest of
a batch to FAILED with it. Any failure closes the connection; the next pass reconnects.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import itertools
import logging
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable, Hashable
from typing import Any, Protocol

from django.core.cache import BaseCache, caches
from django.db import connections, router
from django.utils import timezone

from django_outbox_pattern import backoff, conf, exceptions, producer, store, transport

logger = logging.getLogger(__name__)

QUICK_RETRIES = 2  # failed attempts retried after short delays before the long pause (as in 2.x)
CONNECT_BACKOFF_BASE_S = 1.0  # first reconnect delay; doubles up to DEFAULT_MAXIMUM_BACKOFF
STORAGE_BACKOFF_CAP_S = 30.0  # longest wait between passes while the database fails
HOUSEKEEPING_INTERVAL_S = 60.0  # expiry sweep and retention check, never on the per-message path
EXPIRED_REASON = "expired: expires_at passed before the broker confirmed the message; replay it to send it"


def retry_delay(
    failed_attempts: int, settings: conf.OutboxSettings, *, rng: random.Random | None = None
) -> float:
    """Seconds before a row that failed ``failed_attempts`` times is due again (with equal jitter).

    Keeps the 2.x meaning of the spec's settings (three quick tries, a pause, then steady retries):
      attempts 1-2: DEFAULT_RETRY_BASE_DELAY doubled each time (1 s, 2 s), capped at DEFAULT_WAIT_RETRY
      attempt 3:    DEFAULT_PAUSE_FOR_RETRY (240 s), the "pause" after the quick tries
      attempts 4+:  exponential again from the base (8, 16, 32 s), capped at DEFAULT_WAIT_RETRY (60 s)
    With the defaults a row is retried for about 45 minutes before its 50th failure makes it FAILED.
    DEFAULT_MAXIMUM_BACKOFF caps the reconnect delay of the relay, not the per-row delay.
    """
    if failed_attempts == QUICK_RETRIES + 1:
        pause = settings.DEFAULT_PAUSE_FOR_RETRY
        return backoff.compute_backoff(1, base=pause, cap=pause, rng=rng)
    return backoff.compute_backoff(
        failed_attempts, base=settings.DEFAULT_RETRY_BASE_DELAY, cap=settings.DEFAULT_WAIT_RETRY, rng=rng
    )


@dataclasses.dataclass(frozen=True)
class BatchResult:
    """What one pass did with the rows it claimed."""

    published: int  # confirmed by a RECEIPT: SUCCEEDED
    failed: int  # sent but not confirmed: an attempt counted
    retried: int  # of the failed, rescheduled with backoff
    dead_lettered: int  # made FAILED: attempts exhausted, expired or unsendable
    elapsed: float  # seconds, claim to last UPDATE
    released: int = 0  # never sent because the connection went first: due again at once


class Notifier(Protocol):
    """A side thread that sets ``wakeup`` when new rows may be due (see notify.py)."""

    def start(self, wakeup: threading.Event, on_failure: Callable[[BaseException], None]) -> None: ...

    def stop(self) -> None: ...


def default_relay_id() -> str:
    return f"{socket.gethostname()[:32]}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Relay:
    """Outbox -> broker loop. ``stop()`` is safe from a signal handler or another thread."""

    def __init__(
        self,
        *,
        store: store.OutboxStore,
        transport: transport.Transport,
        settings: conf.OutboxSettings,
        relay_id: str | None = None,
        clock: Callable[[], datetime.datetime] = timezone.now,
        notifier: Notifier | None = None,
        cache: BaseCache | None = None,
        max_body_bytes: int = producer.MAX_BODY_BYTES,
        rng: random.Random | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.producer = producer.Producer(
            transport, receipt_timeout=settings.DEFAULT_RECEIPT_TIMEOUT, max_body_bytes=max_body_bytes
        )
        self.relay_id = relay_id or default_relay_id()
        self.notifier = notifier
        self.last_batch: BatchResult | None = None
        self._clock = clock
        self._cache = cache
        self._rng = rng
        self._stop = threading.Event()
        self._wakeup = threading.Event()
        self._claims = itertools.count(1)
        self._connect_failures = 0
        self._storage_failures = 0
        self._next_housekeeping = 0.0
        self._fatal: BaseException | None = None

    def stop(self) -> None:
        self._stop.set()
        self._wakeup.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def wake(self) -> None:
        self._wakeup.set()

    def run(
        self, *, until_empty: bool = False, on_batch: Callable[[BatchResult], None] | None = None
    ) -> None:
        """Relay until ``stop()``; with ``until_empty``, return once no row is due."""
        chunk = self.settings.DEFAULT_PUBLISHED_CHUNK_SIZE
        if self.notifier is not None:
            self.notifier.start(self._wakeup, self._notifier_died)
        logger.info(
            "Relay %s started", self.relay_id, extra={"action": "relay_started", "relay": self.relay_id}
        )
        try:
            while not self._stop.is_set():
                handled = self._guarded_run_once()
                if handled is None:
                    continue
                if handled and on_batch is not None and self.last_batch is not None:
                    on_batch(self.last_batch)
                if until_empty and handled == 0:
                    break
                if handled < chunk:
                    self._wakeup.wait(self.settings.DEFAULT_PRODUCER_WAITING_TIME)
                    self._wakeup.clear()
        finally:
            if self.notifier is not None:
                self.notifier.stop()
            self.producer.close()
            logger.info(
                "Relay %s stopped", self.relay_id, extra={"action": "relay_stopped", "relay": self.relay_id}
            )
        if self._fatal is not None:
            raise exceptions.OutboxError(
                f"The relay stopped because its wake-up listener died: {self._fatal}"
            )

    def _guarded_run_once(self) -> int | None:
        """``run_once()``, or None after waiting out a broker or database failure (cut short by stop)."""
        try:
            handled = self.run_once()
        except exceptions.TransportConnectionError as exc:
            self._connect_failures += 1
            cap = self.settings.DEFAULT_MAXIMUM_BACKOFF
            delay = backoff.compute_backoff(
                self._connect_failures, base=CONNECT_BACKOFF_BASE_S, cap=cap, rng=self._rng
            )
            logger.warning(
                "Broker unavailable, retrying in %.1fs: %s",
                delay,
                exc,
                extra={"action": "relay_connect_failed", "attempt": self._connect_failures},
            )
            self._stop.wait(delay)
            return None
        except exceptions.StorageError as exc:
            self._storage_failures += 1
            delay = backoff.compute_backoff(
                self._storage_failures, base=1.0, cap=STORAGE_BACKOFF_CAP_S, rng=self._rng
            )
            logger.error(
                "Database failed, retrying in %.1fs: %s",
                delay,
                exc,
                extra={"action": "relay_storage_failed", "attempt": self._storage_failures},
            )
            self._stop.wait(delay)
            return None
        self._storage_failures = 0
        return handled

    def run_once(self) -> int:
        """One pass: housekeeping if due, connect if needed, claim a batch, send it; returns rows handled."""
        for conn in connections.all(initialized_only=True):
            if not conn.in_atomic_block:  # never close a connection a caller holds a transaction on
                conn.close_if_unusable_or_obsolete()
        if time.monotonic() >= self._next_housekeeping:
            self._next_housekeeping = time.monotonic() + HOUSEKEEPING_INTERVAL_S
            self.housekeep()
        if not self.producer.is_connected():
            self.producer.connect()
            logger.info("Relay connected to the broker", extra={"action": "relay_connected"})
        self._connect_failures = 0
        started = time.monotonic()
        now = self._clock()
        token = f"{self.relay_id}#{next(self._claims)}"
        lease_until = now + datetime.timedelta(seconds=self.settings.DEFAULT_RELAY_LEASE)
        rows = self.store.claim(
            token, limit=self.settings.DEFAULT_PUBLISHED_CHUNK_SIZE, now=now, lease_until=lease_until
        )
        self.last_batch = self._handle(rows, token, started) if rows else None
        return len(rows)

    def _handle(self, rows: list[store.OutboxRow], token: str, started: float) -> BatchResult:
        now = self._clock()
        by_id = {row.id: row for row in rows}
        expired = [row.id for row in rows if row.expires_at <= now]
        unsendable: dict[str, list[Hashable]] = collections.defaultdict(list)
        messages: list[producer.OutgoingMessage] = []
        for row in rows:
            if row.expires_at <= now:
                continue
            try:
                messages.append(self._encode(row))
            except exceptions.UnsendableMessage as exc:
                unsendable[f"unsendable: {exc}"].append(row.id)
        dead = self.store.dead_letter(expired, token=token, reason=EXPIRED_REASON)
        for reason, ids in unsendable.items():
            dead += self.store.dead_letter(ids, token=token, reason=reason)
        outcome = self._send(messages, by_id)
        published = self.store.mark_published(outcome.confirmed, now=self._clock())
        retried, exhausted = self._record_failures(outcome, by_id, token)
        released = self.store.release(outcome.unsent, token=token, now=self._clock())
        if not outcome.ok:
            self.producer.close()  # a missing RECEIPT makes the connection suspect: reconnect next pass
        result = BatchResult(
            published=published,
            failed=len(outcome.unconfirmed),
            retried=retried,
            dead_lettered=dead + exhausted,
            elapsed=time.monotonic() - started,
            released=released,
        )
        self._log(result, outcome.error)
        return result

    def _encode(self, row: store.OutboxRow) -> producer.OutgoingMessage:
        return producer.encode(
            row.destination, row.body, row.headers, key=row.id, max_body_bytes=self.producer.max_body_bytes
        )

    def _send(
        self, messages: list[producer.OutgoingMessage], by_id: dict[Any, store.OutboxRow]
    ) -> producer.SendOutcome:
        """Rows that failed before go one at a time, then fresh rows pipelined; stop at the first failure."""
        again = [m for m in messages if by_id[m.key].retry > 0]
        fresh = [m for m in messages if by_id[m.key].retry == 0]
        careful = self.producer.send_many(again, one_at_a_time=True)
        if not careful.ok:
            unsent = careful.unsent + [m.key for m in fresh]
            return producer.SendOutcome(careful.confirmed, careful.unconfirmed, unsent, careful.error)
        quick = self.producer.send_many(fresh)
        return producer.SendOutcome(
            careful.confirmed + quick.confirmed, quick.unconfirmed, quick.unsent, quick.error
        )

    def _record_failures(
        self, outcome: producer.SendOutcome, by_id: dict[Any, store.OutboxRow], token: str
    ) -> tuple[int, int]:
        """One UPDATE per attempt count (rows failing together share a delay); exhausted rows -> FAILED."""
        limit = self.settings.DEFAULT_MAXIMUM_RETRY_ATTEMPTS
        groups: dict[int, list[Hashable]] = collections.defaultdict(list)
        exhausted: list[Hashable] = []
        for key in outcome.unconfirmed:
            attempts = by_id[key].retry + 1
            (exhausted if attempts >= limit else groups[attempts]).append(key)
        now = self._clock()
        retried = 0
        for attempts, ids in groups.items():
            due = now + datetime.timedelta(seconds=retry_delay(attempts, self.settings, rng=self._rng))
            retried += self.store.reschedule(ids, token=token, error=outcome.error, available_at=due)
        reason = f"gave up after {limit} attempts: {outcome.error}"
        dead = self.store.dead_letter(exhausted, token=token, reason=reason, count_attempt=True)
        return retried, dead

    def _log(self, result: BatchResult, error: str) -> None:
        extra = {"action": "relay_batch_published", **dataclasses.asdict(result)}
        if result.failed or result.dead_lettered or result.released:
            logger.warning(
                "Batch: %d published, %d failed (%s), %d dead-lettered, %d released",
                result.published,
                result.failed,
                error or "-",
                result.dead_lettered,
                result.released,
                extra=extra,
            )
        else:
            logger.debug("Batch: %d published in %.3fs", result.published, result.elapsed, extra=extra)

    def housekeep(self) -> None:
        """Dead-letter expired rows nobody holds, and delete old published rows at most once per TTL."""
        now = self._clock()
        try:
            expired = self.store.dead_letter_expired(now=now, reason=EXPIRED_REASON)
            removed = self.remove_old_messages(now)
        except exceptions.StorageError as exc:
            logger.warning("Housekeeping failed: %s", exc, extra={"action": "relay_housekeeping_failed"})
            return
        if expired:
            logger.warning(
                "%d expired rows dead-lettered",
                expired,
                extra={"action": "relay_rows_expired", "count": expired},
            )
        if removed:
            logger.info(
                "%d old published rows deleted",
                removed,
                extra={"action": "relay_rows_purged", "count": removed},
            )

    def remove_old_messages(self, now: datetime.datetime) -> int:
        """Retention (DAYS_TO_KEEP_DATA): only SUCCEEDED rows, and only when the cache key is absent."""
        s = self.settings
        cache = self._cache or caches["default"]
        if not cache.add(s.OUTBOX_PATTERN_PUBLISHER_CACHE_KEY, True, s.REMOVE_DATA_CACHE_TTL):
            return 0
        try:
            return self.store.purge_published(added_before=now - datetime.timedelta(days=s.DAYS_TO_KEEP_DATA))
        except exceptions.StorageError:
            cache.delete(s.OUTBOX_PATTERN_PUBLISHER_CACHE_KEY)  # try again at the next housekeeping
            raise

    def _notifier_died(self, exc: BaseException) -> None:
        logger.error("Wake-up listener died: %s", exc, extra={"action": "relay_notifier_died"})
        self._fatal = exc
        self.stop()


def build_relay(
    settings: conf.OutboxSettings | None = None,
    *,
    chunk_size: int | None = None,
    poll_interval: float | None = None,
    notify: bool | None = None,
) -> Relay:
    """The relay the ``publish`` commands run: settings (default: Django's) with the given overrides."""
    overrides: dict[str, Any] = {
        key: value
        for key, value in (
            ("DEFAULT_PUBLISHED_CHUNK_SIZE", chunk_size),
            ("DEFAULT_PRODUCER_WAITING_TIME", poll_interval),
            ("DEFAULT_RELAY_NOTIFY", notify),
        )
        if value is not None
    }
    s = settings or conf.get_settings()
    if overrides:
        normalised = conf.OutboxSettings.from_mapping(overrides)  # validates: ConfigurationError
        s = dataclasses.replace(s, **{key: getattr(normalised, key) for key in overrides})
    model = conf.import_object(s.DEFAULT_PUBLISHED_CLASS)
    outbox = store.OutboxStore(model, using=router.db_for_write(model))
    notifier: Notifier | None = None
    if s.DEFAULT_RELAY_NOTIFY:
        from django_outbox_pattern import notify as notify_module

        notifier = notify_module.build_listener(outbox.using)
    return Relay(store=outbox, transport=transport.StompTransport(s), settings=s, notifier=notifier)
