"""The relay's recording thread: landed batches' outcomes written to the database while the relay goes on.

Landing a batch has a broker half (collect its receipts: the relay's thread, which owns the connection)
and a database half (one UPDATE per kind of outcome, mostly ``mark_published``). While the relay drains a
backlog, the database half of batch N-2 runs here while the relay's thread claims batch N+1 and sends it,
instead of in series with them: the UPDATE and the claim overlap on the server and the encoding of the
next batch overlaps both.

The contract:

- batches are recorded one at a time, in the order they were landed, on one thread with its own database
  connection (closed when the relay stops);
- the relay waits for every record before it goes idle, before it reconnects, and when it stops, so
  outside a drain nothing is left unrecorded; a record that failed raises its ``StorageError`` in the
  relay's thread when the relay collects it (the rows come back when their lease ends, as before);
- only a database whose writes from another connection the relay's own claims see (PostgreSQL, outside
  any transaction of the caller) is recorded here: ``assembly.build_relay()`` decides, ``usable()`` checks
  at each ``run()``.
"""

from __future__ import annotations

import collections
import concurrent.futures
import logging
from collections.abc import Callable

from django.db import connections

from django_outbox_pattern import exceptions
from django_outbox_pattern.relaying import batches

logger = logging.getLogger(__name__)

Record = Callable[[batches.Collected], batches.BatchResult]


class BackgroundRecorder:
    """Records collected batches on a thread of its own, in order; the relay collects the results."""

    def __init__(self, record: Record, *, alias: str) -> None:
        self._record = record
        self.alias = alias
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._pending: collections.deque[
            tuple[batches.Collected, concurrent.futures.Future[batches.BatchResult]]
        ] = collections.deque()

    def usable(self) -> bool:
        """False while the relay's thread is inside a transaction on the outbox database: another
        connection would not see the rows it claims."""
        return not connections[self.alias].in_atomic_block

    @property
    def pending(self) -> int:
        return len(self._pending)

    def submit(self, collected: batches.Collected) -> None:
        if self._executor is None:
            self._executor = concurrent.futures.ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="outbox-relay-record"
            )
        self._pending.append((collected, self._executor.submit(self._guarded, collected)))

    def finished(self, *, keep: int | None = None) -> list[tuple[batches.Collected, batches.BatchResult]]:
        """The records done so far, oldest first; with ``keep``, after waiting until at most that many are
        pending. Raises the StorageError of the oldest failed record; the records after it stay pending
        for the next call."""
        done: list[tuple[batches.Collected, batches.BatchResult]] = []
        while self._pending and (
            self._pending[0][1].done() or (keep is not None and len(self._pending) > keep)
        ):
            collected, future = self._pending.popleft()
            done.append((collected, future.result()))
        return done

    def close(self) -> None:
        """Wait for what is still running (its outcome is dropped), close the thread's connection and end
        the thread. Never raises."""
        executor, self._executor = self._executor, None
        pending, self._pending = self._pending, collections.deque()
        for _, future in pending:
            try:
                future.result()
            except Exception as exc:  # its rows come back when their lease ends
                logger.error("Could not record a batch: %s", exc, extra={"action": "relay_batch_unrecorded"})
        if executor is not None:
            executor.submit(connections.close_all).result()
            executor.shutdown(wait=True)

    def _guarded(self, collected: batches.Collected) -> batches.BatchResult:
        try:
            return self._record(collected)
        except exceptions.StorageError:
            for conn in connections.all(initialized_only=True):  # this thread's own connections
                conn.close_if_unusable_or_obsolete()
            raise
