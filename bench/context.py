"""What every scenario gets: the parameters, one prepared worker per database, progress output."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console

from bench import broker, profiling
from bench.params import Params
from bench.procs import Worker


class Context:
    def __init__(self, params: Params, *, dbs: tuple[str, ...], profile_dir: str | None = None) -> None:
        self.params = params
        self.dbs = dbs
        self.profile_dir = profile_dir
        self.console = Console(stderr=True)
        if not self.console.is_terminal:
            self.console = Console(stderr=True, width=150)
        self.versions: dict[str, str] = {}
        self.rabbitmq = ""  # the broker's CONNECTED `server` header
        self.per_message: list[dict[str, float]] = []  # PostgreSQL's work per relayed message (e2e)
        self._workers: dict[str, Worker] = {}
        self._started = time.monotonic()
        self._profiles = 0

    def env(self, **extra: str) -> dict[str, str]:
        """Environment of every worker: prefetch and queue expiry for consumers, profiling if asked."""
        env = {
            "BENCH_PREFETCH": str(self.params.prefetch),
            "BENCH_QUEUE_EXPIRES_MS": str(broker.QUEUE_EXPIRES_MS),
        }
        if self.profile_dir and not profiling.pyspy_path():
            env["BENCH_PROFILE_DIR"] = self.profile_dir  # cProfile inside the worker
        env.update(extra)
        return env

    def worker(self, db: str) -> Worker:
        """The long-lived worker of ``db`` (database created, migrated and emptied on first use)."""
        if db not in self._workers:
            worker = Worker(db, env=self.env())
            self._workers[db] = worker
            self.versions[db] = worker.call("bench.db:prepare", timeout=300)["version"]
        return self._workers[db]

    def profile(self, worker: Worker, label: str) -> profiling.PySpy | None:
        """Start py-spy on ``worker`` when profiling with py-spy; the caller stops it after the call."""
        if self.profile_dir and profiling.pyspy_path():
            self._profiles += 1
            return profiling.PySpy(worker.pid, self.profile_dir, f"{self._profiles:02d}-{label}")
        return None

    def log(self, message: str, **values: Any) -> None:
        elapsed = time.monotonic() - self._started
        detail = " ".join(f"{k}={_fmt(v)}" for k, v in values.items())
        self.console.print(f"[dim]{elapsed:6.1f}s[/dim] {message} {detail}".rstrip(), highlight=False)

    def close(self) -> None:
        for worker in self._workers.values():
            worker.close()
        self._workers.clear()


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 10 else f"{value:.3f}"
    return str(value)
