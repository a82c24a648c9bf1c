"""The outbox (``Published``) and inbox (``Received``) tables, compatible with 2.x/3.x databases.

A project that wants its own tables sets DEFAULT_PUBLISHED_CLASS / DEFAULT_RECEIVED_CLASS to a concrete
subclass of ``AbstractPublished`` / ``AbstractReceived`` (same columns, its own ``db_table``); every
reader and writer resolves the classes through wiring.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.db import models, router, transaction
from django.db.models.functions import Now
from django.utils import timezone

from django_outbox_pattern import sequencing, wiring
from django_outbox_pattern.choices import StatusChoice
from django_outbox_pattern.headers import get_message_headers

__all__ = [
    "AbstractPublished",
    "AbstractReceived",
    "OrderingKey",
    "Published",
    "Received",
    "RelayProcess",
    "Repair",
    "RepairedRow",
    "StatusChoice",
]


def _one_more_day() -> datetime:
    """Default ``expires_at`` (kept by name: migration 0001 of existing databases imports it)."""
    return timezone.now() + timedelta(1)


class PublishedQuerySet(models.QuerySet[Any]):
    def bulk_create(self, objs: Iterable[Any], *args: Any, **kwargs: Any) -> list[Any]:
        """Like ``QuerySet.bulk_create``, but versions destinations and fills headers as ``save()`` does."""
        objs = list(objs)
        for obj in objs:
            obj.prepare_for_insert()
        if any(obj.ordering_key is not None and obj.ordering_seq is None for obj in objs):
            with transaction.atomic(using=self.db, savepoint=False):
                sequencing.number(objs, using=self.db)
                created = super().bulk_create(objs, *args, **kwargs)
        else:
            created = super().bulk_create(objs, *args, **kwargs)
        if created:
            wiring.rows_inserted(self.db)
        return created


class AbstractPublished(models.Model):
    """One message waiting in (or sent from) the outbox: the columns the relay and the tools need."""

    id = models.UUIDField(
        primary_key=True,
        default=uuid.uuid4,
        unique=True,
        editable=False,
        help_text="Id not sequential using UUID Field",
    )
    version = models.CharField(max_length=100, null=True)
    destination = models.CharField(max_length=255)
    body = models.JSONField()
    added = models.DateTimeField(auto_now_add=True, db_index=True)
    expires_at = models.DateTimeField(default=_one_more_day)
    # Failed send attempts so far (the spec's retry counter).
    retry = models.PositiveIntegerField(default=0)
    status = models.IntegerField(choices=StatusChoice.choices, default=StatusChoice.SCHEDULE)
    headers = models.JSONField(default=dict)
    # Columns added after 3.x's 0006 have a database default too (db_default), so a 3.x release still
    # running beside this one, or rolled back to, can insert rows (expand-then-contract; README).
    # Not claimable before this time: the next retry after a failure, or the end of a relay's lease.
    available_at = models.DateTimeField(default=timezone.now, db_default=Now())
    # Which relay holds the lease (empty when none does).
    locked_by = models.CharField(max_length=64, blank=True, default="", db_default="")
    last_error = models.TextField(blank=True, default="", db_default="")
    published_at = models.DateTimeField(null=True, blank=True)
    # Per-key ordering (docs/ordering.md): rows of one key go out one at a time, in ``ordering_seq`` order.
    # Both NULL on rows without a key (and on every row a 3.x release writes): those behave as before.
    # ``ordering_seq`` is taken from the key's ``OrderingKey`` counter in the writer's transaction; a row
    # parked by an operator loses it, which lets the rows behind it go.
    ordering_key = models.CharField(max_length=255, null=True, blank=True)
    ordering_seq = models.BigIntegerField(null=True, blank=True, editable=False)

    objects = PublishedQuerySet.as_manager()

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{self.destination} - {self.body}"

    def prepare_for_insert(self) -> None:
        """Append the version to the destination once, and compute the headers (as 2.x did)."""
        if self.version and not self.destination.endswith(f".{self.version}"):
            self.destination = f"{self.destination}.{self.version}"
        self.headers = get_message_headers(self)

    def save(self, *args: Any, **kwargs: Any) -> None:
        adding = self._state.adding
        if adding:
            self.prepare_for_insert()
        if adding and self.ordering_key is not None and self.ordering_seq is None:
            # The key's counter stays locked until the row commits: rows of one key commit in their order.
            using = kwargs.get("using") or router.db_for_write(type(self), instance=self)
            with transaction.atomic(using=using, savepoint=False):
                sequencing.number([self], using=using)
                super().save(*args, **kwargs)
        else:
            super().save(*args, **kwargs)
        if adding:
            wiring.rows_inserted(self._state.db)


class Published(AbstractPublished):
    """The outbox table (DEFAULT_PUBLISHED_CLASS by default)."""

    class Meta:
        verbose_name = "published"
        db_table = "published"
        indexes = [
            models.Index(fields=["status"], name="published_status_27c9ec_btree"),
            models.Index(fields=["status", "available_at"], name="dop_pub_claim_idx"),
            # "Is an earlier row of this key unsent?" (the relay's claim) and the key's rows in order.
            models.Index(fields=["ordering_key", "status", "ordering_seq"], name="dop_pub_order_idx"),
        ]
        # Operator repairs, each its own grant (superusers hold them all; see docs/security.md).
        permissions = [
            ("replay_published", "Can replay failed outbox messages"),
            ("dead_letter_published", "Can dead-letter (park) pending outbox messages"),
            ("purge_published", "Can purge sent or failed outbox messages"),
        ]


class AbstractReceived(models.Model):
    """One message taken from the broker: its unique ``msg_id`` makes processing idempotent."""

    id = models.UUIDField(
        primary_key=True,
        default=uuid.uuid4,
        unique=True,
        editable=False,
        help_text="Id not sequential using UUID Field",
    )
    msg_id = models.CharField(max_length=100, null=True, unique=True, db_index=True)
    headers = models.JSONField(null=True)
    body = models.JSONField(null=True)
    added = models.DateTimeField(auto_now_add=True, db_index=True)
    expires_at = models.DateTimeField(default=_one_more_day)
    retry = models.PositiveIntegerField(default=0)
    status = models.IntegerField(choices=StatusChoice.choices, default=StatusChoice.SUCCEEDED)

    objects: models.Manager[Any] = models.Manager()

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{self.destination} - {self.body}"

    @property
    def destination(self) -> str:
        return str(self.headers.get("destination", "")) if isinstance(self.headers, dict) else ""


class Received(AbstractReceived):
    """The inbox table (DEFAULT_RECEIVED_CLASS by default)."""

    class Meta:
        verbose_name = "received"
        db_table = "received"
        indexes = [
            models.Index(fields=["status"], name="dop_rec_status_idx"),
            models.Index(fields=["added"], name="dop_rec_added_idx"),
        ]
        permissions = [
            ("reprocess_received", "Can mark received messages for reprocessing (forget their id)"),
            ("purge_received", "Can purge received messages past the retention period"),
        ]


class Repair(models.Model):
    """The audit trail: one operator repair (replay, dead-letter, purge, reprocess), who ran it and when."""

    id = models.BigAutoField(primary_key=True)
    at = models.DateTimeField(default=timezone.now, db_index=True)
    # "replayed", "dead_lettered", "purged", "reprocessed"
    action = models.CharField(max_length=32)
    # "outbox" (Published), "inbox" (Received); the column avoids the reserved word for raw SQL
    table = models.CharField(max_length=16, db_column="table_name")
    # "admin", "cli" or "api"
    via = models.CharField(max_length=16)
    # Who: "alice" (admin user), "bob@host-1" (OS user and host), or the API caller's ``actor``.
    actor = models.CharField(max_length=255)
    # What was asked for: ids (at most a few shown), filters, reason, retention cutoff.
    selection = models.JSONField(default=dict)
    # Rows changed (or deleted): kept up to date batch by batch, in each batch's transaction.
    count = models.PositiveIntegerField(default=0)

    objects: models.Manager[Repair] = models.Manager()

    class Meta:
        verbose_name = "repair"
        db_table = "outbox_repair"
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.table} {self.action} by {self.via}:{self.actor} ({self.count} rows)"


class RepairedRow(models.Model):
    """One row a replay, dead-letter or reprocess changed (purges keep only the count: the rows are gone)."""

    id = models.BigAutoField(primary_key=True)
    repair = models.ForeignKey(Repair, on_delete=models.CASCADE, related_name="rows")
    # The Published/Received primary key as text; for the inbox also the message id.
    row_id = models.CharField(max_length=64, db_index=True)
    msg_id = models.CharField(max_length=100, blank=True, default="", db_index=True)

    repair_id: int
    objects: models.Manager[RepairedRow] = models.Manager()

    class Meta:
        verbose_name = "repaired row"
        db_table = "outbox_repair_row"

    def __str__(self) -> str:
        return f"{self.row_id} ({self.repair_id})"


class RelayProcess(models.Model):
    """A running relay, as its heartbeat thread last reported it (see relaying/liveness.py).

    A relay whose ``beat_at`` is older than a few seconds is taken for dead: the rows it had leased are
    released at once instead of at the end of their lease. Rows of relays that keep no heartbeat (older
    releases) still wait for their lease.
    """

    relay_id = models.CharField(max_length=64, primary_key=True)
    host = models.CharField(max_length=255, blank=True, default="")
    pid = models.IntegerField(default=0)
    started_at = models.DateTimeField(default=timezone.now)
    beat_at = models.DateTimeField(db_index=True)

    objects: models.Manager[RelayProcess] = models.Manager()

    class Meta:
        verbose_name = "relay process"
        db_table = "dop_relay_process"

    def __str__(self) -> str:
        return self.relay_id


class OrderingKey(models.Model):
    """The last ``ordering_seq`` handed out for one ordering key (see sequencing.py).

    Writing a keyed outbox row bumps its key's counter in the writer's transaction: the row lock that takes
    keeps two transactions writing one key in line, so the key's rows commit in the order they are numbered.
    """

    key = models.CharField(max_length=255, primary_key=True)
    last_seq = models.BigIntegerField(default=0)

    objects: models.Manager[OrderingKey] = models.Manager()

    class Meta:
        verbose_name = "ordering key"
        db_table = "dop_ordering_key"

    def __str__(self) -> str:
        return f"{self.key} ({self.last_seq})"
