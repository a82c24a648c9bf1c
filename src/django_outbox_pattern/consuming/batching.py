"""Batched consuming (DEFAULT_CONSUMER_BATCH_SIZE > 1): many callbacks, one commit, then the ACKs.

The worker runs up to N waiting messages inside one ``transaction.atomic()``; each message runs in a
savepoint of its own, so a callback's ``transaction.atomic()`` is a savepoint too and its
``transaction.on_commit()`` hooks run after the batch commits. A message whose callback failed is
dead-lettered at once and its savepoint rolled back: its writes are gone, the others stay. A message the
callback saved counts as settled, but its ACK frame is written only after the batch committed.

When the batch cannot commit (a database error in any callback, a failed COMMIT, a stop or a crash in the
middle), nothing of it is acked: the worker closes the broker connection, the broker redelivers every
message of the batch, and the inbox, whose rows rolled back with the batch, lets them run again. So a batch
is applied once or not at all, and the ACK never comes before the commit. The message whose database error
aborted a batch runs on its own when it comes back (``Suspects``): retried as in unbatched mode, then
dead-lettered if the error stays.

What a callback must not do in batched mode: commit or roll back the outer transaction itself
(``transaction.set_autocommit``, raw ``COMMIT``), rely on its ``on_commit`` hooks running before the next
message, or hold locks other messages of the batch will wait for.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

logger = logging.getLogger(__name__)


class Batch:
    """The messages of one batch transaction: their ACKs wait for its commit."""

    def __init__(self) -> None:
        self.after: list[Callable[[], None]] = []  # run after the commit, in order: ACK frames, counts
        self.aborted = ""  # why the batch cannot commit ("" while it can)
        self.culprit = ""  # the message whose database error aborted it

    def after_commit(self, func: Callable[[], None]) -> None:
        self.after.append(func)

    def abort(self, reason: str, culprit: str) -> None:
        if not self.aborted:
            self.aborted, self.culprit = reason, culprit


class Suspects:
    """Messages that aborted a batch: when they come back they run on their own, with the usual bounded
    retries and then the dead-letter queue, so one message whose database error never goes away cannot
    roll its batch back for ever."""

    def __init__(self, limit: int = 1000) -> None:
        self._ids: dict[str, None] = {}
        self._limit = limit

    def add(self, msg_id: str) -> None:
        self._ids[msg_id] = None
        while len(self._ids) > self._limit:
            del self._ids[next(iter(self._ids))]

    def __contains__(self, msg_id: object) -> bool:
        return msg_id in self._ids


class BatchAborted(Exception):
    """The batch cannot commit; its transaction is rolled back and nothing of it is acked."""
