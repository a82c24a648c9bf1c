"""``Payload``: what a subscribe callback receives (the spec README's public API).

``body`` is the decoded JSON body (the raw text when the body is not JSON, or nested too deep to decode;
undecodable bytes replaced when it is not UTF-8), ``raw_body`` the bytes received, ``headers`` the frame's
headers. The callback settles the message exactly once:

- ``save()`` inserts the ``Received`` row inside the caller's transaction and sends the broker ACK only
  after that transaction commits (at once outside a transaction). A body the database cannot hold as
  JSON (NUL, lone surrogates, not UTF-8, nested too deep) is stored raw (see consuming/storable.py). A
  duplicate raises ``inbox.DuplicateMessage``, which rolls back the caller's transaction; the consumer
  acks it.
- ``nack()`` moves the message to ``DLQ.<queue>`` with the reason in its ``dop-dead-letter-reason``
  header (consuming/settling.py). No database.
- ``ack()`` sends ACK now without an inbox row (so a redelivery would not be recognised as a duplicate).

ACKs and NACKs go out on the consumer's worker thread, the thread running the callback.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

from django_outbox_pattern import exceptions
from django_outbox_pattern.broker import transport
from django_outbox_pattern.consuming import inbox, storable

logger = logging.getLogger(__name__)

# Sends the ACK (True) or the NACK (False) of one message; must never raise.
Settle = Callable[[bool], None]


def _no_broker(ack: bool) -> None:
    """The default ``Settle`` of a payload built outside a consumer (tests): records only."""


class Payload:
    """One message handed to a callback: ``body``, ``headers``, ``save()``, ``nack()``, ``ack()``."""

    def __init__(
        self,
        body: Any,
        headers: Mapping[str, str],
        *,
        msg_id: str | None = None,
        settle: Settle | None = None,
        store: inbox.InboxStore | None = None,
        raw_body: bytes | None = None,
    ) -> None:
        self.body = body
        self.raw_body = raw_body
        self.headers: dict[str, str] = {str(k): str(v) for k, v in headers.items()}
        self.msg_id = msg_id or inbox.message_id(self.headers)
        self._settle = settle or _no_broker
        self._store = store
        self.saved = False  # save() inserted the inbox row (its transaction may still roll back)
        self.acked = False
        self.nacked = False

    def __repr__(self) -> str:
        return f"<Payload msg_id={self.msg_id!r} destination={self.headers.get('destination', '')!r}>"

    @classmethod
    def from_message(
        cls, message: transport.Message, *, msg_id: str, settle: Settle, store: inbox.InboxStore
    ) -> Payload:
        return cls(
            decode_body(message.body, msg_id),
            message.headers,
            msg_id=msg_id,
            settle=settle,
            store=store,
            raw_body=message.body,
        )

    @property
    def settled(self) -> bool:
        """True once ``ack()`` or ``nack()`` went out (``save()`` acks when its transaction commits)."""
        return self.acked or self.nacked

    @property
    def store(self) -> inbox.InboxStore:
        if self._store is None:
            self._store = inbox.DatabaseInbox()
        return self._store

    def save(self) -> None:
        """Record the message in the inbox within the current transaction; ACK after the commit."""
        if self.nacked:
            raise exceptions.OutboxError(
                f"Message {self.msg_id!r} was already nacked: call either save() or nack(), not both."
            )
        if self.saved:
            return
        self.store.record(self.msg_id, self.headers, storable.storable_body(self.body, self.raw_body))
        self.saved = True
        self.store.on_commit(self.ack)

    def ack(self) -> None:
        """Acknowledge the message now (once; ignored after ``nack()``)."""
        if not self.settled:
            self.acked = True
            self._settle(True)

    def nack(self) -> None:
        """Reject the message to its dead-letter queue (once; ignored after an ACK). No database access."""
        if not self.settled:
            self.nacked = True
            self._settle(False)


def decode_body(raw: bytes, msg_id: str) -> Any:
    """The JSON-decoded body; the text itself (with a warning) when it is not JSON, is nested too deep to
    decode, or is not UTF-8. Never raises."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("utf-8", errors="replace")
        logger.warning(
            "Message %s has a body that is not UTF-8: the callback gets it with undecodable bytes replaced",
            msg_id,
            extra={"action": "message_body_not_utf8", "msg_id": msg_id},
        )
        return text
    try:
        return json.loads(text)
    except RecursionError:
        logger.warning(
            "Message %s has a JSON body nested too deep to decode: the callback gets the raw text",
            msg_id,
            extra={"action": "message_body_too_deep", "msg_id": msg_id},
        )
        return text
    except ValueError:
        logger.warning(
            "Message %s has a body that is not JSON: the callback gets the raw text",
            msg_id,
            extra={"action": "message_body_not_json", "msg_id": msg_id},
        )
        return text
