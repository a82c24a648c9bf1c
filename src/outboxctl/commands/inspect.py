"""``outboxctl inspect``: the outbox and inbox at a glance, rows by filter, or one row in full."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from outboxctl import bootstrap, errors, output, params, views
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
    blocked: Annotated[
        bool,
        typer.Option(
            "--blocked",
            help="Ordering keys held by a failed row: the row, and how many pending rows wait behind it.",
        ),
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
    metrics: Annotated[
        bool,
        typer.Option(
            "--metrics",
            help="Print the backlog gauges once in the Prometheus text format (the relay's and consumer's "
            "counters are served by their --metrics-port).",
        ),
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
      outboxctl inspect --id 3f0c2a4e-...        (the row, then its repairs: who, what, when)
      outboxctl inspect --inbox --since 1d
      outboxctl inspect --blocked                (keys whose later rows wait for a failed one)
      outboxctl inspect --metrics
    """
    if metrics and as_json:
        errors.fail("--metrics and --json exclude each other.", "Pick one.", ExitCode.USAGE)
    others = failed or pending or published or destination or since or row_id or inbox or metrics
    if blocked and others:
        errors.fail(
            "--blocked lists held ordering keys and takes no other filter.",
            "Use --blocked alone (or with --limit, --json).",
            ExitCode.USAGE,
        )
    bootstrap.setup(state(ctx))
    if metrics:
        from django_outbox_pattern.ops import metrics as outbox_metrics

        return typer.echo(outbox_metrics.render_backlog(), nl=False)
    from django_outbox_pattern import choices
    from django_outbox_pattern.ops import inspection

    if blocked:
        held = inspection.blocked_keys(limit=limit or DEFAULT_LIMIT)
        return output.print_json(held) if as_json else views.blocked(held)
    table: Any = "inbox" if inbox else "outbox"
    if row_id is not None:
        return _one_row(table, row_id, as_json=as_json)
    names = [name for name, on in (("failed", failed), ("pending", pending), ("published", published)) if on]
    statuses = tuple(choices.STATUS_BY_NAME[name] for name in names)
    if not (statuses or destination or since or limit or inbox):
        summary = {"outbox": inspection.outbox_summary(), "inbox": inspection.inbox_summary()}
        return output.print_json(summary) if as_json else views.summary(summary)
    selection = inspection.Filter(
        statuses=statuses, destination=destination, since=since, limit=limit or DEFAULT_LIMIT
    )
    result = inspection.list_rows(table, selection)
    if as_json:
        return output.print_json(result)
    title = (
        f"{table.capitalize()}: {len(result['rows'])} of {result['matching']} matching rows (newest first)"
    )
    views.rows(title, table, result["rows"])


def _one_row(table: Any, row_id: str, *, as_json: bool) -> None:
    """One row in full and its repairs (newest first); a forgotten inbox row shows its repairs only."""
    from django_outbox_pattern.ops import audit, inspection

    row = inspection.get_row(table, row_id)
    repairs = audit.history(table, row["id"] if row else row_id)
    if row is not None and table == "inbox" and row.get("msg_id"):
        seen = {r["repair_id"] for r in repairs}
        repairs += [r for r in audit.history(table, row["msg_id"]) if r["repair_id"] not in seen]
    if row is None and not repairs:
        errors.fail(
            f"No {table} row with id {row_id}.",
            "Find ids with `outboxctl inspect --limit 20`"
            + ("" if table == "inbox" else " (add --inbox for received messages)")
            + ".",
            ExitCode.ERROR,
        )
    if as_json:
        return output.print_json({"table": table, "row": row, "repairs": repairs})
    if row is None:
        output.note(f"No {table} row with id {row_id} now; its repairs:")
    else:
        views.row(table, row)
    views.repairs(repairs)
    return None
