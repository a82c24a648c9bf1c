"""``outboxctl dead-letter``: park outbox rows as failed; ``dead-letter requeue QUEUE``: DLQ -> queue."""

from __future__ import annotations

from typing import Annotated

import typer

from django_outbox_pattern.core import addressing
from outboxctl import bootstrap, errors, output, params
from outboxctl.commands import _repair, state
from outboxctl.exit_codes import ExitCode

app = typer.Typer(
    invoke_without_command=True,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
@errors.handled
def park(
    ctx: typer.Context,
    ids: params.IdsOpt = None,
    destination: params.DestinationOpt = None,
    since: params.SinceOpt = None,
    limit: params.LimitOpt = None,
    select_all: params.AllOpt = False,
    reason: Annotated[
        str | None,
        typer.Option("--reason", "-r", help="Why (kept as the row's last error).", show_default=False),
    ] = None,
    dry_run: params.DryRunOpt = False,
    yes: params.YesOpt = False,
    as_json: params.JsonOpt = False,
) -> None:
    """Park pending outbox rows as failed with a reason, so the relay skips them until a replay.

    Rows a relay holds right now (in flight) are left alone. Without a sub-command this parks rows;
    [cyan]dead-letter requeue QUEUE[/cyan] moves broker messages from DLQ.QUEUE back to QUEUE.

    [bold]Examples[/bold]

      outboxctl dead-letter --id 3f0c2a4e-... --reason "customer deleted" --yes
      outboxctl dead-letter --destination /topic/legacy --reason "endpoint retired" --dry-run
      outboxctl dead-letter requeue orders --yes
    """
    if ctx.invoked_subcommand is not None:
        return
    _repair.require_selection(select_all, ids, destination, since)
    if not reason and not dry_run:
        errors.fail(
            "A reason is required to park rows.",
            'Add --reason "why", e.g. --reason "bad payload".',
            ExitCode.USAGE,
        )
    bootstrap.setup(state(ctx))
    from django_outbox_pattern.ops import audit, inspection, operations

    selection = inspection.Filter(ids=tuple(ids or ()), destination=destination, since=since, limit=limit)
    if ids:
        _repair.explain_skipped(inspection.id_states(list(ids)), "pending")
    qs = operations.parkable(selection)
    matched = min(qs.count(), limit) if limit else qs.count()
    _repair.run(
        action="dead-lettered",
        question="Park {n} pending message(s) as failed?",
        matched=matched,
        sample=lambda: inspection.preview("outbox", qs),
        dry_run=dry_run,
        yes=yes,
        as_json=as_json,
        execute=lambda advance: operations.dead_letter_matching(
            selection, reason=reason or "", on_batch=advance, actor=audit.cli_actor()
        ),
        extra={"reason": reason},
    )


@errors.handled
def requeue(
    ctx: typer.Context,
    queue: Annotated[
        str, typer.Argument(metavar="QUEUE", help="The queue whose DLQ.<queue> to empty back into it.")
    ],
    limit: Annotated[
        int | None,
        typer.Option("--limit", "-n", min=1, help="Move at most this many messages.", show_default=False),
    ] = None,
    idle_timeout: Annotated[
        float,
        typer.Option(
            "--idle-timeout", min=0.05, help="Stop when the DLQ sends nothing for this many seconds."
        ),
    ] = 2.0,
    dlq_prefix: Annotated[
        str, typer.Option("--dlq-prefix", help="Name prefix of the dead-letter queue.")
    ] = addressing.DEAD_LETTER_PREFIX,
    yes: params.YesOpt = False,
    as_json: params.JsonOpt = False,
) -> None:
    """Move messages from the broker's dead-letter queue DLQ.QUEUE back to QUEUE.

    Each message is re-sent with a receipt and acked on the DLQ only after the broker confirmed it, so
    none is lost (a crash may repeat one; the inbox drops the duplicate). Stops when the DLQ is empty,
    at --limit, or when a message it already moved comes back (a consumer still failing).

    [bold]Examples[/bold]

      outboxctl dead-letter requeue orders --limit 10
      outboxctl dead-letter requeue orders --yes --json
    """
    resolved = bootstrap.setup(state(ctx), database=False)
    if not yes:
        errors.confirm(f"Move messages from {dlq_prefix}{queue} back to {queue}?", "nothing moved")
    from django_outbox_pattern.broker import transport
    from django_outbox_pattern.ops import audit, operations

    result = operations.requeue(
        transport.StompTransport(resolved.outbox),
        queue,
        actor=audit.cli_actor(),
        limit=limit,
        idle_timeout=idle_timeout,
        receipt_timeout=resolved.outbox.DEFAULT_RECEIPT_TIMEOUT,
        dlq_prefix=dlq_prefix,
    )
    if as_json:
        output.print_json(
            {
                "queue": result.queue,
                "source": result.source,
                "requeued": result.requeued,
                "stopped": result.stopped,
            }
        )
        return
    why = {
        "empty": "the DLQ is empty",
        "limit": "--limit reached",
        "loop": "a moved message came back (is the consumer still failing?)",
    }[result.stopped]
    output.stdout().print(
        f"{result.requeued} message(s) moved from {result.source} to {result.queue}; stopped: {why}."
    )


app.command("requeue", help=output.help_text(requeue.__doc__))(requeue)
