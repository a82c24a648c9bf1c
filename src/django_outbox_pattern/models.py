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

from django.db import models
from django.utils import timezone

from django_outbox_pattern import wiring
from django_outbox_pattern.choices import StatusChoice
from django_outbox_pattern.headers import get_message_headers

__all__ = ["AbstractPublished", "AbstractReceived", "Published", "Received", "StatusChoice"]


def _one_more_day() -> datetime:
    """Default ``expires_at`` (kept by name: migration 0001 of existing databases imports it)."""
    return timezone.now() + timedelta(1)


class PublishedQuerySet(models.QuerySet[Any]):
    def bulk_create(self, objs: Iterable[Any], *args: Any, **kwargs: Any) -> list[Any]:
        """Like ``QuerySet.bulk_create``, but versions destinations and fills headers as ``save()`` does."""
        objs = list(objs)
        for obj in objs:
            obj.prepare_for_insert()
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
    # Not claimable before this time: the next retry after a failure, or the end of a relay's lease.
    available_at = models.DateTimeField(default=timezone.now)
    # Which relay holds the lease (empty when none does).
    locked_by = models.CharField(max_length=64, blank=True, default="")
    last_error = models.TextField(blank=True, default="")
    published_at = models.DateTimeField(null=True, blank=True)

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
