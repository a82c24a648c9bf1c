"""store.OutboxStore against the test database: claims, leases, marks, dead letters, purges."""

from __future__ import annotations

import datetime
import json

import pytest
from django.db import connection
from django.utils import timezone

from django_outbox_pattern import exceptions
from django_outbox_pattern.choices import StatusChoice
from django_outbox_pattern.models import Published
from django_outbox_pattern.relaying import store
from django_outbox_pattern.relaying.outbox import OutboxRow
from tests.support.relay_helpers import make_rows

pytestmark = pytest.mark.django_db

LEASE = datetime.timedelta(seconds=120)


@pytest.fixture(params=store.OutboxStore.STRATEGIES)
def outbox(request: pytest.FixtureRequest) -> store.OutboxStore:
    """Every claim strategy this database can run (compare-and-set runs everywhere)."""
    best = store.OutboxStore().strategy
    usable = store.OutboxStore.STRATEGIES[store.OutboxStore.STRATEGIES.index(best) :]
    if request.param not in usable:
        pytest.skip(f"{connection.vendor} cannot claim with {request.param}")
    return store.OutboxStore(strategy=request.param)


def claim(outbox: store.OutboxStore, token: str = "r#1", limit: int = 100) -> list[OutboxRow]:
    now = timezone.now()
    return outbox.claim(token, limit=limit, now=now, lease_until=now + LEASE)


def test_claim_returns_due_rows_in_creation_order_up_to_the_limit(outbox: store.OutboxStore) -> None:
    rows = make_rows("/queue/a", 5)
    claimed = claim(outbox, limit=3)
    assert [r.id for r in claimed] == [r.id for r in rows[:3]]
    assert json.loads(claimed[0].body) == {"n": 0}  # the stored JSON text, sent as it is
    assert claimed[0].headers["dop-msg-id"] == str(rows[0].id)


def test_claim_leases_rows_so_a_second_claim_skips_them(outbox: store.OutboxStore) -> None:
    make_rows("/queue/a", 4)
    first = claim(outbox, "r#1", limit=3)
    second = claim(outbox, "r#2", limit=3)
    assert len(first) == 3 and len(second) == 1
    assert {r.id for r in first}.isdisjoint(r.id for r in second)
    leased = Published.objects.get(id=first[0].id)
    assert leased.locked_by == "r#1"
    assert leased.available_at > timezone.now() + datetime.timedelta(seconds=100)
    assert leased.status == StatusChoice.SCHEDULE


def test_claim_ignores_rows_not_due_and_not_scheduled(outbox: store.OutboxStore) -> None:
    later = timezone.now() + datetime.timedelta(minutes=5)
    make_rows("/queue/later", 1, available_at=later)
    make_rows("/queue/done", 1, status=StatusChoice.SUCCEEDED)
    make_rows("/queue/failed", 1, status=StatusChoice.FAILED)
    due = make_rows("/queue/due", 1)
    assert [r.id for r in claim(outbox)] == [due[0].id]


def test_claim_puts_a_retried_row_by_its_next_attempt_time(outbox: store.OutboxStore) -> None:
    retried = make_rows("/queue/a", 1, retry=2, available_at=timezone.now() - datetime.timedelta(hours=1))
    fresh = make_rows("/queue/a", 2)
    assert [r.id for r in claim(outbox)] == [retried[0].id, fresh[0].id, fresh[1].id]


def test_an_expired_lease_can_be_claimed_again(outbox: store.OutboxStore) -> None:
    make_rows("/queue/a", 1)
    now = timezone.now()
    assert outbox.claim("r#1", limit=10, now=now, lease_until=now + datetime.timedelta(seconds=1))
    after_lease = now + datetime.timedelta(seconds=2)
    again = outbox.claim("r#2", limit=10, now=after_lease, lease_until=after_lease + LEASE)
    assert len(again) == 1
    assert Published.objects.get().locked_by == "r#2"


def test_mark_published_sets_status_time_and_clears_the_lease(outbox: store.OutboxStore) -> None:
    rows = make_rows("/queue/a", 3)
    claimed = claim(outbox)
    now = timezone.now()
    assert outbox.mark_published([r.id for r in claimed[:2]], now=now) == 2
    done = Published.objects.get(id=rows[0].id)
    assert (done.status, done.published_at, done.locked_by) == (StatusChoice.SUCCEEDED, now, "")
    assert Published.objects.get(id=rows[2].id).status == StatusChoice.SCHEDULE


def test_reschedule_counts_the_attempt_keeps_the_error_and_only_under_our_lease(
    outbox: store.OutboxStore,
) -> None:
    make_rows("/queue/a", 2)
    claimed = claim(outbox, "r#1")
    due = timezone.now() + datetime.timedelta(seconds=30)
    assert outbox.reschedule([claimed[0].id], token="r#1", error="no RECEIPT", available_at=due) == 1
    assert outbox.reschedule([claimed[1].id], token="other#9", error="x", available_at=due) == 0
    row = Published.objects.get(id=claimed[0].id)
    assert (row.retry, row.last_error, row.available_at, row.locked_by) == (1, "no RECEIPT", due, "")
    assert Published.objects.get(id=claimed[1].id).retry == 0


def test_dead_letter_and_release(outbox: store.OutboxStore) -> None:
    make_rows("/queue/a", 3, retry=4)
    a, b, c = claim(outbox, "r#1")
    assert outbox.dead_letter([a.id], token="r#1", reason="unsendable: bad") == 1
    assert outbox.dead_letter([b.id], token="r#1", reason="gave up", count_attempt=True) == 1
    now = timezone.now()
    assert outbox.release([c.id], token="r#1", now=now) == 1
    rows = {r.id: r for r in Published.objects.all()}
    assert (rows[a.id].status, rows[a.id].last_error, rows[a.id].retry) == (
        StatusChoice.FAILED,
        "unsendable: bad",
        4,
    )
    assert (rows[b.id].status, rows[b.id].retry) == (StatusChoice.FAILED, 5)
    assert (rows[c.id].status, rows[c.id].available_at, rows[c.id].retry) == (StatusChoice.SCHEDULE, now, 4)
    assert [r.id for r in claim(outbox, "r#2")] == [c.id]


def test_dead_letter_expired_skips_rows_under_a_live_lease(outbox: store.OutboxStore) -> None:
    gone = timezone.now() - datetime.timedelta(seconds=1)
    expired = make_rows("/queue/a", 2, expires_at=gone)
    in_backoff = make_rows("/queue/a", 1, expires_at=gone, available_at=timezone.now() + LEASE)
    make_rows("/queue/a", 1)  # not expired
    leased = claim(outbox, "r#1", limit=1)  # takes expired[0]
    assert leased[0].id == expired[0].id
    assert outbox.dead_letter_expired(now=timezone.now(), reason="expired: test") == 2
    failed = set(Published.objects.filter(status=StatusChoice.FAILED).values_list("id", flat=True))
    assert failed == {expired[1].id, in_backoff[0].id}
    assert Published.objects.get(id=expired[1].id).last_error == "expired: test"


def test_purge_deletes_only_old_published_rows(outbox: store.OutboxStore) -> None:
    old = timezone.now() - datetime.timedelta(days=40)
    for status in StatusChoice:
        make_rows(f"/queue/{status.name}", 2, status=status)
    Published.objects.update(added=old)
    recent = make_rows("/queue/recent", 1, status=StatusChoice.SUCCEEDED)
    assert outbox.purge_published(added_before=timezone.now() - datetime.timedelta(days=30)) == 2
    left = set(Published.objects.values_list("status", flat=True))
    assert left == {StatusChoice.SCHEDULE, StatusChoice.FAILED, StatusChoice.SUCCEEDED}
    assert Published.objects.filter(status=StatusChoice.SUCCEEDED).get().id == recent[0].id


def test_database_errors_become_storage_errors() -> None:
    with pytest.raises(exceptions.StorageError, match="migrate"), store.wrap_errors("claim a batch"):
        Published.objects.raw("SELECT * FROM no_such_table_here")[0]
