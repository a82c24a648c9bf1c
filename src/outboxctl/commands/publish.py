"""``outboxctl publish``: run the relay (outbox -> broker), forever or until the outbox is drained."""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Iterator
from typing import Annotated, Any

import typer
from rich.live import Live
from rich.text import Text

from outboxctl import bootstrap, errors, output, params
from outboxctl.commands import state
from outboxctl.exit_codes import ExitCode


@dataclasses.dataclass
class Totals:
    """Sums of the relay's ``BatchResult``s."""

    batches: int = 0
    published: int = 0
    failed: int = 0
    retried: int = 0
    dead_lettered: int = 0
    started: float = dataclasses.field(default_factory=time.monotonic)

    def add(self, result: Any) -> None:
        self.batches += 1
        for name in ("published", "failed", "retried", "dead_lettered"):
            setattr(self, name, getattr(self, name) + int(getattr(result, name, 0) or 0))

    def report(self) -> dict[str, Any]:
        elapsed = time.monotonic() - self.started
        data = {k: v for k, v in dataclasses.asdict(self).items() if k != "started"}
        return {
            **data,
            "elapsed_seconds": round(elapsed, 3),
            "rate_per_second": round(self.published / elapsed, 1) if elapsed > 0 else 0.0,
        }

    def line(self) -> str:
        r = self.report()
        return (
            f"published {r['published']}  failed {r['failed']}  retried {r['retried']}  dead-lettered "
            f"{r['dead_lettered']}  ({r['rate_per_second']}/s, batches {r['batches']})"
        )


@errors.handled
def publish(
    ctx: typer.Context,
    once: Annotated[
        bool,
        typer.Option(
            "--once", help="Send one batch, wait for its receipts, then exit (also when nothing is due)."
        ),
    ] = False,
    until_empty: Annotated[
        bool, typer.Option("--until-empty", help="Relay until nothing is due, then exit.")
    ] = False,
    chunk_size: Annotated[
        int | None,
        typer.Option(
            "--chunk-size",
            min=1,
            max=10000,
            show_default=False,
            help="Rows per batch \\[default: DEFAULT_PUBLISHED_CHUNK_SIZE].",
        ),
    ] = None,
    poll_interval: Annotated[
        float | None,
        typer.Option(
            "--poll-interval",
            min=0.01,
            show_default=False,
            help="Seconds between polls when idle \\[default: DEFAULT_PRODUCER_WAITING_TIME].",
        ),
    ] = None,
    notify: Annotated[
        bool | None,
        typer.Option(
            "--notify/--no-notify",
            show_default=False,
            help="Wake up on PostgreSQL NOTIFY as well as polling \\[default: DEFAULT_RELAY_NOTIFY].",
        ),
    ] = None,
    metrics_port: params.MetricsPortOpt = None,
    metrics_addr: params.MetricsAddrOpt = "127.0.0.1",
    health_file: params.HealthFileOpt = None,
    as_json: params.JsonOpt = False,
) -> None:
    """Relay the outbox to the broker: each row is marked published only after the broker's RECEIPT.

    Runs until SIGTERM/Ctrl-C (the current batch finishes; a second signal exits at once with 130),
    or with --once / --until-empty until the work is done: these check the database and the broker first and
    fail at once (exit 4/3) when one is down, where the long-running relay waits for it. A live status shows
    on a terminal.

    [bold]Examples[/bold]

      outboxctl publish
      outboxctl publish --until-empty --chunk-size 500 --json
      outboxctl publish --notify --poll-interval 5
      outboxctl publish --metrics-port 9108 --health-file /tmp/relay.alive
    """
    if once and until_empty:
        errors.fail("--once and --until-empty exclude each other.", "Pick one.", ExitCode.USAGE)
    flags = {
        "DEFAULT_PUBLISHED_CHUNK_SIZE": (chunk_size, "--chunk-size"),
        "DEFAULT_PRODUCER_WAITING_TIME": (poll_interval, "--poll-interval"),
        "DEFAULT_RELAY_NOTIFY": (notify, "--notify/--no-notify"),
    }
    resolved = bootstrap.setup(state(ctx), flags)
    if once or until_empty:
        from django_outbox_pattern.ops import diagnostics

        diagnostics.preflight(resolved.outbox)  # a one-shot run fails fast (exit 3/4) instead of waiting
    from django_outbox_pattern.core import shutdown
    from django_outbox_pattern.ops import observability
    from django_outbox_pattern.relaying import assembly

    observer = observability.build_observer(
        metrics_port=metrics_port,
        metrics_addr=metrics_addr,
        health_file=str(health_file) if health_file else None,
        component="relay",
    )
    engine = assembly.build_relay(resolved.outbox, observer=observer)  # the flags are in resolved.outbox
    totals = Totals()
    with _status(output.interactive()) as show, shutdown.on_stop(engine.stop):
        engine.run(until_empty=until_empty, once=once, on_batch=lambda result: show(totals, result))
    if as_json:
        output.print_json(totals.report())
    elif once or until_empty:
        output.stdout().print(("Relayed: " if once else "Outbox drained: ") + totals.line())
    else:
        output.note("Relay stopped: " + totals.line())


@contextlib.contextmanager
def _status(enabled: bool) -> Iterator[Callable[[Totals, Any], None]]:
    """A one-line live status on stderr (terminals only); yields ``show(totals, batch_result)``."""
    if not enabled:
        yield lambda totals, result: totals.add(result)
        return
    with Live(
        Text("relay starting..."), console=output.stderr(), refresh_per_second=4, transient=False
    ) as live:

        def show(totals: Totals, result: Any) -> None:
            totals.add(result)
            live.update(Text("relay: " + totals.line()))

        yield show
