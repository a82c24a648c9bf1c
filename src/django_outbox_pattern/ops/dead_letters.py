"""Move messages from the broker's dead-letter queue ``DLQ.<queue>`` back to ``<queue>``, losing none.

Each message is re-sent to ``/amq/queue/<queue>`` with a receipt and acked on the DLQ only after the
RECEIPT arrived, so a crash leaves it in the DLQ (at-least-once; the inbox drops the duplicate by its
``dop-msg-id``). ``/amq/queue/`` addresses existing queues without declaring them (no clash with the
queue's ``x-`` arguments), but RabbitMQ silently drops a SEND to a queue that does not exist and still
sends the RECEIPT: so the target is probed first with a short subscription, whose messages (if any) are
handed straight back with a requeueing NACK. Everything goes through a ``wire.Transport``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import queue as queue_module
import uuid
from typing import Literal

from django_outbox_pattern import exceptions
from django_outbox_pattern.broker import wire
from django_outbox_pattern.core import addressing, identity

logger = logging.getLogger(__name__)

IDLE_TIMEOUT_S = 2.0


@dataclasses.dataclass(frozen=True)
class RequeueResult:
    queue: str
    source: str
    requeued: int
    stopped: Literal["empty", "limit", "loop"]  # DLQ idle; --limit reached; a requeued message came back


def requeue(
    conn: wire.Transport,
    queue: str,
    *,
    limit: int | None = None,
    idle_timeout: float = IDLE_TIMEOUT_S,
    receipt_timeout: float = 30.0,
    dlq_prefix: str = addressing.DEAD_LETTER_PREFIX,
) -> RequeueResult:
    """Move up to ``limit`` messages from ``<dlq_prefix><queue>`` to ``<queue>``; stop when it is idle."""
    if not queue or "/" in queue:
        raise exceptions.InvalidDestination(f"{queue!r} is not a queue name: give the bare name, e.g. orders")
    source, target = f"/amq/queue/{dlq_prefix}{queue}", f"/amq/queue/{queue}"
    inbox: queue_module.Queue[wire.Message] = queue_module.Queue()
    conn.set_message_handler(inbox.put)
    conn.connect()
    try:
        _probe(conn, target, inbox, receipt_timeout)
        sub_id = f"requeue-{uuid.uuid4().hex[:8]}"
        conn.subscribe(source, sub_id, {"prefetch-count": "1"}, ack="client-individual")
        _confirm(
            conn, f"Cannot read {dlq_prefix}{queue}", "does the dead-letter queue exist?", receipt_timeout
        )
        done, seen = 0, set()
        stopped: Literal["empty", "limit", "loop"] = "limit"
        while limit is None or done < limit:
            try:
                message = inbox.get(timeout=idle_timeout)
            except queue_module.Empty:
                stopped = "empty"
                break
            if message.headers.get("subscription") != sub_id:
                _give_back(conn, message)
                continue
            identity = _identity(message)
            if identity in seen:
                stopped = "loop"  # left unacked: the broker keeps it in the DLQ when we disconnect
                break
            _resend(conn, target, message, receipt_timeout)
            conn.ack(message.ack_id, sub_id)
            seen.add(identity)
            done += 1
        logger.info("Requeued %s message(s) from %s", done, source, extra={"action": "dead_letters_requeued"})
        return RequeueResult(queue=queue, source=f"{dlq_prefix}{queue}", requeued=done, stopped=stopped)
    finally:
        conn.set_message_handler(None)
        conn.disconnect()


def _probe(
    conn: wire.Transport, target: str, inbox: queue_module.Queue[wire.Message], timeout: float
) -> None:
    """Fail unless ``target`` exists: a short subscription that the broker refuses for a missing queue.

    An exclusive queue (DEFAULT_EXCLUSIVE_QUEUE) refuses the subscription as locked: it exists, and other
    connections may still send to it, so the probe reconnects and lets the requeue go on.
    """
    probe_id = f"probe-{uuid.uuid4().hex[:8]}"
    queue = target.rsplit("/", 1)[-1]
    conn.subscribe(target, probe_id, {"prefetch-count": "1"}, ack="client-individual")
    try:
        _confirm(
            conn,
            f"Cannot requeue into the queue {queue}",
            "give the consumer's queue name, not DLQ.<name>",
            timeout,
        )
    except exceptions.BrokerRejected as exc:
        if "resource_locked" not in str(exc).lower():
            raise
        conn.disconnect()
        conn.connect()
        return
    conn.unsubscribe(probe_id)
    while True:
        try:
            _give_back(conn, inbox.get_nowait())
        except queue_module.Empty:
            return


def _confirm(conn: wire.Transport, what: str, hint: str, timeout: float = 30.0) -> None:
    """Frames are handled in order: a RECEIPT for a SEND proves every earlier frame was accepted."""
    receipt = wire.new_receipt_id()
    try:
        conn.send(f"/topic/outboxctl.probe.{receipt}", "", {}, receipt=receipt)
        confirmed = receipt in conn.wait_for_receipts([receipt], timeout) and conn.is_connected()
    except exceptions.TransportConnectionError:
        confirmed = False  # the ERROR frame closed the connection before the probe went out
    error = getattr(conn, "last_error", None)
    if not confirmed:
        if error is None and not conn.is_connected():
            raise exceptions.ConnectionClosed(f"{what}: the broker connection was lost.")
        raise exceptions.BrokerRejected(f"{what}: the broker refused it ({error or 'no receipt'}); {hint}.")


def _give_back(conn: wire.Transport, message: wire.Message) -> None:
    try:
        conn.nack(message.ack_id, message.headers.get("subscription", ""), requeue=True)
    except exceptions.TransportError:
        logger.debug(
            "Could not hand back a probe delivery", exc_info=True, extra={"action": "probe_return_failed"}
        )


def _resend(conn: wire.Transport, target: str, message: wire.Message, timeout: float) -> None:
    headers = {
        key: value
        for key, value in message.headers.items()
        if key not in wire.DELIVERY_HEADERS and not key.startswith(wire.DEAD_LETTER_HISTORY_PREFIXES)
    }
    headers["persistent"] = "true"
    try:
        body = message.body.decode("utf-8")
    except UnicodeDecodeError:
        raise exceptions.MessageDecodeError(
            f"Message {message.headers.get('message-id')} is not UTF-8 text: it was left in the DLQ."
        ) from None
    receipt = wire.new_receipt_id()
    conn.send(target, body, headers, receipt=receipt)
    if receipt not in conn.wait_for_receipts([receipt], timeout):
        raise exceptions.PublishNotConfirmed(
            f"The broker did not confirm the re-sent message within {timeout}s: it stays in the DLQ; retry."
        )


def _identity(message: wire.Message) -> str:
    msg_id = message.headers.get(identity.ID_HEADER)
    if msg_id:
        return msg_id
    return hashlib.sha256(message.body).hexdigest()
