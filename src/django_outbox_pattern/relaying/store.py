"""Every database query of the relay: claim a batch, mark it, reschedule, dead-letter, purge.

Claiming is a lease. A claimed row keeps status SCHEDULE, gets ``locked_by`` = the claim's token and
``available_at`` = the end of the lease, so no other relay sees it as due until the lease ends; a relay that
dies loses nothing, its rows become due again when the lease ends (at-least-once; the inbox deduplicates
by ``dop-msg-id``). No transaction stays open after a method returns.

- PostgreSQL: one statement, ``UPDATE ... FROM (SELECT ... FOR UPDATE SKIP LOCKED) RETURNING ...``, so
  concurrent relays claim disjoint rows without waiting for each other, in one round trip.
- MariaDB >= 10.6, MySQL 8: the same ``SELECT ... FOR UPDATE SKIP LOCKED`` then one UPDATE, in one short
  transaction.
- SQLite (no row locks): a compare-and-set UPDATE that re-checks "still SCHEDULE and due", then the rows
  are read back by the claim's token. SQLite runs one writer at a time, so two relays on one file never
  get the same row: they are serialised, not parallel (system check W001 says so).

Every statement handles a whole batch: no per-row UPDATE and no per-row SELECT.

Per-key ordering (sequencing.py, docs/ordering.md): a row with an ordering key is sent only while no earlier
row of its key (lower ``ordering_seq``) is unsent, SCHEDULE or FAILED. A claim looks at up to ``limit`` due
rows: it leases the first unsent row of each key (and every row without a key) and sets the others aside,
``available_at`` = ``WAITING``, out of the claim's range, so that a long backlog of one key is looked at
once, not on every pass. Publishing a keyed row wakes its key's next row (``wake_next``); a periodic
``wake_stranded`` catches a wake-up lost to a race with a claim. A row that failed for good holds the rest
of its key until an operator replays it or parks it (parking clears its ``ordering_seq``). PostgreSQL and
SQLite decide which rows go first on one snapshot; on MariaDB/MySQL the locking read sees rows committed
after its subquery's snapshot, so the keyed rows it locked are judged by a second, fresh statement.

Liveness (liveness.py): every relay process beats its ``RelayProcess`` row with the database's clock; the
rows leased by a relay whose beat is stale are released at once, not at the end of their lease.
"""

from __future__ import annotations

import collections
import contextlib
import datetime
import logging
from collections.abc import Collection, Iterable, Iterator, Sequence
from typing import Any

from django.db import DatabaseError, connections, models, transaction
from django.db.models import Exists, ExpressionWrapper, F, OuterRef, Q, Subquery
from django.db.models.functions import Cast, Now
from django.utils import timezone

from django_outbox_pattern import exceptions, sequencing, wiring
from django_outbox_pattern.choices import StatusChoice
from django_outbox_pattern.models import AbstractPublished, OrderingKey, RelayProcess
from django_outbox_pattern.relaying.outbox import Claimed, OutboxRow

logger = logging.getLogger(__name__)

# Due order: a fresh row's available_at is its creation time, so rows go out in creation order and a
# retried row takes its place by its next-attempt time. Only indexed columns: InnoDB secondary indexes end
# with the primary key, so (status, available_at) serves this order without a sort; with any other column
# MariaDB sorts, which locks every due row and leaves nothing for the other relays to claim.
CLAIM_ORDER = ("available_at", "id")
BATCH_SIZE = 1000  # rows per statement for sweeps and purges
# What a claim reads: the body as the JSON text stored (sent as it is, never decoded), the headers as JSON
# text, and whether the row expired (compared in SQL: no timestamp is parsed per row).
_FIELDS = ("id", "destination", "wire_body", "wire_headers", "retry", "expired")
UNSENT = (StatusChoice.SCHEDULE, StatusChoice.FAILED)  # an earlier row of the key in these holds the rest
# ``available_at`` of a keyed row set aside until the rows of its key before it are sent: never due.
WAITING = datetime.datetime(9000, 1, 1, tzinfo=datetime.timezone.utc)


def _wire_values(
    rows: models.QuerySet[AbstractPublished], now: datetime.datetime, *extra: str
) -> models.QuerySet[Any]:
    """``_FIELDS`` (then ``extra``) of the rows: JSON columns as their stored text, expiry compared by the
    database."""
    values: models.QuerySet[Any] = rows.annotate(
        wire_body=Cast("body", output_field=models.TextField()),
        wire_headers=Cast("headers", output_field=models.TextField()),
        expired=ExpressionWrapper(Q(expires_at__lte=now), output_field=models.BooleanField()),
    ).values_list(*_FIELDS, *extra)
    return values


@contextlib.contextmanager
def wrap_errors(what: str) -> Iterator[None]:
    """Translate database errors into exceptions.StorageError."""
    try:
        yield
    except DatabaseError as exc:
        raise exceptions.StorageError(
            f"The database failed while the relay tried to {what}: {exc}. Is it running, and are the "
            "migrations applied (`python manage.py migrate`)?"
        ) from exc


class OutboxStore:
    """The outbox table as the relay sees it (``outbox.Outbox``). ``model`` is DEFAULT_PUBLISHED_CLASS.

    ``strategy`` is how batches are claimed (see the module docstring); by default the best one the
    database supports: "returning" (PostgreSQL), "skip_locked" (MariaDB/MySQL), "compare_and_set" (SQLite).
    """

    STRATEGIES = ("returning", "skip_locked", "compare_and_set")

    def __init__(
        self,
        model: type[AbstractPublished] | None = None,
        *,
        using: str | None = None,
        strategy: str = "",
        processes: type[RelayProcess] = RelayProcess,
    ) -> None:
        if strategy and strategy not in self.STRATEGIES:
            raise ValueError(f"strategy must be one of {self.STRATEGIES}, got {strategy!r}")
        self.model = model or wiring.published_model()
        self.processes = processes
        self.using = using or "default"
        self._strategy = strategy

    @property
    def strategy(self) -> str:
        if not self._strategy:
            conn = connections[self.using]
            if conn.vendor == "postgresql":
                self._strategy = "returning"
            elif conn.features.has_select_for_update_skip_locked:
                self._strategy = "skip_locked"
            else:
                self._strategy = "compare_and_set"
        return self._strategy

    def _rows(self) -> models.QuerySet[AbstractPublished]:
        return self.model.objects.using(self.using)

    def claim(
        self, token: str, *, limit: int, now: datetime.datetime, lease_until: datetime.datetime
    ) -> Claimed:
        """Lease the first unsent row of each key among up to ``limit`` due rows to ``token``, set the
        others aside (``WAITING``), and return the leased rows in claim order."""
        with wrap_errors("claim a batch"):
            if self.strategy == "returning":
                return self._claim_returning(token, limit=limit, now=now, lease_until=lease_until)
            due = (
                self._rows()
                .filter(status=StatusChoice.SCHEDULE, available_at__lte=now)
                .filter(self._first_of_key() | Q(self._earlier_idle(now)))  # not behind rows in flight only
                .order_by(*CLAIM_ORDER)
            )
            if self.strategy == "skip_locked":
                with transaction.atomic(using=self.using):
                    locked = due.select_for_update(skip_locked=True)
                    rows = list(_wire_values(locked, now, "ordering_key")[:limit])
                    waiting = self._held_back([r[0] for r in rows if r[-1] is not None])
                    aside = self._behind_idle(waiting, now)  # judged before this claim's own leases
                    first = [r for r in rows if r[0] not in waiting]
                    if first:
                        self._rows().filter(id__in=[r[0] for r in first]).update(
                            locked_by=token, available_at=lease_until
                        )
                    self._set_aside(aside, now)
                return Claimed([OutboxRow.from_values(r) for r in first], scanned=len(rows))
            scanned = list(due.values_list("id", "ordering_key")[:limit])
            if not scanned:
                return Claimed()
            waiting = self._held_back([row_id for row_id, key in scanned if key is not None])
            aside = self._behind_idle(waiting, now)  # judged before this claim's own leases
            ids = [row_id for row_id, _ in scanned if row_id not in waiting]
            self._rows().filter(id__in=ids, status=StatusChoice.SCHEDULE, available_at__lte=now).update(
                locked_by=token, available_at=lease_until
            )
            self._set_aside(aside, now)
            # Read back through the claim index: the lease's end is the same for the whole claim.
            mine = self._rows().filter(
                status=StatusChoice.SCHEDULE, available_at=lease_until, locked_by=token
            )
            leased = _wire_values(mine, now, "ordering_key")
            position = {row_id: index for index, row_id in enumerate(ids)}  # the lease erased the due order
            rows_ = sorted((OutboxRow.from_values(r) for r in leased), key=lambda row: position[row.id])
            return Claimed(rows_, scanned=len(scanned))

    def _first_of_key(self) -> Q:
        """Rows without a key, or whose key has no earlier unsent row."""
        earlier = self._rows().filter(
            ordering_key=OuterRef("ordering_key"),
            status__in=UNSENT,
            ordering_seq__lt=OuterRef("ordering_seq"),
        )
        return Q(ordering_key__isnull=True) | Q(ordering_seq__isnull=True) | Q(~Exists(earlier))

    def _held_back(self, keyed_ids: Sequence[Any]) -> set[Any]:
        """Which of these keyed rows have an earlier unsent row of their key.

        Asked in a statement of its own after the rows were read (or locked), so it sees every row
        committed before them (READ COMMITTED, Django's default on MariaDB/MySQL)."""
        if not keyed_ids:
            return set()
        held = self._rows().filter(id__in=keyed_ids).exclude(self._first_of_key())
        return set(held.values_list("id", flat=True))

    def _earlier_idle(self, now: datetime.datetime) -> Exists:
        """An earlier unsent row of the key that no relay holds right now."""
        return Exists(
            self._rows().filter(
                Q(locked_by="") | Q(available_at__lte=now),
                ordering_key=OuterRef("ordering_key"),
                status__in=UNSENT,
                ordering_seq__lt=OuterRef("ordering_seq"),
            )
        )

    def _behind_idle(self, held: Collection[Any], now: datetime.datetime) -> set[Any]:
        """Of these held rows, those with an earlier unsent row no relay holds (see ``_claim_returning``)."""
        if not held:
            return set()
        behind = self._rows().filter(self._earlier_idle(now), id__in=list(held))
        return set(behind.values_list("id", flat=True))

    def _set_aside(self, ids: Collection[Any], now: datetime.datetime) -> None:
        """Keyed rows behind an unsent row of their key: out of the claim's range until woken. Those behind
        a row that failed for good say so (they may have been written after it failed)."""
        if not ids:
            return
        aside = self._rows().filter(id__in=list(ids), status=StatusChoice.SCHEDULE, locked_by="")
        aside.filter(available_at__lte=now).update(available_at=WAITING)
        self._label_held(ids)

    def _label_held(self, ids: Collection[Any]) -> None:
        """Rows just set aside behind a row that failed for good say which row holds them. Each row is
        updated by its primary key: these rows are the claim's own, a range over the key would lock rows
        other relays hold (MariaDB then deadlocks two claims of the same key)."""
        aside = self._rows().filter(id__in=list(ids), status=StatusChoice.SCHEDULE, locked_by="")
        rows = list(aside.values_list("id", "ordering_key", "ordering_seq"))
        failed = (
            self._rows()
            .filter(ordering_key__in={key for _, key, _ in rows}, status=StatusChoice.FAILED)
            .exclude(ordering_seq=None)
            .values_list("id", "ordering_key", "ordering_seq")
        )
        first_failure: dict[str, tuple[Any, int]] = {}
        for blocker, key, seq in failed:
            if key not in first_failure or seq < first_failure[key][1]:
                first_failure[key] = (blocker, seq)
        held: dict[Any, list[Any]] = collections.defaultdict(list)
        for row_id, key, seq in rows:
            if key in first_failure and seq is not None and seq > first_failure[key][1]:
                held[first_failure[key][0]].append(row_id)
        for blocker, row_ids in held.items():
            key = next(k for k, (b, _) in first_failure.items() if b == blocker)
            aside.filter(id__in=row_ids).update(last_error=sequencing.held_reason(blocker, key))

    def wake_next(self, keys: Collection[str], *, now: datetime.datetime) -> int:
        """Rows of these keys were published: each key's next row, if it was set aside, is due at ``now``.

        The next row is found per key through the ordering index (a few probes, whatever the key's
        backlog): the first SCHEDULE row by ``ordering_seq``, unless a FAILED row comes before it."""
        if not keys:
            return 0
        numbered = self._rows().filter(ordering_key=OuterRef("key")).exclude(ordering_seq=None)
        pending = numbered.filter(status=StatusChoice.SCHEDULE).order_by("ordering_seq")
        failed = numbered.filter(status=StatusChoice.FAILED).order_by("ordering_seq")
        with wrap_errors("wake the next rows of ordering keys"):
            firsts = (
                OrderingKey.objects.using(self.using)
                .filter(key__in=list(keys))
                .annotate(
                    head=Subquery(pending.values("id")[:1]),
                    head_seq=Subquery(pending.values("ordering_seq")[:1]),
                    failed_seq=Subquery(failed.values("ordering_seq")[:1]),
                )
                .values_list("head", "head_seq", "failed_seq")
            )
            heads = [head for head, seq, fail in firsts if head is not None and (fail is None or fail > seq)]
            if not heads:
                return 0
            return (
                self._rows()
                .filter(id__in=heads, status=StatusChoice.SCHEDULE, available_at__gte=WAITING, locked_by="")
                .update(available_at=now)
            )

    def wake_stranded(self, *, now: datetime.datetime) -> int:
        """Rows set aside whose earlier rows are all sent by now, their wake-up lost: due at ``now``.

        The loss: a claim judges a row on a snapshot taken before the row's predecessor was published, and
        sets it aside just after ``wake_next`` looked for it. Reads the keys of the rows set aside (no
        per-row check), at most ``BATCH_SIZE`` keys a call."""
        aside = self._rows().filter(status=StatusChoice.SCHEDULE, available_at__gte=WAITING, locked_by="")
        with wrap_errors("wake waiting rows of ordering keys"):
            keys = set(aside.values_list("ordering_key", flat=True).distinct()[:BATCH_SIZE])
        return self.wake_next(keys - {None}, now=now)

    def _claim_returning(
        self, token: str, *, limit: int, now: datetime.datetime, lease_until: datetime.datetime
    ) -> Claimed:
        """PostgreSQL: lock the due rows, lease the first of each key, set the others aside and read the
        leased ones, in one statement (one round trip, no transaction)."""
        conn = connections[self.using]
        table, col = self._quoted_names(conn)
        key, seq, status = col["ordering_key"], col["ordering_seq"], col["status"]

        def earlier(of_status: StatusChoice, extra: str = "") -> str:
            # A scalar subquery, one status at a time, ORDER BY the index's last column and LIMIT 1: the
            # planner keeps all three (it drops them from an EXISTS) and walks the ordering index from the
            # key's first row. With EXISTS it took a sequential scan per row (about 1 s per 200-row claim)
            # whenever its statistics said a key held many rows, as they do with few keys or one hot key.
            return (
                f"(SELECT earlier.{seq} FROM {table} earlier WHERE earlier.{key} = {table}.{key} "
                f"AND earlier.{status} = {int(of_status)} AND earlier.{seq} < {table}.{seq}{extra} "
                f"ORDER BY earlier.{seq} LIMIT 1) IS NOT NULL"
            )

        keyed = f"{table}.{key} IS NOT NULL AND {table}.{seq} IS NOT NULL"
        first_of_key = (
            f"NOT ({keyed}) OR NOT ({earlier(StatusChoice.SCHEDULE)} OR {earlier(StatusChoice.FAILED)})"
        )
        # A row waiting only for rows in flight is left as it is: their RECEIPT may come while this statement
        # runs, and a row set aside on this snapshot would miss its wake-up. Nor does it take a place in
        # the claim's LIMIT (with many keys in flight, rows behind them would fill every claim).
        idle = f" AND (earlier.{col['locked_by']} = '' OR earlier.{col['available_at']} <= %s)"
        behind_idle = (
            f"{keyed} AND ({earlier(StatusChoice.SCHEDULE, idle)} OR {earlier(StatusChoice.FAILED)})"
        )
        # The UPDATEs find their rows by primary key (= ANY of an array): joined to the CTE instead, the
        # planner may hash the whole table for every batch. Every due row comes back (the set-aside ones
        # with NULLs), in due order, so the caller knows how many were looked at.
        sql = (
            f"WITH due AS (SELECT {col['id']} AS due_id, {col['available_at']} AS due_at, "
            f"({first_of_key}) AS first FROM {table} "
            f"WHERE {col['status']} = %s AND {col['available_at']} <= %s "
            f"AND (({first_of_key}) OR ({behind_idle})) "
            f"ORDER BY {col['available_at']}, {col['id']} LIMIT %s FOR UPDATE SKIP LOCKED), "
            f"aside AS (UPDATE {table} SET {col['available_at']} = %s "
            f"WHERE {col['id']} = ANY(ARRAY(SELECT due_id FROM due WHERE NOT first))), "
            f"claimed AS (UPDATE {table} SET {col['locked_by']} = %s, {col['available_at']} = %s "
            f"WHERE {col['id']} = ANY(ARRAY(SELECT due_id FROM due WHERE first)) "
            f"RETURNING {col['id']} AS id, {col['destination']} AS destination, {col['body']}::text AS body, "
            f"{col['headers']}::text AS headers, {col['retry']} AS retry, "
            f"{col['expires_at']} <= %s AS expired, {key} AS ordering_key) "
            "SELECT id, destination, body, headers, retry, expired, ordering_key, due_id "
            "FROM due LEFT JOIN claimed ON due_id = id ORDER BY due_at, due_id"
        )
        params: list[Any] = [StatusChoice.SCHEDULE.value, now, now, limit, WAITING, token, lease_until, now]
        with conn.cursor() as cursor:
            cursor.execute(sql, params)
            found = cursor.fetchall()
        aside = [r[-1] for r in found if r[0] is None]
        if aside:
            self._label_held(aside)
        return Claimed([OutboxRow.from_values(r[:-1]) for r in found if r[0] is not None], scanned=len(found))

    def _quoted_names(self, conn: Any) -> tuple[str, dict[str, str]]:
        """The table's and every field's column name, quoted for raw SQL on ``conn``."""
        meta, q = self.model._meta, conn.ops.quote_name
        return q(meta.db_table), {field.name: q(field.column) for field in meta.concrete_fields}

    def mark_published(self, ids: Sequence[Any], *, now: datetime.datetime) -> int:
        """Confirmed by the broker: SUCCEEDED, in one UPDATE (whoever holds the lease now)."""
        if not ids:
            return 0
        with wrap_errors("mark published rows"):
            if self.strategy == "returning":  # PostgreSQL: the ids as one array parameter
                return self._mark_published_array(ids, now=now)
            return (
                self._rows()
                .filter(id__in=ids)
                .update(status=StatusChoice.SUCCEEDED, published_at=now, locked_by="", last_error="")
            )

    def _mark_published_array(self, ids: Sequence[Any], *, now: datetime.datetime) -> int:
        conn = connections[self.using]
        table, col = self._quoted_names(conn)
        sql = (
            f"UPDATE {table} SET {col['status']} = %s, {col['published_at']} = %s, "
            f"{col['locked_by']} = '', {col['last_error']} = '' WHERE {col['id']} = ANY(%s)"
        )
        with conn.cursor() as cursor:
            cursor.execute(sql, [StatusChoice.SUCCEEDED.value, now, list(ids)])
            return int(cursor.rowcount)

    def reschedule(
        self, ids: Sequence[Any], *, token: str, error: str, available_at: datetime.datetime
    ) -> int:
        """A failed attempt: one more ``retry``, the error kept, not due before ``available_at``."""
        if not ids:
            return 0
        with wrap_errors("reschedule failed rows"):
            return self._leased(ids, token).update(
                retry=F("retry") + 1, last_error=error, available_at=available_at, locked_by=""
            )

    def dead_letter(self, ids: Sequence[Any], *, token: str, reason: str, count_attempt: bool = False) -> int:
        """Park rows as FAILED with the reason; ``count_attempt`` adds the attempt that just failed."""
        if not ids:
            return 0
        changes: dict[str, Any] = {"status": StatusChoice.FAILED, "last_error": reason, "locked_by": ""}
        if count_attempt:
            changes["retry"] = F("retry") + 1
        with wrap_errors("dead-letter rows"):
            dead = self._leased(ids, token).update(**changes)
            self._hold_behind(ids)
            return dead

    def refresh_held(self, keys: Iterable[str]) -> None:
        """After an operator replayed or parked rows of these keys: each key's first unsent row is due, if
        it was set aside, and the pending rows say which failed row still holds them, or nothing."""
        keys = list(keys)
        keyed = self._rows().filter(ordering_key__in=keys)
        with wrap_errors("update the rows of ordering keys"):
            self.wake_next(keys, now=timezone.now())
            keyed.filter(status=StatusChoice.SCHEDULE, last_error__startswith=sequencing.HELD_PREFIX).update(
                last_error=""
            )
            self._hold_behind(list(keyed.filter(status=StatusChoice.FAILED).values_list("id", flat=True)))

    def _hold_behind(
        self, ids: Sequence[Any], among: models.QuerySet[AbstractPublished] | None = None
    ) -> None:
        """The pending rows of each key behind a row just made FAILED (``among`` them, when given) say
        which row holds them."""
        blockers = (
            self._rows()
            .filter(id__in=ids, status=StatusChoice.FAILED, ordering_key__isnull=False)
            .exclude(ordering_seq=None)
            .order_by("-ordering_seq")  # the earliest blocker of a key writes last: it is the one that holds
            .values_list("id", "ordering_key", "ordering_seq")
        )
        for blocker, key, seq in blockers:
            self._rows().filter(ordering_key=key, status=StatusChoice.SCHEDULE, ordering_seq__gt=seq).update(
                last_error=sequencing.held_reason(blocker, key)
            )

    def release(self, ids: Sequence[Any], *, token: str, now: datetime.datetime) -> int:
        """Rows never sent (the connection went first): due again at once, attempts unchanged."""
        if not ids:
            return 0
        with wrap_errors("release unsent rows"):
            return self._leased(ids, token).update(available_at=now, locked_by="")

    def hold(self, ids: Sequence[Any], *, token: str, reason: str, available_at: datetime.datetime) -> int:
        """Rows not sent on purpose (no queue bound to their destination): still SCHEDULE, attempts
        unchanged, ``last_error`` says why, due again at ``available_at``."""
        if not ids:
            return 0
        with wrap_errors("hold unroutable rows"):
            return self._leased(ids, token).update(last_error=reason, available_at=available_at, locked_by="")

    def _leased(self, ids: Sequence[Any], token: str) -> models.QuerySet[AbstractPublished]:
        # Only while our lease holds: a row whose lease ran out may belong to another relay by now.
        return self._rows().filter(id__in=ids, locked_by=token, status=StatusChoice.SCHEDULE)

    def dead_letter_expired(self, *, now: datetime.datetime, reason: str) -> int:
        """Every SCHEDULE row past ``expires_at`` and not leased right now becomes FAILED, in batches."""
        not_leased = Q(locked_by="") | Q(available_at__lte=now)
        expired = self._rows().filter(not_leased, status=StatusChoice.SCHEDULE, expires_at__lte=now)
        total = 0
        with wrap_errors("dead-letter expired rows"):
            while True:
                ids = list(expired.values_list("id", flat=True)[:BATCH_SIZE])
                if not ids:
                    return total
                total += expired.filter(id__in=ids).update(
                    status=StatusChoice.FAILED, last_error=reason, locked_by=""
                )
                self._hold_behind(ids)
                if len(ids) < BATCH_SIZE:
                    return total

    def purge_published(self, *, added_before: datetime.datetime) -> int:
        """Delete SUCCEEDED rows added before the cutoff, in batches; SCHEDULE and FAILED rows stay."""
        old = self._rows().filter(status=StatusChoice.SUCCEEDED, added__lt=added_before)
        total = 0
        with wrap_errors("delete old published rows"):
            while True:
                ids = list(old.values_list("id", flat=True)[:BATCH_SIZE])
                if not ids:
                    return total
                total += self._rows().filter(id__in=ids, status=StatusChoice.SUCCEEDED).delete()[0]
                if len(ids) < BATCH_SIZE:
                    return total

    # --- liveness: which relays run, and the rows of those that died -------------------------------------

    def _processes(self) -> models.QuerySet[RelayProcess]:
        return self.processes.objects.using(self.using)

    def beat(self, relay_id: str, *, host: str, pid: int) -> None:
        """A running relay's heartbeat: its ``beat_at`` set to the database's clock (the row made if gone)."""
        with wrap_errors("record the relay's heartbeat"):
            if not self._processes().filter(relay_id=relay_id).update(beat_at=Now()):
                self._processes().create(relay_id=relay_id, host=host[:255], pid=pid, beat_at=Now())

    def release_dead(self, *, stale_after_s: float, now: datetime.datetime) -> dict[str, int]:
        """Relays silent for ``stale_after_s`` seconds (database clock) are dead: the rows they lease are
        due at ``now``, their ``RelayProcess`` rows deleted. Returns the rows released per dead relay.

        A relay counts as dead only if this call deletes its row while it is still stale, so two relays
        reaping at once never both release the same relay's rows, and a relay that beats again in between
        keeps them.
        """
        cutoff = ExpressionWrapper(
            Now() - datetime.timedelta(seconds=stale_after_s), output_field=models.DateTimeField()
        )
        released: dict[str, int] = {}
        with wrap_errors("release the rows of dead relays"):
            for relay_id in list(
                self._processes().filter(beat_at__lt=cutoff).values_list("relay_id", flat=True)
            ):
                if not self._processes().filter(relay_id=relay_id, beat_at__lt=cutoff).delete()[0]:
                    continue
                released[relay_id] = (
                    self._rows()
                    .filter(
                        status=StatusChoice.SCHEDULE,
                        available_at__gt=now,
                        locked_by__startswith=f"{relay_id}#",
                    )
                    .update(locked_by="", available_at=now)
                )
        return released

    def forget(self, relay_id: str) -> None:
        """A relay that stops cleanly removes its ``RelayProcess`` row."""
        with wrap_errors("remove the relay's heartbeat"):
            self._processes().filter(relay_id=relay_id).delete()
