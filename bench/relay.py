"""Relay throughput (scenario 1), relay scaling (scenario 2) and the shared relay measurement.

One measurement: load N outbox rows with ``Published.objects.bulk_create``, declare the queue, start P
fresh relay processes, let each build its relay (the barrier), then start them together and time until
the last one found the outbox empty. Afterwards the outbox must be all Succeeded and the queue, counted by
consuming it, must hold every row once (``dop-msg-id``). The raw limit sends the same kind of messages
with pipelined receipts and no database, alternating with the relay runs.
"""

from __future__ import annotations

import os
import resource
import time
from typing import Any

from bench import broker
from bench.context import Context
from bench.procs import BenchError, Worker
from bench.results import Figures
from bench.stats import rate

_state: dict[str, Any] = {}

# --- in the relay worker processes -------------------------------------------------------------------


def prepare(mode: str) -> dict[str, Any]:
    """Build the relay (``engine``) or import the management command (``command``), untimed."""
    if mode == "engine":
        from django_outbox_pattern.relaying.assembly import build_relay

        _state["relay"] = build_relay()
    else:
        from django.core.management import load_command_class

        _state["command"] = load_command_class("django_outbox_pattern", "publish")
    return {"pid": os.getpid()}


def drain(mode: str) -> dict[str, Any]:
    """Run the relay until the outbox is empty; wall-clock start/end and this process's peak RSS."""
    start = time.time()
    if mode == "engine":
        _state["relay"].run(until_empty=True)
    else:
        from django.core.management import call_command

        call_command(_state["command"], until_empty=True)
    end = time.time()
    return {"start": start, "end": end, "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}


# --- in the orchestrator -----------------------------------------------------------------------------


def measure(
    ctx: Context,
    db: str,
    *,
    rows: int,
    procs: int = 1,
    mode: str = "engine",
    count_queue: bool = True,
    clone_above: int | None = None,
    keys: int = 0,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """One relay run; raises BenchError if a row stayed unsent or a message is missing from the queue."""
    name = broker.unique_queue(f"relay-{db}")
    destination = f"/amq/queue/{name}"
    # Fresh relay processes (their peak RSS is the relay's own); they start while the rows load.
    relays = [Worker(db, name=f"relay-{db}-{i}", env=ctx.env(**(env or {}))) for i in range(procs)]
    try:
        ctx.worker(db).call(
            "bench.db:load",
            destination=destination,
            rows=rows,
            body_bytes=ctx.params.body_bytes,
            clone_above=clone_above,
            keys=keys,
        )
        transport = broker.connect()
        try:
            broker.declare_queue(transport, name, expires_ms=300_000)
        finally:
            transport.disconnect()
        for worker in relays:
            worker.send("bench.relay:prepare", mode=mode)
        for worker in relays:
            worker.receive(120)
        spy = ctx.profile(relays[0], f"relay-{db}-{procs}x{rows}" + (f"-{keys}keys" if keys else ""))
        for worker in relays:
            worker.send("bench.relay:drain", mode=mode)
        try:
            results = [worker.receive(1800) for worker in relays]
        finally:
            if spy is not None:
                spy.stop()
    finally:
        for worker in relays:
            worker.close()
    seconds = max(r["end"] for r in results) - min(r["start"] for r in results)
    status = ctx.worker(db).call("bench.db:status_counts")
    run: dict[str, Any] = {
        "msgs_per_s": rate(rows, seconds),
        "seconds": seconds,
        "status": status,
        "maxrss_mb": max(r["maxrss_kb"] for r in results) / 1024,
    }
    if status.get("succeeded") != rows:
        raise BenchError(f"relay on {db} left rows unsent: {status} (expected {rows} succeeded)")
    if count_queue:
        counted = broker.drain(name, expected=rows)
        run.update(duplicates=counted.duplicates, missing=rows - counted.unique, queue_depth=counted.total)
        if counted.unique != rows:
            raise BenchError(f"queue {name} holds {counted.unique} distinct messages, expected {rows}")
    return run


def measure_raw(ctx: Context, rows: int) -> float:
    """Raw limit: the same number of ~200-byte persistent messages, pipelined receipts, no database."""
    name = broker.unique_queue("raw")
    transport = broker.connect()
    try:
        destination = broker.declare_queue(transport, name)
        messages = broker.make_messages(destination, rows, ctx.params.body_bytes)
        seconds = broker.send_pipelined(transport, destination, messages)
        ctx.rabbitmq = transport.server
    finally:
        transport.disconnect()
    counted = broker.drain(name, expected=rows)
    if counted.unique != rows:
        raise BenchError(f"raw client: queue {name} holds {counted.unique} messages, expected {rows}")
    return rate(rows, seconds)


def run_throughput(ctx: Context, figures: Figures) -> None:
    rows = ctx.params.relay_rows
    raw_runs: list[float] = []
    db_runs: dict[str, list[float]] = {db: [] for db in ctx.dbs}
    ratios: dict[str, list[float]] = {db: [] for db in ctx.dbs}
    for repeat in range(ctx.params.repeat):
        for db in ctx.dbs:
            # The limit right before each relay run: on a busy machine the pair sees the same load.
            raw = measure_raw(ctx, rows)
            raw_runs.append(raw)
            run = measure(ctx, db, rows=rows)
            db_runs[db].append(run["msgs_per_s"])
            ratios[db].append(run["msgs_per_s"] / raw)
            ctx.log(
                f"relay #{repeat + 1} {db}",
                msgs_per_s=run["msgs_per_s"],
                raw=raw,
                ratio=run["msgs_per_s"] / raw,
            )
    figures.add("relay.raw_pipelined_msgs_per_s", raw_runs, unit="msg/s")
    figures.set("relay.rows", rows)
    for db in ctx.dbs:
        figures.add(f"relay.{db}.msgs_per_s", db_runs[db], unit="msg/s")
        figures.add(f"relay.{db}.ratio_to_raw", ratios[db], unit="ratio")


def run_scaling(ctx: Context, figures: Figures) -> None:
    """1, 2 and 4 relay processes (``manage.py publish --until-empty``) on PostgreSQL draining one backlog."""
    rows = ctx.params.scaling_rows
    per_procs: dict[int, list[float]] = {p: [] for p in ctx.params.scaling_procs}
    duplicates: dict[int, int] = {p: 0 for p in ctx.params.scaling_procs}
    for repeat in range(ctx.params.repeat):
        for procs in ctx.params.scaling_procs:
            run = measure(ctx, "postgres", rows=rows, procs=procs, mode="command")
            per_procs[procs].append(run["msgs_per_s"])
            duplicates[procs] += run["duplicates"]
            ctx.log(
                f"scaling #{repeat + 1} relays={procs}",
                msgs_per_s=run["msgs_per_s"],
                duplicates=run["duplicates"],
            )
    for procs in ctx.params.scaling_procs:
        key = f"relay.postgres.scaling.relays_{procs}"
        figures.add(f"{key}.msgs_per_s", per_procs[procs], unit="msg/s")
        figures.set(f"{key}.duplicates", duplicates[procs])
        if procs != 1 and per_procs.get(1):
            speedups = [many / one for many, one in zip(per_procs[procs], per_procs[1], strict=True)]
            figures.add(f"relay.postgres.scaling.speedup_{procs}", speedups, unit="ratio")
    figures.set("relay.postgres.scaling.duplicates", sum(duplicates.values()))
    figures.set("relay.postgres.scaling.rows", rows)
