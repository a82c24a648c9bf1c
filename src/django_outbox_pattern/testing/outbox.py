"""``MemoryOutbox``: the outbox in a dict, a real twin of ``store.OutboxStore`` (``outbox.Outbox``).

It keeps the same contract as the database store: a claim leases due SCHEDULE rows in due order
(``available_at``, then insertion order) to a token until the lease ends; writes other than
``mark_published`` only touch rows still leased to that token; expired rows are swept unless leased.
So the relay loop (``assembly.build_relay(outbox_store=MemoryOutbox(), transport=MemoryTransport(...))``)
runs in unit tests without a database:

    outbox = testing.MemoryOutbox()
    outbox.add("/queue/orders", {"id": 1})
    relay = assembly.build_relay(settings, outbox_store=outbox, transport=testing.MemoryTransport(broker))
    relay.run(until_empty=True)
    assert outbox.statuses() == {"SUCCEEDED": 1}
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import itertools
import json
import threading
import uuid
from collections.abc import Callable, Collection, Sequence
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone

from django_outbox_pattern import sequencing
from django_outbox_pattern.choices import StatusChoice
from django_outbox_pattern.core import identity
from django_outbox_pattern.relaying import outbox

DEFAULT_TTL = datetime.timedelta(days=1)  # as Published.expires_at


@dataclasses.dataclass
class MemoryRow:
    """One outbox row, with the columns the relay reads and writes."""

    id: Any
    destination: str
    body: Any
    headers: dict[str, Any]
    added: datetime.datetime
    expires_at: datetime.datetime
    available_at: datetime.datetime
    status: int = StatusChoice.SCHEDULE
    retry: int = 0
    locked_by: str = ""
    last_error: str = ""
    published_at: datetime.datetime | None = None
    order: int = 0  # insertion order: the tie-break of the due order (the database uses the id)
    ordering_key: str | None = None
    ordering_seq: int | None = None  # the key's sequence (store.py); None when parked or without a key


class MemoryOutbox:
    """``outbox.Outbox`` over a dict of ``MemoryRow``; thread-safe (one lock, as one writer)."""

    def __init__(self, *, clock: Callable[[], datetime.datetime] = timezone.now) -> None:
        self.rows: dict[Any, MemoryRow] = {}
        self._clock = clock
        self._order = itertools.count()
        self._last_seq: dict[str, int] = {}
        self._lock = threading.Lock()

    def add(
        self,
        destination: str,
        body: Any,
        *,
        headers: dict[str, Any] | None = None,
        row_id: Any = None,
        expires_at: datetime.datetime | None = None,
        available_at: datetime.datetime | None = None,
        ordering_key: str | None = None,
    ) -> MemoryRow:
        """A new SCHEDULE row, due at once unless ``available_at``; with generated id headers; numbered
        in its key when ``ordering_key`` is given."""
        now = self._clock()
        row_id = row_id if row_id is not None else uuid.uuid4()
        generated = {
            identity.ID_HEADER: str(row_id),
            identity.DESTINATION_HEADER: destination,
        }
        row = MemoryRow(
            id=row_id,
            destination=destination,
            body=body,
            headers={**(headers or {}), **generated},
            added=now,
            expires_at=expires_at or now + DEFAULT_TTL,
            available_at=available_at or now,
            order=next(self._order),
            ordering_key=ordering_key,
        )
        with self._lock:
            if ordering_key is not None:
                row.ordering_seq = self._last_seq[ordering_key] = self._last_seq.get(ordering_key, 0) + 1
            self.rows[row_id] = row
        return row

    def statuses(self) -> dict[str, int]:
        """How many rows per status name (only the statuses present)."""
        with self._lock:
            counts = collections.Counter(StatusChoice(row.status).name for row in self.rows.values())
        return dict(counts)

    # --- outbox.Outbox --------------------------------------------------------------------------------

    def claim(
        self, token: str, *, limit: int, now: datetime.datetime, lease_until: datetime.datetime
    ) -> outbox.Claimed:
        with self._lock:
            waiting = (r for r in self.rows.values() if r.status == StatusChoice.SCHEDULE)
            due = sorted(
                (r for r in waiting if r.available_at <= now and self._first_of_key(r)),
                key=lambda r: (r.available_at, r.order),
            )
            due = due[:limit]
            for row in due:
                row.locked_by, row.available_at = token, lease_until
            return outbox.Claimed([self._claimed(row, now) for row in due])

    def wake_next(self, keys: Collection[str], *, now: datetime.datetime) -> int:
        return 0  # nothing is set aside here: a claim looks at every row each time

    def wake_stranded(self, *, now: datetime.datetime) -> int:
        return 0

    def _first_of_key(self, row: MemoryRow) -> bool:
        """No earlier row of its key is unsent (SCHEDULE or FAILED), as the store's claim checks."""
        if row.ordering_key is None or row.ordering_seq is None:
            return True
        unsent = (StatusChoice.SCHEDULE, StatusChoice.FAILED)
        return not any(
            r.ordering_key == row.ordering_key
            and r.status in unsent
            and r.ordering_seq is not None
            and r.ordering_seq < row.ordering_seq
            for r in self.rows.values()
        )

    @staticmethod
    def _claimed(row: MemoryRow, now: datetime.datetime) -> outbox.OutboxRow:
        values = (
            row.id,
            row.destination,
            json.dumps(row.body, cls=DjangoJSONEncoder),
            json.dumps(row.headers, cls=DjangoJSONEncoder),
            row.retry,
            row.expires_at <= now,
            row.ordering_key,
        )
        return outbox.OutboxRow.from_values(values)

    def mark_published(self, ids: Sequence[Any], *, now: datetime.datetime) -> int:
        with self._lock:
            rows = [self.rows[i] for i in ids if i in self.rows]
            for row in rows:
                row.status, row.published_at = StatusChoice.SUCCEEDED, now
                row.locked_by = row.last_error = ""
            return len(rows)

    def reschedule(
        self, ids: Sequence[Any], *, token: str, error: str, available_at: datetime.datetime
    ) -> int:
        with self._lock:
            rows = self._leased(ids, token)
            for row in rows:
                row.retry += 1
                row.last_error, row.available_at, row.locked_by = error, available_at, ""
            return len(rows)

    def dead_letter(self, ids: Sequence[Any], *, token: str, reason: str, count_attempt: bool = False) -> int:
        with self._lock:
            rows = self._leased(ids, token)
            for row in rows:
                row.status, row.last_error, row.locked_by = StatusChoice.FAILED, reason, ""
                row.retry += 1 if count_attempt else 0
            self._hold_behind(rows)
            return len(rows)

    def _hold_behind(self, failed: Sequence[MemoryRow]) -> None:
        for blocker in sorted(failed, key=lambda r: -(r.ordering_seq or 0)):
            if blocker.ordering_key is None or blocker.ordering_seq is None:
                continue
            for row in self.rows.values():
                if (
                    row.ordering_key == blocker.ordering_key
                    and row.status == StatusChoice.SCHEDULE
                    and (row.ordering_seq or 0) > blocker.ordering_seq
                ):
                    row.last_error = sequencing.held_reason(blocker.id, blocker.ordering_key)

    def release(self, ids: Sequence[Any], *, token: str, now: datetime.datetime) -> int:
        with self._lock:
            rows = self._leased(ids, token)
            for row in rows:
                row.available_at, row.locked_by = now, ""
            return len(rows)

    def hold(self, ids: Sequence[Any], *, token: str, reason: str, available_at: datetime.datetime) -> int:
        with self._lock:
            rows = self._leased(ids, token)
            for row in rows:
                row.available_at, row.locked_by, row.last_error = available_at, "", reason
            return len(rows)

    def _leased(self, ids: Sequence[Any], token: str) -> list[MemoryRow]:
        rows = (self.rows.get(i) for i in ids)
        return [
            r for r in rows if r is not None and r.locked_by == token and r.status == StatusChoice.SCHEDULE
        ]

    def dead_letter_expired(self, *, now: datetime.datetime, reason: str) -> int:
        with self._lock:
            expired = [
                r
                for r in self.rows.values()
                if r.status == StatusChoice.SCHEDULE
                and r.expires_at <= now
                and (not r.locked_by or r.available_at <= now)
            ]
            for row in expired:
                row.status, row.last_error, row.locked_by = StatusChoice.FAILED, reason, ""
            self._hold_behind(expired)
            return len(expired)

    def purge_published(self, *, added_before: datetime.datetime) -> int:
        with self._lock:
            old = [
                key
                for key, r in self.rows.items()
                if r.status == StatusChoice.SUCCEEDED and r.added < added_before
            ]
            for key in old:
                del self.rows[key]
            return len(old)


def _check_protocol(memory: MemoryOutbox) -> outbox.Outbox:
    return memory  # mypy proves MemoryOutbox satisfies the Outbox protocol
