"""Commit-to-receive latency on PostgreSQL (scenario 3), with the NOTIFY wake-up on and off.

A real ``python -m django publish`` relay runs in the background. In a fresh worker with the same
settings (the write side sends the NOTIFY only when DEFAULT_RELAY_NOTIFY is on), a writer commits one
outbox row per transaction at a steady rate while a raw subscriber on the queue records when each
``dop-msg-id`` arrives; latency = arrival time - the time the writer's commit returned (one clock, one
process). Warm-up rows, written until the first one arrives, are left out.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from bench import broker
from bench.context import Context
from bench.procs import BenchError, Command, Worker
from bench.results import Figures
from bench.stats import percentile

WARMUP_TIMEOUT_S = 60.0

# --- in the worker -----------------------------------------------------------------------------------


def write_and_receive(
    queue: str, rate: float, seconds: float, body_bytes: int, poll_s: float
) -> dict[str, Any]:
    from django_outbox_pattern.broker.wire import Message
    from django_outbox_pattern.models import Published

    destination = f"/amq/queue/{queue}"
    arrived: dict[str, float] = {}
    lock = threading.Lock()

    def handler(message: Message) -> None:
        now = time.perf_counter()
        with lock:
            arrived.setdefault(message.headers.get("dop-msg-id", ""), now)

    transport = broker.connect()
    try:
        transport.set_message_handler(handler)
        transport.subscribe(destination, "bench-latency", {}, ack="auto")
        deadline = time.monotonic() + WARMUP_TIMEOUT_S
        while not arrived:  # the relay is up once a warm-up row came through
            if time.monotonic() > deadline:
                raise BenchError(f"the relay delivered nothing within {WARMUP_TIMEOUT_S:.0f}s")
            Published.objects.create(destination=destination, body={"warmup": True})
            time.sleep(0.2)
        committed: dict[str, float] = {}
        count = int(rate * seconds)
        started = time.perf_counter()
        for seq in range(count):
            pause = started + seq / rate - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            row = Published.objects.create(destination=destination, body=broker.make_body(seq, body_bytes))
            committed[str(row.id)] = time.perf_counter()
        achieved = count / (time.perf_counter() - started)
        deadline = time.monotonic() + poll_s * 3 + 10
        while time.monotonic() < deadline:
            with lock:
                if committed.keys() <= arrived.keys():
                    break
            time.sleep(0.05)
        transport.unsubscribe("bench-latency")
    finally:
        transport.disconnect()
    with lock:
        latencies = [(arrived[key] - t) * 1000 for key, t in committed.items() if key in arrived]
    return {
        "count": count,
        "received": len(latencies),
        "missing": count - len(latencies),
        "achieved_rate": achieved,
        "p50_ms": percentile(latencies, 50),
        "p95_ms": percentile(latencies, 95),
        "p99_ms": percentile(latencies, 99),
        "max_ms": max(latencies, default=float("nan")),
    }


# --- in the orchestrator -----------------------------------------------------------------------------


def measure(ctx: Context, *, notify: bool) -> dict[str, Any]:
    params = ctx.params
    name = broker.unique_queue("latency")
    transport = broker.connect()
    try:
        broker.declare_queue(transport, name)
    finally:
        transport.disconnect()
    ctx.worker("postgres").call("bench.db:truncate")
    # The writer needs the same setting as the relay: with DEFAULT_RELAY_NOTIFY on, the write side
    # sends one NOTIFY per committed transaction.
    env = ctx.env(BENCH_NOTIFY="1" if notify else "0", BENCH_POLL=str(params.poll_s))
    relay = Command("postgres", ["-m", "django", "publish"], name=f"latency-relay-{int(notify)}", env=env)
    try:
        with Worker("postgres", name=f"latency-writer-{int(notify)}", env=env) as writer:
            result: dict[str, Any] = writer.call(
                "bench.latency:write_and_receive",
                queue=name,
                rate=params.latency_rate,
                seconds=params.latency_seconds,
                body_bytes=params.body_bytes,
                poll_s=params.poll_s,
                timeout=params.latency_seconds + WARMUP_TIMEOUT_S + 120,
            )
    finally:
        result_code = relay.stop()
    result["relay_exit_code"] = result_code
    if result["missing"]:
        raise BenchError(f"latency run lost {result['missing']} of {result['count']} messages")
    return result


def run(ctx: Context, figures: Figures) -> None:
    runs: dict[str, list[dict[str, Any]]] = {"notify": [], "poll": []}
    for repeat in range(ctx.params.repeat):
        for label, notify in (("notify", True), ("poll", False)):
            result = measure(ctx, notify=notify)
            runs[label].append(result)
            ctx.log(
                f"latency #{repeat + 1} {label}",
                p50_ms=result["p50_ms"],
                p95_ms=result["p95_ms"],
                p99_ms=result["p99_ms"],
                exit=result["relay_exit_code"],
            )
    for label, results in runs.items():
        for stat in ("p50_ms", "p95_ms", "p99_ms", "max_ms"):
            figures.add(f"latency.{label}.{stat}", [r[stat] for r in results], unit="ms")
        figures.set(f"latency.{label}.relay_exit_codes", [r["relay_exit_code"] for r in results])
    figures.set("latency.offered_rate", ctx.params.latency_rate)
    figures.set("latency.seconds_per_run", ctx.params.latency_seconds)
    figures.set("latency.poll_interval_s", ctx.params.poll_s)
