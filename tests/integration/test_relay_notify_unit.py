"""notify.rows_inserted: one NOTIFY per transaction, only on PostgreSQL with DEFAULT_RELAY_NOTIFY."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection, transaction
from django.test import override_settings

from django_outbox_pattern.models import Published
from django_outbox_pattern.relaying import notify
from tests.support.relay_helpers import make_rows

pytestmark = pytest.mark.django_db


def ours(callbacks: list[Any]) -> list[Any]:
    return [c for c in callbacks if c is notify._callback_for("default")]


@pytest.fixture
def notify_on(settings: Any) -> None:
    settings.DJANGO_OUTBOX_PATTERN = {**settings.DJANGO_OUTBOX_PATTERN, "DEFAULT_RELAY_NOTIFY": True}


@pytest.mark.usefixtures("notify_on")
def test_one_notify_per_transaction_however_many_rows(django_capture_on_commit_callbacks: Any) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL only")
    with django_capture_on_commit_callbacks() as callbacks, transaction.atomic():
        Published.objects.create(destination="/queue/a", body={})
        Published.objects.create(destination="/queue/a", body={})
        make_rows("/queue/a", 5)  # bulk_create
    assert len(ours(callbacks)) == 1


def test_nothing_is_registered_when_notify_is_off(django_capture_on_commit_callbacks: Any) -> None:
    with (
        override_settings(DJANGO_OUTBOX_PATTERN={"DEFAULT_RELAY_NOTIFY": False}),
        django_capture_on_commit_callbacks() as callbacks,
        transaction.atomic(),
    ):
        Published.objects.create(destination="/queue/a", body={})
    assert ours(callbacks) == []


def test_by_default_one_notify_per_transaction_where_notify_works(
    django_capture_on_commit_callbacks: Any,
) -> None:
    """DEFAULT_RELAY_NOTIFY = None: on with PostgreSQL through psycopg 3, nothing elsewhere."""
    with django_capture_on_commit_callbacks() as callbacks, transaction.atomic():
        Published.objects.create(destination="/queue/a", body={})
        make_rows("/queue/a", 3)
    assert len(ours(callbacks)) == (1 if notify.available("default") else 0)
    assert notify.available("default") == (connection.vendor == "postgresql")  # psycopg 3 in this venv


@pytest.mark.usefixtures("notify_on")
def test_nothing_is_registered_on_other_databases(django_capture_on_commit_callbacks: Any) -> None:
    if connection.vendor == "postgresql":
        pytest.skip("checks the non-PostgreSQL path")
    with django_capture_on_commit_callbacks() as callbacks, transaction.atomic():
        Published.objects.create(destination="/queue/a", body={})
    assert ours(callbacks) == []
    assert notify.build_listener("default") is None
