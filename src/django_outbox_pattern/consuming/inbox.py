"""The idempotent inbox: every query on ``Received`` made by the consumer lives here.

A message is processed once per ``msg_id`` (the unique column of ``Received``): ``record()`` inserts
the row inside the caller's transaction, under a savepoint, so a duplicate (another consumer committed
the same id first) raises ``DuplicateMessage`` and rolls back the caller's business writes with it.
Rows older than ``DAYS_TO_KEEP_DATA`` are deleted in batches, at most once per ``REMOVE_DATA_CACHE_TTL``
across all consumers sharing the Django cache; the dedupe window is therefore ``DAYS_TO_KEEP_DATA``.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Callable, Collection, Mapping
from datetime import datetime, timedelta
from typing import Any, Protocol

from django.db import (
    DatabaseError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    connections,
    transaction,
)
from django.utils import timezone

from django_outbox_pattern import conf, exceptions, wiring
from django_outbox_pattern.choices import StatusChoice
from django_outbox_pattern.consuming import storable
from django_outbox_pattern.core import identity

logger = logging.getLogger(__name__)

MAX_MSG_ID_LENGTH = 100  # Received.msg_id is a CharField(max_length=100)
PURGE_BATCH_SIZE = 1000
# Errors after which the database connection is closed and the callback retried (connection lost, etc.).
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (OperationalError, InterfaceError)


class DuplicateMessage(exceptions.OutboxError):
    """This message was already processed (its id is in the inbox): it is acked and skipped."""


def message_id(headers: Mapping[str, str]) -> str:
    """The message's identity: ``cap-msg-id``, else ``dop-msg-id``, else the broker's ``message-id``.

    Ids longer than the column, or holding characters a database cannot store (NUL, lone surrogates), are
    replaced by a stable ``sha256:<hex>`` digest of themselves.
    """
    for key in identity.IDENTITY_HEADERS:
        value = headers.get(key)
        if value:
            if len(value) > MAX_MSG_ID_LENGTH or not storable.is_storable_text(value):
                return "sha256:" + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
            return value
    raise exceptions.MessageDecodeError(
        f"The message has none of the headers {', '.join(identity.IDENTITY_HEADERS)}: "
        "it cannot be deduplicated."
    )


class Row(Protocol):
    """One inbox row to insert (``batching.PendingRow``)."""

    msg_id: str
    headers: Mapping[str, str]
    body: Any


class InboxStore(Protocol):
    """What the consumer and ``Payload`` need from the inbox (``DatabaseInbox``, or a test double)."""

    def exists(self, msg_id: str) -> bool: ...

    def existing(self, msg_ids: Collection[str]) -> set[str]: ...

    def record(self, msg_id: str, headers: Mapping[str, str], body: Any) -> None: ...

    def on_commit(self, func: Callable[[], None]) -> None: ...

    def reset(self) -> None: ...

    def purge_older_than(
        self, cutoff: datetime, *, batch_size: int, should_stop: Callable[[], bool]
    ) -> int: ...


class DatabaseInbox:
    """``InboxStore`` over the inbox model (DEFAULT_RECEIVED_CLASS unless given) on the default database."""

    def __init__(
        self, model: str | type[Any] | None = None, *, settings: conf.OutboxSettings | None = None
    ) -> None:
        self._model_ref = model
        self._settings = settings
        self._model: type[Any] | None = None

    @property
    def model(self) -> type[Any]:
        if self._model is None:  # resolved on first use: models need a ready app registry
            ref = self._model_ref
            self._model = wiring.received_model(self._settings) if ref is None else conf.import_object(ref)
        return self._model

    def exists(self, msg_id: str) -> bool:
        return bool(self.model.objects.filter(msg_id=msg_id).exists())

    def existing(self, msg_ids: Collection[str]) -> set[str]:
        """Which of these ids are in the inbox, in one query."""
        if not msg_ids:
            return set()
        return set(self.model.objects.filter(msg_id__in=list(msg_ids)).values_list("msg_id", flat=True))

    def record(self, msg_id: str, headers: Mapping[str, str], body: Any) -> None:
        """Insert the ``Received`` row in the current transaction; ``DuplicateMessage`` if already there.

        ``body`` should come from ``storable.storable_body`` (``Payload.save()`` does that); headers are
        escaped here where a database would reject them."""
        try:
            with transaction.atomic():  # a savepoint inside the caller's transaction
                self.model.objects.create(
                    msg_id=msg_id,
                    headers=storable.storable_headers(headers),
                    body=body,
                    status=StatusChoice.SUCCEEDED,
                )
        except IntegrityError as exc:  # msg_id is the only unique column that can collide
            raise DuplicateMessage(f"Message {msg_id!r} is already in the inbox: skipped.") from exc

    def record_many(self, rows: Collection[Row]) -> None:
        """Insert these rows in one statement, in the current transaction (batched consuming);
        ``DuplicateMessage`` when one of them is there already (the whole statement then fails)."""
        objs = [
            self.model(
                msg_id=row.msg_id,
                headers=storable.storable_headers(row.headers),
                body=row.body,
                status=StatusChoice.SUCCEEDED,
            )
            for row in rows
        ]
        try:  # one INSERT (Django splits it only where the database limits a statement's parameters)
            self.model.objects.bulk_create(objs)
        except IntegrityError as exc:
            raise DuplicateMessage(f"One of {len(objs)} messages is already in the inbox.") from exc

    def on_commit(self, func: Callable[[], None]) -> None:
        """Run ``func`` once the current transaction commits (at once outside a transaction)."""
        transaction.on_commit(func, robust=True)

    def reset(self) -> None:
        """Close this thread's database connections; Django reopens them on next use."""
        for connection in connections.all(initialized_only=True):
            with contextlib.suppress(DatabaseError):
                connection.close()

    def purge_older_than(self, cutoff: datetime, *, batch_size: int, should_stop: Callable[[], bool]) -> int:
        """Delete rows added before ``cutoff``, ``batch_size`` per statement; stop early when asked."""
        deleted = 0
        while not should_stop():
            ids = list(
                self.model.objects.filter(added__lt=cutoff)
                .order_by()
                .values_list("pk", flat=True)[:batch_size]
            )
            if not ids:
                break
            deleted += self.model.objects.filter(pk__in=ids).delete()[0]
        return deleted


def purge_if_due(
    store: InboxStore, settings: conf.OutboxSettings, *, should_stop: Callable[[], bool] = lambda: False
) -> int | None:
    """Retention: delete rows older than ``DAYS_TO_KEEP_DATA`` unless done within ``REMOVE_DATA_CACHE_TTL``.

    The Django cache key ``OUTBOX_PATTERN_CONSUMER_CACHE_KEY`` makes one consumer do it per TTL. Returns
    the number of rows deleted, or None when it was not due. Never raises a database error.
    """
    from django.core.cache import cache

    if not cache.add(settings.OUTBOX_PATTERN_CONSUMER_CACHE_KEY, True, settings.REMOVE_DATA_CACHE_TTL):
        return None
    cutoff = timezone.now() - timedelta(days=settings.DAYS_TO_KEEP_DATA)
    try:
        deleted = store.purge_older_than(cutoff, batch_size=PURGE_BATCH_SIZE, should_stop=should_stop)
    except DatabaseError as exc:
        cache.delete(settings.OUTBOX_PATTERN_CONSUMER_CACHE_KEY)  # try again next time
        store.reset()
        logger.warning("Could not delete old inbox rows: %s", exc, extra={"action": "inbox_purge_failed"})
        return None
    logger.info(
        "Deleted %d inbox rows older than %s",
        deleted,
        cutoff.isoformat(),
        extra={"action": "inbox_purged", "count": deleted},
    )
    return deleted
