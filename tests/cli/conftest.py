"""Fixtures for the CLI tests: an in-process runner, row factories, and real ``python -m outboxctl`` runs.

Subprocesses use ``--settings tests.settings`` pointed (through OUTBOX_TEST_DB_NAME / OUTBOX_SQLITE_PATH)
at the test database pytest-django created and migrated, so tests that run them use
``django_db(transaction=True)``: what they write is committed and visible to the child, and flushed after.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from tests.cli.factories import make_published, make_received  # noqa: F401 - re-exported for the tests

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Run every CLI test in an empty directory, without OUTBOXCTL_* variables, restoring sys.path."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("OUTBOXCTL_"):
            monkeypatch.delenv(name)
    saved = list(sys.path)
    yield
    sys.path[:] = saved


@pytest.fixture
def cli() -> Any:
    """``cli("inspect", "--json", input="y\\n", env={...}) -> Result`` against the in-process app."""
    from outboxctl.main import app

    runner = CliRunner(env={"COLUMNS": "200", "NO_COLOR": "1"})

    def invoke(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
        return runner.invoke(app, list(args), input=input, env=env, prog_name="outboxctl")

    return invoke


def child_env(**extra: str) -> dict[str, str]:
    """The environment for ``python -m outboxctl``: this worktree on the path, the test database."""
    from django.db import connection

    env = {k: v for k, v in os.environ.items() if not k.startswith(("OUTBOXCTL_", "DJANGO_SETTINGS_MODULE"))}
    env["PYTHONPATH"] = f"{ROOT / 'src'}{os.pathsep}{ROOT}"
    env["OUTBOX_TEST_DB"] = os.environ.get("OUTBOX_TEST_DB", "sqlite")
    env["COLUMNS"] = "200"
    env.pop("FORCE_COLOR", None)
    name = str(connection.settings_dict["NAME"])
    if connection.vendor == "sqlite":
        env["OUTBOX_SQLITE_PATH"] = name
    else:
        env["OUTBOX_TEST_DB_NAME"] = name
    env.update(extra)
    return env


def run_cli(
    *args: str,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 60,
    settings: bool = True,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """``python -m outboxctl [--settings tests.settings] ARGS`` as a real child process."""
    return subprocess.run(
        cli_command(*args, settings=settings),
        env=env or child_env(),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input,
    )


def cli_command(*args: str, settings: bool = True) -> list[str]:
    """The argv of ``python -m outboxctl [--settings tests.settings] ARGS``."""
    return [sys.executable, "-m", "outboxctl", *(["--settings", "tests.settings"] if settings else []), *args]


from tests.cli.standins import consumer_standin, relay_standin  # noqa: E402,F401 - fixtures (STAND-INS)
