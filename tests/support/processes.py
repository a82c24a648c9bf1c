"""Run `python -m django subscribe ...` as a real subprocess against the test database."""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
import threading
from typing import Any

from django.db import connection

ROOT = pathlib.Path(__file__).resolve().parents[2]


def subprocess_env(settings_module: str = "tests.settings", **outbox: Any) -> dict[str, str]:
    """The environment of a child that uses this test run's database (not the development one)."""
    env = dict(os.environ)
    env["DJANGO_SETTINGS_MODULE"] = settings_module
    env["PYTHONPATH"] = f"{ROOT / 'src'}:{ROOT}"
    name = str(connection.settings_dict["NAME"])
    if connection.vendor == "sqlite":
        env["OUTBOX_SQLITE_PATH"] = name
    else:
        env["OUTBOX_TEST_DB_NAME"] = name
    if outbox:
        env["OUTBOX_TEST_SETTINGS_JSON"] = json.dumps(outbox)
    return env


class Subscriber:
    """A `subscribe` command in a child process; its stderr lines are collected as they come."""

    def __init__(self, *args: str, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "django", "subscribe", *args],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def __enter__(self) -> Subscriber:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self._reader.join(5)

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        self.proc.stderr.close()
        with self._cond:
            self._cond.notify_all()

    @property
    def stderr(self) -> str:
        with self._cond:
            return "\n".join(self.lines)

    def wait_for_line(self, text: str, timeout: float = 30) -> bool:
        """Wait until a stderr line contains ``text`` (False on timeout or when the process ended first)."""

        def seen_or_done() -> bool:
            return any(text in line for line in self.lines) or not self._reader.is_alive()

        with self._cond:
            self._cond.wait_for(seen_or_done, timeout)
            return any(text in line for line in self.lines)

    def terminate(self) -> None:
        self.proc.send_signal(signal.SIGTERM)

    def wait(self, timeout: float = 30) -> int:
        return self.proc.wait(timeout)
