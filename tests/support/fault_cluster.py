"""Relays, consumers and writers as real processes for the fault suite, and waiting on the books.

A ``Cluster`` runs ``python -m django publish`` (relays), ``python -m django subscribe
tests.support.fault_callbacks.record_effect /topic/<name> <name>`` (consumers) and
``python -m tests.support.fault_writer`` (writers) against one ``FaultDatabase`` and one broker port.
Every process gets its own PostgreSQL application_name (``faults-relay-<i>-<generation>``,
``faults-cons-<i>-<generation>``), so a test can find and cut exactly its database sessions, and its own
log file. Everything started is killed by pid in ``stop_all()``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from tests.support.faultdb import Books, FaultDatabase
from tests.support.processes import ROOT
from tests.support.rabbit_node import RabbitNode
from tests.support.runner import wait_until

CALLBACK = "tests.support.fault_callbacks.record_effect"
CONSUMER_READY = "django_outbox_pattern.consuming.consumer: Consuming"
RELAY_READY = "Relay connected to the broker"

# Short timeouts and retry delays, so that every recovery happens within seconds.
ENV_KNOBS = {
    "OUTBOX_POLL_INTERVAL": "0.05",
    "OUTBOX_MAXIMUM_BACKOFF": "1",
    "OUTBOX_RECEIPT_TIMEOUT": "2",
    "OUTBOX_RELAY_LEASE": "6",
    "OUTBOX_CHUNK_SIZE": "50",
}
SETTINGS = {
    "DEFAULT_RETRY_BASE_DELAY": 0.2,
    "DEFAULT_PAUSE_FOR_RETRY": 0.5,
    "DEFAULT_WAIT_RETRY": 1,
    "DEFAULT_CONSUMER_RETRY_WAIT": 0.1,
    "DEFAULT_CONNECT_TIMEOUT": 3,
    "DEFAULT_CONSUMER_SHUTDOWN_TIMEOUT": 10,
}


class Proc:
    """One role (relay 0, consumer 1, ...) restarted as often as a test likes; one log file per start."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: pathlib.Path) -> None:
        self.name = name
        self.args = args
        self.env = env
        self.log_dir = log_dir
        self.generation = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_files: list[pathlib.Path] = []
        self.kills = 0

    @property
    def app_name(self) -> str:
        return f"faults-{self.name}-{self.generation}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> Proc:
        assert not self.alive, f"{self.name} is already running"
        self.generation += 1
        log = self.log_dir / f"{self.name}-{self.generation}.log"
        self.log_files.append(log)
        env = {**self.env, "OUTBOX_DB_APP_NAME": self.app_name}
        with log.open("wb") as out:
            self.proc = subprocess.Popen(self.args, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        return self

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL, by pid."""
        if self.alive:
            assert self.proc is not None
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
            self.kills += 1

    def terminate(self, timeout: float = 30) -> int | None:
        """SIGTERM (once) and wait; SIGKILL if it does not exit in time. Returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.reap(timeout)

    def reap(self, timeout: float = 30) -> int | None:
        """Wait for the exit (SIGKILL after ``timeout``); the exit code."""
        assert self.proc is not None
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        return self.proc.returncode

    def log(self) -> str:
        """What the current (or last) start printed."""
        return self.log_files[-1].read_text(errors="replace") if self.log_files else ""

    def logs(self) -> str:
        """What every start printed."""
        return "\n".join(path.read_text(errors="replace") for path in self.log_files)

    def wait_for_log(self, text: str, timeout: float = 30) -> bool:
        """Wait until the current start printed ``text`` (False on timeout or when the process ended)."""
        ok = wait_until(lambda: text in self.log() or not self.alive, timeout=timeout, interval=0.05)
        return ok and text in self.log()


class Cluster:
    """The processes of one fault test, all on the topic ``/topic/<name>`` consumed from queue ``<name>``."""

    def __init__(
        self,
        db: FaultDatabase,
        *,
        port: int,
        name: str,
        log_dir: pathlib.Path,
        env: dict[str, str] | None = None,
        settings: dict[str, Any] | None = None,
    ) -> None:
        self.db = db
        self.queue = name
        self.topic = f"/topic/{name}"
        self.log_dir = log_dir
        base = {k: v for k, v in os.environ.items() if not k.startswith("OUTBOX_")}
        base.update(
            {
                k: v
                for k, v in os.environ.items()
                if k.startswith(("OUTBOX_PG_", "OUTBOX_MYSQL_"))  # where the databases are
            }
        )
        self.env = {
            **base,
            **db.env(),
            **ENV_KNOBS,
            "DJANGO_SETTINGS_MODULE": "tests.support.fault_settings",
            "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}",
            "PYTHONDONTWRITEBYTECODE": "1",
            "OUTBOX_STOMP_PORT": str(port),
            "OUTBOX_TEST_SETTINGS_JSON": json.dumps({**SETTINGS, **(settings or {})}),
            **(env or {}),
        }
        self.relays: list[Proc] = []
        self.consumers: list[Proc] = []
        self.writers: list[Proc] = []

    def _proc(self, name: str, args: list[str], **env: str) -> Proc:
        return Proc(name, [sys.executable, *args], {**self.env, **env}, self.log_dir)

    def add_relay(self, **env: str) -> Proc:
        relay = self._proc(f"relay-{len(self.relays)}", ["-m", "django", "publish"], **env)
        self.relays.append(relay)
        return relay

    def add_consumer(self, **env: str) -> Proc:
        args = ["-m", "django", "subscribe", CALLBACK, self.topic, self.queue]
        consumer = self._proc(f"cons-{len(self.consumers)}", args, **env)
        self.consumers.append(consumer)
        return consumer

    def start_consumers(self, count: int, **env: str) -> list[Proc]:
        """Start ``count`` consumers and wait until each subscribed (the queue is then bound)."""
        started = [self.add_consumer(**env).start() for _ in range(count)]
        for consumer in started:
            assert consumer.wait_for_log(CONSUMER_READY, timeout=60), consumer.log()
        return started

    def start_relays(self, count: int, **env: str) -> list[Proc]:
        return [self.add_relay(**env).start() for _ in range(count)]

    def write(self, count: int, *, rate: float = 0, wait: bool = True) -> Proc:
        """Insert ``count`` outbox rows for the topic from a writer process (at ``rate`` rows/s)."""
        args = ["-m", "tests.support.fault_writer", self.topic, str(count), str(rate)]
        writer = self._proc(f"writer-{len(self.writers)}", args).start()
        self.writers.append(writer)
        if wait:
            assert writer.proc is not None
            assert writer.proc.wait(120) == 0, writer.log()
        return writer

    def run_module(self, name: str, module: str, *args: str, wait: bool = True) -> Proc:
        """Run ``python -m module args`` with the cluster's environment (kept with the writers, so it is
        reaped and killed with them); with ``wait``, assert that it exits 0."""
        proc = self._proc(f"{name}-{len(self.writers)}", ["-m", module, *args]).start()
        self.writers.append(proc)
        if wait:
            assert proc.proc is not None
            assert proc.proc.wait(120) == 0, proc.log()
        return proc

    @property
    def processes(self) -> list[Proc]:
        return [*self.writers, *self.relays, *self.consumers]

    def stop_all(self) -> dict[str, int | None]:
        """SIGTERM everything still running (SIGKILL what does not stop); their exit codes by name."""
        running = [proc for proc in self.processes if proc.alive]
        for proc in running:
            assert proc.proc is not None
            proc.proc.send_signal(signal.SIGTERM)
        return {proc.name: proc.reap(timeout=30) for proc in running}

    def kill_all(self) -> None:
        for proc in self.processes:
            if proc.alive and proc.proc is not None:
                proc.proc.kill()
                proc.proc.wait(10)

    def wait_for_effects(self, count: int, timeout: float = 60) -> bool:
        """Wait until at least ``count`` distinct messages had their effect."""
        return wait_until(lambda: self.db.effects() >= count, timeout=timeout, interval=0.1)

    def wait_for_books(self, rows: int, timeout: float = 120) -> Books:
        """Wait until all ``rows`` outbox rows are published, in the inbox and applied; the last books."""
        last: list[Books] = []

        def complete() -> bool:
            last[:] = [self.db.books()]
            return last[0].rows == rows and last[0].complete

        wait_until(complete, timeout=timeout, interval=0.25)
        return last[0]

    def wait_for_queue_empty(self, depth: Callable[[str], int], timeout: float = 60) -> bool:
        """Wait until the main queue holds nothing (every redelivered copy acked) while consumers run."""
        return wait_until(lambda: depth(self.queue) == 0, timeout=timeout, interval=0.5)

    def log_text(self) -> str:
        return "\n".join(proc.logs() for proc in self.processes)


def settle(cluster: Cluster, node: RabbitNode) -> Books:
    """Wait for the writers to finish, the books to balance and the queue to drain; stop everything
    (each process must exit 0 on SIGTERM); return the final books with the dead-letter queue's depth."""
    assert all(writer.reap(120) == 0 for writer in cluster.writers), [w.log() for w in cluster.writers]
    if cluster.wait_for_books(cluster.db.books().rows, timeout=180).complete:
        assert cluster.wait_for_queue_empty(node.queue_depth), "redelivered copies were left in the queue"
    codes = cluster.stop_all()
    assert all(code == 0 for code in codes.values()), codes
    dead = node.queue_depth(f"DLQ.{cluster.queue}")
    return dataclasses.replace(cluster.db.books(), dead_lettered=dead)


def wait_then(delay: float) -> None:
    """A short pacing pause between injected faults (never used to wait for a result)."""
    time.sleep(delay)
