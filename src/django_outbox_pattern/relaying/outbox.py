"""The outbox as the relay sees it: the ``Outbox`` protocol and the ``OutboxRow`` a claim returns.

Two implementations keep the same contract: ``store.OutboxStore`` (the database, every relay query) and
``testing.MemoryOutbox`` (a real in-memory twin, for unit tests of the relay loop without a database).

The contract: ``claim`` leases up to ``limit`` due rows (status SCHEDULE, due at or before ``now``) to a
token, in due order, until ``lease_until``; every other write only touches rows still leased to that
token (``mark_published`` excepted: a RECEIPT is proof, whoever holds the lease now). No transaction stays
open after a method returns. Failures raise ``exceptions.StorageError``.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
from collections.abc import Collection, Sequence
from typing import Any, Protocol

from django_outbox_pattern.relaying.producer import EncodedJSON


@dataclasses.dataclass(frozen=True, slots=True)
class OutboxRow:
    """A claimed outbox row: what the relay needs to send it."""

    id: Any
    destination: str
    body: EncodedJSON  # the stored JSON text
    headers: Any  # decoded: a dict, unless someone stored something else
    retry: int
    expired: bool  # expires_at had passed when the row was claimed
    ordering_key: str | None = None  # its key's next row is woken when this one is published

    @classmethod
    def from_values(cls, values: Sequence[Any]) -> OutboxRow:
        row_id, destination, body, headers, retry, expired, *rest = values
        key = rest[0] if rest else None
        return cls(row_id, destination, EncodedJSON(body), json.loads(headers), retry, bool(expired), key)


class Claimed(list[OutboxRow]):
    """The rows a claim leased, in due order; ``scanned`` counts every due row it looked at, those left
    waiting for an earlier row of their key included (a full scan means more rows may be due)."""

    def __init__(self, rows: Sequence[OutboxRow] = (), *, scanned: int | None = None) -> None:
        super().__init__(rows)
        self.scanned = len(self) if scanned is None else scanned


class Outbox(Protocol):
    """Every read and write of the outbox the relay, its batches and its housekeeping make."""

    def claim(
        self, token: str, *, limit: int, now: datetime.datetime, lease_until: datetime.datetime
    ) -> list[OutboxRow]:
        """Lease the first unsent row of each key among up to ``limit`` due rows to ``token``; return
        them in due order (a ``Claimed`` list)."""
        ...

    def mark_published(self, ids: Sequence[Any], *, now: datetime.datetime) -> int:
        """Confirmed by the broker: SUCCEEDED, ``published_at`` = now."""
        ...

    def wake_next(self, keys: Collection[str], *, now: datetime.datetime) -> int:
        """Rows of these keys were published: each key's next unsent row, if it waits, is due at ``now``."""
        ...

    def wake_stranded(self, *, now: datetime.datetime) -> int:
        """Waiting keyed rows whose earlier rows are all sent (a missed wake-up): due at ``now``."""
        ...

    def reschedule(
        self, ids: Sequence[Any], *, token: str, error: str, available_at: datetime.datetime
    ) -> int:
        """A failed attempt: one more ``retry``, the error kept, not due before ``available_at``."""
        ...

    def dead_letter(self, ids: Sequence[Any], *, token: str, reason: str, count_attempt: bool = False) -> int:
        """FAILED with the reason; ``count_attempt`` adds the attempt that just failed."""
        ...

    def release(self, ids: Sequence[Any], *, token: str, now: datetime.datetime) -> int:
        """Never sent (the connection went first): due again at once, attempts unchanged."""
        ...

    def hold(self, ids: Sequence[Any], *, token: str, reason: str, available_at: datetime.datetime) -> int:
        """Not sent on purpose (no queue bound to the destination): attempts unchanged, ``last_error`` says
        why, due again at ``available_at``."""
        ...

    def dead_letter_expired(self, *, now: datetime.datetime, reason: str) -> int:
        """Every SCHEDULE row past ``expires_at`` and not leased right now becomes FAILED."""
        ...

    def purge_published(self, *, added_before: datetime.datetime) -> int:
        """Delete SUCCEEDED rows added before the cutoff; SCHEDULE and FAILED rows stay."""
        ...
