"""``outboxctl purge``: old rows deleted in batches; pending rows never without --include-unsent."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from django_outbox_pattern.choices import StatusChoice
from django_outbox_pattern.models import Published, Received
from django_outbox_pattern.ops import operations
from outboxctl.exit_codes import ExitCode
from tests.cli.conftest import make_published, make_received

pytestmark = pytest.mark.django_db

FAILED, PENDING, SENT = StatusChoice.FAILED, StatusChoice.SCHEDULE, StatusChoice.SUCCEEDED
OLD = timedelta(days=40)


def seed() -> dict[str, list]:
    return {
        "old_sent": make_published(3, status=SENT, age=OLD),
        "new_sent": make_published(2, status=SENT, age=timedelta(days=1)),
        "old_failed": make_published(2, status=FAILED, age=OLD),
        "old_pending": make_published(2, status=PENDING, age=OLD),
        "old_inbox": make_received(2, age=OLD),
        "new_inbox": make_received(1),
    }


def left(rows: list) -> int:
    model = type(rows[0])
    return model.objects.filter(id__in=[r.id for r in rows]).count()


def test_default_deletes_old_published_and_inbox_rows_only(cli) -> None:
    rows = seed()
    result = cli("purge", "--older-than", "30d", "--yes", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["changed"] == 5
    assert report["tables"] == {"outbox": 3, "inbox": 2}
    assert report["statuses"] == ["published"]
    assert report["older_than_seconds"] == 30 * 86400
    assert left(rows["old_sent"]) == 0 and left(rows["old_inbox"]) == 0
    for kept in ("new_sent", "old_failed", "old_pending", "new_inbox"):
        assert left(rows[kept]) == len(rows[kept]), kept


def test_dry_run_counts_and_deletes_nothing(cli) -> None:
    seed()
    before = (Published.objects.count(), Received.objects.count())
    human = cli("purge", "--older-than", "30d", "--dry-run")
    assert human.exit_code == 0
    assert "Dry run: 5 row(s) would be deleted; nothing changed." in human.stdout
    assert "outbox" in human.stdout and "inbox" in human.stdout
    machine = json.loads(cli("purge", "--older-than", "4w", "--outbox", "--dry-run", "--json").stdout)
    assert (machine["matched"], machine["tables"]) == (3, {"outbox": 3})
    assert (Published.objects.count(), Received.objects.count()) == before


def test_unsent_rows_need_the_explicit_flag(cli) -> None:
    rows = seed()
    refused = cli("purge", "--older-than", "30d", "--status", "pending", "--yes")
    assert refused.exit_code == ExitCode.USAGE
    assert "Refusing to delete pending" in refused.stderr and "--include-unsent" in refused.stderr
    assert left(rows["old_pending"]) == 2
    with pytest.raises(ValueError, match="include_unsent"):
        operations.purgeable("outbox", older_than=OLD, statuses=[PENDING])
    ok = cli("purge", "--older-than", "30d", "--outbox", "--status", "pending", "--include-unsent", "--yes")
    assert ok.exit_code == 0, ok.output
    assert left(rows["old_pending"]) == 0 and left(rows["old_sent"]) == 3


def test_status_and_table_selection(cli) -> None:
    rows = seed()
    result = cli("purge", "--older-than", "30d", "--inbox", "--yes", "--json")
    assert json.loads(result.stdout)["tables"] == {"inbox": 2}
    assert left(rows["old_sent"]) == 3
    result = cli(
        "purge", "--older-than", "30d", "--outbox", "-s", "failed", "-s", "published", "--yes", "--json"
    )
    assert json.loads(result.stdout)["changed"] == 5
    assert left(rows["old_failed"]) == 0 and left(rows["old_pending"]) == 2


def test_default_age_is_days_to_keep_data(cli) -> None:
    rows = seed()
    report = json.loads(cli("purge", "--outbox", "--dry-run", "--json").stdout)
    assert report["older_than_seconds"] == 30 * 86400
    assert report["matched"] == len(rows["old_sent"])


def test_batches(cli, monkeypatch: pytest.MonkeyPatch) -> None:
    make_published(5, status=SENT, age=OLD)
    seen: list[int] = []
    assert operations.purge("outbox", older_than=timedelta(days=30), batch_size=2, on_batch=seen.append) == 5
    assert seen == [2, 2, 1]
    make_published(3, status=SENT, age=OLD)
    result = cli("purge", "--older-than", "30d", "--outbox", "--batch-size", "1", "--yes", "--json")
    assert json.loads(result.stdout)["changed"] == 3


def test_confirmation_declined(cli) -> None:
    rows = seed()
    result = cli("purge", "--older-than", "30d", input="n\n")
    assert result.exit_code == ExitCode.ERROR
    assert "Delete 5 row(s)?" in result.stderr
    assert left(rows["old_sent"]) == 3


@pytest.mark.parametrize("age", ["99999999d", "999999999999w", "1" + "0" * 30 + "s"])
def test_a_duration_out_of_range_is_a_usage_error(cli, age: str) -> None:
    rows = seed()
    result = cli("purge", "--older-than", age, "--yes")
    assert result.exit_code == ExitCode.USAGE, result.output
    assert "is too long: give at most" in result.stderr
    assert "looks like a bug" not in result.output
    assert left(rows["old_sent"]) == 3


@pytest.mark.parametrize("command", ["inspect", "replay", "dead-letter"])
def test_a_since_out_of_range_is_a_usage_error(cli, command: str) -> None:
    result = cli(command, "--since", "99999999d")
    assert result.exit_code == ExitCode.USAGE, result.output
    assert "is too long" in result.stderr
