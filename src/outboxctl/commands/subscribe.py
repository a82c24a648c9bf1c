"""``outboxctl subscribe``: run the consumer (broker -> callback, idempotent inbox)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Annotated, Any

import typer

from outboxctl import bootstrap, errors, output, params
from outboxctl.commands import state


@errors.handled
def subscribe(
    ctx: typer.Context,
    callback: Annotated[
        str,
        typer.Argument(metavar="CALLBACK", help="Dotted path of the callback, e.g. myapp.callbacks.handle."),
    ],
    destination: Annotated[
        str,
        typer.Argument(
            metavar="DESTINATION", help="STOMP destination, e.g. /topic/orders.v1 or /queue/jobs."
        ),
    ],
    queue_name: Annotated[
        str | None,
        typer.Argument(
            metavar="QUEUE",
            help="Queue to consume \\[default: derived from the destination].",
            show_default=False,
        ),
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option(
            "--batch-size",
            min=1,
            max=1000,
            help="Messages whose callbacks share one transaction, acked after its commit "
            "\\[default: DEFAULT_CONSUMER_BATCH_SIZE, 1].",
            show_default=False,
        ),
    ] = None,
    metrics_port: params.MetricsPortOpt = None,
    metrics_addr: params.MetricsAddrOpt = "127.0.0.1",
    health_file: params.HealthFileOpt = None,
    as_json: params.JsonOpt = False,
) -> None:
    """Consume DESTINATION and call CALLBACK with a Payload for each message (save() or nack() it).

    Runs until SIGTERM/Ctrl-C: the current message finishes, then the consumer unsubscribes and
    disconnects; a second signal exits at once with 130. Reconnects by itself when the broker drops.

    [bold]Examples[/bold]

      outboxctl subscribe myapp.callbacks.on_order /topic/orders.v1 orders
      outboxctl --settings mysite.settings subscribe myapp.callbacks.on_job /queue/jobs
      outboxctl subscribe myapp.callbacks.on_job /queue/jobs --metrics-port 9109 --health-file /tmp/c.alive
      outboxctl subscribe myapp.callbacks.on_job /queue/jobs --batch-size 100
    """
    resolved = bootstrap.setup(state(ctx))
    from django_outbox_pattern.consuming import assembly
    from django_outbox_pattern.core import shutdown
    from django_outbox_pattern.ops import observability

    observer = observability.build_observer(
        metrics_port=metrics_port,
        metrics_addr=metrics_addr,
        health_file=str(health_file) if health_file else None,
        component="consumer",
    )
    settings = resolved.outbox
    if batch_size is not None:
        settings = dataclasses.replace(settings, DEFAULT_CONSUMER_BATCH_SIZE=batch_size)
    engine = assembly.build_consumer(callback, destination, queue_name, settings=settings, observer=observer)
    output.note(
        f"Consuming {destination}" + (f" (queue {queue_name})" if queue_name else "") + "; Ctrl-C stops."
    )
    with shutdown.on_stop(engine.stop):
        engine.run()
    stats = _as_dict(getattr(engine, "stats", None))
    if as_json:
        output.print_json(stats)
    else:
        output.note("Consumer stopped: " + ", ".join(f"{k} {v}" for k, v in stats.items()))


def _as_dict(stats: Any) -> dict[str, Any]:
    if dataclasses.is_dataclass(stats) and not isinstance(stats, type):
        return dataclasses.asdict(stats)
    if isinstance(stats, Mapping):
        return dict(stats)
    return {} if stats is None else {"stats": str(stats)}
