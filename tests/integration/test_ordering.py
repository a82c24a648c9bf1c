"""Per-key ordering on the real databases: numbering, claims, sequenced dead-lettering, operators."""

from __future__ import annotations

import datetime
import threading
from typing import Any

import pytest
from django.db import close_old_connections, transaction
from django.utils import timezone

from django_outbox_pattern import exceptions, sequencing
from django_outbox_pattern.choices import StatusChoice
from django_outbox_pattern.models import OrderingKey, Published
from django_outbox_pattern.ops import operations
from django_outbox_pattern.relaying import store
from tests.testapp.models import CustomerEvent

pytestmark = pytest.mark.django_db(transaction=True)

LEASE = datetime.timedelta(seconds=120)


def claim(outbox: store.OutboxStore, token: str = "t#1", limit: int = 100) -> list[Any]:
    now = timezone.now()
    return [row.id for row in outbox.claim(token, limit=limit, now=now, lease_until=now + LEASE)]


def published(outbox: store.OutboxStore, ids: list[Any]) -> None:
    """What a landed batch does: mark the rows published, then wake the next row of their keys."""
    outbox.mark_published(ids, now=timezone.now())
    keys = set(
        Published.objects.filter(pk__in=ids).exclude(ordering_key=None).values_list("ordering_key", flat=True)
    )
    outbox.wake_next(keys, now=timezone.now())


def keyed(key: str | None, n: int, destination: str = "/queue/ordered") -> Published:
    return Published.objects.create(destination=destination, body={"key": key, "n": n}, ordering_key=key)


def test_rows_of_a_key_are_numbered_in_the_order_they_are_written() -> None:
    a1, b1, a2 = keyed("a", 1), keyed("b", 1), keyed("a", 2)
    more = Published.objects.bulk_create(
        [Published(destination="/queue/q", body={}, ordering_key=k) for k in "aba"]
    )
    plain = keyed(None, 0)
    assert [r.ordering_seq for r in (a1, b1, a2, *more)] == [1, 1, 2, 3, 2, 4]
    assert (plain.ordering_key, plain.ordering_seq) == (None, None)
    assert dict(OrderingKey.objects.values_list("key", "last_seq")) == {"a": 4, "b": 2}
    stored = Published.objects.get(pk=a2.pk)
    assert (stored.ordering_key, stored.ordering_seq) == ("a", 2)


def test_an_empty_key_is_no_key_and_a_key_too_long_is_refused_with_a_clear_message() -> None:
    assert keyed("", 1).ordering_seq is None
    with pytest.raises(exceptions.InvalidOrderingKey, match="at most 255"):
        keyed("x" * 256, 1)
    assert not Published.objects.filter(ordering_key__startswith="xxx").exists()


def test_the_decorator_fills_the_key_from_the_model() -> None:
    CustomerEvent.objects.create(customer="42", what="created")
    CustomerEvent.objects.create(customer="7", what="created")
    CustomerEvent.objects.bulk_create([CustomerEvent(customer="42", what="paid")])
    rows = Published.objects.order_by("added", "ordering_seq")
    assert [(r.ordering_key, r.ordering_seq, r.body["what"]) for r in rows] == [
        ("42", 1, "created"),
        ("7", 1, "created"),
        ("42", 2, "paid"),
    ]


def test_a_rolled_back_write_gives_its_number_back() -> None:
    keyed("a", 1)
    with pytest.raises(RuntimeError), transaction.atomic():
        keyed("a", 2)
        raise RuntimeError("the business transaction failed")
    third = keyed("a", 3)
    outbox = store.OutboxStore()
    first = claim(outbox)
    published(outbox, first)
    assert claim(outbox, "t#2") == [third.pk]
    assert third.ordering_seq == 2  # the counter rolled back with the row


def test_a_claim_takes_only_the_first_unsent_row_of_each_key() -> None:
    a1, b1, u1, a2, b2, u2, a3 = (
        keyed("a", 1),
        keyed("b", 1),
        keyed(None, 1),
        keyed("a", 2),
        keyed("b", 2),
        keyed(None, 2),
        keyed("a", 3),
    )
    outbox = store.OutboxStore()
    assert claim(outbox, "t#1") == [a1.pk, b1.pk, u1.pk, u2.pk]
    assert claim(outbox, "t#2") == []  # the next rows wait for a1's and b1's receipts
    published(outbox, [a1.pk])
    assert claim(outbox, "t#3") == [a2.pk]
    published(outbox, [a2.pk, b1.pk])
    assert sorted(claim(outbox, "t#4")) == sorted([b2.pk, a3.pk])  # woken together: either first


def test_a_row_waiting_for_its_retry_holds_its_key_and_no_other() -> None:
    a1, a2, b1 = keyed("a", 1), keyed("a", 2), keyed("b", 1)
    outbox = store.OutboxStore()
    assert claim(outbox, "t#1", limit=1) == [a1.pk]
    later = timezone.now() + datetime.timedelta(minutes=5)
    outbox.reschedule([a1.pk], token="t#1", error="no receipt", available_at=later)
    assert claim(outbox, "t#2") == [b1.pk]
    assert Published.objects.get(pk=a2.pk).status == StatusChoice.SCHEDULE


def test_a_row_that_failed_for_good_holds_exactly_the_rest_of_its_key() -> None:
    a1, a2, a3, b1 = keyed("a", 1), keyed("a", 2), keyed("a", 3), keyed("b", 1)
    outbox = store.OutboxStore()
    claim(outbox, "t#1")
    outbox.dead_letter([a1.pk], token="t#1", reason="refused by the broker", count_attempt=True)
    published(outbox, [b1.pk])
    b2 = keyed("b", 2)
    assert claim(outbox, "t#2") == [b2.pk]
    for row in Published.objects.filter(pk__in=[a2.pk, a3.pk]):
        assert row.status == StatusChoice.SCHEDULE
        assert row.last_error == sequencing.held_reason(a1.pk, "a")
        assert str(a1.pk) in row.last_error and "replay" in row.last_error
    assert Published.objects.get(pk=b2.pk).last_error == ""


def test_parking_the_failed_row_lets_its_key_go_on() -> None:
    a1, a2, a3 = keyed("a", 1), keyed("a", 2), keyed("a", 3)
    outbox = store.OutboxStore()
    claim(outbox)
    outbox.dead_letter([a1.pk], token="t#1", reason="poison")
    assert operations.dead_letter([a1.pk], reason="skipped by the operator", actor="test") == 1
    parked = Published.objects.get(pk=a1.pk)
    assert (parked.status, parked.ordering_seq, parked.last_error) == (
        StatusChoice.FAILED,
        None,
        "skipped by the operator",
    )
    assert Published.objects.get(pk=a2.pk).last_error == ""
    assert claim(outbox, "t#2") == [a2.pk]
    assert a3.pk not in claim(outbox, "t#3")


def test_parking_a_pending_row_of_a_key_lets_the_rest_go_on() -> None:
    a1, a2 = keyed("a", 1), keyed("a", 2)
    assert operations.dead_letter([a1.pk], reason="not wanted", actor="test") == 1
    assert claim(store.OutboxStore()) == [a2.pk]


def test_replaying_the_failed_row_sends_it_before_the_rest_of_its_key() -> None:
    a1, a2 = keyed("a", 1), keyed("a", 2)
    outbox = store.OutboxStore()
    claim(outbox)
    outbox.dead_letter([a1.pk], token="t#1", reason="poison")
    assert operations.replay([a1.pk], actor="test") == 1
    assert Published.objects.get(pk=a2.pk).last_error == ""
    assert claim(outbox, "t#2") == [a1.pk]
    published(outbox, [a1.pk])
    assert claim(outbox, "t#3") == [a2.pk]


def test_an_expired_keyed_row_holds_the_rest_of_its_key() -> None:
    a1 = Published.objects.create(
        destination="/queue/q", body={}, ordering_key="a", expires_at=timezone.now() - LEASE
    )
    a2 = keyed("a", 2)
    outbox = store.OutboxStore()
    assert outbox.dead_letter_expired(now=timezone.now(), reason="expired") == 1
    assert Published.objects.get(pk=a2.pk).last_error == sequencing.held_reason(a1.pk, "a")
    assert claim(outbox) == []


def test_concurrent_relays_never_hold_two_rows_of_one_key() -> None:
    rows = {key: [keyed(key, n) for n in range(5)] for key in ("a", "b", "c", "d")}
    first_ids = {rows[key][0].pk for key in rows}
    claimed: list[list[Any]] = []
    barrier = threading.Barrier(3)

    def relay(token: str) -> None:
        try:
            barrier.wait(10)
            claimed.append(claim(store.OutboxStore(), token))
        finally:
            close_old_connections()

    threads = [threading.Thread(target=relay, args=(f"t#{i}",)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    every = [row_id for ids in claimed for row_id in ids]
    assert len(every) == len(set(every)) == 4
    assert set(every) == first_ids


def test_concurrent_writers_of_one_key_get_distinct_numbers_in_commit_order() -> None:
    first_in = threading.Event()
    done = threading.Event()
    seqs: dict[str, int] = {}

    def writer(name: str, hold: bool) -> None:
        try:
            with transaction.atomic():
                row = keyed("shared", 0)
                seqs[name] = row.ordering_seq or 0
                if hold:
                    first_in.set()
                    done.wait(10)  # the second writer waits on the key's counter meanwhile
        finally:
            close_old_connections()

    first = threading.Thread(target=writer, args=("first", True))
    first.start()
    assert first_in.wait(10)
    second = threading.Thread(target=writer, args=("second", False))
    second.start()
    done.set()
    first.join(10)
    second.join(10)
    assert seqs == {"first": 1, "second": 2}


def test_rows_behind_an_unsent_row_are_set_aside_once_and_woken_when_it_is_published() -> None:
    rows = [keyed("hot", n) for n in range(6)]
    outbox = store.OutboxStore()
    first = outbox.claim("t#1", limit=100, now=timezone.now(), lease_until=timezone.now() + LEASE)
    assert [r.id for r in first] == [rows[0].pk] and first.scanned == 6
    waiting = Published.objects.filter(available_at=store.WAITING)
    assert set(waiting.values_list("pk", flat=True)) == {r.pk for r in rows[1:]}
    again = outbox.claim("t#2", limit=100, now=timezone.now(), lease_until=timezone.now() + LEASE)
    assert again == [] and again.scanned == 0  # the backlog is not looked at again
    published(outbox, [rows[0].pk])
    assert claim(outbox, "t#3") == [rows[1].pk]
    assert waiting.count() == 4


def test_a_lost_wake_up_is_caught_by_the_sweep() -> None:
    a1, a2 = keyed("a", 1), keyed("a", 2)
    outbox = store.OutboxStore()
    claim(outbox)
    outbox.mark_published([a1.pk], now=timezone.now())  # published, but nobody woke a2
    assert claim(outbox, "t#2") == []
    assert outbox.wake_stranded(now=timezone.now()) == 1
    assert claim(outbox, "t#3") == [a2.pk]


def test_rows_written_after_their_key_failed_say_which_row_holds_them() -> None:
    a1 = keyed("a", 1)
    outbox = store.OutboxStore()
    claim(outbox)
    outbox.dead_letter([a1.pk], token="t#1", reason="refused")
    late = keyed("a", 2)  # written after the failure
    assert claim(outbox, "t#2") == []
    late.refresh_from_db()
    assert late.last_error == sequencing.held_reason(a1.pk, "a")
    assert late.available_at == store.WAITING


def test_a_row_waiting_only_for_a_row_in_flight_stays_due() -> None:
    """Its predecessor's RECEIPT may come while a claim looks at it: set aside on that claim's snapshot, it
    would miss its wake-up. It takes no place in the claim either; rows further back are set aside."""
    a1, a2, a3 = keyed("a", 1), keyed("a", 2), keyed("a", 3)
    outbox = store.OutboxStore()
    assert claim(outbox, "t#1", limit=1) == [a1.pk]
    second = outbox.claim("t#2", limit=100, now=timezone.now(), lease_until=timezone.now() + LEASE)
    assert second == [] and second.scanned == 1  # a3, set aside
    a2.refresh_from_db()
    a3.refresh_from_db()
    assert a2.available_at < store.WAITING and a3.available_at == store.WAITING
    published(outbox, [a1.pk])
    assert claim(outbox, "t#3") == [a2.pk]
