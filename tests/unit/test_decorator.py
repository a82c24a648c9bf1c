"""The spec README's examples, plus what users expect beyond them."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.db import connection, transaction
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from django_outbox_pattern.choices import StatusChoice
from django_outbox_pattern.decorators import publishing_disabled
from django_outbox_pattern.models import Published
from tests.testapp import models as m

pytestmark = pytest.mark.django_db


def only(destination: str | None = None) -> Published:
    rows = list(
        Published.objects.all() if destination is None else Published.objects.filter(destination=destination)
    )
    assert len(rows) == 1, rows
    return rows[0]


def test_only_destination() -> None:
    obj = m.MyModel.objects.create(field_one="Field One", field_two="Field Two")
    row = only()
    assert row.destination == "/topic/my_route_key"
    assert row.body == {"id": obj.pk, "field_one": "Field One", "field_two": "Field Two"}
    assert row.status == StatusChoice.SCHEDULE
    assert row.retry == 0


def test_version_is_appended_to_the_destination() -> None:
    obj = m.VersionedModel.objects.create(field_one="One", field_two="Two")
    row = only()
    assert (row.destination, row.version) == ("/topic/my_route_key.v1", "v1")
    assert row.body == {"id": obj.pk, "field_one": "One", "field_two": "Two"}


def test_fields_subset() -> None:
    obj = m.FieldsModel.objects.create(field_one="Field One", field_two="Field Two")
    assert only().body == {"id": obj.pk, "field_one": "Field One"}


def test_serializer_method() -> None:
    obj = m.SerializerModel.objects.create(field_one="Field One", field_two="Field Two")
    assert only().body == {"id": obj.pk, "one": "Field One", "two": "Field Two"}


def test_several_configs() -> None:
    obj = m.MultiModel.objects.create(field_one="Field One", field_two="Field Two")
    assert only("/topic/my_route_key_1").body == {"id": obj.pk, "one": "Field One"}
    assert only("/topic/my_route_key_2").body == {"id": obj.pk, "two": "Field Two"}


def test_update_publishes_again() -> None:
    obj = m.MyModel.objects.create(field_one="a", field_two="b")
    obj.field_one = "changed"
    obj.save()
    bodies = sorted(p.body["field_one"] for p in Published.objects.all())
    assert bodies == ["a", "changed"]


def test_business_row_and_outbox_row_share_one_transaction(monkeypatch: pytest.MonkeyPatch) -> None:
    class Boom(Exception):
        pass

    def explode(self: Any) -> dict[str, Any]:
        raise Boom

    monkeypatch.setattr(m.SerializerModel, "my_serializer", explode)
    # Like Model.save() itself, a failed decorated save marks the enclosing transaction for rollback
    # (no savepoint of its own); the test's own atomic block plays the caller's transaction.
    with pytest.raises(Boom), transaction.atomic():
        m.SerializerModel.objects.create(field_one="x", field_two="y")
    assert not m.SerializerModel.objects.exists()
    assert not Published.objects.exists()


def test_rollback_of_the_callers_transaction_drops_both() -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        m.MyModel.objects.create(field_one="a", field_two="b")
        raise RuntimeError
    assert not m.MyModel.objects.exists()
    assert not Published.objects.exists()


def test_model_own_save_still_runs() -> None:
    obj = m.CustomSaveModel(name="abc")
    obj.save()
    assert (obj.saves, obj.name) == (1, "ABC")
    assert only().body == {"id": obj.pk, "name": "ABC", "saves": 1}


def test_subclass_publishes_once_with_inherited_fields() -> None:
    obj = m.ChildOfMyModel.objects.create(field_one="a", field_two="b", extra="x")
    row = only()
    assert row.body == {"id": obj.pk, "field_one": "a", "field_two": "b", "extra": "x"}


def test_bulk_create_writes_outbox_rows_in_bulk() -> None:
    objs = [m.MyModel(field_one=str(i), field_two="x") for i in range(20)]
    with CaptureQueriesContext(connection) as ctx:
        m.MyModel.objects.bulk_create(objs)
    inserts = [q["sql"] for q in ctx.captured_queries if q["sql"].lstrip().upper().startswith("INSERT")]
    assert len(inserts) == 2, inserts  # one for the models, one for their 20 outbox rows
    assert Published.objects.count() == 20
    if objs[0].pk is not None:
        assert sorted(p.body["id"] for p in Published.objects.all()) == sorted(o.pk for o in objs)


def test_save_without_publishing() -> None:
    m.MyModel(field_one="a", field_two="b").save(stop=True)
    with publishing_disabled():
        m.MyModel.objects.create(field_one="c", field_two="d")
        m.MyModel.objects.bulk_create([m.MyModel(field_one="e", field_two="f")])
    assert m.MyModel.objects.count() == 3
    assert not Published.objects.exists()


def test_published_create_inside_callers_atomic() -> None:
    with transaction.atomic():
        m.PlainModel.objects.create(field_one="a", field_two="b")
        row = Published.objects.create(destination="your_destination", body={"some": "data"})
    row.refresh_from_db()
    assert row.body == {"some": "data"}
    assert row.headers["dop-msg-id"] == str(row.id)
    assert row.headers["dop-msg-destination"] == "your_destination"
    assert row.headers["dop-msg-type"] == "Published"
    # as 3.2.1: a new id when there is no current request id (this asserted the row id before)
    correlation = row.headers["dop-correlation-id"]
    assert str(uuid.UUID(correlation)) == correlation != str(row.id)
    assert row.headers["dop-msg-sent-time"]


def test_custom_headers_kept_but_ids_protected() -> None:
    row = Published.objects.create(
        destination="/topic/x",
        body={},
        headers={"tenant": "acme", "dop-msg-id": "forged", "dop-correlation-id": "corr-1", "n": 3},
    )
    assert row.headers["tenant"] == "acme"
    assert row.headers["n"] == "3"
    assert row.headers["dop-msg-id"] == str(row.id)
    assert row.headers["dop-correlation-id"] == "corr-1"


def my_headers(message: Any) -> dict[str, str]:
    return {"dop-msg-id": str(message.id), "x-made-by": "custom"}


@override_settings(DJANGO_OUTBOX_PATTERN={"DEFAULT_GENERATE_HEADERS": "tests.unit.test_decorator.my_headers"})
def test_generate_headers_setting_replaces_the_generator() -> None:
    row = Published.objects.create(destination="/topic/x", body={})
    assert row.headers == {"dop-msg-id": str(row.id), "x-made-by": "custom"}


def test_published_bulk_create_prepares_rows() -> None:
    rows = Published.objects.bulk_create([Published(destination="/topic/y", version="v2", body={"a": 1})])
    row = Published.objects.get(pk=rows[0].pk)
    assert row.destination == "/topic/y.v2"
    assert row.headers["dop-msg-id"] == str(row.id)


def test_config_keeps_its_first_four_fields_and_adds_ordering_key_last() -> None:
    from django_outbox_pattern.decorators import Config

    assert Config._fields == ("destination", "fields", "serializer", "version", "ordering_key")
    assert Config("/topic/a", None, None, "v1") == Config(destination="/topic/a", version="v1")
    assert Config("/topic/a").ordering_key is None


def test_ordering_key_from_a_field_a_method_or_nothing() -> None:
    from django_outbox_pattern.decorators import Config, ordering_key_of

    event = m.CustomerEvent(customer="42", what="created")
    assert ordering_key_of(event, Config("/topic/a", ordering_key="customer")) == "42"
    assert ordering_key_of(event, Config("/topic/a", ordering_key="ordering_for")) == "customer-42"
    assert ordering_key_of(event, Config("/topic/a")) is None
    assert (
        ordering_key_of(m.CustomerEvent(customer="", what="x"), Config("/t", ordering_key="customer")) is None
    )


def test_a_keyed_save_costs_one_statement_more_and_numbers_the_row() -> None:
    with CaptureQueriesContext(connection) as plain:
        m.MyModel.objects.create(field_one="a", field_two="b")
    with CaptureQueriesContext(connection) as keyed:
        m.CustomerEvent.objects.create(customer="42", what="created")
    assert len(keyed.captured_queries) == len(plain.captured_queries) + 1
    row = Published.objects.get(ordering_key="42")
    assert row.ordering_seq == 1
