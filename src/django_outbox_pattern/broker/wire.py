"""What the engine needs from a broker connection (the ``Transport`` protocol) and what crosses it.

``StompTransport`` (transport.py, over stomp.py) and ``testing.MemoryTransport`` implement the protocol;
the relay, the producer and the consumer depend on it only.
"""

from __future__ import annotations

import dataclasses
import itertools
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, NamedTuple, Protocol

Headers = Mapping[str, str]


@dataclasses.dataclass(frozen=True, slots=True)
class Message:
    """A MESSAGE frame as received: headers and the raw body bytes."""

    headers: dict[str, str]
    body: bytes

    @classmethod
    def from_frame(cls, frame: Any) -> Message:
        body = frame.body
        if isinstance(body, str):
            body = body.encode("utf-8")
        headers = dict(frame.headers)
        # RabbitMQ copies a SEND's `receipt` header into the message: it means nothing to a consumer, and
        # 3.x producers (which asked for no receipts) never sent it.
        headers.pop("receipt", None)
        return cls(headers=headers, body=body or b"")

    @property
    def ack_id(self) -> str:
        """The id STOMP 1.2 acks by (``ack`` header), else the ``message-id``."""
        return self.headers.get("ack") or self.headers.get("message-id", "")


MessageHandler = Callable[[Message], None]


class OutgoingFrame(NamedTuple):
    """One SEND of a ``send_many()`` call."""

    destination: str
    body: str
    headers: Headers
    receipt: str | None = None


class Transport(Protocol):
    """What the relay, the producer and the consumer need from a broker connection."""

    def connect(self) -> None: ...

    def disconnect(self) -> None: ...

    def is_connected(self) -> bool: ...

    def send(
        self, destination: str, body: str | bytes, headers: Headers, *, receipt: str | None = None
    ) -> None: ...

    def send_many(self, messages: Sequence[OutgoingFrame]) -> None: ...

    def wait_for_receipts(self, receipts: Collection[str], timeout: float) -> set[str]: ...

    def subscribe(self, destination: str, subscription_id: str, headers: Headers, *, ack: str) -> None: ...

    def unsubscribe(self, subscription_id: str) -> None: ...

    def ack(self, ack_id: str, subscription_id: str, *, defer: bool = False) -> None: ...

    def flush(self) -> None: ...

    def nack(self, ack_id: str, subscription_id: str, *, requeue: bool = False) -> None: ...

    def set_message_handler(self, handler: MessageHandler | None) -> None: ...


_RECEIPT_PREFIX = uuid.uuid4().hex[:12]
_receipt_numbers = itertools.count(1)


# Headers a broker sets on a MESSAGE it delivers (not the sender's): a message sent on again (a requeue, a
# dead-letter copy) leaves them out, with the dead-lettering history (``DEAD_LETTER_HISTORY_PREFIXES``).
DELIVERY_HEADERS = frozenset(
    {
        "message-id",
        "subscription",
        "ack",
        "destination",
        "redelivered",
        "content-length",
        "receipt",
        "receipt-id",
    }
)
DEAD_LETTER_HISTORY_PREFIXES = ("x-death", "x-first-death-", "x-last-death-", "dop-dead-letter-")


def new_receipt_id() -> str:
    """A receipt id unique within the process (receipts only need to be unique per connection)."""
    return f"{_RECEIPT_PREFIX}-{next(_receipt_numbers)}"
