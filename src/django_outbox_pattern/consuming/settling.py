"""Settling a message exactly once: the one place where the consumer writes ACK, NACK or a dead letter.

Every message the worker takes gets one ``Settlement``; the first outcome wins and later ones are ignored:

- ``ack()``: ACK (deferred: the worker writes its run of ACKs in one go, see consumer.py);
- ``dead_letter(reason)``: the message goes to ``DLQ.<queue>`` with the reason in the
  ``dop-dead-letter-reason`` header. A copy is sent to ``/amq/queue/DLQ.<queue>`` with a receipt and the
  original is acked once the RECEIPT arrived (a NACK cannot carry a header); like the broker's own dead
  letter it carries ``x-first-death-reason: rejected`` and ``x-first-death-queue`` (not the broker's
  ``x-death`` list). When the copy cannot be made
  (headers too large to send back, no RECEIPT, or it failed before for this message) the message is
  NACKed with ``requeue:false`` instead: the broker dead-letters it with its own ``x-first-death-reason``
  and the reason is only in the log;
- ``leave(reason)``: nothing is written (the worker is stopping, or the connection is gone): the broker
  redelivers the message when the connection closes.

A settle frame that cannot be written on a connection that still looks alive closes that connection, so
the broker takes the message back and redelivers it (the consumer's supervisor reconnects): a message is
never left unacknowledged on a live connection.
"""

from __future__ import annotations

import collections
import enum
import hashlib
import logging
from collections.abc import Callable

from django_outbox_pattern.broker import wire
from django_outbox_pattern.consuming import batching
from django_outbox_pattern.core import identity

logger = logging.getLogger(__name__)

REASON_HEADER = "dop-dead-letter-reason"
QUEUE_HEADER = "dop-dead-letter-queue"
MAX_REASON_CHARS = 500
# A copy to the DLQ is sent only when its headers are this small: RabbitMQ's STOMP parser refuses larger
# frames by closing the connection, and the message would come back to fail the same way.
MAX_COPY_HEADER_BYTES = 16 * 1024
MAX_COPY_HEADERS = 200
REMEMBERED_FAILURES = 1000  # messages whose copy failed: NACKed directly when they come back
# Headers the broker sets on delivery, and properties that must not travel with the copy (RabbitMQ refuses
# a user-id other than the connection's; an expiry would drop the dead letter).
_NOT_COPIED = wire.DELIVERY_HEADERS | {"user-id", "expires", "persistent"}


class Outcome(enum.Enum):
    ACKED = "acked"
    DEAD_LETTERED = "dead-lettered"  # copied with the reason and acked, or NACKed requeue:false
    LEFT = "left"  # not settled by us: the broker redelivers it once the connection closes


class DeadLetters:
    """How one subscription's messages reach ``DLQ.<queue>`` (shared by all its ``Settlement``\\ s)."""

    def __init__(self, queue: str, dead_letter_queue: str, *, receipt_timeout: float) -> None:
        self.queue = queue
        self.destination = f"/amq/queue/{dead_letter_queue}"  # addresses the declared DLQ, declares nothing
        self.receipt_timeout = receipt_timeout
        self._failed: collections.OrderedDict[str, None] = collections.OrderedDict()

    def copy_headers(self, message: wire.Message, reason: str) -> dict[str, str] | None:
        """The headers of the copy, or None when the message must be NACKed instead."""
        headers = {
            name: value
            for name, value in message.headers.items()
            if name not in _NOT_COPIED and not name.startswith(wire.DEAD_LETTER_HISTORY_PREFIXES)
        }
        size = sum(
            len(n.encode("utf-8", "surrogatepass")) + len(v.encode("utf-8", "surrogatepass"))
            for n, v in headers.items()
        )
        if size > MAX_COPY_HEADER_BYTES or len(headers) > MAX_COPY_HEADERS:
            return None
        if any("\x00" in n or "\x00" in v for n, v in headers.items()):
            return None
        headers.update(
            {
                REASON_HEADER: one_line(reason),
                QUEUE_HEADER: self.queue,
                # what RabbitMQ's own dead-lettering of a NACK says, for tools that read it
                "x-first-death-reason": "rejected",
                "x-first-death-queue": self.queue,
                "x-first-death-exchange": "",
                "persistent": "true",
            }
        )
        return headers

    def failed_before(self, key: str) -> bool:
        return key in self._failed

    def remember_failure(self, key: str) -> None:
        self._failed[key] = None
        while len(self._failed) > REMEMBERED_FAILURES:
            self._failed.popitem(last=False)


class Settlement:
    """The outcome of one message; usable as a ``payloads.Settle`` (True: ACK, False: dead letter)."""

    def __init__(
        self,
        source: wire.Transport,
        message: wire.Message,
        *,
        subscription: str,
        dead_letters: DeadLetters,
        on_settled: Callable[[Outcome], None] | None = None,
    ) -> None:
        self.source = source
        self.message = message
        self.msg_id = message.headers.get("message-id", "?")
        self.nack_reason = "the callback called nack()"
        self.outcome: Outcome | None = None
        self._subscription = subscription
        self._dead_letters = dead_letters
        self._on_settled = on_settled

    @property
    def done(self) -> bool:
        return self.outcome is not None

    def __call__(self, ack: bool) -> None:
        if ack:
            self.ack()
        else:
            self.dead_letter(self.nack_reason)

    def ack(self) -> None:
        if self._begin(Outcome.ACKED):
            self._write("ack", lambda: self.source.ack(self.message.ack_id, self._subscription, defer=True))

    def ack_after(self, batch: batching.Batch) -> None:
        """Settled as ACKED now; the ACK frame is written only once ``batch`` committed (batching.py)."""
        if self._begin(Outcome.ACKED):
            batch.hold(self.message.ack_id)
            batch.after_commit(lambda: self._write("ack", self._deferred_ack))

    def _deferred_ack(self) -> None:
        self.source.ack(self.message.ack_id, self._subscription, defer=True)

    def dead_letter(self, reason: str) -> None:
        if not self._begin(Outcome.DEAD_LETTERED):
            return
        key = self._identity()
        if not self._dead_letters.failed_before(key) and self._copy(reason):
            # at once, not deferred: the copy's RECEIPT was awaited already
            self._write("ack", lambda: self.source.ack(self.message.ack_id, self._subscription))
            how = f"copied to {self._dead_letters.destination} with the reason"
        else:
            self._write(
                "nack",
                lambda: self.source.nack(self.message.ack_id, self._subscription, requeue=False),
            )
            how = "NACKed to the dead-letter queue"
        logger.warning(
            "Message %s dead-lettered (%s): %s",
            self.msg_id,
            how,
            one_line(reason),
            extra={"action": "message_dead_lettered", "msg_id": self.msg_id, "reason": one_line(reason)},
        )

    def leave(self, reason: str) -> None:
        if self._begin(Outcome.LEFT):
            logger.info(
                "Message %s left to the broker to redeliver: %s",
                self.msg_id,
                reason,
                extra={"action": "message_abandoned", "msg_id": self.msg_id},
            )

    def _begin(self, outcome: Outcome) -> bool:
        """Claim the one outcome; False (and nothing written) when the message is settled already."""
        if self.outcome is not None:
            return False
        self.outcome = outcome
        if self._on_settled is not None:
            self._on_settled(outcome)
        return True

    def _identity(self) -> str:
        msg_id = self.message.headers.get(identity.ID_HEADER) or self.message.headers.get(
            identity.LEGACY_ID_HEADER
        )
        if msg_id:
            return str(msg_id)
        return hashlib.sha256(self.message.body).hexdigest()

    def _copy(self, reason: str) -> bool:
        """Send the copy with the reason and wait for its RECEIPT; False when it cannot be made."""
        dead_letters = self._dead_letters
        headers = dead_letters.copy_headers(self.message, reason)
        if headers is None:
            return False
        receipt = wire.new_receipt_id()
        try:
            self.source.send(dead_letters.destination, self.message.body, headers, receipt=receipt)
            confirmed = receipt in self.source.wait_for_receipts([receipt], dead_letters.receipt_timeout)
        except Exception as exc:
            logger.warning(
                "Could not copy message %s to %s: %s",
                self.msg_id,
                dead_letters.destination,
                exc,
                extra={"action": "message_dead_letter_copy_failed", "msg_id": self.msg_id},
            )
            confirmed = False
        if not confirmed:
            dead_letters.remember_failure(self._identity())
        return confirmed and self.source.is_connected()

    def _write(self, what: str, write: Callable[[], None]) -> None:
        """Write one settle frame; if that fails, close the connection: the broker then redelivers."""
        try:
            write()
        except Exception as exc:
            logger.warning(
                "Could not %s message %s (%s): closing the connection, the broker will redeliver it",
                what,
                self.msg_id,
                exc,
                extra={"action": "message_settle_failed", "msg_id": self.msg_id},
            )
            close(self.source)


def close(conn: wire.Transport) -> None:
    """Disconnect ``conn`` whatever happens: unacknowledged messages then go back to the broker."""
    try:
        conn.disconnect()
    except Exception:
        logger.debug(
            "Error closing a connection", exc_info=True, extra={"action": "broker_disconnect_failed"}
        )


def one_line(text: str) -> str:
    """``text`` on one line, without NUL or surrogates, at most MAX_REASON_CHARS characters."""
    clean = " ".join(str(text).split()).encode("utf-8", "replace").decode("utf-8").replace("\x00", "")
    return clean[:MAX_REASON_CHARS]
