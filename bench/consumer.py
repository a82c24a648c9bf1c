"""Consumer throughput (scenario 4) next to its two limits.

Consumer: the real engine (``build_consumer``) with ``save_inbox`` as callback, which saves the inbox row
inside ``transaction.atomic()``. The queue is declared by the consumer itself (a first run that processes
warm-up messages), then filled with N messages, then drained by a second consumer: N-1 messages divided
by the time from the first to the N-th callback (connecting and subscribing are left out).
Raw limit: receive + ack the same kind of messages with client-individual acks and the same prefetch,
no database. Db-only limit: ``save_inbox`` on real ``Payload`` objects (real database inbox, no-op ack)
in a plain loop, no broker. Batched: the same consumer with DEFAULT_CONSUMER_BATCH_SIZE = the prefetch (one
transaction per batch, acks after its commit), against the raw receive+ack client.
"""

from __future__ import annotations

import subprocess
import threading
import time
from typing import Any

from bench import broker, e2e
from bench.context import Context
from bench.procs import ROOT, BenchError, _log_file, bench_env
from bench.results import Figures
from bench.stats import rate

WARMUP_HEADER = "bench-kind"
START_TIMEOUT_S = 60.0
REF_POLL_S = 0.05
REF_TIMEOUT_S = 900.0

# --- in the worker -----------------------------------------------------------------------------------


class _Progress:
    def __init__(self, target: int) -> None:
        self.target = target
        self.count = 0
        self.warm = threading.Event()
        self.done = threading.Event()
        self.first_at = 0.0
        self.done_at = 0.0

    def hit(self, headers: Any) -> None:
        if headers.get(WARMUP_HEADER) == "warmup":
            self.warm.set()
            return
        self.count += 1
        if self.count == 1:
            self.first_at = time.perf_counter()
        if self.count >= self.target:
            self.done_at = time.perf_counter()
            self.done.set()


_progress = _Progress(0)


def save_inbox(payload: Any) -> None:
    """The benchmark callback: record the message in the inbox, in a transaction."""
    from django.db import transaction

    with transaction.atomic():
        payload.save()
    _progress.hit(payload.headers)


class FakePayload:
    """Stand-in for ``Payload`` if the real one cannot be built without a broker: insert, ack on commit."""

    def __init__(self, headers: dict[str, str], body: Any) -> None:
        self.headers = headers
        self.body = body
        self.acked = False

    def save(self) -> None:
        from django.db import transaction

        from django_outbox_pattern.models import Received

        with transaction.atomic():
            Received.objects.create(msg_id=self.headers["dop-msg-id"], headers=self.headers, body=self.body)
        transaction.on_commit(self._ack)

    def _ack(self) -> None:
        self.acked = True


def _payloads(messages: list[tuple[str, dict[str, str]]]) -> tuple[list[Any], str]:
    """The real ``Payload`` with the real database inbox and a no-op ack, else ``FakePayload``."""
    import json

    try:
        from django_outbox_pattern.consuming.inbox import DatabaseInbox
        from django_outbox_pattern.payloads import Payload

        store = DatabaseInbox()
        return [
            Payload(json.loads(body), headers, settle=lambda ack: None, store=store)
            for body, headers in messages
        ], "real"
    except (ImportError, TypeError):
        return [FakePayload(headers, json.loads(body)) for body, headers in messages], "fake"


def _run_consumer(queue: str, batch_size: int = 1) -> tuple[Any, threading.Thread]:
    from django_outbox_pattern.consuming.assembly import build_consumer, consumer_settings

    settings = consumer_settings(batch_size=batch_size)
    consumer = build_consumer(save_inbox, f"/queue/{queue}", queue, settings=settings)
    thread = threading.Thread(target=consumer.run, name="bench-consumer", daemon=True)
    thread.start()
    return consumer, thread


def _stop(consumer: Any, thread: threading.Thread) -> None:
    consumer.stop()
    thread.join(60)
    if thread.is_alive():
        raise BenchError("the consumer did not stop within 60s")


def fill_queue(queue: str, count: int, body_bytes: int) -> None:
    """Declare ``queue`` as the consumer does (3.2.1 declares it alike), then put ``count`` messages in it;
    the inbox is left empty."""
    global _progress
    from bench import db

    db.truncate()
    _progress = _Progress(count)
    consumer, thread = _run_consumer(queue)  # declares the queue with the consumer's own arguments
    transport = broker.connect()
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _progress.warm.wait(0.2):
            if time.monotonic() > deadline:
                raise BenchError(f"the consumer processed no warm-up message within {START_TIMEOUT_S:.0f}s")
            transport.send(f"/amq/queue/{queue}", '{"warmup": true}', {WARMUP_HEADER: "warmup"})
        _stop(consumer, thread)
        db.truncate()  # the warm-up message's row
        messages = broker.make_messages(f"/amq/queue/{queue}", count, body_bytes)
        broker.send_pipelined(transport, f"/amq/queue/{queue}", messages)
    finally:
        transport.disconnect()


def inbox_count() -> int:
    from django_outbox_pattern.models import Received

    return int(Received.objects.count())


def consume(queue: str, count: int, body_bytes: int, batch_size: int = 1) -> dict[str, Any]:
    fill_queue(queue, count, body_bytes)
    consumer, thread = _run_consumer(queue, batch_size)
    finished = _progress.done.wait(300)
    stats = getattr(consumer, "stats", None)
    _stop(consumer, thread)
    if not finished:
        raise BenchError(f"the consumer processed {_progress.count} of {count} messages in 300s")
    seconds = _progress.done_at - _progress.first_at  # first to last callback: start-up excluded
    return {"seconds": seconds, "msgs_per_s": rate(count - 1, seconds), "stats": _plain(stats)}


def db_only(count: int, body_bytes: int) -> dict[str, Any]:
    """The callback on ``count`` payloads in a plain loop: the database cost alone, no broker."""
    from bench import db

    global _progress
    db.truncate()
    _progress = _Progress(count)
    payloads, kind = _payloads(broker.make_messages("/queue/x", count, body_bytes))
    started = time.perf_counter()
    for payload in payloads:
        save_inbox(payload)
    seconds = time.perf_counter() - started
    if _progress.count != count or not all(p.acked for p in payloads):
        raise BenchError("db-only loop: not every payload was saved and acked after its commit")
    return {"seconds": seconds, "msgs_per_s": rate(count, seconds), "payload": kind}


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (int, float, str, bool)):
        return value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if hasattr(value, "__dataclass_fields__"):
        import dataclasses

        return _plain(dataclasses.asdict(value))
    return repr(value)


# --- in the orchestrator -----------------------------------------------------------------------------


def measure_raw(ctx: Context, count: int) -> float:
    name = broker.unique_queue("rawc")
    transport = broker.connect()
    try:
        destination = broker.declare_queue(transport, name)
        broker.send_pipelined(
            transport, destination, broker.make_messages(destination, count, ctx.params.body_bytes)
        )
    finally:
        transport.disconnect()
    return rate(count - 1, broker.receive_and_ack(name, count=count, prefetch=ctx.params.prefetch))


def measure_reference(ctx: Context, python: str, count: int) -> float:
    """3.2.1's ``subscribe`` in its own process (``python`` has 3.2.1 installed) with
    ``bench.refcallback.save_inbox`` over ``count`` waiting messages on PostgreSQL: messages per second
    from the first to the last inbox row, as the inbox shows them (polled every ``REF_POLL_S``)."""
    queue = broker.unique_queue("consr")
    worker = ctx.worker("postgres")
    worker.call("bench.consumer:fill_queue", queue=queue, count=count, body_bytes=ctx.params.body_bytes)
    env = bench_env("postgres", {"PYTHONPATH": str(ROOT), **ctx.env()})  # 3.2.1's own package, not ours
    args = [python, "-m", "django", "subscribe", "bench.refcallback.save_inbox", f"/queue/{queue}", queue]
    log = _log_file("consumer-ref")
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=log)
    try:
        deadline = time.perf_counter() + REF_TIMEOUT_S
        first_at, first_rows = 0.0, 0
        while True:
            rows = worker.call("bench.consumer:inbox_count")
            now = time.perf_counter()
            if rows and not first_at:
                first_at, first_rows = now, rows
            if rows >= count:
                break
            if proc.poll() is not None:
                raise BenchError(
                    f"3.2.1's subscribe exited {proc.returncode} (see var/bench/consumer-ref.log)"
                )
            if now > deadline:
                raise BenchError(
                    f"3.2.1's subscribe saved {rows} of {count} messages in {REF_TIMEOUT_S:.0f}s"
                )
            time.sleep(REF_POLL_S)  # polling another process's progress: nothing to wait on
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
    return rate(count - first_rows, now - first_at)


def run(ctx: Context, figures: Figures) -> None:
    count, body = ctx.params.consumer_msgs, ctx.params.body_bytes
    raw_runs: list[float] = []
    per_db: dict[str, dict[str, list[float]]] = {
        db: {"msgs": [], "db_only": [], "limit": [], "ratio": [], "batched": [], "batched_ratio": []}
        for db in ctx.dbs
    }
    reference = e2e.reference_python() if "postgres" in ctx.dbs else None
    ref_runs: list[float] = []
    for repeat in range(ctx.params.repeat):
        raw = measure_raw(ctx, count)
        raw_runs.append(raw)
        ctx.log(f"consumer #{repeat + 1} raw receive+ack", msgs_per_s=raw)
        if reference:
            ref_runs.append(measure_reference(ctx, reference, count))
            ctx.log(f"consumer #{repeat + 1} 3.2.1 postgres", msgs_per_s=ref_runs[-1])
        for db in ctx.dbs:
            worker = ctx.worker(db)
            only = worker.call("bench.consumer:db_only", count=count, body_bytes=body)["msgs_per_s"]
            spy = ctx.profile(worker, f"consumer-{db}")
            try:
                real = worker.call(
                    "bench.consumer:consume",
                    queue=broker.unique_queue(f"cons-{db}"),
                    count=count,
                    body_bytes=body,
                )["msgs_per_s"]
            finally:
                if spy is not None:
                    spy.stop()
            batched = worker.call(
                "bench.consumer:consume",
                queue=broker.unique_queue(f"consb-{db}"),
                count=count,
                body_bytes=body,
                batch_size=ctx.params.prefetch,  # as many callbacks per transaction as the prefetch allows
            )["msgs_per_s"]
            ratio = real / min(raw, only)
            for key, value in (
                ("msgs", real),
                ("db_only", only),
                ("limit", min(raw, only)),
                ("ratio", ratio),
                ("batched", batched),
                ("batched_ratio", batched / raw),
            ):
                per_db[db][key].append(value)
            ctx.log(
                f"consumer #{repeat + 1} {db}",
                msgs_per_s=real,
                db_only=only,
                ratio_to_limit=ratio,
                batched=batched,
                batched_ratio_to_raw=batched / raw,
            )
    figures.add("consumer.raw_msgs_per_s", raw_runs, unit="msg/s")
    for db in ctx.dbs:
        figures.add(f"consumer.{db}.msgs_per_s", per_db[db]["msgs"], unit="msg/s")
        figures.add(f"consumer.{db}.db_only_msgs_per_s", per_db[db]["db_only"], unit="msg/s")
        figures.add(f"consumer.{db}.limit_msgs_per_s", per_db[db]["limit"], unit="msg/s")
        figures.add(f"consumer.{db}.ratio_to_limit", per_db[db]["ratio"], unit="ratio")
        figures.add(f"consumer.{db}.batched_msgs_per_s", per_db[db]["batched"], unit="msg/s")
        figures.add(f"consumer.{db}.batched_ratio_to_raw", per_db[db]["batched_ratio"], unit="ratio")
    if ref_runs:
        ours = per_db["postgres"]
        figures.add("consumer.postgres.ref321_msgs_per_s", ref_runs, unit="msg/s")
        for key, runs in (("default_vs_ref321", ours["msgs"]), ("batched_vs_ref321", ours["batched"])):
            ratios = [o / r for o, r in zip(runs, ref_runs, strict=True)]
            figures.add(f"consumer.postgres.{key}", ratios, unit="ratio")
    elif "postgres" in ctx.dbs:
        figures.set(
            "consumer.postgres.ref321", "not measured: no Python with 3.2.1 (.venv-321, BENCH_REF_PYTHON)"
        )
    main_db = "postgres" if "postgres" in ctx.dbs else ctx.dbs[0]
    figures.add("consumer.db_only_msgs_per_s", per_db[main_db]["db_only"], unit="msg/s")
    figures.set("consumer.db_only_database", main_db)
    figures.set("consumer.prefetch", ctx.params.prefetch)
    figures.set("consumer.messages", count)
