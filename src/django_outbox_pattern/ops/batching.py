"""How a repair runs: in batches, each batch one short transaction that also writes its audit rows.

A batch first reads (and, where the database can, locks) the rows that still qualify, then changes exactly
those, re-checking the condition in the UPDATE/DELETE. Without row locks (SQLite) a row may change between
the two statements; the batch then reports only the rows that really are in the new state. The changed ids
go to the audit trail (``audit.add_rows``) and to an optional ``on_rows`` hook (the admin's LogEntry) in the
same transaction, so the record and the change commit together.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from django.db import models, transaction

from django_outbox_pattern.models import Repair
from django_outbox_pattern.ops import audit

logger = logging.getLogger(__name__)

BATCH_SIZE = 1000
Progress = Callable[[int], None]
RowsHook = Callable[[list[Any]], None]
# One batch: ids in, changed ids out (and, for the inbox, their message ids for the audit trail).
Batch = Callable[[list[Any]], tuple[list[Any], Mapping[Any, str]]]


def update_rows(base: models.QuerySet[Any], batch: list[Any], values: Mapping[str, Any]) -> list[Any]:
    """Set ``values`` on the rows of ``batch`` that ``base`` still selects; return the ids changed."""
    locked = base.select_for_update().filter(pk__in=batch).order_by("pk")  # one lock order for all
    candidates = list(locked.values_list("pk", flat=True))
    if not candidates:
        return []
    changed = base.filter(pk__in=candidates).update(**values)
    if changed == len(candidates):
        return candidates
    return list(base.model.objects.filter(pk__in=candidates, **values).values_list("pk", flat=True))


def delete_rows(base: models.QuerySet[Any], batch: list[Any], key: str = "pk") -> dict[Any, Any]:
    """Delete the rows of ``batch`` that ``base`` still selects; return {id deleted: its ``key`` value}."""
    locked = base.select_for_update().filter(pk__in=batch).order_by("pk")
    candidates = dict(locked.values_list("pk", key))
    if not candidates:
        return {}
    deleted = base.filter(pk__in=list(candidates)).delete()[0]
    if deleted != len(candidates):
        left = set(base.model.objects.filter(pk__in=list(candidates)).values_list("pk", flat=True))
        candidates = {pk: v for pk, v in candidates.items() if pk not in left}
    return candidates


def apply(repair: Repair, run_batch: Batch, batch: list[Any], on_rows: RowsHook | None = None) -> int:
    """One batch in one transaction, with its audit rows (and the caller's hook); how many changed."""
    with transaction.atomic():
        changed, msg_ids = run_batch(batch)
        audit.add_rows(repair, changed, msg_ids)
        if on_rows is not None and changed:
            on_rows(changed)
    return len(changed)


def run_ids(repair: Repair, ids: list[Any], run_batch: Batch, on_rows: RowsHook | None = None) -> int:
    """Apply to the given ids, ``BATCH_SIZE`` at a time; log the repair's line; return how many changed."""
    try:
        return sum(
            apply(repair, run_batch, ids[start : start + BATCH_SIZE], on_rows)
            for start in range(0, len(ids), BATCH_SIZE)
        )
    finally:
        audit.finish(repair)


def drain(
    repair: Repair,
    qs: models.QuerySet[Any],
    run_batch: Batch,
    *,
    limit: int | None = None,
    batch_size: int | None = None,
    on_batch: Progress | None = None,
) -> int:
    """Apply to the rows ``qs`` selects, oldest first, until none is left (each batch leaves it)."""
    done, batch_size = 0, batch_size or BATCH_SIZE
    try:
        while limit is None or done < limit:
            size = batch_size if limit is None else min(batch_size, limit - done)
            batch = list(qs.order_by("added", "pk").values_list("pk", flat=True)[:size])
            if not batch:
                break
            changed = apply(repair, run_batch, batch)
            done += changed
            if on_batch is not None:
                on_batch(changed)
            logger.info(
                "%s rows %s",
                changed,
                repair.action.replace("_", " "),
                extra={"action": _batch_action(repair), "count": changed},
            )
            if changed == 0:
                break
    finally:
        audit.finish(repair)
    return done


def _batch_action(repair: Repair) -> str:
    """The per-batch log action, named as before: ``rows_replayed``, ``rows_inbox_purged``."""
    return f"rows_{repair.table}_purged" if repair.action == "purged" else f"rows_{repair.action}"
