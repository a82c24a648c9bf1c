"""Crash recovery (scenario ``recovery``): how long the rows a SIGKILLed relay held wait to be sent.

Two ``python -m django publish`` processes (default settings: the lease is 120 s) drain a backlog on
PostgreSQL. As soon as one of them holds leased rows it is SIGKILLed; the clock runs from the kill until
every row it held is published by the other one (the heartbeats of relaying/liveness.py release them).
Then the survivor drains the rest and the queue must hold every row at least once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from bench import broker
from bench.context import Context
from bench.procs import BenchError, Command
from bench.results import Figures

DB = "postgres"
POLL_S = 0.005


def _wait(condition_name: str, condition: Callable[[], Any], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise BenchError(f"recovery: {condition_name} did not happen within {timeout:.0f} s")
        time.sleep(POLL_S)  # another process's progress: nothing to wait on but the database


def measure(ctx: Context, rows: int) -> tuple[float, int]:
    """One kill: (seconds from the kill until the held rows were published, rows held)."""
    name = broker.unique_queue("recovery")
    transport = broker.connect()
    try:
        destination = broker.declare_queue(transport, name, expires_ms=300_000)
    finally:
        transport.disconnect()
    db = ctx.worker(DB)
    db.call("bench.db:load", destination=destination, rows=rows, body_bytes=ctx.params.body_bytes)
    survivor = Command(DB, ["-m", "django", "publish"], name="recovery-survivor")
    victim = Command(DB, ["-m", "django", "publish"], name="recovery-victim")
    try:
        _wait("a lease by the victim", lambda: db.call("bench.db:held_by", pid=victim.pid), 120)
        victim.kill()
        killed = time.monotonic()
        held = db.call("bench.db:held_by", pid=victim.pid)
        _wait(
            "the held rows' publication",
            lambda: db.call("bench.db:published_among", ids=held) == len(held),
            300,
        )
        delay = time.monotonic() - killed
        _wait("the whole backlog", lambda: db.call("bench.db:status_counts").get("succeeded") == rows, 300)
    finally:
        survivor.stop()
        if victim.alive():
            victim.kill()
    counted = broker.drain(name, expected=rows)
    if counted.unique != rows:
        raise BenchError(f"recovery: queue {name} holds {counted.unique} distinct messages, expected {rows}")
    return delay, len(held)


def run(ctx: Context, figures: Figures) -> None:
    delays: list[float] = []
    for repeat in range(ctx.params.repeat):
        delay, held = measure(ctx, ctx.params.relay_rows)
        delays.append(delay)
        ctx.log(f"recovery #{repeat + 1}", delay_s=delay, rows_held=held)
    figures.add("recovery.postgres.delay_s", delays, unit="s")
