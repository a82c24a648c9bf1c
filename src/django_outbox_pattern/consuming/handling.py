"""What happens to one message on the consumer's worker thread: dedupe, callback, retries, ACK/NACK.

- A message whose id is already in the inbox is acked without calling the callback (``duplicates``);
  so is one whose ``save()`` loses the race against another consumer (``inbox.DuplicateMessage``). The
  worker looks the ids of the messages waiting up in one query first (``precheck()``).
- A callback that raises: the message is dead-lettered to ``DLQ.<queue>`` (the reason in its
  ``dop-dead-letter-reason`` header, see settling.py) and the traceback logged.
- Transient database errors (``OperationalError``/``InterfaceError``): the connection is closed and the
  callback retried ``DEFAULT_CONSUMER_MAX_RETRY_ATTEMPTS`` times after ``DEFAULT_CONSUMER_RETRY_WAIT``
  backoff, then dead-lettered. A stop during the wait leaves the message to the broker to redeliver.
- A callback that neither saves nor nacks: a warning naming the message, and a dead letter, so a
  subscription with a small prefetch never stalls and an operator can see the message there.
- Anything else that goes wrong (a message without an id, an error in the inbox or in tracing, a
  ``BaseException``) dead-letters the message too: ``handle()`` is the one place a message is settled,
  exactly once.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
from collections.abc import Callable, Sequence

from django_outbox_pattern import conf, exceptions, payloads, tracing
from django_outbox_pattern.broker import wire
from django_outbox_pattern.consuming import batching, inbox, settling
from django_outbox_pattern.core import addressing, backoff, identity, requestid

logger = logging.getLogger(__name__)

Callback = Callable[[payloads.Payload], object]
Count = Callable[[str], None]  # increments one ConsumerStats field by name


class Processor:
    """Runs the callback for messages of one subscription and settles each exactly once."""

    def __init__(
        self,
        callback: Callback,
        *,
        settings: conf.OutboxSettings,
        store: inbox.InboxStore,
        subscription: str,
        dead_letter_queue: str,
        stopping: threading.Event,
        count: Count,
        on_settled: Callable[[wire.Message, settling.Outcome], None] | None = None,
    ) -> None:
        self._callback = callback
        self._settings = settings
        self._store = store
        self._subscription = subscription
        self._dlq = dead_letter_queue
        self._stopping = stopping
        self._count = count
        self._on_settled_hook = on_settled
        self.batch: batching.Batch | None = None  # set by the worker while a batch transaction is open
        queue = dead_letter_queue.removeprefix(addressing.DEAD_LETTER_PREFIX)
        self._dead_letters = settling.DeadLetters(
            queue, dead_letter_queue, receipt_timeout=settings.DEFAULT_RECEIPT_TIMEOUT
        )
        self._checked: set[str] = set()  # ids looked up by the last precheck() ...
        self._known: set[str] = set()  # ... and those of them in the inbox (or saved since)

    def _on_settled(self, message: wire.Message, outcome: settling.Outcome) -> None:
        if self._on_settled_hook is not None:
            self._on_settled_hook(message, outcome)

    def precheck(self, messages: Sequence[wire.Message]) -> None:
        """Look up in one query which of these messages are in the inbox already, so that ``handle()``
        needs no query of its own to skip a duplicate. Saves since are added; a copy saved meanwhile by
        another consumer is still caught by the inbox's unique ``msg_id`` (``DuplicateMessage``)."""
        self._checked, self._known = set(), set()
        try:  # never raises: a message this cannot identify is settled by handle()
            ids: set[str] = set()
            for message in messages:
                with contextlib.suppress(exceptions.MessageDecodeError):
                    ids.add(inbox.message_id(message.headers))
            self._known = self._store.existing(ids)
        except Exception:  # each message then checks for itself, with the usual retries
            logger.debug(
                "Duplicate pre-check failed", exc_info=True, extra={"action": "inbox_precheck_failed"}
            )
            self._store.reset()
            return
        self._checked = ids

    def handle(self, source: wire.Transport, message: wire.Message) -> settling.Outcome:
        """Process one message received on ``source`` and settle it exactly once, whatever happens.

        This is the consumer's one settle point: anything raised on the way (decoding, identifying, the
        inbox, tracing, the callback, even ``BaseException``) ends in a dead letter with the reason, and a
        message nothing settled is dead-lettered too. Only a stop during a retry's backoff leaves it to the
        broker, which redelivers it when the connection closes. Meanwhile its ``dop-correlation-id`` (a new
        one if it has none) is the current request id, so the outbox rows the callback writes carry it on
        (as 3.x did).
        """
        settlement = settling.Settlement(
            source,
            message,
            subscription=self._subscription,
            dead_letters=self._dead_letters,
            on_settled=lambda outcome: self._on_settled(message, outcome),
        )
        try:
            with requestid.bound(message.headers.get(identity.CORRELATION_HEADER)):
                self._process(settlement, message)
        except BaseException as exc:  # the worker must survive anything, and the message be settled
            self._count("errors")
            reason = f"unexpected error: {conf.describe_error(exc)}"
            logger.error(
                "Message %s could not be handled (%s)",
                settlement.msg_id,
                reason,
                exc_info=True,
                extra={"action": "message_failed", "msg_id": settlement.msg_id},
            )
            if not settlement.done:
                self._count("nacked")
                settlement.dead_letter(reason)
        finally:
            if not settlement.done:  # a path that forgot to settle: never leave the message pending
                self._count("nacked")
                settlement.dead_letter("the consumer did not settle it")
        assert settlement.outcome is not None
        return settlement.outcome

    def _process(self, settlement: settling.Settlement, message: wire.Message) -> None:
        """Identify, decode and run the callback, retrying transient database errors."""
        try:
            msg_id = inbox.message_id(message.headers)
        except exceptions.MessageDecodeError as exc:
            logger.error("Cannot identify a message: %s", exc, extra={"action": "message_rejected"})
            self._count("nacked")
            settlement.dead_letter(str(exc))
            return
        settlement.msg_id = msg_id
        body = payloads.decode_body(message.body, msg_id)
        retries = self._settings.DEFAULT_CONSUMER_MAX_RETRY_ATTEMPTS
        for attempt in range(1, retries + 2):
            payload = payloads.Payload(
                body,
                message.headers,
                msg_id=msg_id,
                settle=settlement,
                store=self._payload_store(),
                raw_body=message.body,
            )
            try:
                self._attempt(payload, settlement, first=attempt == 1)
                return
            except inbox.TRANSIENT_ERRORS as exc:
                if self.batch is not None:  # the batch's transaction is broken: all of it again, later
                    self.batch.abort(
                        f"database error on message {msg_id}: {conf.describe_error(exc)}", msg_id
                    )
                    settlement.leave("a database error aborts its batch: the broker redelivers it")
                    return
                self._store.reset()
                if payload.settled or attempt > retries:
                    self._fail(payload, settlement, f"database error, {attempt} attempts")
                    return
                if not self._wait_before_retry(msg_id, exc, attempt):
                    settlement.leave("stopping during a retry's backoff")
                    return

    def _payload_store(self) -> inbox.InboxStore:
        """The inbox as the payload sees it: in a batch, its row waits for the batch's one INSERT."""
        if self.batch is not None and isinstance(self._store, batching.BulkInbox):
            return batching.BatchInbox(self._store, self.batch)
        return self._store

    def _is_duplicate(self, msg_id: str, *, first: bool) -> bool:
        if first and msg_id in self._checked:
            return msg_id in self._known
        return self._store.exists(msg_id)

    def _attempt(self, payload: payloads.Payload, settlement: settling.Settlement, *, first: bool) -> None:
        """One run of the callback; transient database errors propagate to ``handle`` for a retry."""
        try:
            if self._is_duplicate(payload.msg_id, first=first):
                raise inbox.DuplicateMessage()
            with tracing.consumer_span(payload.headers):
                self._callback(payload)
        except inbox.DuplicateMessage:
            payload.ack()
            self._known.add(payload.msg_id)  # a later copy in the same run is skipped without a query
            self._count("duplicates")
            logger.info(
                "Skipped message %s: already processed",
                payload.msg_id,
                extra={"action": "message_duplicate_skipped", "msg_id": payload.msg_id},
            )
            return
        except inbox.TRANSIENT_ERRORS:
            raise
        except Exception:
            self._fail(payload, settlement, "the callback raised")
            return
        self._finish(payload, settlement)

    def _wait_before_retry(self, msg_id: str, exc: Exception, attempt: int) -> bool:
        """Back off before the next attempt; False when stopping (the broker redelivers the message)."""
        s = self._settings
        delay = backoff.compute_backoff(
            attempt, base=s.DEFAULT_CONSUMER_RETRY_WAIT, cap=s.DEFAULT_MAXIMUM_BACKOFF
        )
        logger.warning(
            "Database error on message %s (%s): retry %d of %d in %.1fs",
            msg_id,
            exc,
            attempt,
            s.DEFAULT_CONSUMER_MAX_RETRY_ATTEMPTS,
            delay,
            extra={"action": "message_retry_scheduled", "msg_id": msg_id, "attempt": attempt},
        )
        return not self._stopping.wait(delay)

    def _fail(self, payload: payloads.Payload, settlement: settling.Settlement, why: str) -> None:
        """Log the current exception with its traceback and dead-letter the message (unless acked)."""
        self._count("errors")
        settlement.nack_reason = f"{why}: {conf.describe_error(_current_exception())}"
        logger.exception(
            "Message %s failed (%s): %s",
            payload.msg_id,
            why,
            "already acknowledged" if payload.acked else f"nacking it to {self._dlq}",
            extra={"action": "message_failed", "msg_id": payload.msg_id},
        )
        payload.nack()
        self._finish(payload, settlement)

    def _finish(self, payload: payloads.Payload, settlement: settling.Settlement) -> None:
        """Count the outcome; a message the callback left unsettled is nacked so the queue never stalls."""
        if payload.saved and payload.acked:  # committed: a copy later in the same run is a duplicate
            self._known.add(payload.msg_id)
        batch = self.batch
        # in a batch, a save() whose savepoint rolled back (the callback caught the error) saved nothing
        kept = batch is None or payload.settled or not payload.saved or batch.kept(payload.msg_id)
        if not payload.settled and payload.saved and kept and batch is not None and not batch.aborted:
            settlement.ack_after(batch)  # saved in the batch transaction: acked once it commits
            batch.after_commit(lambda: self._count("processed"))
            return
        if not payload.settled:
            rolled_back = payload.saved  # outside a batch, its ACK would have been sent on commit
            logger.warning(
                "The callback neither saved nor nacked message %s%s: nacking it to %s. Call payload.save() "
                "inside your transaction, or payload.nack().",
                payload.msg_id,
                " (save() was called but its transaction rolled back)" if rolled_back else "",
                self._dlq,
                extra={"action": "message_left_unsettled", "msg_id": payload.msg_id},
            )
            settlement.nack_reason = "the callback neither saved nor nacked it" + (
                " (its save() was rolled back)" if rolled_back else ""
            )
            payload.nack()
        self._count("processed" if payload.acked else "nacked")


def _current_exception() -> BaseException:
    exc = sys.exc_info()[1]
    return exc if exc is not None else RuntimeError("unknown error")
