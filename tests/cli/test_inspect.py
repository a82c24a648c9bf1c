"""``outboxctl inspect``: summary, filtered rows, one row in full, the inbox; JSON with stable keys."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from django_outbox_pattern.choices import StatusChoice
from outboxctl.exit_codes import ExitCode
from tests.cli.conftest import make_published, make_received

pytestmark = pytest.mark.django_db

FAILED, PENDING, SENT = StatusChoice.FAILED, StatusChoice.SCHEDULE, StatusChoice.SUCCEEDED


def inspect_json(cli, *args: str) -> dict:
    result = cli("inspect", *args, "--json")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    return json.loads(result.stdout)


def test_summary_counts_by_status_and_destination(cli) -> None:
    make_published(3, status=PENDING, destination="/topic/a", age=timedelta(hours=2))
    make_published(2, status=FAILED, destination="/topic/a", last_error="boom")
    make_published(1, status=SENT, destination="/topic/b")
    make_published(1, status=PENDING, destination="/topic/b", retry=4)
    make_received(2, destination="/topic/in")
    summary = inspect_json(cli)
    assert set(summary) == {"outbox", "inbox"}
    out = summary["outbox"]
    assert set(out) == {
        "total",
        "by_status",
        "by_destination",
        "destinations",
        "oldest_pending",
        "due_now",
        "in_flight",
        "retrying",
        "max_attempts",
    }
    assert out["total"] == 7
    assert out["by_status"] == {"pending": 4, "failed": 2, "published": 1}
    assert out["by_destination"][0] == {
        "destination": "/topic/a",
        "pending": 3,
        "failed": 2,
        "published": 0,
        "total": 5,
    }
    assert out["oldest_pending"]["destination"] == "/topic/a"
    assert 7100 < out["oldest_pending"]["age_seconds"] < 7300
    assert (out["retrying"], out["max_attempts"], out["due_now"]) == (1, 4, 4)
    inbox = summary["inbox"]
    assert inbox["total"] == 2
    assert inbox["by_destination"] == [
        {"destination": "/topic/in", "pending": 0, "failed": 0, "processed": 2, "total": 2}
    ]


def test_summary_as_a_table(cli) -> None:
    make_published(2, status=FAILED, destination="/topic/tbl")
    result = cli("inspect")
    assert result.exit_code == 0, result.output
    assert "Outbox  2 rows: pending 0  failed 2  published 0" in result.stdout
    assert "/topic/tbl" in result.stdout
    assert "oldest pending: none" in result.stdout


def test_empty_database(cli) -> None:
    summary = inspect_json(cli)
    assert summary["outbox"]["total"] == 0 and summary["outbox"]["oldest_pending"] is None
    assert summary["inbox"]["oldest"] is None


def test_filters(cli) -> None:
    failed = make_published(2, status=FAILED, destination="/topic/orders.v1")
    make_published(1, status=FAILED, destination="/topic/other", age=timedelta(days=3))
    make_published(4, status=PENDING, destination="/topic/orders.v2")
    make_published(1, status=SENT, destination="/topic/orders.v1")
    rows = inspect_json(cli, "--failed", "--destination", "/topic/orders*")
    assert set(rows) == {"table", "matching", "rows"}
    assert {r["id"] for r in rows["rows"]} == {str(r.id) for r in failed}
    assert set(rows["rows"][0]) == {
        "id",
        "destination",
        "status",
        "attempts",
        "added",
        "available_at",
        "published_at",
        "last_error",
    }
    assert inspect_json(cli, "--failed", "--since", "1d")["matching"] == 2
    assert inspect_json(cli, "--failed", "--pending")["matching"] == 7
    assert inspect_json(cli, "--published")["rows"][0]["status"] == "published"
    limited = inspect_json(cli, "--pending", "--limit", "3")
    assert (limited["matching"], len(limited["rows"])) == (4, 3)
    assert inspect_json(cli, "--destination", "/topic/orders.v1")["matching"] == 3


def test_rows_as_a_table(cli) -> None:
    make_published(1, status=FAILED, destination="/topic/t", last_error="x" * 200)
    result = cli("inspect", "--failed")
    assert result.exit_code == 0
    assert "Outbox: 1 of 1 matching rows" in result.stdout
    assert "x" * 59 + "…" in result.stdout


def test_one_row_in_full(cli) -> None:
    row = make_published(1, status=FAILED, destination="/topic/full", last_error="broker said no")[0]
    data = inspect_json(cli, "--id", str(row.id))
    assert data["table"] == "outbox"
    assert data["row"]["body"] == {"n": 0}
    assert data["row"]["headers"]["dop-msg-id"] == str(row.id)
    assert data["row"]["last_error"] == "broker said no"
    human = cli("inspect", "--id", str(row.id))
    assert "broker said no" in human.stdout and '"dop-msg-id"' in human.stdout


def test_unknown_id_is_an_error(cli) -> None:
    result = cli("inspect", "--id", "00000000-0000-0000-0000-000000000000")
    assert result.exit_code == ExitCode.ERROR
    assert "No outbox row with id" in result.stderr
    assert result.stdout == ""
    assert cli("inspect", "--id", "not-a-uuid").exit_code == ExitCode.ERROR


def test_inbox_rows_and_lookup_by_message_id(cli) -> None:
    rows = make_received(3, destination="/queue/in")
    data = inspect_json(cli, "--inbox")
    assert data["table"] == "inbox" and data["matching"] == 3
    assert set(data["rows"][0]) == {"id", "msg_id", "destination", "status", "added"}
    assert data["rows"][0]["status"] == "processed"
    assert inspect_json(cli, "--inbox", "--destination", "/queue/*")["matching"] == 3
    assert inspect_json(cli, "--inbox", "--destination", "/queue/other")["matching"] == 0
    full = inspect_json(cli, "--inbox", "--id", rows[0].msg_id)
    assert full["row"]["id"] == str(rows[0].id) and full["row"]["body"] == {"n": 0}
    assert inspect_json(cli, "--inbox", "--id", str(rows[1].id))["row"]["msg_id"] == rows[1].msg_id


def test_rows_on_a_narrow_terminal_keep_whole_ids(cli) -> None:
    row = make_published(1, status=FAILED, destination="/topic/narrow", last_error="boom", retry=3)[0]
    result = cli("inspect", "--failed", env={"COLUMNS": "80"})
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[1].startswith(f"{row.id}  failed  ") and lines[1].endswith("3 attempts")
    assert lines[2] == "  /topic/narrow · boom"
