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

3.x's form ``Payload(connection, body, headers, message=None)`` works too (tests of callbacks build it):
``ack()``/``nack()`` then call ``connection.ack(message_id)``/``connection.nack(message_id, requeue=False)``
with the ``message-id`` header, and ``save()`` of a payload given a ``message`` (a ``Received``) marks it
succeeded and saves it. ``payload.message`` is the ``Received`` the message makes (unsaved until ``save()``);
``payload.connection`` the consumer's connection (None for a payload built by hand in this project's form).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

from django_outbox_pattern import exceptions
from django_outbox_pattern.broker import wire
from django_outbox_pattern.consuming import inbox, storable

logger = logging.getLogger(__name__)

# Sends the ACK (True) or the NACK (False) of one message; must never raise.
Settle = Callable[[bool], None]


def _no_broker(ack: bool) -> None:
    """The default ``Settle`` of a payload built outside a consumer (tests): records only."""


_UNSET: Any = object()


def _settle_on(connection: Any, headers: Mapping[str, Any]) -> Settle:
    """3.x's ACK/NACK: by the ``message-id`` header, on the connection given to the payload."""

    def settle(ack: bool) -> None:
        if ack:
            connection.ack(headers.get("message-id"))
        else:
            connection.nack(headers.get("message-id"), requeue=False)

    return settle


class Payload:
    """One message handed to a callback: ``body``, ``headers``, ``save()``, ``nack()``, ``ack()``."""

    def __init__(
        self,
        connection: Any,
        body: Any = _UNSET,
        headers: Mapping[str, Any] = _UNSET,
        message: Any = None,
        *,
        msg_id: str | None = None,
        settle: Settle | None = None,
        store: inbox.InboxStore | None = None,
        raw_body: bytes | None = None,
    ) -> None:
        if headers is _UNSET:  # this project's form: Payload(body, headers, *, msg_id, settle, store)
            if body is _UNSET:
                raise TypeError("Payload() needs a body and headers: Payload(connection, body, headers)")
            connection, body, headers = None, connection, body
            self.headers: dict[str, Any] = {str(k): str(v) for k, v in headers.items()}
            self.msg_id: str = msg_id or inbox.message_id(self.headers)
        else:  # 3.x's form: headers kept as given; no id is an error only when saving
            self.headers = dict(headers)
            self.msg_id = msg_id or _message_id_or_none(self.headers) or ""
            if settle is None and connection is not None:
                settle = _settle_on(connection, self.headers)
        self.body = body
        self.connection = connection
        self._message = message
        self._given_message = message is not None
        self.raw_body = raw_body
        self._settle = settle or _no_broker
        self._store = store
        self.saved = False  # save() inserted the inbox row (its transaction may still roll back)
        self.acked = False
        self.nacked = False

    def __repr__(self) -> str:
        return f"<Payload msg_id={self.msg_id!r} destination={self.headers.get('destination', '')!r}>"

    @classmethod
    def from_message(
        cls, message: wire.Message, *, msg_id: str, settle: Settle, store: inbox.InboxStore
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
    def message(self) -> Any:
        """The ``Received`` this message makes (DEFAULT_RECEIVED_CLASS; unsaved until ``save()``)."""
        if self._message is None:
            from django_outbox_pattern import conf

            model = conf.import_object(conf.get_settings().DEFAULT_RECEIVED_CLASS)
            self._message = model(body=self.body, headers=self.headers, msg_id=self.msg_id)
        return self._message

    @message.setter
    def message(self, value: Any) -> None:
        self._message = value
        self._given_message = value is not None

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
        if self._given_message and self._store is None:  # 3.x's form: save the Received it was given
            from django_outbox_pattern.choices import StatusChoice

            self._message.status = StatusChoice.SUCCEEDED
            self._message.save()
        elif not self.msg_id:
            raise exceptions.MessageDecodeError(
                "The message has no cap-msg-id, dop-msg-id or message-id header: it cannot be saved."
            )
        else:
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


def _message_id_or_none(headers: Mapping[str, Any]) -> str | None:
    try:
        return inbox.message_id({str(k): str(v) for k, v in headers.items() if v is not None})
    except exceptions.MessageDecodeError:
        return None


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
