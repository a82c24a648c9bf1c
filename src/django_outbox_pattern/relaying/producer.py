"""Producer: send JSON messages to the broker and prove each one arrived with its RECEIPT.

``Producer.send_event()`` sends one message (the public ``producers.Producer`` that ``factory_producer()``
returns uses ``send_many``). The relay sends a whole batch with its receipts pipelined: ``launch()`` sends
every message with a receipt without waiting, ``land()`` collects the receipts later (``send_many()`` does
both at once); or it sends one message at a time, when a batch must not let one bad message take the
others down.

Every message goes out as JSON with ``content-type:application/json`` and ``persistent:true`` (a durable
queue alone does not make a message survive a broker restart). ``encode()`` refuses what could never be
sent (an invalid destination, headers that are not text, a body that is not JSON or is too large) with
``exceptions.UnsendableMessage``, before anything reaches the broker.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import json
import logging
import time
import uuid
from collections.abc import Hashable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder

from django_outbox_pattern import exceptions, tracing
from django_outbox_pattern.broker import wire
from django_outbox_pattern.core import addressing, identity

logger = logging.getLogger(__name__)

CONTENT_TYPE = "application/json"
# RabbitMQ 3.x refuses messages over its max_message_size, 128 MiB by default.
MAX_BODY_BYTES = 128 * 1024 * 1024
# Frame headers the producer owns: a stored value for these is dropped, never sent.
RESERVED_HEADERS = frozenset({"destination", "receipt", "content-length", "transaction", "content-type"})
FORCED_HEADERS: Mapping[str, str] = {"persistent": "true", "content-type": CONTENT_TYPE}
# Broker errors that sending the same message again can never cure (RabbitMQ 3.x wording): a message over
# the broker's max_message_size. Only meaningful for a message sent alone (see batches.Batches.land).
PERMANENT_REFUSALS = ("is larger than configured max size",)
WRITE_MESSAGES = 250  # at most this many messages per socket write of a pipelined batch
WRITE_BYTES = 256 * 1024  # ... or about this many bytes of bodies


class EncodedJSON(str):
    """A body that is JSON text already (the relay reads the stored text): sent as it is, not encoded."""

    __slots__ = ()


@dataclasses.dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """A message ready for the wire; ``key`` is the caller's handle (the relay uses the row id)."""

    destination: str
    body: str
    headers: Mapping[str, str]
    key: Hashable = None


@dataclasses.dataclass(frozen=True)
class SendOutcome:
    """What happened to each key of a ``send_many()`` call."""

    confirmed: list[Hashable]  # the broker sent a RECEIPT: stored
    unconfirmed: list[Hashable]  # sent, but no RECEIPT came: unknown, send again
    unsent: list[Hashable]  # never sent: the connection was already unusable
    error: str = ""  # why some were not confirmed

    @property
    def ok(self) -> bool:
        return not self.unconfirmed and not self.unsent


@dataclasses.dataclass(frozen=True)
class Flight:
    """Messages sent, receipts not collected yet (see ``Producer.launch``)."""

    pending: Mapping[str, Hashable]  # receipt id -> key
    unsent: list[Hashable]
    error: str
    deadline: float  # time.monotonic() after which a missing RECEIPT counts as not confirmed


def _writes(messages: Sequence[OutgoingMessage]) -> Iterator[tuple[int, int]]:
    """Split ``messages`` into consecutive [start, end) runs, each one write to the transport."""
    start, size = 0, 0
    for index, message in enumerate(messages):
        size += len(message.body)
        if index + 1 - start >= WRITE_MESSAGES or size >= WRITE_BYTES:
            yield start, index + 1
            start, size = index + 1, 0
    if start < len(messages):
        yield start, len(messages)


# A relay sends to a handful of destinations over and over: each one's verdict is worked out once.
_destination_problem = functools.lru_cache(maxsize=1024)(addressing.send_destination_problem)


def validate_destination(destination: str) -> None:
    """Raise UnsendableMessage unless RabbitMQ's STOMP adapter can accept this destination."""
    problem = _destination_problem(destination)
    if problem is not None:
        raise exceptions.UnsendableMessage(problem)


def refused_for_good(error: str) -> bool:
    """True when a broker error says the message can never be accepted as it is (too large)."""
    return any(text in error for text in PERMANENT_REFUSALS)


def _header_text(name: str, value: Any) -> str:
    if isinstance(value, str):
        text = value
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (int, float, uuid.UUID)):
        text = str(value)
    else:
        raise exceptions.UnsendableMessage(
            f"header {name!r} is a {type(value).__name__}, not text: headers must be strings"
        )
    if "\0" in text:
        raise exceptions.UnsendableMessage(f"header {name!r} contains a NUL character")
    return text


def encode(
    destination: str,
    body: Any,
    message_headers: Mapping[str, Any] | None = None,
    *,
    key: Hashable = None,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> OutgoingMessage:
    """A message for the wire, or UnsendableMessage saying what is wrong with it."""
    if not isinstance(destination, str):
        raise exceptions.UnsendableMessage(f"destination must be a string, got {type(destination).__name__}")
    validate_destination(destination)
    if message_headers is not None and not isinstance(message_headers, Mapping):
        raise exceptions.UnsendableMessage(f"headers must be a mapping, got {type(message_headers).__name__}")
    wire: dict[str, str] = {}
    for name, value in (message_headers or {}).items():
        if not isinstance(name, str) or not name or "\0" in name:
            raise exceptions.UnsendableMessage(f"header name {name!r} is not a non-empty string")
        if value is None:  # stomp.py writes no header for None, so 3.x sent such rows without it
            continue
        if name.lower() not in RESERVED_HEADERS:
            wire[name] = _header_text(name, value)
    wire.update(FORCED_HEADERS)
    try:
        text = str(body) if isinstance(body, EncodedJSON) else json.dumps(body, cls=DjangoJSONEncoder)
    except (TypeError, ValueError) as exc:
        raise exceptions.UnsendableMessage(f"body is not JSON-serialisable: {exc}") from exc
    size = len(text) if text.isascii() else len(text.encode("utf-8"))
    if size > max_body_bytes:
        raise exceptions.UnsendableMessage(f"body is {size} bytes, over the {max_body_bytes}-byte limit")
    return OutgoingMessage(destination=destination, body=text, headers=wire, key=key)


class Producer:
    """A broker connection that sends messages and waits for their RECEIPTs. Not thread-safe."""

    def __init__(
        self, connection: wire.Transport, *, receipt_timeout: float, max_body_bytes: int = MAX_BODY_BYTES
    ) -> None:
        self.transport = connection
        self.receipt_timeout = receipt_timeout
        self.max_body_bytes = max_body_bytes

    def __enter__(self) -> Producer:
        self.connect()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def connect(self) -> None:
        """Open the connection; raises exceptions.ConnectionFailed."""
        self.transport.connect()

    def close(self) -> None:
        """Close the connection; never raises."""
        self.transport.disconnect()

    def is_connected(self) -> bool:
        return self.transport.is_connected()

    def send_event(
        self, destination: str, body: Any, headers: Mapping[str, Any] | None = None, **extra_headers: Any
    ) -> str:
        """Send one JSON message and wait for its RECEIPT; return its ``dop-msg-id``.

        Raises UnsendableMessage for a message that cannot be sent, PublishNotConfirmed when no RECEIPT
        came within the receipt timeout, and ConnectionClosed when the connection is not usable.
        """
        all_headers = {**tracing.trace_headers(), **(headers or {}), **extra_headers}
        all_headers.setdefault(identity.ID_HEADER, uuid.uuid4().hex)
        message = encode(destination, body, all_headers, max_body_bytes=self.max_body_bytes)
        if not self.is_connected():
            raise exceptions.ConnectionClosed(
                "The producer is not connected: use `with factory_producer() as p`."
            )
        outcome = self.send_many([message], one_at_a_time=True)
        if not outcome.confirmed:
            raise exceptions.PublishNotConfirmed(
                f"The broker did not confirm the message to {destination!r} ({outcome.error}): it may not "
                "have been stored; send it again (consumers deduplicate by dop-msg-id)."
            )
        logger.debug("Sent to %s", destination, extra={"action": "event_sent", "destination": destination})
        return message.headers[identity.ID_HEADER]

    def send_many(self, messages: Sequence[OutgoingMessage], *, one_at_a_time: bool = False) -> SendOutcome:
        """Send messages with a receipt each and report which were confirmed. Never raises for broker errors.

        Pipelined (default): send all, then wait up to the receipt timeout for all receipts. One at a time:
        wait for each receipt before the next send, and stop at the first failure, so a message that makes
        the broker close the connection is the only one not confirmed.
        """
        if not one_at_a_time:
            return self.land(self.launch(messages))
        confirmed: list[Hashable] = []
        for index, message in enumerate(messages):
            outcome = self.land(self.launch([message]))
            confirmed += outcome.confirmed
            if not outcome.ok:
                rest = [m.key for m in messages[index + 1 :]]
                return SendOutcome(confirmed, outcome.unconfirmed, outcome.unsent + rest, outcome.error)
        return SendOutcome(confirmed, [], [])

    def launch(self, messages: Sequence[OutgoingMessage]) -> Flight:
        """Send every message with a receipt, without waiting; ``land()`` collects the receipts later.

        Messages go to the transport in writes of up to WRITE_MESSAGES messages or WRITE_BYTES of body.
        When a write fails, the messages after it count as never sent; those of the failed write count as
        sent (their attempt counts, so a message that breaks the connection cannot go round for ever),
        unless the transport says how many of them it wrote (``exceptions.SendInterrupted``).
        """
        pending: dict[str, Hashable] = {}
        for start, end in _writes(messages):
            chunk = {wire.new_receipt_id(): m for m in messages[start:end]}
            try:
                self.transport.send_many(
                    [wire.OutgoingFrame(m.destination, m.body, m.headers, r) for r, m in chunk.items()]
                )
            except exceptions.TransportError as exc:
                written = exc.written if isinstance(exc, exceptions.SendInterrupted) else len(chunk)
                pending.update((r, m.key) for r, m in itertools.islice(chunk.items(), written))
                unsent = [m.key for m in messages[start + written :]]
                return Flight(pending, unsent, str(exc), time.monotonic() + self.receipt_timeout)
            pending.update((r, m.key) for r, m in chunk.items())
        return Flight(pending, [], "", time.monotonic() + self.receipt_timeout)

    def land(self, flight: Flight) -> SendOutcome:
        """Wait for the flight's receipts until its deadline (receipt timeout after it was sent)."""
        got: set[str] = set()
        if flight.pending:
            timeout = max(0.0, flight.deadline - time.monotonic())
            got = self.transport.wait_for_receipts(flight.pending.keys(), timeout)
        confirmed = [key for receipt, key in flight.pending.items() if receipt in got]
        unconfirmed = [key for receipt, key in flight.pending.items() if receipt not in got]
        error = self._reason(flight.error) if unconfirmed or flight.unsent else ""
        return SendOutcome(confirmed, unconfirmed, flight.unsent, error)

    def _reason(self, error: str) -> str:
        broker_error = getattr(self.transport, "last_error", None)
        if broker_error:
            return f"broker error: {broker_error}"
        if error:
            return error
        if not self.transport.is_connected():
            return "connection to the broker lost before the RECEIPT"
        return f"no RECEIPT within {self.receipt_timeout:g}s"
