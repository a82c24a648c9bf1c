"""Databases created by 2.x/3.x releases migrate forward with no data loss; models match migrations."""

from __future__ import annotations

import io
import uuid
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

APP = "django_outbox_pattern"
LATEST = "0009_published_db_defaults"


def migrate_to(name: str) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate([(APP, name)])
    executor.loader.build_graph()
    return executor


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "start", ["0006_published_published_status_27c9ec_btree", "0007_published_published_added_idx_and_more"]
)
def test_upgrade_keeps_rows(start: str) -> None:
    executor = migrate_to(start)
    old = executor.loader.project_state((APP, start)).apps
    OldPublished = old.get_model(APP, "Published")
    OldReceived = old.get_model(APP, "Received")
    now = timezone.now()
    ids = [uuid.uuid4() for _ in range(3)]
    statuses = [1, 2, -1]
    for pk, status in zip(ids, statuses, strict=True):
        OldPublished.objects.create(
            id=pk,
            destination="/topic/old",
            body={"n": str(pk)},
            version="v1",
            status=status,
            retry=4,
            headers={"dop-msg-id": str(pk)},
            expires_at=now + timedelta(days=1),
        )
    OldReceived.objects.create(
        msg_id="m-1", headers={"destination": "/queue/q"}, body={"x": 1}, expires_at=now
    )

    try:
        migrate_to(LATEST)
        from django_outbox_pattern.models import Published, Received

        rows = {p.id: p for p in Published.objects.all()}
        assert set(rows) == set(ids)
        for pk, status in zip(ids, statuses, strict=True):
            row = rows[pk]
            assert (row.destination, row.body, row.version, row.status, row.retry) == (
                "/topic/old",
                {"n": str(pk)},
                "v1",
                status,
                4,
            )
            assert row.headers == {"dop-msg-id": str(pk)}
            assert row.available_at is not None and row.last_error == "" and row.locked_by == ""
        received = Received.objects.get()
        assert (received.msg_id, received.destination, received.body) == ("m-1", "/queue/q", {"x": 1})
    finally:
        migrate_to(LATEST)
        from django_outbox_pattern.models import Published, Received

        Published.objects.all().delete()
        Received.objects.all().delete()


@pytest.mark.django_db
def test_models_and_migrations_do_not_drift() -> None:
    out = io.StringIO()
    try:
        call_command("makemigrations", APP, "--check", "--dry-run", stdout=out, stderr=out)
    except SystemExit as exc:  # makemigrations --check exits 1 on changes
        pytest.fail(
            "django_outbox_pattern models changed without a migration: run "
            f"`python -m django makemigrations django_outbox_pattern` and review it.\n{out.getvalue()}"
            if exc.code
            else out.getvalue()
        )
    assert "No changes detected" in out.getvalue()


def test_migration_names_match_earlier_releases() -> None:
    from django.db.migrations.loader import MigrationLoader

    loader = MigrationLoader(None, ignore_no_migrations=True)
    names = sorted(name for app, name in loader.disk_migrations if app == APP)
    assert names[:7] == [
        "0001_initial",
        "0002_received_msg_id",
        "0003_alter_published_version",
        "0004_auto_20230403_1637",
        "0005_published_headers",
        "0006_published_published_status_27c9ec_btree",
        "0007_published_published_added_idx_and_more",
    ]
    module = __import__(loader.disk_migrations[(APP, names[5])].__class__.__module__, fromlist=["x"])
    with open(module.__file__) as source:
        assert "postgres" not in source.read()
