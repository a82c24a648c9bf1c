"""Scenario ``cluster``: relays and consumers spread over a three-node RabbitMQ cluster, on PostgreSQL.

Needs a cluster: ``bash scripts/services.sh cluster up`` writes ``OUTBOX_CLUSTER_STOMP`` to
var/services.env (scripts/bench.sh loads it). Not in the default scenario list: ``--only cluster``.

One measurement with R relays and C consumers: C consumer workers subscribe (``build_consumer`` with
``save_inbox``, quorum queue, the bench's prefetch), each to one node (worker i to node i mod 3: spread on
purpose, not by chance); N outbox rows for ``/topic/<queue>`` are bulk-loaded; R relay workers (worker i to
node i+1 mod 3) drain them together. The time is from the first relay's start until the last row is in the
inbox. Then the outbox must be all Succeeded and the inbox must hold N rows: one per message, whatever
was redelivered (``duplicates_discarded`` counts what the inbox turned away).
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
import uuid
from typing import Any

from bench.context import Context
from bench.procs import BenchError, Worker
from bench.results import Figures
from bench.stats import rate

SHAPES = ((1, 1), (4, 4))  # (relays, consumers)
_state: dict[str, Any] = {}

# --- in the worker processes --------------------------------------------------------------------------


def start_consumer(destination: str, queue: str) -> dict[str, Any]:
    """Run a consumer in a thread of this worker; return once it is subscribed."""
    from bench.consumer import save_inbox
    from django_outbox_pattern.consuming.consumer import build_consumer

    consumer = build_consumer(save_inbox, destination, queue)
    thread = threading.Thread(target=consumer.run, name="bench-cluster-consumer", daemon=True)
    thread.start()
    if not consumer.wait_ready(60):
        raise RuntimeError(f"the consumer of {queue} did not subscribe within 60 s")
    _state["consumer"] = (consumer, thread)
    return {"pid": os.getpid()}


def stop_consumer() -> dict[str, Any]:
    consumer, thread = _state.pop("consumer")
    consumer.stop()
    thread.join(60)
    return dataclasses.asdict(consumer.stats)


def received() -> int:
    from django_outbox_pattern.models import Received

    return int(Received.objects.count())


# --- in the orchestrator ------------------------------------------------------------------------------


def cluster_hosts() -> list[str]:
    hosts = [h for h in os.environ.get("OUTBOX_CLUSTER_STOMP", "").split(",") if h]
    if len(hosts) < 2:
        raise BenchError(
            "the cluster scenario needs a RabbitMQ cluster: run `bash scripts/services.sh cluster up` "
            "(it writes OUTBOX_CLUSTER_STOMP to var/services.env)"
        )
    return hosts


def measure(ctx: Context, *, relays: int, consumers: int, rows: int) -> dict[str, Any]:
    hosts = cluster_hosts()
    queue = f"bench-cluster-{uuid.uuid4().hex[:10]}"
    destination = f"/topic/{queue}"
    db = ctx.worker("postgres")

    def worker(role: str, index: int) -> Worker:
        env = ctx.env(
            BENCH_STOMP_HOSTS=hosts[(index + (role == "relay")) % len(hosts)],
            BENCH_QUEUE_TYPE="quorum",
            BENCH_QUEUE_EXPIRES_MS="",  # the cluster goes with `services.sh cluster down`
        )
        return Worker("postgres", name=f"cluster-{role}-{index}", env=env)

    started: list[Worker] = []
    try:
        subscribers = [worker("consumer", i) for i in range(consumers)]
        started += subscribers
        for w in subscribers:  # one at a time: the first declares the queue and its binding
            w.call("bench.cluster:start_consumer", destination=destination, queue=queue, timeout=120)
        db.call("bench.db:load", destination=destination, rows=rows, body_bytes=ctx.params.body_bytes)
        senders = [worker("relay", i) for i in range(relays)]
        started += senders
        for w in senders:
            w.send("bench.relay:prepare", mode="engine")
        for w in senders:
            w.receive(120)
        for w in senders:
            w.send("bench.relay:drain", mode="engine")
        first = time.time()
        deadline = time.monotonic() + 600
        while db.call("bench.cluster:received") < rows:
            if time.monotonic() > deadline:
                raise BenchError(f"cluster: {db.call('bench.cluster:received')} of {rows} consumed in 600 s")
            time.sleep(0.1)
        last = time.time()
        drains = [w.receive(600) for w in senders]
        stats = [w.call("bench.cluster:stop_consumer", timeout=120) for w in subscribers]
    finally:
        for w in started:
            w.close()
    first = min([first, *(d["start"] for d in drains)])
    status = db.call("bench.db:status_counts")
    inbox = db.call("bench.cluster:received")
    if status.get("succeeded") != rows or inbox != rows:
        raise BenchError(f"cluster: outbox {status}, inbox {inbox} rows, expected {rows}")
    return {
        "msgs_per_s": rate(rows, last - first),
        "seconds": last - first,
        "duplicates_discarded": sum(s["duplicates"] for s in stats),
        "nodes": len({*hosts[: max(relays, consumers)]}),
    }


def run(ctx: Context, figures: Figures) -> None:
    rows = ctx.params.cluster_rows
    runs: dict[tuple[int, int], list[float]] = {shape: [] for shape in SHAPES}
    discarded = dict.fromkeys(SHAPES, 0)
    for repeat in range(ctx.params.repeat):
        for relays, consumers in SHAPES:
            run = measure(ctx, relays=relays, consumers=consumers, rows=rows)
            runs[(relays, consumers)].append(run["msgs_per_s"])
            discarded[(relays, consumers)] += run["duplicates_discarded"]
            ctx.log(
                f"cluster #{repeat + 1} relays={relays} consumers={consumers}",
                msgs_per_s=run["msgs_per_s"],
                nodes=run["nodes"],
                duplicates_discarded=run["duplicates_discarded"],
            )
    for (relays, consumers), values in runs.items():
        key = f"cluster.postgres.relays_{relays}_consumers_{consumers}"
        figures.add(f"{key}.msgs_per_s", values, unit="msg/s")
        figures.set(f"{key}.duplicates_discarded", discarded[(relays, consumers)])
    one, four = runs[SHAPES[0]], runs[SHAPES[1]]
    figures.add("cluster.postgres.speedup_4x4", [b / a for a, b in zip(one, four, strict=True)], unit="ratio")
    figures.set("cluster.postgres.duplicates", 0)  # the inbox held exactly `rows` rows in every run
    figures.set("cluster.postgres.rows", rows)
