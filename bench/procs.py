"""The orchestrator's side of the worker processes: start one per database, call it, stop it."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
LOG_DIR = ROOT / "var" / "bench"


class BenchError(RuntimeError):
    """A scenario could not run (a worker failed, a service is missing, a check did not hold)."""


def bench_env(db: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of every process the bench starts for database ``db``.

    ``BENCH_SRC`` points the workers at another checkout's ``src`` (to compare two versions).
    """
    env = dict(os.environ)
    paths = [os.environ.get("BENCH_SRC") or str(ROOT / "src"), str(ROOT)]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env.update(
        {
            "PYTHONPATH": os.pathsep.join(paths),
            "DJANGO_SETTINGS_MODULE": "bench.settings",
            "BENCH_DB": db,
            "PYTHONDONTWRITEBYTECODE": "1",
        }
    )
    env.update(extra or {})
    return env


def _log_file(name: str) -> IO[bytes]:
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    return open(LOG_DIR / f"{name}.log", "ab")  # closed with the worker


class Worker:
    """One ``python -m bench.worker`` process for one database."""

    def __init__(self, db: str, *, name: str | None = None, env: Mapping[str, str] | None = None) -> None:
        self.db = db
        self.name = name or f"worker-{db}"
        self._log = _log_file(self.name)
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "bench.worker"],
            cwd=ROOT,
            env=bench_env(db, env),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
        )
        self._buffer = b""

    @property
    def pid(self) -> int:
        return self._proc.pid

    def send(self, fn: str, **kwargs: Any) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.write((json.dumps({"fn": fn, "kwargs": kwargs}) + "\n").encode())
        self._proc.stdin.flush()

    def receive(self, timeout: float = 600) -> Any:
        assert self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BenchError(
                    f"{self.name}: no answer within {timeout:.0f}s (log: {LOG_DIR}/{self.name}.log)"
                )
            ready, _, _ = select.select([fd], [], [], remaining)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise BenchError(
                        f"{self.name} exited with code {self._proc.wait()} (log: {LOG_DIR}/{self.name}.log)"
                    )
                self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        reply = json.loads(line)
        if not reply["ok"]:
            raise BenchError(f"{self.name} failed:\n{reply['error']}")
        return reply["result"]

    def call(self, fn: str, timeout: float = 600, **kwargs: Any) -> Any:
        self.send(fn, **kwargs)
        return self.receive(timeout)

    def close(self) -> None:
        if self._proc.poll() is None:
            try:
                self.send("quit")
                self._proc.wait(timeout=20)
            except (OSError, subprocess.TimeoutExpired):
                self._proc.kill()
                self._proc.wait()
        self._log.close()

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Command:
    """A plain subprocess (``python -m django publish`` ...) with the bench environment."""

    def __init__(self, db: str, args: list[str], *, name: str, env: Mapping[str, str] | None = None) -> None:
        self.name = name
        self._log = _log_file(name)
        self._proc = subprocess.Popen(
            [sys.executable, *args], cwd=ROOT, env=bench_env(db, env), stdout=self._log, stderr=self._log
        )

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM (a graceful stop), then SIGKILL after ``timeout``; the exit code."""
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._log.close()
        return self._proc.returncode

    def alive(self) -> bool:
        return self._proc.poll() is None

    @property
    def pid(self) -> int:
        return self._proc.pid

    def kill(self) -> None:
        """SIGKILL: a crash, as the recovery scenario needs it."""
        self._proc.kill()
        self._proc.wait()
