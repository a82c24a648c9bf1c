"""``outboxctl dead-letter``: park pending rows as failed with a reason; never rows a relay holds."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from django_outbox_pattern.choices import StatusChoice
from django_outbox_pattern.models import Published
from outboxctl.exit_codes import ExitCode
from tests.cli.conftest import make_published

pytestmark = pytest.mark.django_db

FAILED, PENDING, SENT = StatusChoice.FAILED, StatusChoice.SCHEDULE, StatusChoice.SUCCEEDED


def test_park_by_id_with_reason(cli) -> None:
    row = make_published(1, status=PENDING)[0]
    result = cli("dead-letter", "--id", str(row.id), "--reason", "bad payload", "--yes", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "action": "dead-lettered",
        "dry_run": False,
        "matched": 1,
        "changed": 1,
        "reason": "bad payload",
    }
    row.refresh_from_db()
    assert (row.status, row.last_error) == (FAILED, "bad payload")


def test_rows_in_flight_and_other_statuses_are_left_alone(cli) -> None:
    free = make_published(2, status=PENDING, destination="/topic/park")
    leased = make_published(
        1,
        status=PENDING,
        destination="/topic/park",
        locked_by="relay-9",
        available_at=timezone.now() + timedelta(minutes=2),
    )
    expired = make_published(
        1,
        status=PENDING,
        destination="/topic/park",
        locked_by="relay-8",
        available_at=timezone.now() - timedelta(minutes=1),
    )
    sent = make_published(1, status=SENT, destination="/topic/park")
    result = cli("dead-letter", "--destination", "/topic/park", "--reason", "retired", "--yes", "--json")
    assert json.loads(result.stdout)["changed"] == 3
    by_id = dict(Published.objects.values_list("id", "status"))
    assert {by_id[r.id] for r in free + expired} == {FAILED}
    assert by_id[leased[0].id] == PENDING
    assert by_id[sent[0].id] == SENT


def test_reason_is_required(cli) -> None:
    row = make_published(1, status=PENDING)[0]
    result = cli("dead-letter", "--id", str(row.id), "--yes")
    assert result.exit_code == ExitCode.USAGE
    assert "A reason is required" in result.stderr


def test_dry_run_and_confirmation(cli) -> None:
    rows = make_published(2, status=PENDING, destination="/topic/dl")
    dry = cli("dead-letter", "--destination", "/topic/dl", "--dry-run", "--json")
    assert json.loads(dry.stdout)["matched"] == 2
    declined = cli("dead-letter", "--destination", "/topic/dl", "--reason", "r", input="n\n")
    assert declined.exit_code == ExitCode.ERROR
    assert "Park 2 pending message(s) as failed?" in declined.stderr
    assert set(Published.objects.filter(id__in=[r.id for r in rows]).values_list("status", flat=True)) == {
        PENDING
    }


def test_nothing_selected(cli) -> None:
    assert cli("dead-letter", "--reason", "r", "--yes").exit_code == ExitCode.USAGE


# --- dead-letter requeue (the broker side) ----------------------------------------------------------------


@pytest.fixture
def peer(outbox_settings, unique_name):
    from tests.cli.peers import Peer

    p = Peer(outbox_settings, unique_name)
    yield p
    p.close()


@pytest.mark.broker
def test_requeue_moves_dead_letters_back(cli, peer) -> None:
    peer.dead_letter(2)
    result = cli("dead-letter", "requeue", peer.name, "--yes", "--json", "--idle-timeout", "0.3")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "queue": peer.name,
        "source": f"DLQ.{peer.name}",
        "requeued": 2,
        "stopped": "empty",
    }
    assert sorted(m.headers["dop-msg-id"] for m in peer.take(2)) == [f"{peer.name}-0", f"{peer.name}-1"]


@pytest.mark.broker
def test_requeue_asks_first_and_honours_limit(cli, peer) -> None:
    peer.dead_letter(2)
    declined = cli("dead-letter", "requeue", peer.name, input="n\n")
    assert declined.exit_code == ExitCode.ERROR
    assert f"Move messages from DLQ.{peer.name} back to {peer.name}?" in declined.stderr
    limited = cli("dead-letter", "requeue", peer.name, "--limit", "1", input="y\n")
    assert limited.exit_code == 0, limited.output
    assert (
        f"1 message(s) moved from DLQ.{peer.name} to {peer.name}; stopped: --limit reached." in limited.stdout
    )


@pytest.mark.broker
def test_requeue_unknown_queue_is_an_error(cli, broker_available, unique_name) -> None:
    result = cli("dead-letter", "requeue", unique_name, "--yes")
    assert result.exit_code == ExitCode.ERROR
    assert f"Cannot requeue into the queue {unique_name}" in result.stderr
    assert "Traceback" not in result.output


def test_requeue_broker_down_exits_3(cli) -> None:
    result = cli("dead-letter", "requeue", "orders", "--yes", env={"OUTBOXCTL_BROKER_HOSTS": "127.0.0.1:9"})
    assert result.exit_code == ExitCode.BROKER_UNAVAILABLE
    assert "Could not connect to the broker at 127.0.0.1:9" in result.stderr


def test_requeue_takes_a_queue_name(cli) -> None:
    result = cli("dead-letter", "requeue", "/queue/orders", "--yes")
    assert result.exit_code == ExitCode.USAGE
    assert "is not a queue name" in result.stderr


def test_ids_in_flight_are_explained(cli) -> None:
    leased = make_published(1, locked_by="relay-1", available_at=timezone.now() + timedelta(minutes=1))[0]
    result = cli("dead-letter", "--id", str(leased.id), "--reason", "r", "--yes")
    assert result.exit_code == 0
    assert f"Skipping {leased.id}: it is in flight (only pending rows are changed)." in result.stderr
    assert "Nothing to do" in result.stderr
