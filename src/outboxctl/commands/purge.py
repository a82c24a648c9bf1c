"""``outboxctl purge``: delete old rows in batches; unsent outbox rows only when asked explicitly."""

from __future__ import annotations

from datetime import timedelta
from enum import Enum
from typing import Annotated, Any

import typer

from outboxctl import bootstrap, errors, output, params
from outboxctl.commands import _repair, state
from outboxctl.exit_codes import ExitCode


class PurgeStatus(str, Enum):
    published = "published"
    failed = "failed"
    pending = "pending"


@errors.handled
def purge(
    ctx: typer.Context,
    older_than: Annotated[
        timedelta | None,
        typer.Option(
            "--older-than",
            parser=params.parse_duration,
            metavar="AGE",
            show_default=False,
            help="Rows added more than AGE ago: 90s, 30m, 12h, 30d, 2w \\[default: DAYS_TO_KEEP_DATA days].",
        ),
    ] = None,
    outbox: Annotated[
        bool, typer.Option("--outbox", help="Only the outbox (default: outbox and inbox).")
    ] = False,
    inbox: Annotated[
        bool, typer.Option("--inbox", help="Only the inbox (default: outbox and inbox).")
    ] = False,
    status: Annotated[
        list[PurgeStatus] | None,
        typer.Option(
            "--status",
            "-s",
            show_default=False,
            help="Outbox rows in this status (repeatable) \\[default: published].",
        ),
    ] = None,
    include_unsent: Annotated[
        bool, typer.Option("--include-unsent", help="Allow deleting pending (never sent) outbox rows.")
    ] = False,
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, max=100000, help="Rows per DELETE.")
    ] = 1000,
    dry_run: params.DryRunOpt = False,
    yes: params.YesOpt = False,
    as_json: params.JsonOpt = False,
) -> None:
    """Delete old outbox and inbox rows, in batches.

    Outbox rows are deleted only when published, unless --status says otherwise; pending (never sent)
    rows are never deleted without --include-unsent. Deleting inbox rows ends their duplicate protection:
    keep them longer than any redelivery can take.

    [bold]Examples[/bold]

      outboxctl purge --older-than 30d --dry-run
      outboxctl purge --older-than 2w --outbox --status published --status failed --yes
      outboxctl purge --older-than 90d --inbox --yes --json
    """
    statuses = [s.value for s in status or [PurgeStatus.published]]
    if "pending" in statuses and not include_unsent:
        errors.fail(
            "Refusing to delete pending (never sent) outbox rows.",
            "Add --include-unsent if you really mean it; try --dry-run first.",
            ExitCode.USAGE,
        )
    resolved = bootstrap.setup(state(ctx))
    from django.utils import timezone

    from django_outbox_pattern import choices
    from django_outbox_pattern.ops import audit, operations

    age = older_than if older_than is not None else timedelta(days=resolved.outbox.DAYS_TO_KEEP_DATA)
    tables: list[Any] = [t for t, on in (("outbox", outbox), ("inbox", inbox)) if on] or ["outbox", "inbox"]
    now = timezone.now()
    plans = {
        table: operations.purgeable(
            table,
            older_than=age,
            now=now,
            include_unsent=include_unsent,
            statuses=[choices.STATUS_BY_NAME[s] for s in statuses] if table == "outbox" else None,
        ).count()
        for table in tables
    }
    extra = {
        "older_than_seconds": age.total_seconds(),
        "cutoff": now - age,
        "tables": plans,
        "statuses": statuses if "outbox" in tables else [],
    }
    if dry_run and not as_json:
        rows = [(t, n, ", ".join(statuses) if t == "outbox" else "any") for t, n in plans.items()]
        console = output.stdout()
        console.print(
            f"Rows added before {output.cell_text(now - age)} UTC ({output.age(age.total_seconds())} ago):"
        )
        console.print(output.table(None, ("Table", "Rows", "Statuses"), rows))

    def execute(advance: Any) -> int:
        return sum(
            operations.purge(
                table,
                older_than=age,
                now=now,
                include_unsent=include_unsent,
                batch_size=batch_size,
                on_batch=advance,
                actor=audit.cli_actor(),
                statuses=[choices.STATUS_BY_NAME[s] for s in statuses] if table == "outbox" else None,
            )
            for table in tables
        )

    _repair.run(
        action="deleted",
        question="Delete {n} row(s)?",
        matched=sum(plans.values()),
        sample=lambda: [],
        dry_run=dry_run,
        yes=yes,
        as_json=as_json,
        execute=execute,
        extra=extra,
    )
