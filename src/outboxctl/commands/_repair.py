"""The flow of the repair commands: count, preview (--dry-run), confirm unless --yes, run in batches."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from outboxctl import errors, output, views
from outboxctl.exit_codes import ExitCode

PROGRESS_FROM = 1000  # rows: smaller sets finish before a bar would help


def run(
    *,
    action: str,
    question: str,
    matched: int,
    sample: Callable[[], list[dict[str, Any]]],
    dry_run: bool,
    yes: bool,
    as_json: bool,
    execute: Callable[[Callable[[int], None]], int],
    extra: dict[str, Any] | None = None,
) -> None:
    """``action`` is past tense ("replayed"); ``execute(advance)`` does the work and returns the count."""
    report: dict[str, Any] = {"action": action, "dry_run": dry_run, "matched": matched, **(extra or {})}
    if dry_run:
        rows = sample()
        if as_json:
            return output.print_json({**report, "changed": 0, "sample": rows})
        if rows:
            title = (
                f"{matched} row(s), oldest first"
                if len(rows) == matched
                else f"First {len(rows)} of {matched}"
            )
            views.rows(title, "outbox" if "attempts" in rows[0] else "inbox", rows)
        output.stdout().print(f"Dry run: {matched} row(s) would be {action}; nothing changed.")
        return None
    if matched == 0:
        return (
            output.print_json({**report, "changed": 0})
            if as_json
            else output.note("Nothing to do: 0 rows match.")
        )
    if not yes:
        errors.confirm(question.format(n=matched), "nothing changed")
    with output.progress(
        action.capitalize(), matched, enabled=output.interactive() and matched >= PROGRESS_FROM
    ) as advance:
        changed = execute(advance)
    if as_json:
        return output.print_json({**report, "changed": changed})
    output.stdout().print(
        f"{changed} row(s) {action}"
        + (f" ({matched - changed} changed meanwhile and were left alone)" if changed < matched else "")
        + "."
    )
    return None


def require_selection(select_all: bool, *selectors: Any) -> None:
    """Refuse to touch every row by accident: a selector or an explicit --all is required."""
    if not select_all and not any(selectors):
        errors.fail(
            "Nothing selected.",
            "Give --id, --destination or --since, or --all for every row.",
            ExitCode.USAGE,
        )


def explain_skipped(states: dict[str, str], wanted: str) -> None:
    """On stderr: the given ids a repair will not touch, and why (``wanted`` is the state it acts on)."""
    for key, state in states.items():
        if state != wanted:
            output.note(f"Skipping {key}: it is {state} (only {wanted} rows are changed).")
