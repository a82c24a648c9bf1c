"""The observers a front-end asked for: ``--metrics-port``, ``--metrics-addr`` and ``--health-file``.

Used by the ``publish``/``subscribe`` management commands and by outboxctl; the engine only knows the
``Observer`` protocol (core/observer.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django_outbox_pattern.core import observer as observing
from django_outbox_pattern.ops import health

__all__ = ["add_arguments", "build_observer", "observer_from_options"]


def build_observer(
    *,
    metrics_port: int | None = None,
    metrics_addr: str = "127.0.0.1",
    health_file: str | None = None,
    component: str = "",
) -> observing.Observer:
    """The observers a command asked for (``--metrics-port``, ``--health-file``), shielded from errors.

    With a metrics port this starts the Prometheus HTTP server (raises ConfigurationError when
    prometheus-client is not installed). Without options it returns a ``NullObserver``.
    """
    observers: list[observing.Observer] = []
    if metrics_port is not None:
        from django_outbox_pattern.ops import metrics

        outbox_metrics = metrics.default_metrics()
        metrics.start_metrics_server(metrics_port, addr=metrics_addr, registry=outbox_metrics.registry)
        observers.append(outbox_metrics)
    if health_file:
        observers.append(health.HeartbeatObserver(health_file, component=component))
    if not observers:
        return observing.NullObserver()
    return observing.MultiObserver(*observers)


def add_arguments(parser: Any) -> None:
    """``--metrics-port``, ``--metrics-addr`` and ``--health-file`` for an argparse (manage.py) command."""
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="serve Prometheus metrics on this port (needs [metrics])",
    )
    parser.add_argument(
        "--metrics-addr", default="127.0.0.1", help="address of the metrics server (default: 127.0.0.1)"
    )
    parser.add_argument(
        "--health-file", default=None, help="write a liveness heartbeat to this file on every pass"
    )


def observer_from_options(options: Mapping[str, Any], *, component: str) -> observing.Observer:
    """``build_observer()`` from the options ``add_arguments`` declared."""
    return build_observer(
        metrics_port=options.get("metrics_port"),
        metrics_addr=options.get("metrics_addr") or "127.0.0.1",
        health_file=options.get("health_file"),
        component=component,
    )
