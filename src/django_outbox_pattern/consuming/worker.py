"""The consumer's worker thread and the hand-off queue it reads (the supervisor is consumer.py).

stomp.py's receiver thread only puts each MESSAGE on the hand-off queue (``receive()``; unbounded: the
broker's prefetch-count bounds it, and a message that did not fit would stay unacknowledged on a live
connection for good), so heartbeats keep flowing however long a callback takes. Every message handed off is
tracked as unsettled until the processor settles it (``unsettled.py``: the stall signal). The worker takes
the messages waiting (up to PRECHECK_MAX), looks up in one query which of them are in the inbox already,
then hands them to ``handling.Processor`` one at a time. Messages of a connection that is no longer the
current one are skipped: the broker redelivers them, and the inbox skips those already saved. ACKs are
written in runs (``flush``), at the latest ACK_FLUSH_S after the first.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable

from django.db import transaction

from django_outbox_pattern import conf
from django_outbox_pattern.broker import wire
from django_outbox_pattern.consuming import batching, handling, inbox, settling, unsettled
from django_outbox_pattern.core import observer as observing

logger = logging.getLogger(__name__)

WORKER_POLL_S = 0.2  # how long the worker waits for a message before checking for stop
PRECHECK_MAX = 50  # messages the worker takes from the hand-off queue per duplicate check (one query)
ACK_FLUSH_S = 0.05  # longest an ACK waits for the end of its run of messages (then all go in one write)


class Worker:
    """Hands messages from the receiver thread to the processor, on its own thread (``run()``)."""

    def __init__(
        self,
        *,
        processor: handling.Processor,
        store: inbox.InboxStore,
        observer: observing.Observer,
        stopping: threading.Event,
        current: Callable[[], wire.Transport | None],
        queue_name: str,
        unsettled: unsettled.Unsettled,
        batch_size: int = 1,
    ) -> None:
        self.handoff: queue.Queue[tuple[wire.Transport, wire.Message]] = queue.Queue()
        self._unsettled = unsettled
        self._batch_size = batch_size  # > 1: batched consuming (batching.py)
        self._suspects = batching.Suspects()
        self._processor = processor
        self._store = store
        self._observer = observer
        self._stopping = stopping
        self._current = current  # the supervisor's connection now (None while reconnecting)
        self._queue = queue_name

    def receive(self, source: wire.Transport, message: wire.Message) -> None:
        """Called on stomp.py's receiver thread: hand the message off, never block."""
        self._unsettled.add(message)
        self.handoff.put_nowait((source, message))

    def drop_stale(self) -> None:
        """Forget what an old connection handed off (before a new connection starts receiving)."""
        with contextlib.suppress(queue.Empty):
            while True:
                self.handoff.get_nowait()
        self._unsettled.clear()

    def run(self) -> None:
        """Until stop: take what is waiting, check it for duplicates in one query, handle it in order."""
        while not self._stopping.is_set():
            self._observer.heartbeat()  # from the worker: a callback stuck for good stops the heartbeat
            try:
                run = [self.handoff.get(timeout=WORKER_POLL_S)]
            except queue.Empty:
                continue
            with contextlib.suppress(queue.Empty):  # whatever else is waiting: one duplicate check for all
                while len(run) < PRECHECK_MAX:
                    run.append(self.handoff.get_nowait())
            self._processor.precheck([message for source, message in run if source is self._current()])
            if self._batch_size > 1:
                for start in range(0, len(run), self._batch_size):
                    if not self._stopping.is_set():
                        self._run_batch(run[start : start + self._batch_size])
                continue
            flushed = time.monotonic()
            for source, message in run:
                if self._stopping.is_set():  # the rest stay unacknowledged: the broker redelivers them
                    break
                self._observer.heartbeat()
                if source is not self._current():  # from a closed connection: the broker redelivers it
                    self._unsettled.remove(message)
                    continue
                self._handle(source, message)
                if time.monotonic() - flushed >= ACK_FLUSH_S:  # slow callbacks: no ACK waits long
                    flush(source)
                    flushed = time.monotonic()
            flush(self._current())
        self._store.reset()

    def _run_batch(self, chunk: list[tuple[wire.Transport, wire.Message]]) -> None:
        """Handle ``chunk`` in one transaction, each message in a savepoint; ACK only after the commit."""
        batch, source = batching.Batch(), self._current()
        if source is None or not source.is_connected():  # closed (a batch aborted): the broker redelivers
            for _, message in chunk:
                self._unsettled.remove(message)
            return
        alone = [(o, m) for o, m in chunk if _identity(m) in self._suspects]  # they aborted a batch before
        chunk = [item for item in chunk if item not in alone]
        self._processor.batch = batch
        try:
            with transaction.atomic():
                for origin, message in chunk:
                    if self._stopping.is_set():  # the rest stay unacknowledged: the broker redelivers them
                        break
                    self._observer.heartbeat()
                    if origin is not source:  # from a closed connection: the broker redelivers it
                        self._unsettled.remove(message)
                        continue
                    with transaction.atomic():  # the message's own savepoint
                        outcome = self._processor.handle(origin, message)  # settles it, never raises
                        if batch.aborted:
                            raise batching.BatchAborted(batch.aborted)
                        if outcome is not settling.Outcome.ACKED:  # dead-lettered: its writes go, not others'
                            transaction.set_rollback(True)
        except Exception as exc:  # nothing of the batch committed: nothing of it may be acked
            logger.warning(
                "Batch of %d messages not committed (%s): closing the connection, the broker redelivers them",
                len(chunk),
                conf.describe_error(exc),
                extra={"action": "consumer_batch_rolled_back", "queue": self._queue},
            )
            if batch.culprit:
                self._suspects.add(batch.culprit)
            if source is not None:
                settling.close(source)
            self._store.reset()
            return
        finally:
            self._processor.batch = None
        for after in batch.after:  # committed: the ACK frames, the counts
            after()
        for origin, message in alone:  # unbatched: bounded retries, then the dead-letter queue
            if not self._stopping.is_set() and origin is self._current():
                self._handle(origin, message)
        flush(source)

    def _handle(self, source: wire.Transport, message: wire.Message) -> None:
        try:
            self._processor.handle(source, message)
        except Exception:  # the worker must survive anything
            logger.exception(
                "Unexpected error handling a message", extra={"action": "consumer_worker_failed"}
            )


def flush(source: wire.Transport | None) -> None:
    """Write the ACKs deferred by the messages handled so far. On a connection that is gone they are
    lost: the broker redelivers those messages and the inbox skips them (only logged)."""
    if source is None or not source.is_connected():
        return
    try:
        source.flush()
    except Exception as exc:  # the connection is suspect: closed, so the broker redelivers them
        logger.warning(
            "Could not send ACKs (%s): closing the connection, the broker will redeliver those messages",
            exc,
            extra={"action": "consumer_ack_flush_failed"},
        )
        settling.close(source)


def _identity(message: wire.Message) -> str:
    """The id the inbox knows the message by, or "" when it has none (it cannot have aborted a batch)."""
    try:
        return inbox.message_id(message.headers)
    except Exception:
        return ""
