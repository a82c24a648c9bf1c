"""``outboxctl check``: configuration, database and migrations, broker CONNECT/heart-beat/receipt, TLS."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from outboxctl import bootstrap, errors, output, params
from outboxctl.commands import _probes, config, state
from outboxctl.exit_codes import ExitCode

MARKS = {"pass": "[green]pass[/]", "fail": "[bold red]FAIL[/]", "skip": "[dim]skip[/]"}


@errors.handled
def check(
    ctx: typer.Context,
    as_json: params.JsonOpt = False,
    show_config: Annotated[
        bool, typer.Option("--show-config", help="Also print the resolved configuration.")
    ] = False,
    skip_database: Annotated[
        bool, typer.Option("--skip-database", help="Do not check the database.")
    ] = False,
    skip_broker: Annotated[bool, typer.Option("--skip-broker", help="Do not check the broker.")] = False,
    destinations: Annotated[
        bool,
        typer.Option(
            "--destinations",
            help="One line per destination with pending or recent rows: does RabbitMQ route it to a "
            "queue? Needs DEFAULT_RABBITMQ_MANAGEMENT_URL (else: cannot tell).",
        ),
    ] = False,
    timeout: Annotated[
        float | None,
        typer.Option(
            "--timeout",
            min=0.1,
            show_default=False,
            help="Seconds to wait for CONNECTED and for the RECEIPT (overrides the settings).",
        ),
    ] = None,
    liveness: Annotated[
        bool,
        typer.Option(
            "--liveness",
            help="Only check the heartbeat file (--health-file) of a running relay or consumer: exit 0 "
            "fresh, 5 stale or missing, or a consumer holding a message unsettled longer than "
            "DEFAULT_CONSUMER_STALL_THRESHOLD. Needs no settings.",
        ),
    ] = False,
    readiness: Annotated[
        bool,
        typer.Option(
            "--readiness",
            help="Only check that the database answers and the broker accepts a STOMP CONNECT: exit 0 or 5.",
        ),
    ] = False,
    queue: Annotated[
        list[str] | None,
        typer.Option(
            "--queue",
            metavar="NAME",
            show_default=False,
            help="Also report the type (classic, quorum) of this queue, without declaring it; repeatable.",
        ),
    ] = None,
    health_file: params.HealthFileOpt = None,
    max_age: Annotated[
        float,
        typer.Option(
            "--max-age", min=0.1, metavar="SECONDS", help="With --liveness: oldest heartbeat accepted."
        ),
    ] = 60.0,
) -> None:
    """Check the configuration, the database and its migrations, and the broker.

    The broker checks: STOMP CONNECT (timed), heart-beat negotiation, a SEND with receipt to a throwaway
    topic and its delivery back, and TLS when configured. The routing line asks RabbitMQ's management API
    whether every destination with pending or recent rows reaches a queue (skipped when
    DEFAULT_RABBITMQ_MANAGEMENT_URL is not set); --destinations shows one line per destination. With several
    DEFAULT_STOMP_HOST_AND_PORTS (a cluster): each node on its own (reachable, one cluster with the
    others, the one this process would try first). With --queue: the queue's type.

    Exit code: 0 all passed; 4 the database is unreachable; else 3 the broker is unreachable; else 5 any
    other check failed; 2 the configuration cannot be loaded at all. Usable as a readiness probe.

    [bold]Examples[/bold]

      outboxctl check
      outboxctl check --json --timeout 3
      outboxctl check --skip-database --show-config
      outboxctl check --destinations
      outboxctl check --skip-database --queue orders --queue DLQ.orders
      outboxctl check --liveness --health-file /tmp/relay.alive --max-age 30
      outboxctl check --readiness --timeout 3
    """
    flags = {
        "DEFAULT_CONNECT_TIMEOUT": (timeout, "--timeout"),
        "DEFAULT_RECEIPT_TIMEOUT": (timeout, "--timeout"),
    }
    if liveness or readiness:  # the quick probes: exit 0 or 5
        _probes.run(
            state(ctx),
            liveness=liveness,
            readiness=readiness,
            health_file=health_file,
            max_age=max_age,
            flags=flags,
            as_json=as_json,
        )
    resolved = bootstrap.setup(state(ctx), flags, database=not skip_database)
    from django_outbox_pattern.ops import diagnostics

    results = diagnostics.run_checks(resolved.outbox, database=not skip_database, broker=not skip_broker)
    results.extend(_routing(resolved.outbox, results, each=destinations, database=not skip_database))
    if not skip_broker:
        from django_outbox_pattern.ops import cluster

        results += cluster.check_nodes(resolved.outbox)
        results += [cluster.queue_type(resolved.outbox, name) for name in queue or ()]
    code = exit_code(results)
    if as_json:
        report: dict[str, Any] = {
            "ok": code is ExitCode.OK,
            "exit_code": int(code),
            "checks": [r.as_dict() for r in results],
        }
        if show_config:
            report["config"] = config.describe(resolved)
        output.print_json(report)
    else:
        if show_config:
            config.render(config.describe(resolved))
        _render(results)
    raise typer.Exit(int(code))


def _routing(settings: Any, results: list[Any], *, each: bool, database: bool) -> list[Any]:
    from django_outbox_pattern.ops import probes, routes

    if not database:
        return []
    if any(r.unreachable == "database" for r in results):
        return [probes.CheckResult("routing", "skip", "needs the database")]
    try:
        return routes.check_results(settings, each=each)
    except Exception as exc:  # the outbox table may be missing (migrations): reported by that line
        return [probes.CheckResult("routing", "skip", f"cannot read the outbox: {exc}")]


def exit_code(results: list[Any]) -> ExitCode:
    """4 if the database is unreachable, else 3 if the broker is, else 5 if anything failed, else 0."""
    failed = [r for r in results if r.status == "fail"]
    if any(r.unreachable == "database" for r in failed):
        return ExitCode.DATABASE_UNAVAILABLE
    if any(r.unreachable == "broker" for r in failed):
        return ExitCode.BROKER_UNAVAILABLE
    return ExitCode.CHECK_FAILED if failed else ExitCode.OK


def _render(results: list[Any]) -> None:
    from rich.text import Text

    table = output.table(None, ("Check", "Result", "Time", "Detail"), [])
    for r in results:
        elapsed = f"{r.elapsed_ms:.1f} ms" if r.elapsed_ms is not None else ""
        table.add_row(r.name, Text.from_markup(MARKS[r.status]), elapsed, Text(output.redact(r.detail)))
    console = output.stdout()
    console.print(table)
    for r in results:
        if r.status == "fail" and r.hint:
            console.print(Text.assemble((f"{r.name}: ", "bold red"), output.redact(r.hint)))
    failed = sum(r.status == "fail" for r in results)
    console.print("All checks passed." if not failed else f"{failed} check(s) failed.")
