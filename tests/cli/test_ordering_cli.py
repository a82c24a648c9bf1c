"""``outboxctl inspect --blocked``, ``replay`` and ``dead-letter`` on ordering keys held by a failed row."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from django_outbox_pattern import sequencing
from django_outbox_pattern.choices import StatusChoice
from django_outbox_pattern.models import Published
from django_outbox_pattern.relaying import store
from outboxctl.exit_codes import ExitCode

pytestmark = pytest.mark.django_db


def held_key(key: str, behind: int) -> Published:
    """A key whose first row failed for good, with ``behind`` pending rows after it."""
    blocker = Published.objects.create(destination="/queue/orders", body={"n": 0}, ordering_key=key)
    for n in range(behind):
        Published.objects.create(destination="/queue/orders", body={"n": n + 1}, ordering_key=key)
    outbox = store.OutboxStore()
    now = timezone.now()
    claimed = outbox.claim(f"{key}#1", limit=100, now=now, lease_until=now + timedelta(minutes=2))
    assert blocker.pk in [row.id for row in claimed]
    outbox.dead_letter([blocker.pk], token=f"{key}#1", reason="refused by the broker")
    return blocker


def blocked_json(cli) -> dict:
    result = cli("inspect", "--blocked", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_blocked_lists_each_held_key_with_its_failed_row_and_the_rows_waiting(cli) -> None:
    first = held_key("order-1", behind=3)
    held_key("order-2", behind=1)
    Published.objects.create(destination="/queue/orders", body={}, ordering_key="order-3")
    data = blocked_json(cli)
    assert data["matching"] == 2
    by_key = {k["ordering_key"]: k for k in data["keys"]}
    assert set(by_key) == {"order-1", "order-2"}
    assert by_key["order-1"]["blocked_by"] == str(first.pk)
    assert by_key["order-1"]["held"] == 3
    assert by_key["order-2"]["held"] == 1
    assert by_key["order-1"]["last_error"] == "refused by the broker"


def test_blocked_as_a_table_says_how_to_free_a_key(cli) -> None:
    blocker = held_key("order-9", behind=2)
    result = cli("inspect", "--blocked")
    assert result.exit_code == 0, result.output
    text = re.sub(r"\s+", " ", result.stdout)
    assert "order-9" in text and str(blocker.pk)[:8] in text
    assert "outboxctl replay --id" in text and "dead-letter --id" in text


def test_nothing_blocked_is_one_line(cli) -> None:
    result = cli("inspect", "--blocked")
    assert result.exit_code == 0
    assert "No ordering key is held" in result.stdout


def test_blocked_takes_no_other_filter(cli) -> None:
    result = cli("inspect", "--blocked", "--failed")
    assert result.exit_code == ExitCode.USAGE
    assert "--blocked" in result.stderr


def test_dead_letter_of_the_failed_row_frees_its_key(cli) -> None:
    blocker = held_key("order-5", behind=2)
    result = cli("dead-letter", "--id", str(blocker.pk), "--reason", "customer deleted", "--yes")
    assert result.exit_code == 0, result.output
    assert blocked_json(cli)["matching"] == 0
    waiting = Published.objects.filter(ordering_key="order-5", status=StatusChoice.SCHEDULE)
    assert waiting.count() == 2
    assert not waiting.filter(last_error__startswith=sequencing.HELD_PREFIX).exists()
    blocker.refresh_from_db()
    assert (blocker.status, blocker.ordering_seq) == (StatusChoice.FAILED, None)


def test_replay_of_the_failed_row_frees_its_key_once_it_is_sent(cli) -> None:
    blocker = held_key("order-6", behind=1)
    result = cli("replay", "--id", str(blocker.pk), "--yes")
    assert result.exit_code == 0, result.output
    assert blocked_json(cli)["matching"] == 0
    blocker.refresh_from_db()
    assert (blocker.status, blocker.ordering_seq) == (StatusChoice.SCHEDULE, 1)
