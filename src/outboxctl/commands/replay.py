"""``outboxctl replay``: failed (dead-lettered) outbox rows back to pending, attempts reset."""

from __future__ import annotations

import typer

from outboxctl import bootstrap, errors, params
from outboxctl.commands import _repair, state


@errors.handled
def replay(
    ctx: typer.Context,
    ids: params.IdsOpt = None,
    destination: params.DestinationOpt = None,
    since: params.SinceOpt = None,
    limit: params.LimitOpt = None,
    select_all: params.AllOpt = False,
    dry_run: params.DryRunOpt = False,
    yes: params.YesOpt = False,
    as_json: params.JsonOpt = False,
) -> None:
    """Send failed messages again: back to pending, due now, attempts and last error reset.

    Only failed rows change. Select them by --id, by filter, or all with --all; the oldest go first;
    the work runs in batches (a progress bar shows on a terminal for large sets).

    [bold]Examples[/bold]

      outboxctl replay --id 3f0c2a4e-... --yes
      outboxctl replay --destination '/topic/orders*' --since 1d --dry-run
      outboxctl replay --all --limit 500 --yes --json
    """
    _repair.require_selection(select_all, ids, destination, since)
    bootstrap.setup(state(ctx))
    from django_outbox_pattern.ops import audit, inspection, operations

    selection = inspection.Filter(ids=tuple(ids or ()), destination=destination, since=since, limit=limit)
    if ids:
        _repair.explain_skipped(inspection.id_states(list(ids)), "failed")
    qs = operations.replayable(selection)
    matched = min(qs.count(), limit) if limit else qs.count()
    _repair.run(
        action="replayed",
        question="Replay {n} failed message(s)?",
        matched=matched,
        sample=lambda: inspection.preview("outbox", qs),
        dry_run=dry_run,
        yes=yes,
        as_json=as_json,
        execute=lambda advance: operations.replay_matching(
            selection, on_batch=advance, actor=audit.cli_actor()
        ),
    )
