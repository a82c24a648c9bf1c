"""Batched consuming (DEFAULT_CONSUMER_BATCH_SIZE > 1): many callbacks, one commit, then the ACKs.

The worker runs up to N waiting messages inside one ``transaction.atomic()``. A callback's
``transaction.atomic()`` is a savepoint of that transaction, and its ``transaction.on_commit()`` hooks run
after the batch commits. A message whose callback failed is dead-lettered at once and its writes are
rolled back, the others' stay. A message the callback saved counts as settled, but its ACK frame is
written only after the batch committed.

What a batch costs the database, per message: the callback's own savepoint (SAVEPOINT, RELEASE) and its
writes; per batch: one duplicate check, one multi-row INSERT of the inbox rows and one COMMIT.

- ``payload.save()`` does not insert at once: the row waits (``PendingRow``), registered as a no-op
  ``on_commit`` hook so that Django forgets it with the savepoint it was saved in if that rolls back; just
  before the COMMIT the rows still registered go in one INSERT (``inbox.DatabaseInbox.record_many``). A
  second copy of a message saved earlier in the same batch raises ``DuplicateMessage`` as the unique
  column would. A copy another consumer committed meanwhile makes that INSERT fail: the batch is rolled
  back and redelivered (below), and its duplicate check then skips the copy.
- No savepoint of the worker's own wraps a message at first (the *lean* pass): when a callback fails, its
  own ``atomic()`` already rolled its writes back. Only when that is not certain (it wrote outside any
  savepoint of its own and then failed, it left an ``on_commit`` hook or an unusable transaction behind:
  ``Guard``) is the transaction rolled back and the batch's messages not settled yet run again at once
  (``Rerun``), each in a savepoint of the worker's, where that message's writes are rolled back alone.
  Those callbacks therefore run twice (their database writes land once).

When the batch cannot commit (a database error in any callback, a failed INSERT or COMMIT, a stop or a
crash in the middle), nothing of it is acked: the worker closes the broker connection, the broker
redelivers every message of the batch, and the inbox, whose rows rolled back with the batch, lets them run
again. So a batch is applied once or not at all, and the ACK never comes before the commit. The message
whose database error aborted a batch runs on its own when it comes back (``Suspects``): retried as in
unbatched mode, then dead-lettered if the error stays.

What a callback must not do in batched mode: commit or roll back the outer transaction itself
(``transaction.set_autocommit``, raw ``COMMIT``), rely on its ``on_commit`` hooks running before the next
message, expect its inbox row to be visible to queries before the batch commits, or hold locks other
messages of the batch will wait for. Side effects outside the database may run more than once (as after
any redelivery).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from django.db import transaction

from django_outbox_pattern.consuming import inbox

logger = logging.getLogger(__name__)


class PendingRow:
    """An inbox row saved in a batch, inserted with the others just before the batch commits. It is also
    its own (no-op) ``on_commit`` hook: Django drops it when the savepoint it was saved in rolls back."""

    __slots__ = ("body", "headers", "msg_id")

    def __init__(self, msg_id: str, headers: Mapping[str, str], body: Any) -> None:
        self.msg_id = msg_id
        self.headers = headers
        self.body = body

    def __call__(self) -> None:
        """Run after the commit by Django: the row is in the inbox already."""


def live_rows() -> list[PendingRow]:
    """The rows saved in the current transaction whose savepoints did not roll back, in order."""
    return [entry[1] for entry in _hooks() if isinstance(entry[1], PendingRow)]


def _hooks() -> list[Any]:
    """Django's ``on_commit`` hooks of the current transaction: ``(savepoint ids, func, robust)``."""
    return transaction.get_connection().run_on_commit  # type: ignore[no-any-return]


def _is_live(row: PendingRow) -> bool:
    return any(entry[1] is row for entry in reversed(_hooks()))


class Batch:
    """The messages of one batch transaction: their ACKs and inbox rows wait for its commit."""

    def __init__(self) -> None:
        self.after: list[Callable[[], None]] = []  # run after the commit, in order: ACK frames, counts
        self.aborted = ""  # why the batch cannot commit ("" while it can)
        self.culprit = ""  # the message whose database error aborted it
        self.rows: dict[str, PendingRow] = {}  # the last row saved per message id
        self.held: set[str] = set()  # ack ids of the messages whose ACK waits for the commit

    def after_commit(self, func: Callable[[], None]) -> None:
        self.after.append(func)

    def hold(self, ack_id: str) -> None:
        """The message's ACK waits for the commit (it is settled only if the batch commits)."""
        self.held.add(ack_id)

    def abort(self, reason: str, culprit: str) -> None:
        if not self.aborted:
            self.aborted, self.culprit = reason, culprit

    def kept(self, msg_id: str) -> bool:
        """False when the message's deferred save was rolled back with a savepoint of the callback."""
        row = self.rows.get(msg_id)
        return row is None or _is_live(row)


@runtime_checkable
class BulkInbox(Protocol):
    """An inbox that can insert many rows in one statement (``inbox.DatabaseInbox``)."""

    def record_many(self, rows: Collection[PendingRow]) -> None: ...


class BatchInbox:
    """The inbox as a callback's ``Payload`` sees it inside a batch: ``record()`` defers the INSERT to the
    end of the batch (``PendingRow``); everything else goes to the real store."""

    def __init__(self, store: inbox.InboxStore, batch: Batch) -> None:
        self._store = store
        self._batch = batch

    def record(self, msg_id: str, headers: Mapping[str, str], body: Any) -> None:
        earlier = self._batch.rows.get(msg_id)
        if earlier is not None and _is_live(earlier):
            raise inbox.DuplicateMessage(f"Message {msg_id!r} was saved earlier in this batch: skipped.")
        row = PendingRow(msg_id, headers, body)
        self._batch.rows[msg_id] = row
        transaction.on_commit(row)

    def exists(self, msg_id: str) -> bool:
        return self._store.exists(msg_id)

    def existing(self, msg_ids: Collection[str]) -> set[str]:
        return self._store.existing(msg_ids)

    def on_commit(self, func: Callable[[], None]) -> None:
        self._store.on_commit(func)

    def reset(self) -> None:
        self._store.reset()

    def purge_older_than(self, cutoff: datetime, *, batch_size: int, should_stop: Callable[[], bool]) -> int:
        return self._store.purge_older_than(cutoff, batch_size=batch_size, should_stop=should_stop)


def insert_rows(store: inbox.InboxStore) -> int:
    """Insert the batch's rows still live in one statement (``DuplicateMessage`` when one is there
    already: the batch cannot commit). The number of rows."""
    rows = live_rows()
    if rows and isinstance(store, BulkInbox):
        store.record_many(rows)
    return len(rows)


class Guard:
    """Watches a lean pass's statements (a ``connection.execute_wrapper``).

    - whether the current message ran one outside any savepoint of its callback (``bare``), and whether
      such a statement failed, which leaves PostgreSQL's transaction unusable (``broken``);
    - a savepoint is written only when a statement follows it: ``SAVEPOINT`` waits, a ``RELEASE`` or
      ``ROLLBACK TO`` of a savepoint nothing ran in is not written at all (it had nothing to keep or
      undo), any other statement writes the waiting ones first. A callback whose ``atomic()`` block only
      calls ``payload.save()`` (whose row waits for the batch's INSERT) then costs no round trip.
    """

    _CREATE, _RELEASE, _ROLLBACK = "SAVEPOINT ", "RELEASE SAVEPOINT ", "ROLLBACK TO SAVEPOINT "
    _SAVEPOINT_SQL = (_CREATE, _RELEASE, _ROLLBACK)

    def __init__(self, connection: Any) -> None:
        self._base = len(connection.savepoint_ids)  # savepoints open when the batch began (none added)
        self.bare = False
        self.broken = False
        self._hooks = 0
        self._waiting: list[str] = []  # savepoint names created and not written yet, innermost last
        ops, name = connection.ops, connection.ops.quote_name("s")
        self._elide = (
            ops.savepoint_create_sql("s") == self._CREATE + name
            and ops.savepoint_commit_sql("s") == self._RELEASE + name
            and ops.savepoint_rollback_sql("s") == self._ROLLBACK + name
        )  # a backend writing savepoints otherwise gets them written as they come

    def start(self) -> None:
        """Before each message."""
        self.bare = False
        self._hooks = len(_hooks())

    def __call__(self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        if self._elide and params is None and not many and self._deferred(sql):
            return None
        for name in self._waiting:  # a real statement: the savepoints it runs in go first
            execute(self._CREATE + name, None, False, context)
        self._waiting.clear()
        # Django pops a savepoint's id before it releases or rolls it back: those are never bare
        if sql.startswith(self._SAVEPOINT_SQL) or any(context["connection"].savepoint_ids[self._base :]):
            return execute(sql, params, many, context)
        self.bare = True
        try:
            return execute(sql, params, many, context)
        except Exception:
            self.broken = True
            raise

    def _deferred(self, sql: str) -> bool:
        """True when ``sql`` is a savepoint statement that need not be written now (or at all)."""
        if sql.startswith(self._CREATE):
            self._waiting.append(sql[len(self._CREATE) :])
            return True
        if self._waiting and sql in (self._RELEASE + self._waiting[-1], self._ROLLBACK + self._waiting[-1]):
            self._waiting.pop()
            return True
        return False

    def needs_rerun(self, *, acked: bool) -> bool:
        """After each message: True when its failure cannot be undone without the worker's savepoint, or
        when the transaction is no longer one the batch can commit."""
        if self.broken or transaction.get_connection().needs_rollback:
            return True
        return not acked and (self.bare or len(_hooks()) > self._hooks)


class Rerun(Exception):
    """The lean pass cannot undo one message alone: roll back, run ``messages`` again with savepoints."""

    def __init__(self, messages: list[Any]) -> None:
        super().__init__(f"{len(messages)} messages run again, each in a savepoint")
        self.messages = messages


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
