"""The root ``outboxctl`` app: global options, logging, and one sub-command per module in ``commands/``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from outboxctl import __version__, output
from outboxctl.bootstrap import State
from outboxctl.commands import check, config, dead_letter, inspect, publish, purge, replay, subscribe
from outboxctl.exit_codes import HELP_TABLE

EPILOG = f"""{HELP_TABLE}

[bold]Configuration[/bold] (highest first): command flags > environment (OUTBOXCTL_*) > config file \
(--config, else ./outboxctl.toml, else \\[tool.outboxctl] in ./pyproject.toml) > Django settings \
(--settings) > defaults. See the resolved values with [cyan]outboxctl config[/cyan].

[bold]Examples[/bold]

  outboxctl --settings mysite.settings check
  outboxctl inspect --failed --since 2h
  outboxctl replay --destination '/topic/orders*' --dry-run
  outboxctl purge --older-than 30d --yes
"""

app = typer.Typer(
    name="outboxctl",
    help="Run and repair the transactional outbox of django-outbox-pattern: relay, consumer, inspection, "
    "replay, dead-letters, purge and health checks.",
    epilog=EPILOG,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_show_locals=False,
    no_args_is_help=True,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"outboxctl {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    settings: Annotated[
        str | None,
        typer.Option(
            "--settings",
            envvar="DJANGO_SETTINGS_MODULE",
            metavar="MODULE",
            help="Django settings module, e.g. mysite.settings.",
            show_default=False,
        ),
    ] = None,
    pythonpath: Annotated[
        list[Path] | None,
        typer.Option(
            "--pythonpath", metavar="DIR", help="Add DIR to sys.path (repeatable).", show_default=False
        ),
    ] = None,
    config_path: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            envvar="OUTBOXCTL_CONFIG",
            metavar="FILE",
            show_default=False,
            help="TOML config file (default: ./outboxctl.toml, else \\[tool.outboxctl] in ./pyproject.toml).",
        ),
    ] = None,
    verbose: Annotated[
        int,
        typer.Option(
            "--verbose", "-v", count=True, help="-v: info logs, -vv: debug logs and tracebacks (stderr)."
        ),
    ] = 0,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Operate the transactional outbox."""
    source = ""
    if settings:
        where = ctx.get_parameter_source("settings")
        from_env = where is not None and where.name == "ENVIRONMENT"
        source = "env DJANGO_SETTINGS_MODULE" if from_env else "flag --settings"
    ctx.obj = State(
        settings_module=settings or None,
        settings_source=source,
        pythonpath=[str(p.resolve()) for p in pythonpath or []],
        config_path=config_path,
        verbosity=verbose,
    )
    output.setup_logging(verbose)


for name, command in (
    ("publish", publish.publish),
    ("subscribe", subscribe.subscribe),
    ("inspect", inspect.inspect),
    ("replay", replay.replay),
    ("purge", purge.purge),
    ("check", check.check),
    ("config", config.show),
):
    app.command(name, help=output.help_text(command.__doc__))(command)
app.add_typer(dead_letter.app, name="dead-letter", help=output.help_text(dead_letter.park.__doc__))


def main() -> None:
    """Console-script entry point (``outboxctl``)."""
    app(prog_name="outboxctl")
