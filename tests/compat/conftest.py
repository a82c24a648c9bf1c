"""Fixtures of the side-by-side layer: django-outbox-pattern 3.2.1 runs in its own venv (.venv-321, made by
scripts/test.sh) as subprocesses (upstream/driver.py), against the same PostgreSQL database and RabbitMQ.

A missing side venv or a database other than PostgreSQL skips locally and fails when CI is set.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection

from tests.conftest import service_missing

ROOT = pathlib.Path(__file__).resolve().parents[2]
UPSTREAM_DIR = pathlib.Path(__file__).resolve().parent / "upstream"
SIDE_PYTHON = pathlib.Path(os.environ.get("OUTBOX_COMPAT_PYTHON") or ROOT / ".venv-321" / "bin" / "python")


@pytest.fixture(scope="session")
def side_python() -> pathlib.Path:
    if not os.access(SIDE_PYTHON, os.X_OK):
        message = f"no django-outbox-pattern 3.2.1 at {SIDE_PYTHON}: bash scripts/test.sh creates .venv-321"
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return SIDE_PYTHON


class Upstream:
    """Runs one driver.py command of 3.2.1 on this test's database."""

    def __init__(self, python: pathlib.Path) -> None:
        self.python = python

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "DJANGO_"))}
        env.update(
            PYTHONPATH=str(UPSTREAM_DIR),
            DJANGO_SETTINGS_MODULE="upstream_settings",
            OUTBOX_COMPAT_DB_NAME=str(connection.settings_dict["NAME"]),
        )
        return env

    def run(self, command: str, args: dict[str, Any] | None = None, timeout: float = 60) -> Any:
        done = subprocess.run(
            [str(self.python), str(UPSTREAM_DIR / "driver.py"), command, json.dumps(args or {})],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert done.returncode == 0, f"3.2.1 {command} failed:\n{done.stderr[-3000:]}"
        return json.loads(done.stdout.strip().splitlines()[-1])

    def start(self, command: str, args: dict[str, Any]) -> subprocess.Popen[str]:
        """A long-running command; read its JSON lines with ``line()``."""
        return subprocess.Popen(
            [str(self.python), str(UPSTREAM_DIR / "driver.py"), command, json.dumps(args)],
            env=self.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    @staticmethod
    def line(process: subprocess.Popen[str]) -> Any:
        assert process.stdout is not None
        text = process.stdout.readline()
        if not text:
            stderr = process.stderr.read() if process.stderr else ""
            raise AssertionError(f"3.2.1 ended without output:\n{stderr[-3000:]}")
        return json.loads(text)


@pytest.fixture
def upstream(side_python: pathlib.Path, broker_available: None) -> Iterator[Upstream]:
    if connection.vendor != "postgresql":
        service_missing("PostgreSQL (run tests/compat with OUTBOX_TEST_DB=postgres)")
    yield Upstream(side_python)
