"""Operator repairs of the outbox, the inbox and the broker's dead letters: one implementation for
outboxctl, the admin and Python code.

Repairs work in batches, each batch in its own short transaction, re-checking the status in the
UPDATE/DELETE so a row that changed meanwhile is left alone: ``replay`` (Failed -> Schedule), ``dead_letter``
(Schedule -> Failed with a reason, skipping rows a relay holds right now), ``purge`` (delete old rows;
unsent rows only with ``include_unsent``), and for the inbox ``reprocess`` (forget a message id so its next
delivery is processed again) and ``purge_inbox_ids`` (only rows past the retention period). Every repair
takes an ``actor`` (default: the OS user and host) and leaves an audit record (``audit.py``). The
read-only queries live in ``inspection.py`` and the broker-side ``requeue`` of ``DLQ.<queue>`` in
``dead_letters.py`` (``requeue`` below adds the audit line). The model classes come from ``wiring``
(DEFAULT_PUBLISHED_CLASS, DEFAULT_RECEIVED_CLASS).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from django.db import models
from django.db.models import Q
from django.utils import timezone

from django_outbox_pattern import choices, conf, wiring
from django_outbox_pattern.choices import StatusChoice
from django_outbox_pattern.models import AbstractPublished
from django_outbox_pattern.ops import audit, batching, dead_letters
from django_outbox_pattern.ops.audit import Actor
from django_outbox_pattern.ops.batching import Progress, RowsHook
from django_outbox_pattern.ops.dead_letters import RequeueResult
from django_outbox_pattern.ops.inspection import Filter, Table, query
from django_outbox_pattern.relaying import store

ActorArg = Actor | str | None
NoMsgIds: Mapping[Any, str] = {}

__all__ = [
    "Actor",
    "dead_letter",
    "dead_letter_matching",
    "parkable",
    "purge",
    "purge_inbox_ids",
    "purge_outbox_ids",
    "purgeable",
    "replay",
    "replay_matching",
    "replayable",
    "reprocess",
    "requeue",
    "retention_cutoff",
]


# --- selections ---------------------------------------------------------------------------------------------


def replayable(selection: Filter) -> models.QuerySet[AbstractPublished]:
    """Failed rows a replay would change."""
    return query("outbox", dataclasses.replace(selection, statuses=(StatusChoice.FAILED,)))


def parkable(selection: Filter, *, now: datetime | None = None) -> models.QuerySet[AbstractPublished]:
    """Rows a dead-letter would park: scheduled ones no relay holds right now (in flight), and failed rows
    that hold the rest of their ordering key (parking one lets the key go on)."""
    now = now or timezone.now()
    statuses = (StatusChoice.SCHEDULE, StatusChoice.FAILED)
    qs = query("outbox", dataclasses.replace(selection, statuses=statuses))
    return qs.filter(_free(now) | _blocker())


def _free(now: datetime) -> Q:
    return Q(status=StatusChoice.SCHEDULE) & (Q(locked_by="") | Q(available_at__lte=now))


def _blocker() -> Q:
    """A failed row that still holds its key (``ordering_seq`` set; parking clears it)."""
    return Q(status=StatusChoice.FAILED, ordering_key__isnull=False, ordering_seq__isnull=False)


def purgeable(
    table: Table,
    *,
    older_than: timedelta,
    statuses: Iterable[int] | None = None,
    include_unsent: bool = False,
    now: datetime | None = None,
) -> models.QuerySet[Any]:
    """Rows a purge would delete: added before ``now - older_than``; outbox default: published only."""
    statuses = tuple(statuses or ((StatusChoice.SUCCEEDED,) if table == "outbox" else ()))
    if table == "outbox" and StatusChoice.SCHEDULE in statuses and not include_unsent:
        raise ValueError("Purging unsent (pending) outbox rows needs include_unsent=True.")
    cutoff = (now or timezone.now()) - older_than
    return query(table, Filter(statuses=statuses, before=cutoff)).order_by()


def retention_cutoff(now: datetime | None = None) -> datetime:
    """Inbox rows added before this are past ``DAYS_TO_KEEP_DATA``: their duplicate protection may end."""
    return (now or timezone.now()) - timedelta(days=conf.get_settings().DAYS_TO_KEEP_DATA)


# --- repairs by id (the admin, ``--id``) --------------------------------------------------------------------


def replay(ids: Iterable[Any], *, actor: ActorArg = None, on_rows: RowsHook | None = None) -> int:
    """Failed rows back to Schedule, due now, attempts and lease reset. Returns how many changed."""
    ids = list(ids)
    repair = audit.start(audit.resolve(actor), "replayed", "outbox", audit.selection_of(ids=ids))
    return batching.run_ids(repair, ids, _replay_batch, on_rows)


def dead_letter(
    ids: Iterable[Any], *, reason: str, actor: ActorArg = None, on_rows: RowsHook | None = None
) -> int:
    """Scheduled rows (not in flight) parked as Failed with a reason, so the relay skips them."""
    ids, now = list(ids), timezone.now()
    selection = audit.selection_of(ids=ids, reason=reason)
    repair = audit.start(audit.resolve(actor), "dead_lettered", "outbox", selection)
    return batching.run_ids(repair, ids, lambda batch: _park_batch(batch, reason, now), on_rows)


def purge_outbox_ids(
    ids: Iterable[Any],
    *,
    include_unsent: bool = False,
    actor: ActorArg = None,
    on_rows: RowsHook | None = None,
) -> int:
    """Delete outbox rows by id; unsent (Schedule) rows are kept unless ``include_unsent``."""
    ids = list(ids)
    base = (
        wiring.published_model().objects.all()
        if include_unsent
        else wiring.published_model().objects.exclude(status=StatusChoice.SCHEDULE)
    )
    selection = audit.selection_of(ids=ids, include_unsent=include_unsent or None)
    repair = audit.start(audit.resolve(actor), "purged", "outbox", selection)
    return batching.run_ids(repair, ids, lambda batch: _delete_batch(base, batch), on_rows)


def reprocess(ids: Iterable[Any], *, actor: ActorArg = None, on_rows: RowsHook | None = None) -> int:
    """Forget inbox rows (delete them), so the next delivery of their message ids is processed again.

    The inbox deduplicates by message id alone: a message is processed again only when it is delivered
    again (a replay of the producer's outbox row keeps its ``dop-msg-id``; ``dead-letter requeue``; a
    redelivery). Until then nothing happens; the audit trail keeps each forgotten id."""
    ids = list(ids)
    repair = audit.start(audit.resolve(actor), "reprocessed", "inbox", audit.selection_of(ids=ids))
    return batching.run_ids(
        repair, ids, lambda batch: _forget_batch(wiring.received_model().objects.all(), batch), on_rows
    )


def purge_inbox_ids(
    ids: Iterable[Any],
    *,
    older_than: timedelta | None = None,
    actor: ActorArg = None,
    on_rows: RowsHook | None = None,
) -> int:
    """Delete inbox rows by id, only those added more than ``older_than`` (default: the retention) ago."""
    ids = list(ids)
    cutoff = timezone.now() - older_than if older_than is not None else retention_cutoff()
    base = wiring.received_model().objects.filter(added__lt=cutoff)
    selection = audit.selection_of(ids=ids, before=cutoff)
    repair = audit.start(audit.resolve(actor), "purged", "inbox", selection)
    return batching.run_ids(repair, ids, lambda batch: _delete_batch(base, batch), on_rows)


def requeue(conn: Any, queue: str, *, actor: ActorArg = None, **options: Any) -> RequeueResult:
    """``dead_letters.requeue`` (DLQ.<queue> back to <queue>), logged as ``broker_repair_requeued``.

    It touches no table (and runs without a database), so its record is the log line only."""
    result = dead_letters.requeue(conn, queue, **options)
    selection = {"queue": queue, "source": result.source, "stopped": result.stopped}
    audit.log_line("broker", "requeued", audit.resolve(actor), selection, result.requeued)
    return result


# --- repairs by filter (outboxctl) --------------------------------------------------------------------------


def replay_matching(
    selection: Filter,
    *,
    batch_size: int | None = None,
    on_batch: Progress | None = None,
    actor: ActorArg = None,
) -> int:
    """Replay every failed row the filter selects (at most ``limit``), batch by batch."""
    repair = audit.start(audit.resolve(actor), "replayed", "outbox", _described(selection))
    return batching.drain(
        repair,
        replayable(selection),
        _replay_batch,
        limit=selection.limit,
        batch_size=batch_size,
        on_batch=on_batch,
    )


def dead_letter_matching(
    selection: Filter,
    *,
    reason: str,
    batch_size: int | None = None,
    on_batch: Progress | None = None,
    actor: ActorArg = None,
) -> int:
    """Park every scheduled, not-in-flight row the filter selects (at most ``limit``), batch by batch."""
    now = timezone.now()
    described = {**_described(selection), "reason": reason}
    repair = audit.start(audit.resolve(actor), "dead_lettered", "outbox", described)
    return batching.drain(
        repair,
        parkable(selection, now=now),
        lambda batch: _park_batch(batch, reason, now),
        limit=selection.limit,
        batch_size=batch_size,
        on_batch=on_batch,
    )


def purge(
    table: Table,
    *,
    older_than: timedelta,
    statuses: Iterable[int] | None = None,
    include_unsent: bool = False,
    batch_size: int | None = None,
    on_batch: Progress | None = None,
    now: datetime | None = None,
    actor: ActorArg = None,
) -> int:
    """Delete the rows ``purgeable`` selects, batch by batch (re-checking status and age in each DELETE)."""
    statuses = None if statuses is None else tuple(statuses)
    qs = purgeable(table, older_than=older_than, statuses=statuses, include_unsent=include_unsent, now=now)
    described = audit.selection_of(
        older_than_seconds=older_than.total_seconds(),
        statuses=[choices.OUTBOX_STATUS_NAMES.get(s, s) for s in statuses or ()],
        include_unsent=include_unsent or None,
    )
    repair = audit.start(audit.resolve(actor), "purged", table, described)
    return batching.drain(
        repair, qs, lambda batch: _delete_batch(qs, batch), batch_size=batch_size, on_batch=on_batch
    )


# --- batches ------------------------------------------------------------------------------------------------


def _described(selection: Filter) -> dict[str, Any]:
    return audit.selection_of(
        ids=selection.ids,
        destination=selection.destination,
        since=selection.since,
        before=selection.before,
        limit=selection.limit,
    )


def _replay_batch(batch: list[Any]) -> tuple[list[Any], Mapping[Any, str]]:
    values = {
        "status": StatusChoice.SCHEDULE,
        "retry": 0,
        "available_at": timezone.now(),
        "locked_by": "",
        "last_error": "",
    }
    rows = wiring.published_model().objects
    changed = batching.update_rows(rows.filter(status=StatusChoice.FAILED), batch, values)
    _keys_changed(changed)  # the rows behind a replayed row of a key wait for it, no longer for a failure
    return changed, NoMsgIds


def _park_batch(batch: list[Any], reason: str, now: datetime) -> tuple[list[Any], Mapping[Any, str]]:
    # A parked row leaves its key's order (``ordering_seq`` cleared): the rows behind it go on.
    rows = wiring.published_model().objects
    values = {"status": StatusChoice.FAILED, "last_error": reason, "locked_by": "", "ordering_seq": None}
    changed = batching.update_rows(rows.filter(_free(now)), batch, values)
    released = {"last_error": reason, "ordering_seq": None}
    changed += batching.update_rows(rows.filter(_blocker()), batch, released)
    _keys_changed(changed)
    return changed, NoMsgIds


def _keys_changed(ids: list[Any]) -> None:
    """Rows of these rows' ordering keys say again which failed row (if any) holds them."""
    keys = wiring.published_model().objects.filter(pk__in=ids, ordering_key__isnull=False)
    found = set(keys.values_list("ordering_key", flat=True))
    if found:
        store.OutboxStore().refresh_held(found)


def _delete_batch(base: models.QuerySet[Any], batch: list[Any]) -> tuple[list[Any], Mapping[Any, str]]:
    return list(batching.delete_rows(base, batch)), NoMsgIds


def _forget_batch(base: models.QuerySet[Any], batch: list[Any]) -> tuple[list[Any], Mapping[Any, str]]:
    deleted = batching.delete_rows(base, batch, key="msg_id")
    return list(deleted), {pk: msg_id or "" for pk, msg_id in deleted.items()}
