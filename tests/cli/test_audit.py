"""Every repair leaves an audit record (who, what selection, how many, when) and one structured log line,
from ``outboxctl`` and the Python API here (the admin: tests/integration/test_admin_permissions.py);
``outboxctl inspect --id`` shows a row's repairs."""

from __future__ import annotations

import getpass
import json
import logging
import socket
from datetime import timedelta

import pytest
from django.utils import timezone

from django_outbox_pattern.choices import StatusChoice
from django_outbox_pattern.models import Received, Repair, RepairedRow
from django_outbox_pattern.ops import audit, operations
from tests.cli.conftest import child_env, make_published, make_received, run_cli

pytestmark = pytest.mark.django_db

FAILED, PENDING, SENT = StatusChoice.FAILED, StatusChoice.SCHEDULE, StatusChoice.SUCCEEDED
HERE = f"{getpass.getuser()}@{socket.gethostname()}"


def repair_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if "_repair_" in getattr(r, "action", "")]


def test_cli_repairs_record_the_os_user_and_host(cli, caplog: pytest.LogCaptureFixture) -> None:
    failed = make_published(2, status=FAILED, destination="/topic/audit")
    pending = make_published(1, destination="/topic/park")
    make_published(3, status=SENT, age=timedelta(days=40))
    with caplog.at_level(logging.INFO, logger="django_outbox_pattern"):
        assert cli("replay", "--destination", "/topic/audit", "--yes").exit_code == 0
        assert (
            cli("dead-letter", "--id", str(pending[0].id), "--reason", "bad payload", "--yes").exit_code == 0
        )
        assert cli("purge", "--older-than", "30d", "--outbox", "--yes").exit_code == 0
    repairs = list(Repair.objects.order_by("id"))
    assert [(r.action, r.table, r.via, r.actor, r.count) for r in repairs] == [
        ("replayed", "outbox", "cli", HERE, 2),
        ("dead_lettered", "outbox", "cli", HERE, 1),
        ("purged", "outbox", "cli", HERE, 3),
    ]
    assert repairs[0].selection == {"destination": "/topic/audit"}
    assert repairs[1].selection == {"ids": [str(pending[0].id)], "id_count": 1, "reason": "bad payload"}
    assert repairs[2].selection == {"older_than_seconds": 30 * 86400.0, "statuses": ["published"]}
    assert timezone.now() - repairs[0].at < timedelta(minutes=1)
    assert set(RepairedRow.objects.filter(repair=repairs[0]).values_list("row_id", flat=True)) == {
        str(r.id) for r in failed
    }
    lines = repair_lines(caplog)
    assert [r.action for r in lines] == [  # type: ignore[attr-defined]
        "outbox_repair_replayed",
        "outbox_repair_dead_lettered",
        "outbox_repair_purged",
    ]
    assert [(r.actor, r.via, r.count, r.repair_id) for r in lines] == [  # type: ignore[attr-defined]
        (HERE, "cli", r.count, r.pk) for r in repairs
    ]


def test_api_repairs_take_an_actor_with_a_default(caplog: pytest.LogCaptureFixture) -> None:
    rows = make_published(2, status=FAILED)
    received = make_received(1, age=timedelta(days=400))
    with caplog.at_level(logging.INFO, logger="django_outbox_pattern"):
        assert operations.replay([rows[0].id]) == 1
        assert operations.replay([rows[1].id], actor="deploy-bot") == 1
        assert operations.reprocess([received[0].id], actor=audit.Actor("nightly", "api")) == 1
    assert list(Repair.objects.order_by("id").values_list("via", "actor", "action", "table")) == [
        ("api", HERE, "replayed", "outbox"),
        ("api", "deploy-bot", "replayed", "outbox"),
        ("api", "nightly", "reprocessed", "inbox"),
    ]
    assert [getattr(r, "action", "") for r in repair_lines(caplog)] == [
        "outbox_repair_replayed",
        "outbox_repair_replayed",
        "inbox_repair_reprocessed",
    ]
    assert not Received.objects.exists()


def test_a_repair_that_changes_nothing_is_still_recorded() -> None:
    pending = make_published(1)
    assert operations.replay([pending[0].id], actor="someone") == 0
    repair = Repair.objects.get()
    assert (repair.count, repair.selection["id_count"]) == (0, 1)
    assert not RepairedRow.objects.exists()


def test_inbox_purge_by_id_keeps_rows_inside_the_retention() -> None:
    old = make_received(1, age=timedelta(days=400))
    young = make_received(1)
    assert operations.purge_inbox_ids([old[0].id, young[0].id], actor="ops") == 1
    assert list(Received.objects.values_list("id", flat=True)) == [young[0].id]
    assert operations.purge_inbox_ids([young[0].id], older_than=timedelta(0), actor="ops") == 1


def test_inspect_shows_a_rows_repairs(cli) -> None:
    row = make_published(1, status=FAILED)[0]
    operations.replay([row.id], actor="alice")
    operations.dead_letter([row.id], reason="still broken", actor="bob")
    data = json.loads(cli("inspect", "--id", str(row.id), "--json").stdout)
    assert [(r["action"], r["via"], r["actor"], r["reason"]) for r in data["repairs"]] == [
        ("dead_lettered", "api", "bob", "still broken"),
        ("replayed", "api", "alice", ""),
    ]
    human = cli("inspect", "--id", str(row.id))
    assert human.exit_code == 0
    assert "Repairs (newest first)" in human.stdout and "api:bob" in human.stdout
    clean = make_published(1)[0]
    assert "Repairs: none recorded." in cli("inspect", "--id", str(clean.id)).stdout


def test_inspect_finds_a_forgotten_inbox_message_by_its_id(cli) -> None:
    received = make_received(1)[0]
    operations.reprocess([received.id], actor="carol")
    data = json.loads(cli("inspect", "--inbox", "--id", received.msg_id, "--json").stdout)
    assert data["row"] is None
    assert [(r["action"], r["actor"]) for r in data["repairs"]] == [("reprocessed", "carol")]
    human = cli("inspect", "--inbox", "--id", received.msg_id)
    assert human.exit_code == 0 and "No inbox row with id" in human.stderr and "carol" in human.stdout


@pytest.mark.django_db(transaction=True)
def test_a_real_outboxctl_process_is_audited() -> None:
    rows = make_published(1, status=FAILED)
    done = run_cli("replay", "--id", str(rows[0].id), "--yes", "--json", env=child_env())
    assert done.returncode == 0, done.stderr
    repair = Repair.objects.get()
    assert (repair.via, repair.actor, repair.count) == ("cli", HERE, 1)
