"""One claimed batch of the relay, from launch to landing, and what becomes of each of its rows.

``Batches.launch()`` dead-letters the rows that cannot go, sends rows that failed before one at a time
(so a message that makes the broker close the connection fails alone and cannot drag the rest of a batch
to FAILED with it), then the fresh rows pipelined. ``Batches.land()`` collects the receipts (``collect()``,
on the relay's thread, which owns the broker connection) and records every row's outcome (``record()``,
which the relay may run on its recording thread while it claims and sends the next batch), with one
UPDATE per kind of outcome:

  confirmed (RECEIPT)          -> SUCCEEDED, published_at set
  sent, no RECEIPT             -> SCHEDULE, retry + 1, last_error, due again after ``retry_delay()``;
                                  after DEFAULT_MAXIMUM_RETRY_ATTEMPTS failed attempts -> FAILED
  never sent (connection gone) -> SCHEDULE, due at once, retry unchanged
  past expires_at              -> FAILED, last_error "expired: ..." (replay it to send it anyway)
  can never be sent            -> FAILED, last_error "unsendable: <reason>"; the rest of the batch goes on
                                  (refused up front, or refused by the broker for good when sent alone:
                                  a body over RabbitMQ's max_message_size)

Any failure closes the connection; the relay's next pass reconnects (with backoff while the broker is down).
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import logging
import random
import time
from collections.abc import Callable, Hashable
from typing import Any

from django_outbox_pattern import conf, exceptions
from django_outbox_pattern.core import backoff
from django_outbox_pattern.core import observer as observing
from django_outbox_pattern.relaying import housekeeping, outbox, producer

logger = logging.getLogger(__name__)

QUICK_RETRIES = 2  # failed attempts retried after short delays before the long pause (as in 2.x)
EXPIRED_REASON = housekeeping.EXPIRED_REASON


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
    base, cap = settings.DEFAULT_RETRY_BASE_DELAY, settings.DEFAULT_WAIT_RETRY
    return backoff.compute_backoff(failed_attempts, base=base, cap=cap, rng=rng)


@dataclasses.dataclass(frozen=True)
class BatchResult:
    """What happened to the rows of one claimed batch."""

    published: int  # confirmed by a RECEIPT: SUCCEEDED
    failed: int  # sent but not confirmed: an attempt counted
    retried: int  # of the failed, rescheduled with backoff
    dead_lettered: int  # made FAILED: attempts exhausted, expired or unsendable
    elapsed: float  # seconds from claim to the last UPDATE
    released: int = 0  # never sent because the connection went first: due again at once
    woken: int = 0  # rows of ordering keys set aside until these were published: due now


@dataclasses.dataclass
class InFlight:
    """A claimed batch between launch and land."""

    token: str
    rows: dict[Any, outbox.OutboxRow]
    started: float
    dead_lettered: int
    careful: producer.SendOutcome  # rows that failed before, sent one at a time
    flight: producer.Flight  # fresh rows, sent pipelined


@dataclasses.dataclass(frozen=True)
class Collected:
    """A batch whose receipts were collected, its outcome not yet recorded in the database."""

    batch: InFlight
    outcome: producer.SendOutcome
    refused: list[Hashable]  # sent alone and refused by the broker for good: dead-lettered
    landed: float  # time.monotonic() when the receipts were collected


class Batches:
    """Launches and lands the relay's batches over its producer and store."""

    def __init__(
        self,
        *,
        store: outbox.Outbox,
        producer: producer.Producer,
        settings: conf.OutboxSettings,
        observer: observing.Observer,
        clock: Callable[[], datetime.datetime],
        rng: random.Random | None = None,
    ) -> None:
        self.store = store
        self.producer = producer
        self.settings = settings
        self.observer = observer
        self._clock = clock
        self._rng = rng

    def launch(self, rows: list[outbox.OutboxRow], token: str, started: float) -> InFlight:
        """Dead-letter what cannot go, send rows that failed before one at a time, then the rest pipelined."""
        by_id = {row.id: row for row in rows}
        expired: list[Hashable] = []
        unsendable: dict[str, list[Hashable]] = collections.defaultdict(list)
        messages: list[producer.OutgoingMessage] = []
        for row in rows:
            if row.expired:
                expired.append(row.id)
                continue
            try:
                messages.append(
                    producer.encode(
                        row.destination,
                        row.body,
                        row.headers,
                        key=row.id,
                        max_body_bytes=self.producer.max_body_bytes,
                    )
                )
            except exceptions.UnsendableMessage as exc:
                unsendable[f"unsendable: {exc}"].append(row.id)
        dead = self.store.dead_letter(expired, token=token, reason=EXPIRED_REASON)
        for reason, ids in unsendable.items():
            dead += self.store.dead_letter(ids, token=token, reason=reason)
        again = [m for m in messages if by_id[m.key].retry > 0]
        fresh = [m for m in messages if by_id[m.key].retry == 0]
        careful = self.producer.send_many(again, one_at_a_time=True)
        if careful.ok:
            flight = self.producer.launch(fresh)
        else:  # the connection is suspect: keep the fresh rows for the next pass
            flight = producer.Flight({}, [m.key for m in fresh], careful.error, 0.0)
        return InFlight(token, by_id, started, dead, careful, flight)

    def land(self, batch: InFlight) -> BatchResult:
        """Collect the batch's receipts and record every row's outcome."""
        collected = self.collect(batch)
        result = self.record(collected)
        self.report(collected, result)
        return result

    def collect(self, batch: InFlight) -> Collected:
        """The broker's half of landing (the relay's thread: it owns the connection): wait for the batch's
        receipts and close the connection if one is missing."""
        quick = self.producer.land(batch.flight)
        landed = time.monotonic()
        careful = batch.careful
        # A row sent alone that the broker refuses for good (too large) is dead-lettered now: sending it
        # again would only cost a reconnect per attempt, DEFAULT_MAXIMUM_RETRY_ATTEMPTS times.
        refused = careful.unconfirmed if producer.refused_for_good(careful.error) else []
        outcome = producer.SendOutcome(
            careful.confirmed + quick.confirmed,
            [key for key in careful.unconfirmed if key not in refused] + quick.unconfirmed,
            careful.unsent + quick.unsent,
            careful.error or quick.error,
        )
        if not outcome.ok or refused:
            self.producer.close()  # a missing RECEIPT makes the connection suspect: reconnect next pass
        return Collected(batch, outcome, refused, landed)

    def record(self, collected: Collected) -> BatchResult:
        """The database's half of landing: every row's outcome, one UPDATE per kind. Touches neither the
        broker nor the observer, so it may run on another thread (recording.py), one batch at a time."""
        batch, outcome, refused = collected.batch, collected.outcome, collected.refused
        published = self.store.mark_published(outcome.confirmed, now=self._clock())
        keys = {batch.rows[key].ordering_key for key in outcome.confirmed} - {None}
        woken = self.store.wake_next(keys, now=self._clock()) if keys else 0  # type: ignore[arg-type]
        retried, exhausted = self._record_failures(outcome, batch.rows, batch.token)
        reason = f"unsendable: the broker refused it ({batch.careful.error})"
        exhausted += self.store.dead_letter(refused, token=batch.token, reason=reason, count_attempt=True)
        released = self.store.release(outcome.unsent, token=batch.token, now=self._clock())
        return BatchResult(
            published=published,
            failed=len(outcome.unconfirmed) + len(refused),
            retried=retried,
            dead_lettered=batch.dead_lettered + exhausted,
            elapsed=time.monotonic() - batch.started,
            released=released,
            woken=woken,
        )

    def report(self, collected: Collected, result: BatchResult) -> None:
        """Log and observe a recorded batch (the relay's thread)."""
        self._log(result, collected.outcome.error)
        self._observe(result, collected.batch, collected.outcome, collected.landed)

    def _observe(
        self, result: BatchResult, batch: InFlight, outcome: producer.SendOutcome, landed: float
    ) -> None:
        """Report a landed batch; the receipt latency is the pipelined flight's launch to its landing."""
        destinations = collections.Counter(batch.rows[key].destination for key in outcome.confirmed)
        flight = batch.flight
        launched = flight.deadline - self.producer.receipt_timeout
        latencies = [max(0.0, landed - launched)] if flight.pending else []
        self.observer.batch_published(result.published, destinations, latencies)
        if result.failed:
            self.observer.send_failed(result.failed, outcome.error)
        if result.retried:
            self.observer.retried(result.retried)
        if result.dead_lettered:
            self.observer.dead_lettered(result.dead_lettered, outcome.error or "expired or unsendable")

    def _record_failures(
        self, outcome: producer.SendOutcome, by_id: dict[Any, outbox.OutboxRow], token: str
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
                *(result.published, result.failed, error or "-", result.dead_lettered, result.released),
                extra=extra,
            )
        else:
            logger.debug("Batch: %d published in %.3fs", result.published, result.elapsed, extra=extra)
