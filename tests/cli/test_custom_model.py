"""DEFAULT_PUBLISHED_CLASS: a project's own outbox model is written, relayed, inspected and repaired.

``tests.testapp.models.CustomOutbox`` subclasses ``AbstractPublished`` with its own table; with the
setting pointing at it, nothing may touch the default ``Published`` table.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from django_outbox_pattern import testing, wiring
from django_outbox_pattern.choices import StatusChoice
from django_outbox_pattern.models import Published
from django_outbox_pattern.relaying import assembly
from django_outbox_pattern.testkit import OutboxTestHelper
from outboxctl.exit_codes import ExitCode
from tests.testapp.models import CustomOutbox, MyModel

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def custom_outbox(settings: Any) -> None:
    settings.DJANGO_OUTBOX_PATTERN = {
        **settings.DJANGO_OUTBOX_PATTERN,
        "DEFAULT_PUBLISHED_CLASS": "tests.testapp.models.CustomOutbox",
        "DEFAULT_RECEIPT_TIMEOUT": 1,
    }


def test_the_setting_resolves_the_custom_model() -> None:
    assert wiring.published_model() is CustomOutbox


def test_the_decorator_writes_the_custom_table() -> None:
    MyModel.objects.create(field_one="one", field_two="two")
    # 25 rows: over bulk.COPY_FROM, so PostgreSQL (psycopg 3) writes them with COPY into the custom table
    MyModel.objects.bulk_create([MyModel(field_one=str(n), field_two="b") for n in range(25)])
    assert CustomOutbox.objects.filter(destination="/topic/my_route_key").count() == 26
    assert Published.objects.count() == 0
    row = CustomOutbox.objects.order_by("added").first()
    assert row is not None and row.headers["dop-msg-id"] == str(row.id)


def test_the_relay_sends_the_custom_rows() -> None:
    MyModel.objects.create(field_one="one", field_two="two")
    broker = testing.MemoryBroker()
    engine = assembly.build_relay(transport=testing.MemoryTransport(broker))
    assert engine.run_once() == 1
    engine.close()
    assert [m.destination for m in broker.sent] == ["/topic/my_route_key"]
    assert CustomOutbox.objects.get().status == StatusChoice.SUCCEEDED
    assert OutboxTestHelper().published()[0].status == StatusChoice.SUCCEEDED  # the test kit follows


def test_inspect_replay_and_purge_see_the_custom_table(cli) -> None:
    failed = CustomOutbox.objects.create(
        destination="/topic/custom", body={}, status=StatusChoice.FAILED, last_error="gave up"
    )
    old = CustomOutbox.objects.create(destination="/topic/custom", body={}, status=StatusChoice.SUCCEEDED)
    CustomOutbox.objects.filter(id=old.id).update(added=timezone.now() - timedelta(days=40))
    Published.objects.create(destination="/topic/default", body={})  # not the configured table

    summary = json.loads(cli("inspect", "--json").stdout)["outbox"]
    assert summary["total"] == 2
    assert summary["by_status"] == {"pending": 0, "failed": 1, "published": 1}

    replayed = cli("replay", "--id", str(failed.id), "--yes", "--json")
    assert replayed.exit_code == ExitCode.OK, replayed.output
    assert json.loads(replayed.stdout)["changed"] == 1
    failed.refresh_from_db()
    assert failed.status == StatusChoice.SCHEDULE

    purged = cli("purge", "--older-than", "30d", "--outbox", "--yes", "--json")
    assert purged.exit_code == ExitCode.OK, purged.output
    assert not CustomOutbox.objects.filter(id=old.id).exists()
    assert Published.objects.count() == 1  # the default table was never touched
