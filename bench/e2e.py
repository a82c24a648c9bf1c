"""Relay end to end (scenario ``e2e``): whole processes timed from spawn to exit, as a user meets them.

Three contenders send the same number of ~200-byte persistent messages to a fresh queue, interleaved,
``repeat`` times each, on PostgreSQL with default settings:

- ``raw``: ``python -m bench.rawclient`` (plain stomp.py, no project code, no Django), which sends all
  messages with a receipt each and waits for the receipts; spawn to exit.
- ``ours``: ``python -m django publish --until-empty`` over N outbox rows loaded beforehand; spawn to
  exit, i.e. interpreter and Django start-up, connecting, and relaying everything.
- ``ref`` (3.2.1, when a Python with django-outbox-pattern 3.2.1 installed is at ``BENCH_REF_PYTHON`` or
  ``.venv-321/bin/python``): its ``publish`` command over the same rows; it never exits by itself, so the
  time runs from spawn until the outbox shows every row sent (polled every 50 ms), then it is stopped.

For ``ours`` the run also records what PostgreSQL wrote per message: WAL bytes, row rewrites (and how
many of them were HOT, i.e. without new index entries) and commits. After each run the queue must hold
every message once (counted by consuming it). The in-process figures of the ``relay`` scenario (relay
built and connected before the clock starts) come second to these.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from bench import broker
from bench.context import Context
from bench.procs import ROOT, BenchError, _log_file, bench_env
from bench.results import Figures
from bench.stats import rate

DB = "postgres"
POLL_S = 0.05


def reference_python() -> str | None:
    """The interpreter with django-outbox-pattern 3.2.1, if one is at hand."""
    candidates = [os.environ.get("BENCH_REF_PYTHON", ""), str(ROOT / ".venv-321" / "bin" / "python")]
    return next((c for c in candidates if c and Path(c).exists()), None)


def _fresh_queue(kind: str) -> tuple[str, str]:
    name = broker.unique_queue(kind)
    transport = broker.connect()
    try:
        return name, broker.declare_queue(transport, name, expires_ms=300_000)
    finally:
        transport.disconnect()


def _check_queue(name: str, rows: int, who: str) -> None:
    counted = broker.drain(name, expected=rows)
    if counted.unique != rows:
        raise BenchError(f"{who}: queue {name} holds {counted.unique} distinct messages, expected {rows}")


def _timed(args: list[str], *, env: dict[str, str], name: str, timeout: float = 900) -> float:
    """Seconds from spawn to a successful exit of ``args``."""
    log = _log_file(name)
    try:
        started = time.perf_counter()
        proc = subprocess.run(args, cwd=ROOT, env=env, stdout=log, stderr=log, timeout=timeout, check=False)
        seconds = time.perf_counter() - started
    finally:
        log.close()
    if proc.returncode != 0:
        raise BenchError(f"{name} exited {proc.returncode} (see var/bench/{name}.log)")
    return seconds


def run_raw(ctx: Context, rows: int) -> float:
    name, destination = _fresh_queue("e2e-raw")
    args = [sys.executable, "-m", "bench.rawclient", destination, str(rows), str(ctx.params.body_bytes)]
    seconds = _timed(args, env=bench_env(DB), name="e2e-raw")
    _check_queue(name, rows, "raw client")
    return rate(rows, seconds)


def run_ours(ctx: Context, rows: int) -> float:
    name, destination = _fresh_queue("e2e-ours")
    ctx.worker(DB).call("bench.db:load", destination=destination, rows=rows, body_bytes=ctx.params.body_bytes)
    before = ctx.worker(DB).call("bench.db:wal_snapshot")
    args = [sys.executable, "-m", "django", "publish", "--until-empty"]
    seconds = _timed(args, env=bench_env(DB), name="e2e-ours")
    ctx.per_message.append(ctx.worker(DB).call("bench.db:wal_per_message", before=before, messages=rows))
    status = ctx.worker(DB).call("bench.db:status_counts")
    if status.get("succeeded") != rows:
        raise BenchError(f"publish --until-empty left rows unsent: {status}")
    _check_queue(name, rows, "publish --until-empty")
    return rate(rows, seconds)


def run_reference(ctx: Context, rows: int, python: str) -> float:
    name, destination = _fresh_queue("e2e-ref")
    ctx.worker(DB).call("bench.db:load", destination=destination, rows=rows, body_bytes=ctx.params.body_bytes)
    env = bench_env(DB, {"PYTHONPATH": str(ROOT)})  # the reference's own package, not ours
    log = _log_file("e2e-ref")
    started = time.perf_counter()
    proc = subprocess.Popen([python, "-m", "django", "publish"], cwd=ROOT, env=env, stdout=log, stderr=log)
    try:
        deadline = started + 900
        while True:
            status = ctx.worker(DB).call("bench.db:status_counts")
            if status.get("succeeded") == rows:
                break
            if proc.poll() is not None:
                raise BenchError(f"3.2.1's publish exited {proc.returncode} (see var/bench/e2e-ref.log)")
            if time.perf_counter() > deadline:
                raise BenchError(f"3.2.1's publish did not send every row in 900 s: {status}")
            time.sleep(POLL_S)  # polling another process's progress: nothing to wait on
        seconds = time.perf_counter() - started
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
    _check_queue(name, rows, "3.2.1's publish")
    return rate(rows, seconds)


def run(ctx: Context, figures: Figures) -> None:
    rows = ctx.params.relay_rows
    reference = reference_python()
    raw: list[float] = []
    ours: list[float] = []
    ref: list[float] = []
    for repeat in range(ctx.params.repeat):
        raw.append(run_raw(ctx, rows))
        ours.append(run_ours(ctx, rows))
        values = {"raw": raw[-1], "ours": ours[-1], "ratio": ours[-1] / raw[-1]}
        if reference:
            ref.append(run_reference(ctx, rows, reference))
            values["ref_3_2_1"] = ref[-1]
        ctx.log(f"relay e2e #{repeat + 1}", **values)
    figures.set("relay_e2e.rows", rows)
    for key in ("wal_bytes", "row_updates", "hot_updates", "commits"):  # the database's work per message
        figures.add(f"relay_e2e.postgres.per_message.{key}", [m[key] for m in ctx.per_message], unit=key)
    figures.add("relay_e2e.raw_client_msgs_per_s", raw, unit="msg/s")
    figures.add("relay_e2e.postgres.msgs_per_s", ours, unit="msg/s")
    ratios = [o / r for o, r in zip(ours, raw, strict=True)]
    figures.add("relay_e2e.postgres.ratio_to_raw", ratios, unit="ratio")
    if ref:
        figures.add("relay_e2e.ref_3_2_1.msgs_per_s", ref, unit="msg/s")
        figures.add(
            "relay_e2e.postgres.ratio_to_3_2_1", [o / r for o, r in zip(ours, ref, strict=True)], unit="ratio"
        )
    else:
        figures.set("relay_e2e.ref_3_2_1", "not measured: no Python with 3.2.1 (.venv-321, BENCH_REF_PYTHON)")
