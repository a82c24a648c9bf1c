"""``outboxctl replay``: failed rows back to pending; dry run, confirmation, batches, only failed rows."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from django_outbox_pattern.choices import StatusChoice
from django_outbox_pattern.models import Published
from django_outbox_pattern.ops import batching, inspection, operations
from outboxctl.exit_codes import ExitCode
from tests.cli.conftest import make_published

pytestmark = pytest.mark.django_db

FAILED, PENDING = StatusChoice.FAILED, StatusChoice.SCHEDULE


def statuses(rows: list[Published]) -> set[int]:
    return set(Published.objects.filter(id__in=[r.id for r in rows]).values_list("status", flat=True))


def test_replay_by_id_resets_attempts(cli) -> None:
    row = make_published(1, status=FAILED, retry=50, last_error="gave up", locked_by="relay-1")[0]
    other = make_published(1, status=FAILED)
    result = cli("replay", "--id", str(row.id), "--yes", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"action": "replayed", "dry_run": False, "matched": 1, "changed": 1}
    row.refresh_from_db()
    assert (row.status, row.retry, row.last_error, row.locked_by) == (PENDING, 0, "", "")
    assert statuses(other) == {FAILED}


def test_dry_run_changes_nothing(cli) -> None:
    rows = make_published(3, status=FAILED, destination="/topic/dry")
    result = cli("replay", "--destination", "/topic/dry", "--dry-run", "--json")
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert (report["dry_run"], report["matched"], report["changed"]) == (True, 3, 0)
    assert {r["id"] for r in report["sample"]} == {str(r.id) for r in rows}
    assert statuses(rows) == {FAILED}
    human = cli("replay", "--destination", "/topic/dry", "--dry-run")
    assert "Dry run: 3 row(s) would be replayed; nothing changed." in human.stdout


def test_confirmation(cli) -> None:
    rows = make_published(2, status=FAILED)
    declined = cli("replay", "--all", input="n\n")
    assert declined.exit_code == ExitCode.ERROR
    assert "Replay 2 failed message(s)?" in declined.stderr
    assert "Declined: nothing changed." in declined.stderr
    assert statuses(rows) == {FAILED}
    no_answer = cli("replay", "--all", input="")
    assert no_answer.exit_code == ExitCode.ERROR and "Pass --yes" in no_answer.stderr
    accepted = cli("replay", "--all", input="y\n")
    assert accepted.exit_code == 0
    assert "2 row(s) replayed." in accepted.stdout
    assert statuses(rows) == {PENDING}


def test_ctrl_c_at_the_question_exits_130_and_changes_nothing(cli, monkeypatch) -> None:
    import typer

    def interrupted(*args: object, **kwargs: object) -> bool:  # what Click's confirm() does on Ctrl-C
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            raise typer.Abort() from None

    rows = make_published(2, status=FAILED)
    monkeypatch.setattr(typer, "confirm", interrupted)
    result = cli("replay", "--all")
    assert result.exit_code == ExitCode.INTERRUPTED == 130
    assert "Interrupted: nothing changed." in result.stderr
    assert statuses(rows) == {FAILED}


def test_only_failed_rows_change(cli) -> None:
    pending = make_published(2, status=PENDING, destination="/topic/mixed")
    failed = make_published(1, status=FAILED, destination="/topic/mixed")
    result = cli("replay", "--destination", "/topic/mixed", "--yes", "--json")
    assert json.loads(result.stdout)["changed"] == 1
    assert statuses(failed) == {PENDING} and statuses(pending) == {PENDING}
    nothing = cli("replay", "--destination", "/topic/mixed", "--yes")
    assert nothing.exit_code == 0 and "Nothing to do: 0 rows match." in nothing.stderr


def test_since_and_limit_oldest_first(cli) -> None:
    old = make_published(2, status=FAILED, age=timedelta(days=2))
    new = make_published(2, status=FAILED, age=timedelta(minutes=5))
    assert json.loads(cli("replay", "--since", "1h", "--yes", "--json").stdout)["changed"] == 2
    assert statuses(new) == {PENDING} and statuses(old) == {FAILED}
    make_published(3, status=FAILED, age=timedelta(days=1))
    assert json.loads(cli("replay", "--all", "--limit", "2", "--yes", "--json").stdout)["changed"] == 2
    assert statuses(old) == {PENDING}  # the two oldest went first


def test_in_batches(cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batching, "BATCH_SIZE", 2)
    rows = make_published(5, status=FAILED)
    seen: list[int] = []
    assert operations.replay_matching(inspection.Filter(), on_batch=seen.append) == 5
    assert seen == [2, 2, 1]
    assert statuses(rows) == {PENDING}


def test_selection_is_required(cli) -> None:
    result = cli("replay", "--yes")
    assert result.exit_code == ExitCode.USAGE
    assert "Nothing selected." in result.stderr and "--all" in result.stderr


def test_bad_id_is_a_usage_error(cli) -> None:
    result = cli("replay", "--id", "nope")
    assert result.exit_code == ExitCode.USAGE
    assert "is not a row id" in result.output


def test_progress_bar_only_on_a_terminal(cli, monkeypatch: pytest.MonkeyPatch) -> None:
    from outboxctl.commands import _repair

    monkeypatch.setattr(_repair, "PROGRESS_FROM", 2)
    make_published(3, status=FAILED)
    on_terminal = cli("replay", "--all", "--yes", env={"TTY_COMPATIBLE": "1", "TTY_INTERACTIVE": "1"})
    assert on_terminal.exit_code == 0, on_terminal.output
    assert "Replayed" in on_terminal.stderr and "3/3" in on_terminal.stderr
    make_published(3, status=FAILED)
    piped = cli("replay", "--all", "--yes")
    assert piped.exit_code == 0 and piped.stderr == ""


def test_ids_that_are_not_failed_are_explained(cli) -> None:
    pending = make_published(1, status=PENDING)[0]
    missing = "00000000-0000-0000-0000-0000000000aa"
    result = cli("replay", "--id", str(pending.id), "--id", missing, "--yes")
    assert result.exit_code == 0
    assert f"Skipping {pending.id}: it is pending (only failed rows are changed)." in result.stderr
    assert f"Skipping {missing}: it is not found" in result.stderr
