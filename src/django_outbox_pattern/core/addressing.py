"""How the project addresses RabbitMQ over STOMP: the one home of the destination and queue grammar.

- Destinations: ``/queue/<name>``, ``/topic/<key>``, ``/exchange/<name>[/<key>]``, ``/amq/queue/<name>``
  (and, to send only, ``/temp-queue/<name>``, ``/reply-queue/...`` and a bare name for the default
  exchange). The producer checks what RabbitMQ's STOMP adapter accepts (``send_destination_problem``);
  a consumer subscribes to the stricter subset whose last segment names its queue
  (``validate_subscribe_destination``).
- Queue names: letters, digits and ``. _ - : @ # * ~ + =``; never ``amq.``-prefixed (RabbitMQ reserves
  them); short enough that ``DLQ.<name>`` fits RabbitMQ's 255 bytes.
- Dead letters of ``<queue>`` go to ``DLQ.<queue>``.
- ``prefetch-count``: how a SUBSCRIBE header value is read (0 = unlimited).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping

from django_outbox_pattern import exceptions

DEAD_LETTER_PREFIX = "DLQ."
RESERVED_QUEUE_PREFIX = "amq."  # RabbitMQ refuses to declare such queues (access_refused)
MAX_QUEUE_NAME_BYTES = 255 - len(DEAD_LETTER_PREFIX)  # DLQ.<queue> must fit RabbitMQ's 255 bytes
SEND_PREFIXES = ("/queue/", "/topic/", "/exchange/", "/amq/queue/", "/temp-queue/", "/reply-queue/")
FLAT_PREFIXES = ("/queue/", "/amq/queue/", "/temp-queue/")  # the name may not contain another "/"
# Letters and digits (any script) plus . _ - : @ # * ~ + =
_NAME_RE = re.compile(r"^[\w.\-:@#*~+=]+$")
_ALLOWED = "letters, digits and . _ - : @ # * ~ + ="


@functools.lru_cache(maxsize=4096)  # destinations repeat: check each one once
def send_destination_problem(destination: str) -> str | None:
    """Why RabbitMQ's STOMP adapter cannot accept ``destination`` for a SEND, or None when it can."""
    if not isinstance(destination, str) or not destination.strip():
        return f"destination {destination!r} is empty: give e.g. /topic/<key>"
    if any(c in destination for c in "\r\n\0"):
        return f"destination {destination!r} contains a line break or NUL"
    if not destination.startswith("/"):
        return None  # a bare name goes to the default exchange (the spec's "your_destination" example)
    prefix = next((p for p in SEND_PREFIXES if destination.startswith(p)), None)
    name = destination[len(prefix) :] if prefix else ""
    if prefix is None or not name or (prefix in FLAT_PREFIXES and "/" in name):
        return (
            f"destination {destination!r} is not valid for RabbitMQ: use /queue/<name>, /topic/<key>, "
            "/exchange/<name>[/<key>], /amq/queue/<name> or /temp-queue/<name>"
        )
    if prefix == "/queue/" and name.startswith(RESERVED_QUEUE_PREFIX):
        return (
            f"destination {destination!r}: queue names starting with 'amq.' are reserved by RabbitMQ, "
            "which refuses to declare them"
        )
    return None


def validate_subscribe_destination(destination: str) -> None:
    """Accept ``/queue/<name>``, ``/topic/<key>``, ``/exchange/<name>[/<key>]`` and ``/amq/queue/<name>``."""
    if not isinstance(destination, str) or not destination.startswith("/"):
        raise exceptions.InvalidDestination(
            f"Destination {destination!r} must start with /queue/, /topic/, /exchange/ or /amq/queue/ "
            "(for example /topic/orders.created)."
        )
    parts = destination.split("/")[1:]
    if parts[:2] == ["amq", "queue"]:
        kind, segments, limits = "/amq/queue/", parts[2:], (1, 1)
    elif parts[0] in ("queue", "topic"):
        kind, segments, limits = f"/{parts[0]}/", parts[1:], (1, 1)
    elif parts[0] == "exchange":
        kind, segments, limits = "/exchange/", parts[1:], (1, 2)
    else:
        raise exceptions.InvalidDestination(
            f"Destination {destination!r}: a consumer subscribes to /queue/<name>, /topic/<key>, "
            "/exchange/<name>[/<key>] or /amq/queue/<name>."
        )
    low, high = limits
    if not low <= len(segments) <= high or not all(segments):
        shape = "/exchange/<name>[/<routing key>]" if kind == "/exchange/" else f"{kind}<name>"
        raise exceptions.InvalidDestination(f"Destination {destination!r} must look like {shape}.")
    for segment in segments:
        if not _NAME_RE.match(segment):
            raise exceptions.InvalidDestination(
                f"Destination {destination!r}: {segment!r} may contain only {_ALLOWED}."
            )


def validate_queue_name(name: str) -> None:
    """Queue names: allowed characters only, not ``amq.``-prefixed, short enough for ``DLQ.<name>``."""
    if not isinstance(name, str) or not name:
        raise exceptions.InvalidDestination("The queue name must not be empty.")
    if not _NAME_RE.match(name):
        raise exceptions.InvalidDestination(f"Queue name {name!r} may contain only {_ALLOWED}.")
    if name.startswith(RESERVED_QUEUE_PREFIX):
        raise exceptions.InvalidDestination(
            f"Queue name {name!r}: names starting with 'amq.' are reserved by RabbitMQ; "
            "pass another queue_name."
        )
    if len(name.encode("utf-8")) > MAX_QUEUE_NAME_BYTES:
        raise exceptions.InvalidDestination(
            f"Queue name {name[:40]!r}... is longer than {MAX_QUEUE_NAME_BYTES} bytes (DLQ.<name> must fit "
            "RabbitMQ's 255): pass a shorter queue_name."
        )


def queue_name_for(destination: str, queue_name: str | None = None) -> str:
    """The queue to consume: ``queue_name`` if given, else the destination's last path segment.

    Raises ``InvalidDestination`` when the destination or the resulting queue name is not usable.
    """
    validate_subscribe_destination(destination)
    name = queue_name if queue_name else destination.rstrip("/").rsplit("/", 1)[-1]
    validate_queue_name(name)
    return name


def dead_letter_queue(queue: str) -> str:
    """``DLQ.<queue>``: where NACKed (``requeue:false``) messages of ``queue`` go."""
    return f"{DEAD_LETTER_PREFIX}{queue}"


def prefetch_count(headers: Mapping[str, str], *, default: int = 0) -> int:
    """The ``prefetch-count`` of SUBSCRIBE headers; ``default`` if absent or not a number (0 = unlimited)."""
    try:
        return max(0, int(headers.get("prefetch-count", default)))
    except (TypeError, ValueError):
        return default
