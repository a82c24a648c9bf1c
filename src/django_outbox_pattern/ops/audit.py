"""The audit trail of operator repairs: who, what selection, how many rows, when.

Every repair in ``operations`` (called by the admin, ``outboxctl`` or Python code) opens one ``Repair`` row
before its first batch, adds the rows each batch changed (``RepairedRow``; purges only count them: the rows
are gone) and raises the count in that batch's own transaction, so the record never claims more than
happened, even when a repair stops half-way. When it ends, one log line with the stable action
``<table>_repair_<action>`` (``outbox_repair_replayed``, ``inbox_repair_purged`` ...) says the same.
``history()`` reads a row's repairs back for ``outboxctl inspect --id``.
"""

from __future__ import annotations

import dataclasses
import getpass
import logging
import socket
from collections.abc import Iterable, Mapping
from typing import Any

from django.db.models import F

from django_outbox_pattern.models import Repair, RepairedRow

logger = logging.getLogger(__name__)

SHOWN_IDS = 20  # ids kept in a repair's ``selection`` (the changed rows themselves are all in RepairedRow)
HISTORY_LIMIT = 50  # repairs ``history()`` returns for one row, newest first


@dataclasses.dataclass(frozen=True)
class Actor:
    """Who ran a repair: ``via`` is "admin", "cli" or "api"; ``name`` says who within it."""

    name: str
    via: str = "api"

    def __str__(self) -> str:
        return f"{self.via}:{self.name}"


def _os_user_at_host() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry and no LOGNAME/USER (some containers)
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def cli_actor() -> Actor:
    """The operating-system user and host running ``outboxctl``."""
    return Actor(_os_user_at_host(), "cli")


def admin_actor(user: Any) -> Actor:
    """The Django user running an admin action (username and primary key)."""
    return Actor(f"{user.get_username()} (id {user.pk})", "admin")


def resolve(actor: Actor | str | None) -> Actor:
    """The actor of an API call: as given, a plain name, or by default the OS user and host."""
    if isinstance(actor, Actor):
        return actor
    return Actor(actor or _os_user_at_host(), "api")


def selection_of(*, ids: Iterable[Any] = (), **fields: Any) -> dict[str, Any]:
    """A JSON-ready description of what was selected: the first ids, how many, and the filters given."""
    id_list = [str(i) for i in ids]
    out: dict[str, Any] = {k: _plain(v) for k, v in fields.items() if v not in (None, (), [], "")}
    if id_list:
        out["ids"] = id_list[:SHOWN_IDS]
        out["id_count"] = len(id_list)
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)):
        return value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "total_seconds"):
        return value.total_seconds()
    return str(value)


def start(actor: Actor, action: str, table: str, selection: Mapping[str, Any]) -> Repair:
    """Open the record of a repair (count 0) before its first batch."""
    return Repair.objects.create(
        action=action, table=table, via=actor.via, actor=actor.name[:255], selection=dict(selection)
    )


def add_rows(repair: Repair, row_ids: list[Any], msg_ids: Mapping[Any, str] | None = None) -> None:
    """In the caller's batch transaction: raise the count, and list the rows unless they were deleted."""
    if not row_ids:
        return
    Repair.objects.filter(pk=repair.pk).update(count=F("count") + len(row_ids))
    repair.count += len(row_ids)
    if repair.action == "purged":
        return
    RepairedRow.objects.bulk_create(
        [RepairedRow(repair=repair, row_id=str(pk), msg_id=(msg_ids or {}).get(pk) or "") for pk in row_ids]
    )


def finish(repair: Repair) -> None:
    """The one structured log line of a repair (stable action name, who, what, how many)."""
    log_line(
        repair.table,
        repair.action,
        Actor(repair.actor, repair.via),
        repair.selection,
        repair.count,
        repair_id=repair.pk,
    )


def log_line(
    table: str,
    action: str,
    actor: Actor,
    selection: Mapping[str, Any],
    count: int,
    *,
    repair_id: int | None = None,
) -> None:
    """``<table>_repair_<action>`` at INFO, with actor, via, selection, count (and the audit row's id)."""
    logger.info(
        "%s %s %d row(s): %s by %s (repair %s)",
        table,
        action.replace("_", "-"),
        count,
        dict(selection),
        actor,
        repair_id,
        extra={
            "action": f"{table}_repair_{action}",
            "repair_id": repair_id,
            "actor": actor.name,
            "via": actor.via,
            "table": table,
            "selection": dict(selection),
            "count": count,
        },
    )


def history(table: str, key: str, *, limit: int = HISTORY_LIMIT) -> list[dict[str, Any]]:
    """A row's repairs, newest first: by primary key, or (inbox) by message id."""
    rows = RepairedRow.objects.filter(repair__table=table).select_related("repair")
    matching = rows.filter(row_id=key) | (rows.filter(msg_id=key) if table == "inbox" else rows.none())
    return [
        {
            "repair_id": r.repair.pk,
            "at": r.repair.at,
            "action": r.repair.action,
            "via": r.repair.via,
            "actor": r.repair.actor,
            "reason": r.repair.selection.get("reason", ""),
        }
        for r in matching.order_by("-repair__at", "-repair__id")[:limit]
    ]
