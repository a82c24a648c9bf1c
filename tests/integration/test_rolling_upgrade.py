"""Expand-then-contract: after our migrations, 3.2.1's code (which knows only the columns up to its 0006)
can still INSERT outbox rows, and our relay publishes them."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from django_outbox_pattern import conf
from django_outbox_pattern.choices import StatusChoice
from django_outbox_pattern.models import Published
from tests.support.broker_helpers import QueueDrain
from tests.support.relay_helpers import make_relay, make_settings

pytestmark = [pytest.mark.broker, pytest.mark.django_db(transaction=True)]

# Every column of 3.2.1's ``Published`` (its models.py; migrations 0001-0006), in its field order.
COLUMNS_321 = ("id", "version", "destination", "body", "added", "expires_at", "retry", "status", "headers")


def insert_as_321(destination: str, body: dict[str, object], headers: dict[str, str]) -> uuid.UUID:
    """One raw INSERT naming only 3.2.1's columns, with values prepared as its ORM prepares them."""
    pk = uuid.uuid4()
    now = timezone.now()
    values = {
        "id": pk,
        "version": None,
        "destination": destination,
        "body": body,
        "added": now,
        "expires_at": now + timedelta(days=1),
        "retry": 0,
        "status": StatusChoice.SCHEDULE.value,
        "headers": headers,
    }
    fields = [Published._meta.get_field(name) for name in COLUMNS_321]
    params = [field.get_db_prep_save(values[field.name], connection) for field in fields]
    qn = connection.ops.quote_name
    sql = (
        f"INSERT INTO {qn(Published._meta.db_table)} ({', '.join(qn(f.column) for f in fields)}) "
        f"VALUES ({', '.join(['%s'] * len(fields))})"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
    return pk


def test_a_row_inserted_by_321_after_our_migrations_is_relayed(unique_name: str) -> None:
    destination = f"/queue/{unique_name}"
    sent_by_321 = {"dop-msg-id": "", "dop-msg-destination": destination, "dop-msg-type": "Published"}
    pk = insert_as_321(destination, {"order": 7}, sent_by_321)
    row = Published.objects.get(pk=pk)
    assert (row.locked_by, row.last_error, row.published_at) == ("", "", None)  # the database defaults
    assert abs(row.available_at - timezone.now()) < timedelta(minutes=5)  # now (database clock)

    settings: conf.OutboxSettings = make_settings()
    engine = make_relay(settings)
    with QueueDrain(settings, destination) as drain:
        try:
            assert engine.run_once() == 1
        finally:
            engine.close()
        received = drain.sync()
    assert [json.loads(m.body) for m in received] == [{"order": 7}]
    assert received[0].headers["dop-msg-destination"] == destination
    row.refresh_from_db()
    assert row.status == StatusChoice.SUCCEEDED and row.published_at is not None


def test_saves_never_fail_because_of_the_settings_on_any_database() -> None:
    """The write path (headers, and the NOTIFY wake-up on PostgreSQL) reads the settings leniently."""
    from django.test import override_settings

    from tests.testapp.models import MyModel

    mapping = {"DEFAULT_STOMP_HOST_AND_PORTS": "rabbit:61613", "DEFAULT_STOMP_OUTGOING_HEARTBEAT": 0, "X": 1}
    with override_settings(DJANGO_OUTBOX_PATTERN=mapping):
        Published.objects.create(destination="/topic/a", body={"n": 1})
        MyModel.objects.create(field_one="a", field_two="b")
    assert Published.objects.count() == 2
