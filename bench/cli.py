"""``python -m bench``: run the scenarios, print the table, write the JSON.

python -m bench                      full run (< 15 min on 2 cores)
python -m bench --quick              reduced counts (< 2 min), relay and consumer on PostgreSQL only
python -m bench --only relay,write   some scenarios: e2e relay recovery scaling latency consumer write memory
                                     ordering
python -m bench --only cluster       4+4 and 1+1 processes on a RabbitMQ cluster (services.sh cluster up)
python -m bench --db postgres        some databases (relay and consumer scenarios)
python -m bench --repeat 5 --json out.json --profile var/bench/profiles
"""

from __future__ import annotations

import argparse
import dataclasses
import fcntl
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import IO

from bench import (
    chart,
    cluster,
    consumer,
    e2e,
    latency,
    machine,
    memory,
    ordering,
    params,
    recovery,
    relay,
    results,
    table,
    write,
)
from bench.context import Context
from bench.procs import LOG_DIR, ROOT, BenchError

DEFAULT_JSON = ROOT / "bench" / "results" / "latest.json"

RUNNERS: dict[str, Callable[[Context, results.Figures], None]] = {
    "e2e": e2e.run,
    "relay": relay.run_throughput,
    "recovery": recovery.run,
    "scaling": relay.run_scaling,
    "latency": latency.run,
    "consumer": consumer.run,
    "write": write.run,
    "memory": memory.run,
    "ordering": ordering.run,
    "cluster": cluster.run,
}
# e2e, recovery, scaling, latency, write, memory and ordering always run on PostgreSQL (issue 6); --db
# picks the databases of the relay and consumer scenarios.


def _csv(value: str, allowed: tuple[str, ...], what: str) -> tuple[str, ...]:
    items = tuple(v.strip() for v in value.split(",") if v.strip())
    unknown = [v for v in items if v not in allowed]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown {what} {', '.join(unknown)} (choose from {', '.join(allowed)})"
        )
    return items


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="reduced counts, finishes in under two minutes")
    parser.add_argument(
        "--json", type=Path, default=DEFAULT_JSON, help=f"where to write the figures ({DEFAULT_JSON})"
    )
    parser.add_argument(
        "--only",
        type=lambda v: _csv(v, params.SCENARIOS + params.OPTIONAL_SCENARIOS, "scenario"),
        default=params.SCENARIOS,
        help=f"comma-separated scenarios ({', '.join(params.SCENARIOS)}; "
        f"optional: {', '.join(params.OPTIONAL_SCENARIOS)})",
    )
    parser.add_argument(
        "--db",
        type=lambda v: _csv(v, params.DATABASES, "database"),
        default=None,
        help="databases of the relay and consumer scenarios (default: all three; --quick: postgres)",
    )
    parser.add_argument(
        "--repeat", type=int, default=None, help="repeats per scenario (default 3, at least 3 advised)"
    )
    parser.add_argument(
        "--prefetch", type=int, default=None, help="prefetch-count of the consumer scenario (100)"
    )
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="directory for cProfile output of relay and consumer runs (slows them down)",
    )
    args = parser.parse_args(argv)
    if args.repeat is not None and args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.db is None:
        args.db = params.QUICK_DATABASES if args.quick else params.DATABASES
    return args


def _lock() -> IO[str] | None:
    """One run at a time per database name: a second one would empty the tables under the first."""
    path = LOG_DIR / f"{os.environ.get('BENCH_DB_NAME', 'bench')}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "w")  # noqa: SIM115 - held until the process exits
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return None
    return handle


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    lock = _lock()
    if lock is None:
        print("another benchmark run uses these databases; wait for it or set BENCH_DB_NAME", file=sys.stderr)
        return 2
    bench_params = params.build(quick=args.quick, repeat=args.repeat, prefetch=args.prefetch)
    ctx = Context(
        bench_params, dbs=args.db, profile_dir=str(args.profile.resolve()) if args.profile else None
    )
    figures = results.Figures()
    scenario_seconds: dict[str, float] = {}
    started = time.monotonic()
    ctx.log(f"benchmark ({bench_params.mode}): {', '.join(args.only)} on {', '.join(args.db)}")
    load_start = [round(x, 2) for x in os.getloadavg()]
    if load_start[0] > (os.cpu_count() or 1) / 2:
        ctx.log(
            f"[yellow]load average {load_start[0]}: other processes are busy, figures will be noisy[/yellow]"
        )
    try:
        for name in params.SCENARIOS + params.OPTIONAL_SCENARIOS:
            if name not in args.only:
                continue
            scenario_started = time.monotonic()
            try:
                RUNNERS[name](ctx, figures)
            except (BenchError, OSError, RuntimeError) as exc:
                figures.errors[name] = str(exc) if isinstance(exc, BenchError) else traceback.format_exc()
                last_line = str(exc).strip().splitlines()[-1] if str(exc).strip() else repr(exc)
                ctx.log(f"[red]{name} failed[/red]: {last_line}")
            scenario_seconds[name] = round(time.monotonic() - scenario_started, 1)
    except KeyboardInterrupt:
        figures.errors["interrupted"] = "stopped by Ctrl-C; figures so far are kept"
    finally:
        ctx.close()
    if not ctx.rabbitmq:
        ctx.rabbitmq = _broker_server()
    info = {
        **machine.describe(rabbitmq=ctx.rabbitmq, databases=ctx.versions),
        "load_average_start": load_start,
    }
    run_params = {
        **dataclasses.asdict(bench_params),
        "scenarios": list(args.only),
        "databases": list(args.db),
        "seconds": round(time.monotonic() - started, 1),
        "scenario_seconds": scenario_seconds,
    }
    doc = results.document(figures, params=run_params, machine=info, mode=bench_params.mode)
    results.write(doc, args.json)
    chart_path = chart.write(figures, args.json.with_suffix(".svg"))
    table.render(figures, mode=bench_params.mode)
    ctx.console.print(f"figures written to {args.json} and {chart_path} in {run_params['seconds']}s")
    return 1 if figures.errors else 0


def _broker_server() -> str:
    from bench import broker

    try:
        transport = broker.connect()
    except Exception as exc:  # the machine section must not fail the run
        return f"unknown ({exc})"
    try:
        return transport.server
    finally:
        transport.disconnect()
