"""Pure functions naming the consumer's queues and building their SUBSCRIBE headers.

The queues are declared with the names, properties and arguments that the 2.x/3.x releases (3.2.1 is the
reference) give them, because RabbitMQ refuses to redeclare a queue with other ``x-`` arguments
(``precondition_failed``) or another ``exclusive`` flag (``resource_locked``) and closes the connection:

- the main queue: ``DEFAULT_STOMP_QUEUE_HEADERS`` (durable, not auto-delete, prefetch), ``exclusive``
  from ``DEFAULT_EXCLUSIVE_QUEUE``, ``x-queue-name: <queue>``, ``x-dead-letter-exchange: ""`` and
  ``x-dead-letter-routing-key: DLQ.<queue>``;
- the dead-letter queue ``DLQ.<queue>``: the same base headers and ``exclusive`` flag,
  ``x-queue-name: DLQ.<queue>``, ``x-dead-letter-exchange: ""`` and
  ``x-dead-letter-routing-key: DLQ.DLQ.DLQ.<queue>`` (three prefixes: what 3.x has always declared).

An exclusive queue (RabbitMQ then also makes it non-durable) lives only as long as the connection that
declared it, so with ``DEFAULT_EXCLUSIVE_QUEUE`` the consumer declares both on its own connection, as 3.x
did. Where the headers are spelled differently from 3.x (``exclusive: true``, not Python's ``True``; the
DLQ addressed as ``/queue/DLQ.<queue>``, not a bare ``DLQ.<queue>``), RabbitMQ declares the same queue.
The settings mapping is never mutated.
"""

from __future__ import annotations

import re

from django_outbox_pattern import conf, exceptions

DEAD_LETTER_PREFIX = "DLQ."
MAX_QUEUE_NAME_BYTES = 255 - len(DEAD_LETTER_PREFIX)  # DLQ.<queue> must fit RabbitMQ's 255 bytes
RESERVED_QUEUE_PREFIX = "amq."
# Letters and digits (any script) plus . _ - : @ # * ~ + =
_NAME_RE = re.compile(r"^[\w.\-:@#*~+=]+$")
_ALLOWED = "letters, digits and . _ - : @ # * ~ + ="


def queue_name_for(destination: str, queue_name: str | None = None) -> str:
    """The queue to consume: ``queue_name`` if given, else the destination's last path segment.

    Raises ``InvalidDestination`` when the destination or the resulting queue name is not usable.
    """
    validate_destination(destination)
    name = queue_name if queue_name else destination.rstrip("/").rsplit("/", 1)[-1]
    validate_queue_name(name)
    return name


def validate_destination(destination: str) -> None:
    """Accept ``/queue/<name>``, ``/topic/<key>``, ``/exchange/<name>[/<key>]`` and ``/amq/queue/<name>``."""
    if not isinstance(destination, str) or not destination.startswith("/"):
        raise exceptions.InvalidDestination(
            f"Destination {destination!r} must start with /queue/, /topic/, /exchange/ or /amq/queue/ "
            "(for example /topic/orders.created)."
        )
    parts = destination.split("/")[1:]
    if parts[:2] == ["amq", "queue"]:
        kind, segments = "/amq/queue/", parts[2:]
        limits = (1, 1)
    elif parts[0] in ("queue", "topic"):
        kind, segments = f"/{parts[0]}/", parts[1:]
        limits = (1, 1)
    elif parts[0] == "exchange":
        kind, segments = "/exchange/", parts[1:]
        limits = (1, 2)
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


def dead_letter_queue(queue: str) -> str:
    """``DLQ.<queue>``: where NACKed (``requeue:false``) messages of ``queue`` go."""
    return f"{DEAD_LETTER_PREFIX}{queue}"


def dead_letter_destination(queue: str) -> str:
    """The destination that declares (and addresses) the dead-letter queue of ``queue``."""
    return f"/queue/{dead_letter_queue(queue)}"


def _base_headers(settings: conf.OutboxSettings, *, exclusive: bool) -> dict[str, str]:
    headers = dict(settings.DEFAULT_STOMP_QUEUE_HEADERS)  # a copy: the settings stay untouched
    headers["exclusive"] = "true" if exclusive else "false"
    return headers


def subscribe_headers(settings: conf.OutboxSettings, queue: str) -> dict[str, str]:
    """SUBSCRIBE headers of the main queue (they also declare it on first use)."""
    headers = _base_headers(settings, exclusive=settings.DEFAULT_EXCLUSIVE_QUEUE)
    headers["x-queue-name"] = queue
    headers["x-dead-letter-exchange"] = ""
    headers["x-dead-letter-routing-key"] = dead_letter_queue(queue)
    return headers


def dead_letter_headers(settings: conf.OutboxSettings, queue: str) -> dict[str, str]:
    """SUBSCRIBE headers that declare ``DLQ.<queue>`` exactly as 3.x did (``DLQ.DLQ.DLQ.<queue>`` too)."""
    dlq = dead_letter_queue(queue)
    headers = _base_headers(settings, exclusive=settings.DEFAULT_EXCLUSIVE_QUEUE)
    headers["x-queue-name"] = dlq
    headers["x-dead-letter-exchange"] = ""
    headers["x-dead-letter-routing-key"] = f"{DEAD_LETTER_PREFIX}{DEAD_LETTER_PREFIX}{dlq}"
    return headers
