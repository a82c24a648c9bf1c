"""Numbering keyed outbox rows: each row of an ordering key gets the next number of that key.

A writer calls ``number(rows, using=...)`` inside its transaction, before inserting the rows. The key's
``OrderingKey`` counter is bumped with one upsert (PostgreSQL and SQLite: ``INSERT ... ON CONFLICT DO UPDATE
... RETURNING``; MariaDB/MySQL: ``INSERT ... ON DUPLICATE KEY UPDATE`` and a ``SELECT``). The upsert's row
lock lasts until the writer's transaction ends, so a second transaction writing the same key waits for the
first to commit (or roll back) before it gets its numbers: a key's rows commit in the order they are
numbered, and the relay never sees row n+1 of a key before row n.

Keys are locked in sorted order, so two writers of the same keys never deadlock on the counters themselves;
a transaction that also locks other rows (the entities) in a different order than another one may still
deadlock, as it would without the outbox.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence
from typing import Any

from django.apps import apps
from django.db import connections

from django_outbox_pattern import exceptions

MAX_KEY_LENGTH = 255  # Published.ordering_key and OrderingKey.key
HELD_PREFIX = "held behind row "  # the start of ``last_error`` on rows a failed row of their key holds


def held_reason(blocker: Any, key: str) -> str:
    """``last_error`` of a pending row that waits for a failed earlier row of its key."""
    return (
        f"{HELD_PREFIX}{blocker} (ordering key {key!r}), which failed for good: replay it (outboxctl replay "
        f"--id {blocker}) or park it (outboxctl dead-letter --id {blocker} --reason ...) to let the key go on"
    )


def key_of(value: Any) -> str | None:
    """An ordering key as stored: None (or "") for no key, anything else as its text."""
    if value is None:
        return None
    key = str(value)
    if not key:
        return None
    if len(key) > MAX_KEY_LENGTH:
        raise exceptions.InvalidOrderingKey(
            f"The ordering key {key[:40]!r}... is {len(key)} characters long; keys have at most "
            f"{MAX_KEY_LENGTH}: use a shorter identifier of the entity (its id, not its contents)."
        )
    return key


def number(rows: Sequence[Any], *, using: str) -> None:
    """Set ``ordering_seq`` of every keyed row without one, in the order of ``rows``."""
    counts: collections.Counter[str] = collections.Counter()
    for row in rows:
        row.ordering_key = key_of(row.ordering_key)
        if row.ordering_key is not None and row.ordering_seq is None:
            counts[row.ordering_key] += 1
    if not counts:
        return
    last = _bump(counts, using=using)
    following = {key: last[key] - count + 1 for key, count in counts.items()}
    for row in rows:
        if row.ordering_key is not None and row.ordering_seq is None:
            row.ordering_seq = following[row.ordering_key]
            following[row.ordering_key] += 1


def _bump(counts: collections.Counter[str], *, using: str) -> dict[str, int]:
    """Add each key's count to its counter (made at 0 when new); the counters' new values."""
    # By name: models.py imports this module.
    counters: Any = apps.get_model("django_outbox_pattern", "orderingkey")  # type: ignore[misc]
    conn = connections[using]
    q = conn.ops.quote_name
    table, key_col, seq_col = q(counters._meta.db_table), q("key"), q("last_seq")
    keys = sorted(counts)  # one lock order for every writer
    values = ", ".join(["(%s, %s)"] * len(keys))
    params: list[Any] = [part for key in keys for part in (key, counts[key])]
    with conn.cursor() as cursor:
        if conn.vendor == "mysql":
            cursor.execute(
                f"INSERT INTO {table} ({key_col}, {seq_col}) VALUES {values} "
                f"ON DUPLICATE KEY UPDATE {seq_col} = {seq_col} + VALUES({seq_col})",
                params,
            )
            marks = ", ".join(["%s"] * len(keys))
            cursor.execute(f"SELECT {key_col}, {seq_col} FROM {table} WHERE {key_col} IN ({marks})", keys)
        else:
            cursor.execute(
                f"INSERT INTO {table} ({key_col}, {seq_col}) VALUES {values} "
                f"ON CONFLICT ({key_col}) DO UPDATE SET {seq_col} = {table}.{seq_col} + excluded.{seq_col} "
                f"RETURNING {key_col}, {seq_col}",
                params,
            )
        found = {str(key): int(seq) for key, seq in cursor.fetchall()}
    missing = [key for key in keys if key not in found]
    if missing:  # cannot happen unless the table is tampered with: never hand out a made-up number
        raise exceptions.StorageError(f"Could not number the outbox rows of ordering keys {missing[:5]}")
    return found
