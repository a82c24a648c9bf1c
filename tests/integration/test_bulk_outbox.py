"""A decorated model's bulk_create writes the same outbox rows on every backend (COPY on PostgreSQL)."""

from __future__ import annotations

import datetime

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_outbox_pattern.choices import StatusChoice
from django_outbox_pattern.models import Published
from django_outbox_pattern.relaying import bulk
from tests.testapp import models as m

pytestmark = pytest.mark.django_db

COUNT = bulk.COPY_FROM + 10


def test_bulk_created_rows_match_what_save_writes() -> None:
    before = timezone.now()
    objs = m.VersionedModel.objects.bulk_create(
        [m.VersionedModel(field_one=f"one {i}", field_two="caf\u00e9 \u2603") for i in range(COUNT)]
    )
    m.VersionedModel.objects.create(field_one="saved", field_two="alone")
    saved = Published.objects.get(body__field_one="saved")
    rows = {row.body["field_one"]: row for row in Published.objects.exclude(pk=saved.pk)}
    assert len(rows) == COUNT
    for i, obj in enumerate(objs):
        row = rows[f"one {i}"]
        if obj.pk is not None:  # backends that return ids from bulk_create
            assert row.body == {"id": obj.pk, "field_one": f"one {i}", "field_two": "caf\u00e9 \u2603"}
        assert row.destination == saved.destination == "/topic/my_route_key.v1"
        assert (row.version, row.status, row.retry, row.locked_by, row.last_error) == (
            "v1",
            StatusChoice.SCHEDULE,
            0,
            "",
            "",
        )
        assert row.headers["dop-msg-id"] == str(row.id)
        assert set(row.headers) == set(saved.headers)
        assert before <= row.added <= timezone.now()
        assert row.available_at >= before and row.published_at is None
        assert row.expires_at - row.added > datetime.timedelta(hours=23)


def test_postgresql_copies_the_rows_other_backends_insert_them() -> None:
    objs = [m.MyModel(field_one=str(i), field_two="x") for i in range(COUNT)]
    with CaptureQueriesContext(connection) as ctx:
        m.MyModel.objects.bulk_create(objs)
    table = Published._meta.db_table
    inserts = [
        q["sql"]
        for q in ctx.captured_queries
        if f"INSERT INTO {connection.ops.quote_name(table)}" in q["sql"]
    ]
    assert len(inserts) == (0 if connection.vendor == "postgresql" else 1)
    assert Published.objects.count() == COUNT


def test_the_rows_belong_to_the_callers_transaction() -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        m.MyModel.objects.bulk_create([m.MyModel(field_one=str(i), field_two="x") for i in range(COUNT)])
        assert Published.objects.count() == COUNT
        raise RuntimeError("roll back")
    assert not Published.objects.exists() and not m.MyModel.objects.exists()
