"""Help, version and the documented exit codes: -h/--help everywhere, with examples."""

from __future__ import annotations

import pytest

from django_outbox_pattern import __version__
from outboxctl.exit_codes import ExitCode

COMMANDS = [
    "publish",
    "subscribe",
    "inspect",
    "replay",
    "purge",
    "check",
    "config",
    "dead-letter",
    "dead-letter requeue",
]


def test_version(cli) -> None:
    result = cli("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"outboxctl {__version__}"


def test_root_help_documents_every_exit_code_and_precedence(cli) -> None:
    result = cli("-h")
    assert result.exit_code == 0
    for code in ExitCode:
        assert f"  {int(code)} " in result.stdout, code
    assert "flags > environment (OUTBOXCTL_*) > config file" in result.stdout
    assert "[tool.outboxctl]" in result.stdout
    for command in ("publish", "subscribe", "inspect", "replay", "purge", "check", "config", "dead-letter"):
        assert command in result.stdout


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_every_command_has_help_with_examples(cli, command: str, flag: str) -> None:
    result = cli(*command.split(), flag)
    assert result.exit_code == 0, result.output
    assert "Examples" in result.stdout
    assert f"outboxctl {command.split()[0]}" in result.stdout


def test_no_arguments_shows_help(cli) -> None:
    result = cli()
    assert "Usage: outboxctl" in result.output
    assert result.exit_code in (0, 2)  # Click shows help; newer Click versions exit 2 ("no command")


def test_exit_code_values_are_the_contract() -> None:
    assert {c.name: int(c) for c in ExitCode} == {
        "OK": 0,
        "ERROR": 1,
        "USAGE": 2,
        "BROKER_UNAVAILABLE": 3,
        "DATABASE_UNAVAILABLE": 4,
        "CHECK_FAILED": 5,
        "INTERRUPTED": 130,
    }


def test_unknown_option_is_a_usage_error(cli) -> None:
    result = cli("inspect", "--no-such-flag")
    assert result.exit_code == ExitCode.USAGE
    assert "No such option" in result.output


def test_bad_duration_is_a_usage_error(cli) -> None:
    result = cli("purge", "--older-than", "30x", "--dry-run")
    assert result.exit_code == ExitCode.USAGE
    assert "is not a duration" in result.output
