"""``outboxctl config``: the resolved configuration and where each value came from (secrets masked)."""

from __future__ import annotations

from typing import Any

import typer

from outboxctl import bootstrap, errors, output, params
from outboxctl.commands import state


@errors.handled
def show(ctx: typer.Context, as_json: params.JsonOpt = False) -> None:
    """Print the resolved configuration: every value with its source; passwords masked.

    Precedence, highest first: command flags > environment (OUTBOXCTL_*) > config file > Django
    settings > defaults.

    [bold]Examples[/bold]

      outboxctl --config ops/outboxctl.toml config
      OUTBOXCTL_BROKER_HOSTS=rabbit:61613 outboxctl config --json
    """
    resolved = bootstrap.setup(state(ctx), database=False)
    report = describe(resolved)
    if as_json:
        output.print_json(report)
        return
    render(report)


def describe(resolved: bootstrap.Resolved) -> dict[str, Any]:
    """Stable keys: config_file, settings_module, database {values, source},
    settings {KEY: {value, source}}.

    Secrets are masked.
    """
    public = resolved.outbox.public_dict()
    return {
        "config_file": str(resolved.config_file) if resolved.config_file else None,
        "settings_module": {
            "value": resolved.settings_module,
            "source": resolved.settings_source or "not set",
        },
        "database": {"values": resolved.database, "source": resolved.database_source},
        "settings": {key: {"value": value, "source": resolved.sources[key]} for key, value in public.items()},
    }


def render(report: dict[str, Any]) -> None:
    rows: list[tuple[Any, ...]] = [
        ("config file", report["config_file"] or "none found", ""),
        ("settings module", report["settings_module"]["value"], report["settings_module"]["source"]),
    ]
    rows += [
        (f"database.{key}", value, report["database"]["source"])
        for key, value in report["database"]["values"].items()
    ]
    if not report["database"]["values"]:
        rows.append(("database", "not configured", ""))
    rows += [(key, _text(item["value"]), item["source"]) for key, item in report["settings"].items()]
    output.stdout().print(output.table("Resolved configuration", ("Key", "Value", "Source"), rows))


def _text(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return ", ".join(":".join(map(str, v)) if isinstance(v, (tuple, list)) else str(v) for v in value)
    return output.cell_text(value)
