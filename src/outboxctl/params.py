"""Option types and the options several commands share (declared once, as ``Annotated`` aliases)."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated

import typer

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")


class DurationOutOfRange(typer.BadParameter):
    """A well-formed duration reaching back before year 1: bad input (exit 2), not a bug."""


def parse_duration(text: str) -> timedelta:
    """``30d``, ``12h``, ``1w2d``, ``90s`` -> timedelta; units s, m, h, d, w.

    The duration must reach back to a representable date (``now - duration`` after year 1), since every
    command uses it as "that long ago"; longer is a usage error, never an overflow deep in a command.
    """
    value = text.strip().lower().replace(" ", "")
    if not value or _DURATION.sub("", value):
        raise typer.BadParameter(
            f"{text!r} is not a duration: use a number with s, m, h, d or w, e.g. 30d or 12h"
        )
    try:
        duration = timedelta(seconds=sum(float(n) * _UNITS[u] for n, u in _DURATION.findall(value)))
        datetime.now(timezone.utc) - duration
    except OverflowError:
        limit = (datetime.now(timezone.utc) - datetime.min.replace(tzinfo=timezone.utc)).days
        raise DurationOutOfRange(f"{text!r} is too long: give at most {limit}d.") from None
    return duration


def parse_since(text: str) -> datetime:
    """A duration ago (``2h``) or an ISO date/time (``2024-05-01``, ``2024-05-01T10:00``; UTC if naive)."""
    try:
        return datetime.now(timezone.utc) - parse_duration(text)
    except DurationOutOfRange:
        raise
    except typer.BadParameter:
        pass
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is neither a duration (2h, 3d) nor an ISO date (2024-05-01)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def parse_uuid(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text.strip())
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a row id (a UUID such as 0b6f...-...)") from None


JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON on stdout (stable keys, nothing else).")]
IdsOpt = Annotated[
    list[uuid.UUID] | None,
    typer.Option(
        "--id", parser=parse_uuid, metavar="UUID", help="A row id (repeat for several).", show_default=False
    ),
]
DestinationOpt = Annotated[
    str | None,
    typer.Option(
        "--destination",
        "-d",
        help="Only this destination; a trailing * matches a prefix.",
        show_default=False,
    ),
]
SinceOpt = Annotated[
    datetime | None,
    typer.Option(
        "--since",
        parser=parse_since,
        metavar="WHEN",
        show_default=False,
        help="Only rows added since WHEN: a duration ago (2h, 3d) or an ISO date/time (UTC).",
    ),
]
LimitOpt = Annotated[
    int | None, typer.Option("--limit", "-n", min=1, help="At most this many rows.", show_default=False)
]
AllOpt = Annotated[
    bool, typer.Option("--all", help="Select every matching row when no other filter is given.")
]
MetricsPortOpt = Annotated[
    int | None,
    typer.Option(
        "--metrics-port",
        min=0,
        max=65535,
        metavar="PORT",
        show_default=False,
        help="Serve Prometheus metrics on PORT at /metrics (needs django-outbox-pattern\\[metrics]).",
    ),
]
MetricsAddrOpt = Annotated[
    str, typer.Option("--metrics-addr", metavar="ADDR", help="Address the metrics server listens on.")
]
HealthFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--health-file",
        metavar="FILE",
        show_default=False,
        help="Liveness heartbeat file, rewritten while the loop runs (read by `check --liveness`).",
    ),
]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Show what would change; change nothing.")]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
