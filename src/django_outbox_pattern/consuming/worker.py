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
                while len(run) < max(PRECHECK_MAX, self._batch_size):
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
        """Handle ``chunk`` in one transaction; ACK only after the commit (batching.py)."""
        source = self._current()
        if source is None or not source.is_connected():  # closed (a batch aborted): the broker redelivers
            for _, message in chunk:
                self._unsettled.remove(message)
            return
        alone = [(o, m) for o, m in chunk if _identity(m) in self._suspects]  # they aborted a batch before
        chunk = [item for item in chunk if item not in alone]
        careful = False  # the lean pass first: no savepoint of the worker's per message
        while True:
            batch = batching.Batch()
            try:
                self._transact(source, chunk, batch, careful=careful)
            except batching.Rerun as rerun:  # rolled back: the messages not settled yet, with savepoints
                chunk, careful = rerun.messages, True
                continue
            except Exception as exc:  # nothing of the batch committed: nothing of it may be acked
                logger.warning(
                    "Batch of %d messages not committed (%s): closing the connection, the broker redelivers "
                    "them",
                    len(chunk),
                    conf.describe_error(exc),
                    extra={"action": "consumer_batch_rolled_back", "queue": self._queue},
                )
                if batch.culprit:
                    self._suspects.add(batch.culprit)
                settling.close(source)
                self._store.reset()
                return
            break
        for after in batch.after:  # committed: the ACK frames, the counts
            after()
        for origin, message in alone:  # unbatched: bounded retries, then the dead-letter queue
            if not self._stopping.is_set() and origin is self._current():
                self._handle(origin, message)
        flush(source)

    def _transact(
        self,
        source: wire.Transport,
        chunk: list[tuple[wire.Transport, wire.Message]],
        batch: batching.Batch,
        *,
        careful: bool,
    ) -> None:
        """One batch transaction over ``chunk``; returns once committed. Lean (``careful`` false): each
        message runs without a savepoint of the worker's, and ``Rerun`` asks for a careful pass when one
        message's failure cannot be undone alone (``batching.Guard``)."""
        self._processor.batch = batch
        try:
            with transaction.atomic():
                connection = transaction.get_connection()
                guard = batching.Guard(connection)
                with contextlib.ExitStack() as watching:
                    if not careful:
                        watching.enter_context(connection.execute_wrapper(guard))
                    for index, (origin, message) in enumerate(chunk):
                        if self._stopping.is_set():  # the rest stay unacknowledged: the broker redelivers
                            break
                        self._observer.heartbeat()
                        if origin is not source:  # from a closed connection: the broker redelivers it
                            self._unsettled.remove(message)
                            continue
                        if careful:
                            self._careful(origin, message, batch)
                            continue
                        guard.start()
                        outcome = self._processor.handle(origin, message)  # settles it, never raises
                        if batch.aborted:
                            raise batching.BatchAborted(batch.aborted)
                        if guard.needs_rerun(acked=outcome is settling.Outcome.ACKED):
                            done = [item for item in chunk[: index + 1] if item[1].ack_id in batch.held]
                            raise batching.Rerun(done + chunk[index + 1 :])
                batching.insert_rows(self._store)  # the batch's inbox rows, in one statement
        finally:
            self._processor.batch = None

    def _careful(self, origin: wire.Transport, message: wire.Message, batch: batching.Batch) -> None:
        with transaction.atomic():  # the message's own savepoint
            outcome = self._processor.handle(origin, message)  # settles it, never raises
            if batch.aborted:
                raise batching.BatchAborted(batch.aborted)
            if outcome is not settling.Outcome.ACKED:  # dead-lettered: its writes go, not others'
                transaction.set_rollback(True)

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
