"""``outboxctl inspect``: the outbox and inbox at a glance, rows by filter, or one row in full."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Group
from rich.text import Text

from outboxctl import bootstrap, errors, output, params
from outboxctl.commands import state
from outboxctl.exit_codes import ExitCode

DEFAULT_LIMIT = 20


@errors.handled
def inspect(
    ctx: typer.Context,
    failed: Annotated[bool, typer.Option("--failed", help="Failed (dead-lettered) rows.")] = False,
    pending: Annotated[bool, typer.Option("--pending", help="Pending rows (not sent yet).")] = False,
    published: Annotated[
        bool, typer.Option("--published", help="Published (or, with --inbox, processed) rows.")
    ] = False,
    destination: params.DestinationOpt = None,
    since: params.SinceOpt = None,
    row_id: Annotated[
        str | None,
        typer.Option(
            "--id",
            metavar="ID",
            show_default=False,
            help="Show one row in full (body, headers, last error); with --inbox also a message id.",
        ),
    ] = None,
    limit: params.LimitOpt = None,
    inbox: Annotated[
        bool, typer.Option("--inbox", help="Inbox (received messages) instead of the outbox.")
    ] = False,
    as_json: params.JsonOpt = False,
) -> None:
    """Show the outbox and inbox at a glance, rows matching filters, or one row in full.

    Without filters: counts by status and destination, the oldest pending message, attempts. With any filter
    (or --inbox, --limit): the newest matching rows (20 unless --limit).

    [bold]Examples[/bold]

      outboxctl inspect
      outboxctl inspect --failed --since 2h
      outboxctl inspect --pending --destination '/topic/orders*' --limit 50 --json
      outboxctl inspect --id 3f0c2a4e-...
      outboxctl inspect --inbox --since 1d
    """
    bootstrap.setup(state(ctx))
    from django_outbox_pattern import operations

    table: Any = "inbox" if inbox else "outbox"
    if row_id is not None:
        row = operations.get_row(table, row_id)
        if row is None:
            errors.fail(
                f"No {table} row with id {row_id}.",
                "Find ids with `outboxctl inspect --limit 20`"
                + ("" if inbox else " (add --inbox for received messages)")
                + ".",
                ExitCode.ERROR,
            )
        return _render_row(table, row, as_json)
    names = [name for name, on in (("failed", failed), ("pending", pending), ("published", published)) if on]
    statuses = tuple(operations.STATUS_BY_NAME[name] for name in names)
    if not (statuses or destination or since or limit or inbox):
        summary = {"outbox": operations.outbox_summary(), "inbox": operations.inbox_summary()}
        return output.print_json(summary) if as_json else _render_summary(summary)
    selection = operations.Filter(
        statuses=statuses, destination=destination, since=since, limit=limit or DEFAULT_LIMIT
    )
    result = operations.list_rows(table, selection)
    if as_json:
        return output.print_json(result)
    _render_rows(result)


def _render_summary(summary: dict[str, Any]) -> None:
    console = output.stdout()
    out, inb = summary["outbox"], summary["inbox"]
    counts = "  ".join(f"{name} {n}" for name, n in out["by_status"].items())
    console.print(Text.assemble(("Outbox", "bold"), f"  {out['total']} rows: {counts}"))
    oldest = out["oldest_pending"]
    facts = [
        f"oldest pending: {output.age(oldest['age_seconds'])} ({oldest['destination']}, {oldest['id']})"
        if oldest
        else "oldest pending: none",
        f"due now: {out['due_now']}   in flight: {out['in_flight']}   retrying: {out['retrying']}"
        f"   max attempts: {out['max_attempts']}",
    ]
    console.print(Text("\n".join(facts)))
    if out["by_destination"]:
        rows: list[tuple[Any, ...]] = [
            (d["destination"], d["pending"], d["failed"], d["published"], d["total"])
            for d in out["by_destination"]
        ]
        console.print(
            output.table(
                _more("By destination", out), ("Destination", "Pending", "Failed", "Published", "Total"), rows
            )
        )
    counts = "  ".join(f"{name} {n}" for name, n in inb["by_status"].items())
    console.print(Text.assemble("\n", ("Inbox", "bold"), f"  {inb['total']} rows: {counts}"))
    if inb["total"]:
        console.print(
            f"oldest: {output.cell_text(inb['oldest'])}   newest: {output.cell_text(inb['newest'])}"
        )
        rows = [
            (d["destination"] or "-", d["processed"], d["failed"], d["total"]) for d in inb["by_destination"]
        ]
        console.print(
            output.table(_more("By destination", inb), ("Destination", "Processed", "Failed", "Total"), rows)
        )


def _more(title: str, part: dict[str, Any]) -> str:
    shown = len(part["by_destination"])
    return title if shown == part["destinations"] else f"{title} (top {shown} of {part['destinations']})"


def _render_rows(result: dict[str, Any]) -> None:
    rows = result["rows"]
    title = (
        f"{result['table'].capitalize()}: {len(rows)} of {result['matching']} matching rows (newest first)"
    )
    if result["table"] == "outbox":
        columns: tuple[str, ...] = ("Id", "Destination", "Status", "Attempts", "Added", "Last error")
        cells: list[tuple[Any, ...]] = [
            (
                r["id"],
                r["destination"],
                output.status(r["status"]),
                r["attempts"],
                r["added"],
                _short(r["last_error"]),
            )
            for r in rows
        ]
    else:
        columns = ("Id", "Message id", "Destination", "Status", "Added")
        cells = [
            (r["id"], r["msg_id"], r["destination"], output.status(r["status"]), r["added"]) for r in rows
        ]
    output.stdout().print(output.table(title, columns, cells))


def _short(text: str, width: int = 60) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _render_row(table: str, row: dict[str, Any], as_json: bool) -> None:
    if as_json:
        return output.print_json({"table": table, "row": row})
    cells = [
        (key, json.dumps(value, indent=2, default=str) if isinstance(value, (dict, list)) else value)
        for key, value in row.items()
    ]
    grid = output.table(f"{table.capitalize()} row {row['id']}", ("Field", "Value"), cells, show_lines=False)
    output.stdout().print(Group(grid))
