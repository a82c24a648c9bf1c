"""What happens to one message on the consumer's worker thread: dedupe, callback, retries, ACK/NACK.

- A message whose id is already in the inbox is acked without calling the callback (``duplicates``);
  so is one whose ``save()`` loses the race against another consumer (``inbox.DuplicateMessage``). The
  worker looks the ids of the messages waiting up in one query first (``precheck()``).
- A callback that raises: the message is nacked to ``DLQ.<queue>`` and the traceback logged.
- Transient database errors (``OperationalError``/``InterfaceError``): the connection is closed and the
  callback retried ``DEFAULT_CONSUMER_MAX_RETRY_ATTEMPTS`` times after ``DEFAULT_CONSUMER_RETRY_WAIT``
  backoff, then nacked. A stop during the wait leaves the message to the broker to redeliver.
- A callback that neither saves nor nacks: a warning naming the message, and a NACK to ``DLQ.<queue>``,
  so a subscription with a small prefetch never stalls and an operator can see the message there.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Sequence

from django_outbox_pattern import conf, exceptions, payloads, tracing
from django_outbox_pattern.broker import wire
from django_outbox_pattern.consuming import inbox
from django_outbox_pattern.core import backoff, identity, requestid

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
    ) -> None:
        self._callback = callback
        self._settings = settings
        self._store = store
        self._subscription = subscription
        self._dlq = dead_letter_queue
        self._stopping = stopping
        self._count = count
        self._checked: set[str] = set()  # ids looked up by the last precheck() ...
        self._known: set[str] = set()  # ... and those of them in the inbox (or saved since)

    def precheck(self, messages: Sequence[wire.Message]) -> None:
        """Look up in one query which of these messages are in the inbox already, so that ``handle()``
        needs no query of its own to skip a duplicate. Saves since are added; a copy saved meanwhile by
        another consumer is still caught by the inbox's unique ``msg_id`` (``DuplicateMessage``)."""
        ids: set[str] = set()
        for message in messages:
            with contextlib.suppress(exceptions.MessageDecodeError):
                ids.add(inbox.message_id(message.headers))
        self._checked, self._known = set(), set()
        try:
            self._known = self._store.existing(ids)
        except Exception:  # each message then checks for itself, with the usual retries
            logger.debug(
                "Duplicate pre-check failed", exc_info=True, extra={"action": "inbox_precheck_failed"}
            )
            self._store.reset()
            return
        self._checked = ids

    def handle(self, source: wire.Transport, message: wire.Message) -> None:
        """Process one message received on ``source``, retrying transient database errors.

        Meanwhile its ``dop-correlation-id`` (a new one if it has none) is the current request id, so the
        outbox rows the callback writes carry it on (as 3.x did)."""
        with requestid.bound(message.headers.get(identity.CORRELATION_HEADER)):
            self._handle(source, message)

    def _handle(self, source: wire.Transport, message: wire.Message) -> None:
        try:
            msg_id = inbox.message_id(message.headers)
        except exceptions.MessageDecodeError:
            logger.exception("Cannot identify a message: nacking it", extra={"action": "message_rejected"})
            self._settler(source, message, "?")(False)
            self._count("nacked")
            return
        settle = self._settler(source, message, msg_id)
        body = payloads.decode_body(message.body, msg_id)
        retries = self._settings.DEFAULT_CONSUMER_MAX_RETRY_ATTEMPTS
        for attempt in range(1, retries + 2):
            payload = payloads.Payload(body, message.headers, msg_id=msg_id, settle=settle, store=self._store)
            try:
                self._attempt(payload, first=attempt == 1)
                return
            except inbox.TRANSIENT_ERRORS as exc:
                self._store.reset()
                if payload.settled or attempt > retries:
                    self._fail(payload, f"database error, {attempt} attempts")
                    return
                if not self._wait_before_retry(msg_id, exc, attempt):
                    return

    def _is_duplicate(self, msg_id: str, *, first: bool) -> bool:
        if first and msg_id in self._checked:
            return msg_id in self._known
        return self._store.exists(msg_id)

    def _attempt(self, payload: payloads.Payload, *, first: bool) -> None:
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
            self._fail(payload, "the callback raised")
            return
        self._finish(payload)

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
        if self._stopping.wait(delay):
            logger.warning(
                "Stopping: message %s is left to the broker to redeliver",
                msg_id,
                extra={"action": "message_abandoned", "msg_id": msg_id},
            )
            return False
        return True

    def _fail(self, payload: payloads.Payload, why: str) -> None:
        """Log the current exception with its traceback and nack the message (unless already acked)."""
        self._count("errors")
        logger.exception(
            "Message %s failed (%s): %s",
            payload.msg_id,
            why,
            "already acknowledged" if payload.acked else f"nacking it to {self._dlq}",
            extra={"action": "message_failed", "msg_id": payload.msg_id},
        )
        payload.nack()
        self._finish(payload)

    def _finish(self, payload: payloads.Payload) -> None:
        """Count the outcome; a message the callback left unsettled is nacked so the queue never stalls."""
        if payload.saved and payload.acked:  # committed: a copy later in the same run is a duplicate
            self._known.add(payload.msg_id)
        if not payload.settled:
            logger.warning(
                "The callback neither saved nor nacked message %s%s: nacking it to %s. Call payload.save() "
                "inside your transaction, or payload.nack().",
                payload.msg_id,
                " (save() was called but its transaction rolled back)" if payload.saved else "",
                self._dlq,
                extra={"action": "message_left_unsettled", "msg_id": payload.msg_id},
            )
            payload.nack()
        self._count("processed" if payload.acked else "nacked")

    def _settler(self, source: wire.Transport, message: wire.Message, msg_id: str) -> payloads.Settle:
        """ACK/NACK on the connection the message came from; a failure is logged (the broker redelivers)."""

        def settle(ack: bool) -> None:
            try:
                if ack:  # written with others by the worker's flush(), see worker.py
                    source.ack(message.ack_id, self._subscription, defer=True)
                else:
                    source.nack(message.ack_id, self._subscription, requeue=False)
            except exceptions.TransportError as exc:
                logger.warning(
                    "Could not %s message %s (%s): the broker will redeliver it",
                    "ack" if ack else "nack",
                    msg_id,
                    exc,
                    extra={"action": "message_settle_failed", "msg_id": msg_id},
                )

        return settle
