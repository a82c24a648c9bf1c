"""Human views of the engine's row dicts and summaries (``--json`` prints the dicts themselves).

Row listings are tables on wide terminals; below ``WIDE_COLUMNS`` each row becomes two lines (ids are
never cut: they are what ``--id`` takes).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.text import Text

from outboxctl import output

WIDE_COLUMNS = 110


def rows(title: str, table: str, items: list[dict[str, Any]], console: Console | None = None) -> None:
    console = console or output.stdout()
    now = datetime.now(timezone.utc)
    if console.width < WIDE_COLUMNS:
        console.print(Text(title, style="bold"))
        for r in items:
            head = f"{r['id']}  {output.status(r['status']).markup}  {_age(r['added'], now)} old"
            head += f"  {r['attempts']} attempts" if "attempts" in r else f"  msg {escape(str(r['msg_id']))}"
            console.print(head, soft_wrap=True, highlight=False)
            tail = " · ".join(
                escape(part) for part in (r["destination"], _short(r.get("last_error", ""))) if part
            )
            console.print(f"  {tail}", soft_wrap=True, highlight=False)
        return
    if table == "outbox":
        columns: tuple[str, ...] = ("Id", "Destination", "Status", "Attempts", "Age", "Last error")
        cells: list[tuple[Any, ...]] = [
            (
                r["id"],
                r["destination"],
                output.status(r["status"]),
                r["attempts"],
                _age(r["added"], now),
                _short(r["last_error"]),
            )
            for r in items
        ]
    else:
        columns = ("Id", "Message id", "Destination", "Status", "Age")
        cells = [
            (r["id"], r["msg_id"], r["destination"], output.status(r["status"]), _age(r["added"], now))
            for r in items
        ]
    console.print(output.table(title, columns, cells, listing=True))


def blocked(data: dict[str, Any]) -> None:
    """Held ordering keys (``inspection.blocked_keys``), or one line saying there are none."""
    console = output.stdout()
    if not data["keys"]:
        console.print("No ordering key is held by a failed row.")
        return
    now = datetime.now(timezone.utc)
    title = f"Held ordering keys: {len(data['keys'])} of {data['matching']} (oldest failure first)"
    cells = [
        (k["ordering_key"], k["blocked_by"], k["held"], k["destination"], _age(k["blocker_added"], now))
        for k in data["keys"]
    ]
    columns = ("Key", "Held by failed row", "Rows waiting", "Destination", "Age")
    console.print(output.table(title, columns, cells, listing=True))
    console.print(
        "Free a key: outboxctl replay --id ROW (send the row again), or "
        'outboxctl dead-letter --id ROW --reason "why" (skip it).',
        highlight=False,
    )


def _age(added: datetime, now: datetime) -> str:
    return output.age((now - added).total_seconds())


def _short(text: str, width: int = 60) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= width else text[: width - 1] + "…"


def row(table: str, item: dict[str, Any]) -> None:
    cells = [
        (key, json.dumps(value, indent=2, default=str) if isinstance(value, (dict, list)) else value)
        for key, value in item.items()
    ]
    output.stdout().print(output.table(f"{table.capitalize()} row {item['id']}", ("Field", "Value"), cells))


def repairs(items: list[dict[str, Any]]) -> None:
    """A row's repairs from the audit trail (``outboxctl inspect --id``)."""
    if not items:
        output.stdout().print("Repairs: none recorded.", highlight=False)
        return
    cells = [(r["at"], r["action"], f"{r['via']}:{r['actor']}", r["reason"], r["repair_id"]) for r in items]
    columns = ("When", "Repair", "By", "Reason", "Audit id")
    output.stdout().print(output.table("Repairs (newest first)", columns, cells))


def summary(data: dict[str, Any]) -> None:
    console = output.stdout()
    out, inb = data["outbox"], data["inbox"]
    counts = "  ".join(f"{name} {n}" for name, n in out["by_status"].items())
    console.print(Text.assemble(("Outbox", "bold"), f"  {out['total']} rows: {counts}"))
    oldest = out["oldest_pending"]
    console.print(
        f"oldest pending: {output.age(oldest['age_seconds'])} ({oldest['destination']}, {oldest['id']})"
        if oldest
        else "oldest pending: none",
        highlight=False,
    )
    console.print(
        f"due now: {out['due_now']}   in flight: {out['in_flight']}   retrying: {out['retrying']}"
        f"   max attempts: {out['max_attempts']}",
        highlight=False,
    )
    if out["by_destination"]:
        cells: list[tuple[Any, ...]] = [
            (d["destination"], d["pending"], d["failed"], d["published"], d["total"])
            for d in out["by_destination"]
        ]
        columns = ("Destination", "Pending", "Failed", "Published", "Total")
        console.print(output.table(_more("By destination", out), columns, cells))
    counts = "  ".join(f"{name} {n}" for name, n in inb["by_status"].items())
    console.print(Text.assemble("\n", ("Inbox", "bold"), f"  {inb['total']} rows: {counts}"))
    if inb["total"]:
        oldest_in, newest_in = output.cell_text(inb["oldest"]), output.cell_text(inb["newest"])
        console.print(f"oldest: {oldest_in}   newest: {newest_in}", highlight=False)
        cells = [
            (d["destination"] or "-", d["processed"], d["failed"], d["total"]) for d in inb["by_destination"]
        ]
        console.print(
            output.table(_more("By destination", inb), ("Destination", "Processed", "Failed", "Total"), cells)
        )


def _more(title: str, part: dict[str, Any]) -> str:
    shown = len(part["by_destination"])
    return title if shown == part["destinations"] else f"{title} (top {shown} of {part['destinations']})"
